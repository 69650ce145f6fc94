//! Python's queue and pipe behaviours in one process: timeouts that wait their full time and
//! answer `Full`/`Empty`/`Timeout`, qsize, FIFO, simplex directions, poll, empty messages.

use std::time::{Duration, Instant};

use multiproc_ipc::{Error, JoinableQueue, Pipe, Queue, SimpleQueue};

const T: Duration = Duration::from_millis(30);

#[test]
fn timeouts_wait_their_time_and_answer_full_or_empty() {
    let q = Queue::with_maxsize(2).unwrap();
    q.put(1u8).unwrap();
    q.put(2).unwrap();
    assert!(q.full());
    let t = Instant::now();
    assert!(matches!(q.put_timeout(3, T), Err(Error::Full)));
    assert!(t.elapsed() >= T);
    assert!(matches!(q.put_nowait(3), Err(Error::Full)));
    assert_eq!(q.qsize(), 2);
    assert_eq!((q.get().unwrap(), q.get().unwrap()), (1, 2));
    let t = Instant::now();
    assert!(matches!(q.get_timeout(T), Err(Error::Empty)));
    assert!(t.elapsed() >= T);
    assert!(matches!(q.get_nowait(), Err(Error::Empty)));
    assert!(q.empty() && !q.full());
}

#[test]
fn a_blocked_put_resumes_when_a_thread_takes() {
    // A hand-off queue, and long ones whose waiting producers look at the room less often.
    for maxsize in [1, 128, 300] {
        let q = Queue::with_maxsize(maxsize).unwrap();
        for i in 0..maxsize as u32 {
            q.put(i).unwrap();
        }
        assert!(q.full());
        let t = Instant::now();
        assert!(matches!(q.put_timeout(0, T), Err(Error::Full)));
        assert!(t.elapsed() >= T, "maxsize {maxsize}");
        let taker = q.clone();
        let n = 20 * maxsize as u32;
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..n {
                    assert_eq!(taker.get().unwrap(), i);
                }
            });
            for i in maxsize as u32..n {
                q.put(i).unwrap();
            }
        });
        assert!(q.empty());
    }
}

#[test]
fn fifo_qsize_and_item_types() {
    let q = Queue::new().unwrap();
    for i in 0..1000u32 {
        q.put((i, format!("item {i}"), vec![i; (i % 7) as usize]))
            .unwrap();
    }
    assert_eq!(q.qsize(), 1000);
    for i in 0..1000u32 {
        assert_eq!(
            q.get().unwrap(),
            (i, format!("item {i}"), vec![i; (i % 7) as usize])
        );
    }
    let s = SimpleQueue::new().unwrap();
    s.put(()).unwrap();
    assert!(!s.empty());
    s.get().unwrap();
    assert!(s.empty());
}

#[test]
fn joinable_queue_counts_tasks() {
    let q = JoinableQueue::new().unwrap();
    q.put('a').unwrap();
    q.put('b').unwrap();
    let worker = q.clone();
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..2 {
                worker.get().unwrap();
                worker.task_done().unwrap();
            }
        });
        q.join().unwrap();
    });
    assert!(matches!(q.task_done(), Err(Error::Invalid(_))));
}

#[test]
fn pipes_keep_message_boundaries_and_directions() {
    let (a, b) = Pipe::duplex::<Vec<u8>>().unwrap();
    for len in [0usize, 1, 7, 8, 9, 4096, 300_000] {
        a.send(vec![len as u8; len]).unwrap();
    }
    for len in [0usize, 1, 7, 8, 9, 4096, 300_000] {
        assert_eq!(b.recv().unwrap(), vec![len as u8; len]);
    }
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    let t = Instant::now();
    assert!(!b.poll(Some(T)).unwrap());
    assert!(t.elapsed() >= T);
    assert!(matches!(b.recv_timeout(T), Err(Error::Timeout)));

    let (rx, tx) = Pipe::simplex::<u8>().unwrap();
    assert!(matches!(rx.send(1), Err(Error::Invalid(_))));
    assert!(matches!(tx.recv(), Err(Error::Invalid(_))));
    tx.send(9).unwrap();
    assert!(rx.poll(None).unwrap());
    assert_eq!(rx.recv().unwrap(), 9);
    drop(tx);
    assert!(matches!(rx.recv(), Err(Error::Closed)));
    let (rx, tx) = Pipe::simplex::<u8>().unwrap();
    drop(rx);
    assert!(matches!(tx.send(1), Err(Error::Closed)));
}

#[test]
fn undecodable_items_are_codec_errors() {
    let q = Queue::<String>::new().unwrap();
    q.put_bytes(&[0xFF, 0xFF, 0xFF]).unwrap();
    assert!(matches!(q.get(), Err(Error::Codec(_))));
    // The bad item was consumed; the queue goes on.
    q.put("fine".into()).unwrap();
    assert_eq!(q.get().unwrap(), "fine");
}

#[test]
fn running_out_of_descriptors_or_address_space_is_an_error() {
    // Each queue holds descriptors (its memory file and descriptor channel) and reserves
    // 64 GiB of address space; whichever runs out first, `new` answers an error.
    let mut queues = Vec::new();
    let err = loop {
        match Queue::<u8>::new() {
            Ok(q) => queues.push(q),
            Err(e) => break e,
        }
        assert!(queues.len() < 100_000, "no limit reached");
    };
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    // Everything made so far still works, and room comes back when queues go.
    queues[0].put(1).unwrap();
    assert_eq!(queues[0].get().unwrap(), 1);
    queues.truncate(queues.len() / 2);
    Queue::<u8>::new().unwrap();
}

/// An unbounded queue holding more items than the ring's 24-bit record counts tell apart
/// (2^24 + 3): `qsize` and `empty` stay exact, and a consumer that drains while `!empty()`
/// takes every item. (They read 3, and `empty` said yes with 16,777,215 items left.)
#[test]
fn qsize_and_empty_stay_exact_past_sixteen_million_items() {
    let q: Queue<()> = Queue::new().unwrap();
    let n = (1usize << 24) + 3;
    for _ in 0..n {
        q.put_bytes(&[]).unwrap();
    }
    assert_eq!(q.qsize(), n);
    for _ in 0..4 {
        q.get_bytes().unwrap();
    }
    assert_eq!(q.qsize(), n - 4);
    let mut taken = 4;
    while !q.empty() {
        q.get_bytes().unwrap();
        taken += 1;
    }
    assert_eq!(taken, n);
    assert_eq!(q.qsize(), 0);
}
