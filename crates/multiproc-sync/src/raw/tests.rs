//! Unit tests of the raw algorithms (and, under `--cfg multiproc_loom`, their loom models).

#[cfg(multiproc_loom)]
mod loom_lock;
#[cfg(multiproc_loom)]
mod loom_signal;

#[cfg(not(multiproc_loom))]
mod std_tests {
    use crate::raw::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn lock_word_holds_the_owner_tid() {
        let l = RawLock::<ThreadFutex>::new();
        l.lock();
        assert_eq!(l.owner(), Some(crate::sys::gettid() & TID_MASK));
        assert!(l.is_owned_by_current_thread());
        // SAFETY: held.
        unsafe { l.unlock() };
        assert_eq!(l.owner(), None);
    }

    #[test]
    fn contended_lock_counts_exactly() {
        let l = Arc::new(RawLock::<ThreadFutex>::new());
        let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (l, n) = (l.clone(), n.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        l.lock();
                        // Non-atomic read-modify-write under the lock.
                        let v = n.load(std::sync::atomic::Ordering::Relaxed);
                        n.store(v + 1, std::sync::atomic::Ordering::Relaxed);
                        // SAFETY: held.
                        unsafe { l.unlock() };
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(n.load(std::sync::atomic::Ordering::Relaxed), 80_000);
    }

    #[test]
    fn timed_waits_wait_at_least_their_timeout() {
        let t = Duration::from_millis(20);
        let e = RawEvent::<ThreadFutex>::new();
        let start = Instant::now();
        assert!(!e.wait_until(Some(start + t)));
        assert!(start.elapsed() >= t);
        let s = RawSemaphore::<ThreadFutex>::new(0);
        let start = Instant::now();
        assert!(!s.acquire_until(Some(start + t)));
        assert!(start.elapsed() >= t);
    }

    #[test]
    fn event_set_then_clear_still_releases_a_sleeper() {
        let e = Arc::new(RawEvent::<ThreadFutex>::new());
        let e2 = e.clone();
        let h = std::thread::spawn(move || e2.wait_until(None));
        while e.state.load(std::sync::atomic::Ordering::SeqCst) & 2 == 0 {
            std::thread::yield_now();
        }
        e.set();
        e.clear();
        assert!(h.join().unwrap());
    }
}
