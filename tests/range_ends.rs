//! Numbers at the end of their range. Every call that takes a timeout or a limit accepts
//! `Duration::MAX` (a limit computed from user input, "wait for ever" spelt as a duration) as
//! no limit: nothing panics adding it to the clock. Each call here has its answer ready, so it
//! returns at once. And counts at their maximum do not wrap round.

use multiproc::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, Pipe, Queue, RLock, Semaphore, threading,
};
use std::time::Duration;

const FOREVER: Duration = Duration::MAX;

#[test]
fn process_queues_and_pipes() {
    let q: Queue<u32> = Queue::new().unwrap();
    q.put_timeout(1, FOREVER).unwrap();
    assert_eq!(q.get_timeout(FOREVER).unwrap(), 1);
    q.put_bytes(b"raw").unwrap();
    assert_eq!(q.get_bytes_timeout(FOREVER).unwrap(), b"raw");
    let (a, b) = Pipe::duplex().unwrap();
    a.send(7u32).unwrap();
    assert!(b.poll(Some(FOREVER)).unwrap());
    assert_eq!(b.recv_timeout(FOREVER).unwrap(), 7);
    a.send_bytes(b"x").unwrap();
    assert_eq!(b.recv_bytes_timeout(FOREVER).unwrap(), b"x");
}

#[test]
fn process_locks_and_events() {
    assert!(Lock::new().unwrap().acquire_timeout(FOREVER).is_some());
    assert!(RLock::new().unwrap().acquire_timeout(FOREVER).is_some());
    assert!(Semaphore::new(1).unwrap().acquire_timeout(FOREVER));
    assert!(BoundedSemaphore::new(1).unwrap().acquire_timeout(FOREVER));
    let e = Event::new().unwrap();
    e.set();
    assert!(e.wait_timeout(FOREVER));
    let c = Condition::new().unwrap();
    let mut g = c.acquire_timeout(FOREVER).unwrap();
    assert!(g.wait_for(|| true, Some(FOREVER)));
    drop(g);
    assert_eq!(Barrier::new(1).unwrap().wait_timeout(FOREVER).unwrap(), 0);
}

#[test]
fn thread_primitives_and_queues() {
    assert!(threading::Lock::new().acquire_timeout(FOREVER).is_some());
    assert!(threading::RLock::new().acquire_timeout(FOREVER).is_some());
    assert!(threading::Semaphore::new(1).acquire_timeout(FOREVER));
    assert!(threading::BoundedSemaphore::new(1).acquire_timeout(FOREVER));
    let e = threading::Event::new();
    e.set();
    assert!(e.wait_timeout(FOREVER));
    let c = threading::Condition::new();
    let mut g = c.acquire_timeout(FOREVER).unwrap();
    assert!(g.wait_for(|| true, Some(FOREVER)));
    drop(g);
    assert_eq!(threading::Barrier::new(1).wait_timeout(FOREVER).unwrap(), 0);
    let q = multiproc::queue::Queue::new(0);
    q.put_timeout(3, FOREVER).unwrap();
    assert_eq!(q.get_timeout(FOREVER).unwrap(), 3);
    // A timer that would fire at the end of time, cancelled.
    let t = threading::Timer::new(FOREVER, || panic!("fired")).start();
    t.cancel();
    t.join().unwrap();
}

/// A semaphore made with more permits than it counts (`usize::MAX`, clamped to `u32::MAX`)
/// stays full when released: the count used to wrap round to zero, and every acquirer then
/// waited for ever.
#[test]
fn a_full_semaphore_released_stays_full() {
    let s = Semaphore::new(usize::MAX).unwrap();
    s.release();
    s.release_n(10);
    assert_eq!(s.get_value(), u32::MAX as usize);
    assert!(s.try_acquire());
    let t = threading::Semaphore::new(usize::MAX);
    t.release();
    assert!(t.try_acquire());
}
