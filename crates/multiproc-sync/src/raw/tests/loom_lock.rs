//! Loom model checks of `RawLock` and `RawRLock`: mutual exclusion and no lost wake-up.

use crate::raw::{RawLock, RawRLock, ThreadFutex};
use loom::cell::UnsafeCell;
use loom::sync::Arc;

struct Shared {
    lock: RawLock<ThreadFutex>,
    value: UnsafeCell<u32>,
}

// SAFETY: `value` is only touched while `lock` is held.
unsafe impl Sync for Shared {}

#[test]
fn loom_lock_mutual_exclusion() {
    loom::model(|| {
        let s = Arc::new(Shared {
            lock: RawLock::new(),
            value: UnsafeCell::new(0),
        });
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                loom::thread::spawn(move || {
                    s.lock.lock();
                    // SAFETY: the lock is held, so no other access is concurrent.
                    s.value.with_mut(|v| unsafe { *v += 1 });
                    // SAFETY: held.
                    unsafe { s.lock.unlock() };
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        s.lock.lock();
        // SAFETY: held.
        assert_eq!(s.value.with(|v| unsafe { *v }), 2);
        // SAFETY: held.
        unsafe { s.lock.unlock() };
    });
}

#[test]
fn loom_rlock_reentry_excludes_others() {
    loom::model(|| {
        let l = Arc::new(RawRLock::<ThreadFutex>::new());
        let l2 = l.clone();
        let h = loom::thread::spawn(move || {
            assert!(l2.lock());
            assert!(l2.lock());
            assert_eq!(l2.depth(), 2);
            // SAFETY: held twice.
            unsafe {
                l2.unlock();
                l2.unlock();
            }
        });
        if l.try_lock() {
            assert_eq!(l.depth(), 1);
            // SAFETY: held.
            unsafe { l.unlock() };
        }
        h.join().unwrap();
        assert!(!l.is_locked());
    });
}
