//! Zero-copy buffers: a `SharedBuffer` handed through a `Queue` between two processes by
//! handle, at 1 MiB, 64 MiB and 1 GiB, against a memcpy of the same size (what moving the
//! bytes would cost at best) and, at 1 MiB, an ordinary byte item (`put_bytes`/`get_bytes`).
//! The hand-off is half an echo round trip: put the buffer, the other process gets it,
//! touches its first byte and puts it back. Alternated with its baselines, medians printed.

use std::hint::black_box;

use multiproc::{Process, Queue, SharedBuffer, StartMethod};
use multiproc_bench::{Measure, PerOp, Report, alternate};

fn start<A, R>(f: fn(A) -> R, args: A) -> Process<R>
where
    A: serde::Serialize + serde::de::DeserializeOwned + 'static,
    R: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(f, args)
        .unwrap()
}

/// Gets buffers, touches the first byte, sends them back; `None` ends.
fn buffer_echo((req, resp): (Queue<Option<SharedBuffer>>, Queue<Option<SharedBuffer>>)) {
    while let Some(mut b) = req.get().unwrap() {
        b[0] = b[0].wrapping_add(1);
        resp.put(Some(b)).unwrap();
    }
}

fn bytes_echo((req, resp): (Queue<u8>, Queue<u8>)) {
    loop {
        let b = req.get_bytes().unwrap();
        if b.is_empty() {
            return;
        }
        resp.put_bytes(&b).unwrap();
    }
}

/// An echo child and its queues, kept across the alternated rounds.
struct Echo<T> {
    req: Queue<T>,
    resp: Queue<T>,
    child: Option<Process<()>>,
}

fn handoff(
    echo: &Echo<Option<SharedBuffer>>,
    buf: &mut Option<SharedBuffer>,
    samples: usize,
    ops: u64,
) -> PerOp {
    let rt = Measure::new(samples, ops).per_op(|n| {
        for _ in 0..n {
            echo.req.put(buf.take()).unwrap();
            let b = echo.resp.get().unwrap().unwrap();
            black_box(b[0]);
            *buf = Some(b);
        }
    });
    PerOp::from_ns(rt.ns / 2.0)
}

fn bytes_handoff(echo: &Echo<u8>, item: &[u8], samples: usize, ops: u64) -> PerOp {
    let rt = Measure::new(samples, ops).per_op(|n| {
        for _ in 0..n {
            echo.req.put_bytes(item).unwrap();
            black_box(echo.resp.get_bytes().unwrap());
        }
    });
    PerOp::from_ns(rt.ns / 2.0).with_bytes(item.len() as u64)
}

fn memcpy(src: &[u8], dst: &mut [u8], samples: usize, ops: u64) -> PerOp {
    Measure::new(samples, ops)
        .per_op(|n| {
            for _ in 0..n {
                black_box(&mut *dst).copy_from_slice(black_box(src));
            }
        })
        .with_bytes(src.len() as u64)
}

fn main() {
    let mut report = Report::new("zero-copy buffers: SharedBuffer hand-off through a Queue");
    let figure = "SharedBuffer hand-off (put, get in another process, touch first byte)";
    for (size, ops, rounds) in [
        (1usize << 20, 2000u64, 7usize),
        (64 << 20, 500, 5),
        (1 << 30, 200, 3),
    ] {
        let mut buf = SharedBuffer::new(size).unwrap();
        // Filled once, every page touched, as a producer would.
        buf.fill(7);
        let mut buf = Some(buf);
        let echo = Echo {
            req: Queue::new().unwrap(),
            resp: Queue::new().unwrap(),
            child: None,
        };
        let child = start(buffer_echo, (echo.req.clone(), echo.resp.clone()));
        let echo = Echo {
            child: Some(child),
            ..echo
        };
        let src = vec![7u8; size];
        let mut dst = vec![0u8; size];
        dst.fill(1);
        let copy_ops = if size >= 1 << 30 {
            1
        } else {
            (ops / 50).max(2)
        };
        let mut bytes = None;
        if size == 1 << 20 {
            let (req, resp) = (Queue::<u8>::new().unwrap(), Queue::<u8>::new().unwrap());
            let child = start(bytes_echo, (req.clone(), resp.clone()));
            bytes = Some(Echo {
                req,
                resp,
                child: Some(child),
            });
        }
        let [ours, copy, queued] = alternate(
            rounds,
            [
                &mut || handoff(&echo, &mut buf, 3, ops),
                &mut || memcpy(&src, &mut dst, 3, copy_ops),
                &mut || match &bytes {
                    Some(e) => bytes_handoff(e, &src, 3, 200),
                    None => PerOp::from_ns(f64::NAN),
                },
            ],
        );
        let mut base = vec![("memcpy", copy)];
        if bytes.is_some() {
            base.push(("Queue put_bytes/get_bytes (one way)", queued));
        }
        report.rows_sized(figure, size as u64, ours, &base);
        echo.req.put(None).unwrap();
        if let Some(c) = echo.child {
            c.join().unwrap();
        }
        if let Some(e) = bytes {
            e.req.put_bytes(&[]).unwrap();
            if let Some(c) = e.child {
                c.join().unwrap();
            }
        }
    }
}
