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

/// A forked consumer that stops (SIGSTOP) while it decodes the queue's first item, holding the
/// get lock; returns once it has stopped there.
fn stopped_consumer(q: &Queue<Item>) -> Process<usize> {
    let began = Event::new().unwrap();
    let consumer = {
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
    consumer
}

/// Runs `call` (a call with a 1 s timeout) on a thread while `consumer` is stopped, then lets
/// the consumer go on; checks that the call returned at its deadline (after 1 s, before 3 s)
/// and gives its answer.
fn at_its_deadline<R: Send + 'static>(
    consumer: &Process<usize>,
    call: impl FnOnce() -> R + Send + 'static,
) -> R {
    let t = Instant::now();
    let got = within(Duration::from_secs(20), call);
    let waited = t.elapsed();
    consumer.send_signal(Signal::SIGCONT).unwrap();
    let Some(r) = got else {
        panic!("the call with a 1 s timeout still waited after {waited:?}");
    };
    assert!(
        waited >= Duration::from_secs(1),
        "returned early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "missed its deadline: {waited:?}"
    );
    r
}

/// Issue #25 item 5: a put that must grow the ring takes the get lock too; with the consumer
/// stopped while it holds that lock, `put_timeout` returned only after SIGCONT, holding the
/// put lock all along.
#[test]
fn put_timeout_keeps_its_deadline_while_a_stopped_consumer_holds_the_get_lock() {
    let q: Queue<Item> = Queue::new().unwrap();
    q.put(Item(vec![1; 1000])).unwrap();
    let consumer = stopped_consumer(&q);
    // 1 MiB does not fit in the ring as it is (256 KiB): the put must grow it, under the get
    // lock. (Small enough that encoding it in a debug build takes no time worth counting.)
    let producer = q.clone();
    let (r, _producer) = at_its_deadline(&consumer, move || {
        let r = producer.put_timeout(Item(vec![2; 1 << 20]), Duration::from_secs(1));
        (r, producer)
    });
    assert!(matches!(r, Err(Error::Full)), "{:?}", r.err());

    // Nothing was left held: the consumer finishes, and the large put now goes through.
    assert_eq!(consumer.join().unwrap(), 1000);
    let t = Instant::now();
    q.put_timeout(Item(vec![3; 1 << 20]), Duration::from_secs(30))
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(30));
    let got = q.get_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!((got.0.len(), got.0[0]), (1 << 20, 3));
}

/// The waits added for issue #30 keep the deadline too: a producer of large records that finds
/// the ring full while a consumer reads waits for that reader's room (a spin), then grows; with
/// the reader stopped, `put_timeout` still answers `Full` on time, and everything goes through
/// once the reader runs again.
#[test]
fn put_timeout_of_a_large_item_keeps_its_deadline_while_the_reader_is_stopped() {
    let q: Queue<Item> = Queue::new().unwrap();
    // Three 64 KiB items fill three quarters of the 256 KiB ring; a fourth does not fit
    // behind them, but would fit in the ring once the first is read.
    for i in 0..3 {
        q.put(Item(vec![i; 64 << 10])).unwrap();
    }
    let consumer = stopped_consumer(&q);
    let producer = q.clone();
    let (r, _producer) = at_its_deadline(&consumer, move || {
        let r = producer.put_timeout(Item(vec![9; 80 << 10]), Duration::from_secs(1));
        (r, producer)
    });
    assert!(matches!(r, Err(Error::Full)), "{:?}", r.err());
    assert_eq!(consumer.join().unwrap(), 64 << 10);
    q.put_timeout(Item(vec![9; 80 << 10]), Duration::from_secs(30))
        .unwrap();
    for want in [1, 2, 9] {
        let got = q.get_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(got.0[0], want);
    }
}

/// A second consumer waits out the first one's streak on the get lock (issue #30), with the
/// first stopped while it holds the lock: `get_timeout` answers `Empty` on time.
#[test]
fn get_timeout_keeps_its_deadline_while_another_consumer_is_stopped_holding_the_lock() {
    let q: Queue<Item> = Queue::new().unwrap();
    q.put(Item(vec![1; 10])).unwrap();
    q.put(Item(vec![2; 10])).unwrap();
    let consumer = stopped_consumer(&q);
    let other = q.clone();
    let r = at_its_deadline(&consumer, move || {
        other.get_timeout(Duration::from_secs(1)).map(|i| i.0.len())
    });
    assert!(matches!(r, Err(Error::Empty)), "{r:?}");
    assert_eq!(consumer.join().unwrap(), 10);
    assert_eq!(
        q.get_timeout(Duration::from_secs(30)).unwrap().0,
        vec![2; 10]
    );
}
