//! Loom model checks of `RawEvent`, `RawSemaphore` and `RawCondition`: a set, a release or a
//! notify is never lost.

use crate::raw::{RawCondition, RawEvent, RawLock, RawSemaphore, ThreadFutex};
use loom::sync::Arc;

#[test]
fn loom_event_wait_sees_set() {
    loom::model(|| {
        let e = Arc::new(RawEvent::<ThreadFutex>::new());
        let e2 = e.clone();
        let h = loom::thread::spawn(move || e2.set());
        assert!(e.wait_until(None));
        h.join().unwrap();
    });
}

#[test]
fn loom_semaphore_permits_are_not_lost() {
    loom::model(|| {
        let s = Arc::new(RawSemaphore::<ThreadFutex>::new(0));
        let s2 = s.clone();
        let h = loom::thread::spawn(move || {
            s2.release(1);
            assert!(s2.acquire_until(None));
        });
        s.release(1);
        assert!(s.acquire_until(None));
        h.join().unwrap();
        assert_eq!(s.value(), 0);
    });
}

#[test]
fn loom_condition_notify_reaches_waiter() {
    // The futex is emulated by yielding, so a sleeper is a spinner: bound preemptions to keep
    // the state space finite.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.max_branches = 100_000;
    model.check(|| {
        let lock = Arc::new(RawLock::<ThreadFutex>::new());
        let cond = Arc::new(RawCondition::<ThreadFutex>::new());
        let flag = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let (l2, c2, f2) = (lock.clone(), cond.clone(), flag.clone());
        let h = loom::thread::spawn(move || {
            l2.lock();
            f2.store(true, loom::sync::atomic::Ordering::Relaxed);
            // SAFETY: held, and `l2` is this condition's lock.
            unsafe {
                c2.notify(1);
                l2.unlock();
            }
        });
        lock.lock();
        while !flag.load(loom::sync::atomic::Ordering::Relaxed) {
            // SAFETY: held, and `lock` is this condition's lock.
            unsafe { cond.wait_until(&lock, None) };
        }
        // SAFETY: held.
        unsafe { lock.unlock() };
        h.join().unwrap();
    });
}
