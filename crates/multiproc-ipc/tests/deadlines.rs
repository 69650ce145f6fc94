//! Timed calls keep their deadline through every lock they take, also when the holder of a
//! lock is a stopped process (SIGSTOP: a debugger, a `kill -STOP`, a frozen cgroup).

use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use multiproc_ipc::{Error, Event, Queue};
use multiproc_spawn::signal::{self, Signal};
use multiproc_spawn::{Process, StartMethod};
use serde::{Deserialize, Deserializer, Serialize};

/// Set in the consumer child only: decoding an [`Item`] there sets the event, then stops the
/// process, which is inside `get` and holds the queue's get lock while it decodes.
static STOP_ON_DECODE: OnceLock<Event> = OnceLock::new();

#[derive(Serialize)]
struct Item(Vec<u8>);

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        if let Some(began) = STOP_ON_DECODE.get() {
            began.set();
            signal::raise_signal(Signal::SIGSTOP).unwrap();
        }
        Ok(Item(bytes))
    }
}

/// Runs `f` on a thread and waits `limit` for it; `None` if it did not return by then (the
/// thread is left behind, so a regression fails the test instead of hanging it).
fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// Issue #25 item 5: a put that must grow the ring takes the get lock too; with the consumer
/// stopped while it holds that lock, `put_timeout` returned only after SIGCONT, holding the
/// put lock all along.
#[test]
fn put_timeout_keeps_its_deadline_while_a_stopped_consumer_holds_the_get_lock() {
    let q: Queue<Item> = Queue::new().unwrap();
    let began = Event::new().unwrap();
    q.put(Item(vec![1; 1000])).unwrap();
    let consumer: Process<usize> = {
        let (q, began) = (q.clone(), began.clone());
        Process::builder()
            .start_method(StartMethod::Fork)
            .spawn_closure(move || {
                STOP_ON_DECODE.set(began).unwrap();
                q.get().unwrap().0.len()
            })
            .unwrap()
    };
    assert!(
        began.wait_timeout(Duration::from_secs(60)),
        "the consumer never began its get"
    );

    // 1 MiB does not fit in the ring as it is (256 KiB): the put must grow it, under the get
    // lock. (Small enough that encoding it in a debug build takes no time worth counting.)
    let producer = q.clone();
    let t = Instant::now();
    let put = within(Duration::from_secs(20), move || {
        let r = producer.put_timeout(Item(vec![2; 1 << 20]), Duration::from_secs(1));
        (r, producer)
    });
    let waited = t.elapsed();
    consumer.send_signal(Signal::SIGCONT).unwrap();
    let Some((r, _producer)) = put else {
        panic!("put_timeout(1 s) still waited after {waited:?}");
    };
    assert!(matches!(r, Err(Error::Full)), "{:?}", r.err());
    assert!(
        waited >= Duration::from_secs(1),
        "returned early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "missed its deadline: {waited:?}"
    );

    // Nothing was left held: the consumer finishes, and the large put now goes through.
    assert_eq!(consumer.join().unwrap(), 1000);
    let t = Instant::now();
    q.put_timeout(Item(vec![3; 1 << 20]), Duration::from_secs(30))
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(30));
    let got = q.get_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!((got.0.len(), got.0[0]), (1 << 20, 3));
}
