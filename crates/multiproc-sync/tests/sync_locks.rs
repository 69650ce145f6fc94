//! Locks, conditions, semaphores, events and barriers: CPython's `test_threading` /
//! `lock_tests.py` behaviours, ported (each test names the CPython test it follows).

use multiproc_sync::{Barrier, BoundedSemaphore, Condition, Error, Event, Lock, RLock, Semaphore};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(20);

/// lock_tests.BaseLockTests.test_timeout: a timed acquire of a held lock waits at least the
/// timeout and fails.
#[test]
fn lock_timeout() {
    let lock = Arc::new(Lock::new());
    let _g = lock.acquire();
    let l2 = lock.clone();
    let start = Instant::now();
    let got = thread::spawn(move || l2.acquire_timeout(SHORT).is_some())
        .join()
        .unwrap();
    assert!(!got);
    assert!(start.elapsed() >= SHORT);
    assert!(lock.try_acquire().is_none());
}

/// lock_tests.BaseLockTests.test_thread_leak-ish: many threads increment under the lock.
#[test]
fn lock_excludes() {
    let lock = Arc::new(Lock::new());
    let n = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let (lock, n) = (lock.clone(), n.clone());
            thread::spawn(move || {
                for _ in 0..10_000 {
                    let _g = lock.acquire();
                    let v = n.load(Ordering::Relaxed);
                    n.store(v + 1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(n.load(Ordering::Relaxed), 40_000);
}

/// lock_tests.RLockTests.test_reacquire / test_release_unacquired: re-entry depth, and another
/// thread cannot take it until every level is released.
#[test]
fn rlock_reentry_depth() {
    let r = Arc::new(RLock::new());
    let guards: Vec<_> = (0..5).map(|_| r.acquire()).collect();
    assert_eq!(r.depth(), 5);
    let r2 = r.clone();
    assert!(
        thread::spawn(move || r2.try_acquire().is_none() && r2.depth() == 0)
            .join()
            .unwrap()
    );
    drop(guards);
    assert!(!r.locked());
    let r2 = r.clone();
    assert!(
        thread::spawn(move || r2.try_acquire().is_some())
            .join()
            .unwrap()
    );
}

/// lock_tests.ConditionTests.test_timeout: wait_timeout returns false after the timeout.
#[test]
fn condition_wait_timeout_false() {
    let c = Condition::new();
    let mut g = c.acquire();
    let start = Instant::now();
    assert!(!g.wait_timeout(SHORT));
    assert!(start.elapsed() >= SHORT);
}

/// lock_tests.ConditionTests.test_waitfor / test_waitfor_timeout: wait_for returns the
/// predicate's last value.
#[test]
fn condition_wait_for_returns_predicate() {
    let c = Arc::new(Condition::with_value(0));
    let state = Arc::new(AtomicUsize::new(0));
    let (c2, s2) = (c.clone(), state.clone());
    let h = thread::spawn(move || {
        for _ in 0..4 {
            let g = c2.acquire();
            s2.fetch_add(1, Ordering::SeqCst);
            g.notify_all();
        }
    });
    let mut g = c.acquire();
    assert!(g.wait_for(|| state.load(Ordering::SeqCst) == 4, None));
    let start = Instant::now();
    assert!(!g.wait_for(|| state.load(Ordering::SeqCst) == 5, Some(SHORT)));
    assert!(start.elapsed() >= SHORT);
    drop(g);
    h.join().unwrap();
}

/// lock_tests.ConditionTests.test_notify: notify(n) wakes exactly n waiters.
#[test]
fn condition_notify_n_wakes_n() {
    let c = Arc::new(Condition::new());
    let woken = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..5)
        .map(|_| {
            let (c, woken) = (c.clone(), woken.clone());
            thread::spawn(move || {
                let mut g = c.acquire();
                g.wait();
                woken.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    // Wait until all five sleep in `wait` (they release the lock there).
    let waiting = |c: &Condition, n: usize| loop {
        let g = c.acquire();
        if c_waiters(&g) == n {
            break;
        }
        drop(g);
        thread::yield_now();
    };
    waiting(&c, 5);
    c.acquire().notify(1);
    waiting(&c, 4);
    while woken.load(Ordering::SeqCst) < 1 {
        thread::yield_now();
    }
    assert_eq!(woken.load(Ordering::SeqCst), 1);
    c.acquire().notify(3);
    waiting(&c, 1);
    while woken.load(Ordering::SeqCst) < 4 {
        thread::yield_now();
    }
    assert_eq!(woken.load(Ordering::SeqCst), 4);
    c.acquire().notify_all();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(woken.load(Ordering::SeqCst), 5);
}

/// How many threads wait on the condition (read under its lock).
fn c_waiters(g: &multiproc_sync::ConditionGuard<'_>) -> usize {
    g.waiters()
}

/// lock_tests.SemaphoreTests.test_acquire_timeout / BoundedSemaphoreTests.test_release_unacquired.
#[test]
fn semaphore_timeouts_and_over_release() {
    let s = Semaphore::new(2);
    assert!(s.acquire_timeout(SHORT));
    assert!(s.acquire_timeout(SHORT));
    let start = Instant::now();
    assert!(!s.acquire_timeout(SHORT));
    assert!(start.elapsed() >= SHORT);
    s.release_n(3);
    assert_eq!(s.get_value(), 3); // plain Semaphore may go above its start

    let b = BoundedSemaphore::new(1);
    assert!(matches!(b.release(), Err(Error::TooManyReleases)));
    b.acquire();
    assert!(!b.try_acquire());
    b.release().unwrap();
    assert!(matches!(b.release(), Err(Error::TooManyReleases)));
    assert_eq!(b.get_value(), 1);
}

/// lock_tests.SemaphoreTests.test_acquire_contended: permits limit concurrency.
#[test]
fn semaphore_limits_concurrency() {
    let s = Arc::new(Semaphore::new(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..6)
        .map(|_| {
            let (s, inside, max) = (s.clone(), inside.clone(), max.clone());
            thread::spawn(move || {
                for _ in 0..200 {
                    s.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    s.release();
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert!(max.load(Ordering::SeqCst) <= 2);
    assert_eq!(s.get_value(), 2);
}

/// lock_tests.EventTests.test_timeout: wait_timeout false, then true once another thread sets.
#[test]
fn event_timeout_then_set_from_other_thread() {
    let e = Arc::new(Event::new());
    let start = Instant::now();
    assert!(!e.wait_timeout(SHORT));
    assert!(start.elapsed() >= SHORT);
    let e2 = e.clone();
    let h = thread::spawn(move || e2.set());
    assert!(e.wait_timeout(Duration::from_secs(30)));
    h.join().unwrap();
    assert!(e.is_set());
    e.clear();
    assert!(!e.is_set());
}

/// lock_tests.EventTests.test_set_and_clear: a waiter released by set returns true even if
/// clear follows at once.
#[test]
fn event_set_and_clear_releases_waiters() {
    let e = Arc::new(Event::new());
    let b = Arc::new(Barrier::new(4));
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let (e, b) = (e.clone(), b.clone());
            thread::spawn(move || {
                b.wait().unwrap();
                e.wait_timeout(Duration::from_secs(30))
            })
        })
        .collect();
    b.wait().unwrap();
    thread::sleep(Duration::from_millis(10)); // let them reach wait (not needed for correctness)
    e.set();
    e.clear();
    for h in hs {
        assert!(h.join().unwrap());
    }
}

/// lock_tests.BarrierTests.test_wait_return / test_barrier: one index of each value per
/// cycle, 1,000 cycles in lock step.
#[test]
fn barrier_indices_and_lock_step() {
    const N: usize = 3;
    const CYCLES: usize = 1000;
    let b = Arc::new(Barrier::new(N));
    let zeros = Arc::new(Mutex::new(vec![0usize; CYCLES]));
    let phase = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..N)
        .map(|_| {
            let (b, zeros, phase) = (b.clone(), zeros.clone(), phase.clone());
            thread::spawn(move || {
                for cycle in 0..CYCLES {
                    // Nobody is a cycle ahead: the shared phase is this cycle's.
                    assert_eq!(phase.load(Ordering::SeqCst) / N, cycle);
                    let i = b.wait().unwrap();
                    assert!(i < N);
                    if i == 0 {
                        zeros.lock().unwrap()[cycle] += 1;
                    }
                    phase.fetch_add(1, Ordering::SeqCst);
                    b.wait().unwrap();
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert!(zeros.lock().unwrap().iter().all(|&z| z == 1));
    assert_eq!(b.n_waiting(), 0);
}

/// lock_tests.BarrierTests.test_abort / test_reset: abort and reset break the waiters; the
/// barrier works again after reset.
#[test]
fn barrier_abort_and_reset_break_waiters() {
    let b = Arc::new(Barrier::new(3));
    let b2 = b.clone();
    let h = thread::spawn(move || b2.wait());
    while b.n_waiting() < 1 {
        thread::yield_now();
    }
    b.abort();
    assert!(matches!(h.join().unwrap(), Err(Error::BrokenBarrier)));
    assert!(b.broken());
    assert!(b.wait().is_err());
    b.reset();
    assert!(!b.broken());

    let b2 = b.clone();
    let h = thread::spawn(move || b2.wait());
    while b.n_waiting() < 1 {
        thread::yield_now();
    }
    b.reset();
    assert!(matches!(h.join().unwrap(), Err(Error::BrokenBarrier)));
    // Usable again: three parties pass.
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            thread::spawn(move || b.wait())
        })
        .collect();
    let mut idx: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
    idx.sort();
    assert_eq!(idx, vec![0, 1, 2]);
}

/// lock_tests.BarrierTests.test_timeout / test_default_timeout: a party that times out
/// breaks the barrier for everyone; the late party then gets BrokenBarrier too.
#[test]
fn barrier_timeout_breaks_everyone() {
    let b = Arc::new(Barrier::new(3));
    let b2 = b.clone();
    let other = thread::spawn(move || b2.wait());
    let start = Instant::now();
    assert!(matches!(b.wait_timeout(SHORT), Err(Error::BrokenBarrier)));
    assert!(start.elapsed() >= SHORT);
    assert!(matches!(other.join().unwrap(), Err(Error::BrokenBarrier)));
    // The late third party.
    assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
}
