//! `multiproc_sync::queue`: CPython's `test_queue.py` behaviours, ported, and a stress test.

use multiproc_sync::queue::{LifoQueue, PriorityQueue, Queue, SimpleQueue};
use multiproc_sync::{Barrier, Error};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(20);

/// test_queue.BaseQueueTestMixin.simple_queue_test: FIFO, LIFO and priority orders.
#[test]
fn orders() {
    let input = [111, 333, 222];
    let q = Queue::new(0);
    let l = LifoQueue::new(0);
    let p = PriorityQueue::new(0);
    for x in input {
        q.put(x).unwrap();
        l.put(x).unwrap();
        p.put(x).unwrap();
    }
    let drain = |f: &dyn Fn() -> i32| (0..3).map(|_| f()).collect::<Vec<_>>();
    assert_eq!(drain(&|| q.get().unwrap()), vec![111, 333, 222]);
    assert_eq!(drain(&|| l.get().unwrap()), vec![222, 333, 111]);
    assert_eq!(drain(&|| p.get().unwrap()), vec![111, 222, 333]);
}

/// test_queue.BaseQueueTestMixin.simple_queue_test: full/empty, nowait and timeout forms.
#[test]
fn bounded_nowait_and_timeouts() {
    let q = Queue::new(2);
    assert!(q.empty() && !q.full());
    q.put_nowait(1).unwrap();
    q.put_timeout(2, SHORT).unwrap();
    assert!(q.full());
    assert!(matches!(q.put_nowait(3), Err(Error::Full)));
    let start = Instant::now();
    assert!(matches!(q.put_timeout(3, SHORT), Err(Error::Full)));
    assert!(start.elapsed() >= SHORT);
    assert_eq!(q.get_nowait().unwrap(), 1);
    assert_eq!(q.get_timeout(SHORT).unwrap(), 2);
    assert!(matches!(q.get_nowait(), Err(Error::Empty)));
    let start = Instant::now();
    assert!(matches!(q.get_timeout(SHORT), Err(Error::Empty)));
    assert!(start.elapsed() >= SHORT);
}

/// test_queue.BaseQueueTestMixin.test_queue_task_done: too many task_done errs.
#[test]
fn task_done_too_many_times_errs() {
    let q = Queue::new(0);
    assert!(matches!(q.task_done(), Err(Error::Invalid(_))));
    q.put(1).unwrap();
    q.get().unwrap();
    q.task_done().unwrap();
    assert!(q.task_done().is_err());
}

/// test_queue.BaseQueueTestMixin.test_queue_join: join returns after every item is done.
#[test]
fn join_returns_after_all_task_done() {
    let q = Arc::new(Queue::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (q, done) = (q.clone(), done.clone());
            thread::spawn(move || {
                while let Ok(x) = q.get() {
                    if x < 0 {
                        q.task_done().unwrap();
                        break;
                    }
                    done.fetch_add(x as usize, Ordering::SeqCst);
                    q.task_done().unwrap();
                }
            })
        })
        .collect();
    for i in 0..100 {
        q.put(i).unwrap();
    }
    q.join();
    assert_eq!(done.load(Ordering::SeqCst), 4950);
    q.put(-1).unwrap();
    q.put(-1).unwrap();
    q.join();
    workers.into_iter().for_each(|h| h.join().unwrap());
}

/// test_queue.BaseQueueTestMixin.test_shutdown_*: puts fail, gets drain then fail, blocked
/// callers wake with ShutDown, immediate drops the items and releases join.
#[test]
fn shutdown_semantics() {
    let q = Arc::new(Queue::new(1));
    q.put(1).unwrap();
    // A putter blocked on a full queue, a getter blocked on another empty one.
    let q2 = q.clone();
    let putter = thread::spawn(move || q2.put(2));
    let e = Arc::new(Queue::<i32>::new(0));
    let e2 = e.clone();
    let getter = thread::spawn(move || e2.get());
    thread::sleep(Duration::from_millis(10)); // not needed for correctness: either way ShutDown
    q.shutdown(false);
    e.shutdown(false);
    assert!(matches!(putter.join().unwrap(), Err(Error::ShutDown)));
    assert!(matches!(getter.join().unwrap(), Err(Error::ShutDown)));
    assert!(matches!(q.put(3), Err(Error::ShutDown)));
    assert_eq!(q.get().unwrap(), 1); // drains first
    assert!(matches!(q.get(), Err(Error::ShutDown)));
    assert!(q.is_shutdown());

    let q = Arc::new(Queue::new(0));
    q.put(1).unwrap();
    q.put(2).unwrap();
    let q2 = q.clone();
    let joiner = thread::spawn(move || q2.join());
    q.shutdown(true);
    joiner.join().unwrap();
    assert!(q.empty());
    assert!(matches!(q.get_nowait(), Err(Error::ShutDown)));
}

/// SimpleQueue basics (test_queue.BaseSimpleQueueTest.test_basic).
#[test]
fn simple_queue() {
    let q = SimpleQueue::new();
    assert!(q.empty());
    q.put(1).unwrap();
    q.put_nowait(2).unwrap();
    assert_eq!(q.qsize(), 2);
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get_nowait().unwrap(), 2);
    assert!(matches!(q.get_timeout(SHORT), Err(Error::Empty)));
}

/// Stress: 8 threads (4 producers, 4 consumers), 10^6 items through a bounded Queue; every
/// item arrives exactly once (sum and xor checksums).
#[test]
fn stress_8_threads_million_items() {
    const ITEMS: u64 = 1_000_000;
    const SIDE: u64 = 4;
    let q = Arc::new(Queue::new(1024));
    let start = Arc::new(Barrier::new(2 * SIDE as usize));
    let producers: Vec<_> = (0..SIDE)
        .map(|p| {
            let (q, start) = (q.clone(), start.clone());
            thread::spawn(move || {
                start.wait().unwrap();
                for i in (p..ITEMS).step_by(SIDE as usize) {
                    q.put(i).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..SIDE)
        .map(|_| {
            let (q, start) = (q.clone(), start.clone());
            thread::spawn(move || {
                start.wait().unwrap();
                let (mut sum, mut xor, mut n) = (0u64, 0u64, 0u64);
                for _ in 0..ITEMS / SIDE {
                    let x = q.get().unwrap();
                    sum += x;
                    xor ^= x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    n += 1;
                }
                (sum, xor, n)
            })
        })
        .collect();
    producers.into_iter().for_each(|h| h.join().unwrap());
    let (mut sum, mut xor, mut n) = (0, 0, 0);
    for h in consumers {
        let (s, x, c) = h.join().unwrap();
        sum += s;
        xor ^= x;
        n += c;
    }
    let want_xor = (0..ITEMS).fold(0u64, |a, i| a ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    assert_eq!(n, ITEMS);
    assert_eq!(sum, ITEMS * (ITEMS - 1) / 2);
    assert_eq!(xor, want_xor);
    assert!(q.empty());
}
