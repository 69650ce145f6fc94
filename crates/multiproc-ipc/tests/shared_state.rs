//! Process-shared locks, semaphores, events, conditions, barriers and values between real
//! processes, under every start method: the CPython behaviours (ported from
//! `Lib/test/_test_multiprocessing.py`, `_TestLock`, `_TestSemaphore`, `_TestEvent`,
//! `_TestCondition`, `_TestBarrier`, `_TestValue`, `_TestArray`), synchronised with events
//! and joins, never with sleeps.

mod common;
use common::{METHODS, start};
use multiproc_testkit::open_fds;

use std::time::{Duration, Instant};

use multiproc_ipc::{
    Array, Barrier, BoundedSemaphore, Condition, Error, Event, Lock, Queue, RLock, Semaphore, Value,
};
use multiproc_spawn::StartMethod;

const SHORT: Duration = Duration::from_millis(30);
const LONG: Duration = Duration::from_secs(60);

/// What a child sees of a lock its parent holds: (try_acquire got it, acquire_timeout got
/// it, the timeout was waited out).
fn probe_lock(lock: Lock) -> (bool, bool, bool) {
    let tried = lock.try_acquire().is_some();
    let t = Instant::now();
    let timed = lock.acquire_timeout(SHORT).is_some();
    (tried, timed, t.elapsed() >= SHORT)
}

fn take_and_release(lock: Lock) -> bool {
    let g = lock.acquire();
    g.previous_owner_died()
}

// _TestLock.test_lock: a held lock cannot be taken elsewhere; a released one can.
#[test]
fn lock_try_and_timeout_across_processes() {
    for m in METHODS {
        let lock = Lock::new().unwrap();
        let g = lock.acquire();
        assert!(lock.locked());
        assert_eq!(
            start(m, probe_lock, lock.clone()).join().unwrap(),
            (false, false, true),
            "{m:?}"
        );
        drop(g);
        assert!(!start(m, take_and_release, lock.clone()).join().unwrap());
        assert!(!lock.locked());
    }
}

/// Adds 1 to a plain (unlocked) value `n` times under `lock`: two separate copies, so only
/// the lock keeps increments from being lost.
fn add_under_lock((lock, v, n): (Lock, Value<u64>, u32)) {
    for _ in 0..n {
        let _g = lock.acquire();
        let x = v.get();
        v.set(x + 1);
    }
}

fn add_under_value_lock((v, n): (Value<u64>, u32)) {
    for _ in 0..n {
        *v.lock() += 1;
    }
}

#[test]
fn lock_and_value_lock_exclude_across_processes() {
    for m in METHODS {
        let lock = Lock::new().unwrap();
        let v = Value::new(0u64).unwrap();
        let ps: Vec<_> = (0..3)
            .map(|_| start(m, add_under_lock, (lock.clone(), v.clone(), 2000)))
            .collect();
        add_under_lock((lock.clone(), v.clone(), 2000));
        ps.into_iter().for_each(|p| p.join().unwrap());
        assert_eq!(v.get(), 8000, "{m:?}");

        let ps: Vec<_> = (0..3)
            .map(|_| start(m, add_under_value_lock, (v.clone(), 2000)))
            .collect();
        add_under_value_lock((v.clone(), 2000));
        ps.into_iter().for_each(|p| p.join().unwrap());
        assert_eq!(v.get(), 16000, "{m:?}");
    }
}

/// A child's view of an RLock held by its parent: (try got it, its depth, timeout got it).
fn probe_rlock(r: RLock) -> (bool, u32, bool) {
    let tried = r.try_acquire().is_some();
    (
        tried,
        r.depth(),
        r.acquire_timeout(Duration::from_millis(5)).is_some(),
    )
}

fn nest_rlock(r: RLock) -> u32 {
    let _a = r.acquire();
    let _b = r.acquire();
    let _c = r.try_acquire().unwrap();
    r.depth()
}

// _TestLock.test_rlock: re-entrant for its owner only; each level released separately.
#[test]
fn rlock_depth_and_non_owner() {
    for m in METHODS {
        let r = RLock::new().unwrap();
        let a = r.acquire();
        let b = r.acquire();
        assert_eq!(r.depth(), 2);
        // Another process is not the owner: it cannot enter, and sees depth 0.
        assert_eq!(
            start(m, probe_rlock, r.clone()).join().unwrap(),
            (false, 0, false)
        );
        drop(b);
        assert_eq!(
            start(m, probe_rlock, r.clone()).join().unwrap(),
            (false, 0, false),
            "one level left is still held"
        );
        drop(a);
        assert!(!r.locked());
        assert_eq!(start(m, nest_rlock, r.clone()).join().unwrap(), 3, "{m:?}");
        assert!(!r.locked());
    }
}

#[test]
fn rlock_threads_of_one_process_are_distinct_owners() {
    let r = RLock::new().unwrap();
    let _g = r.acquire();
    let r2 = r.clone();
    let other = std::thread::spawn(move || (r2.try_acquire().is_some(), r2.depth()));
    assert_eq!(other.join().unwrap(), (false, 0));
}

fn semaphore_child((s, ready, go): (Semaphore, Event, Event)) -> (bool, bool, bool) {
    let t = Instant::now();
    let first = s.acquire_timeout(SHORT);
    let waited = t.elapsed() >= SHORT;
    ready.set();
    go.wait();
    (first, waited, s.acquire_timeout(LONG))
}

// _TestSemaphore.test_timeout and test_semaphore: timeouts, and a release in one process
// wakes an acquirer in another.
#[test]
fn semaphore_timeouts_and_release_across_processes() {
    for m in METHODS {
        let s = Semaphore::new(0).unwrap();
        let (ready, go) = (Event::new().unwrap(), Event::new().unwrap());
        let p = start(m, semaphore_child, (s.clone(), ready.clone(), go.clone()));
        ready.wait();
        go.set();
        s.release();
        assert_eq!(p.join().unwrap(), (false, true, true), "{m:?}");
        assert_eq!(s.get_value(), 0);
        s.release_n(3);
        assert_eq!(s.get_value(), 3);
        assert!(s.try_acquire());
        assert_eq!(s.get_value(), 2);
    }
}

fn over_release(s: BoundedSemaphore) -> (bool, bool) {
    let first = s.release().is_ok();
    let second = matches!(s.release(), Err(Error::TooManyReleases));
    (first, second)
}

// _TestSemaphore.test_bounded_semaphore: release above the initial value errs.
#[test]
fn bounded_semaphore_over_release_in_a_child() {
    for m in METHODS {
        let s = BoundedSemaphore::new(2).unwrap();
        s.acquire();
        assert_eq!(
            start(m, over_release, s.clone()).join().unwrap(),
            (true, true)
        );
        assert_eq!(s.get_value(), 2);
        assert!(s.try_acquire() && s.try_acquire() && !s.try_acquire());
    }
}

fn wait_for_event((e, ready): (Event, Event)) -> (bool, bool) {
    let early = e.wait_timeout(Duration::from_millis(1));
    ready.set();
    (early, e.wait_timeout(LONG))
}

// _TestEvent.test_event: set in one process wakes a waiter in another.
#[test]
fn event_set_from_another_process_wakes_a_waiter() {
    for m in METHODS {
        let e = Event::new().unwrap();
        let ready = Event::new().unwrap();
        let p = start(m, wait_for_event, (e.clone(), ready.clone()));
        ready.wait();
        e.set();
        assert_eq!(p.join().unwrap(), (false, true), "{m:?}");
        assert!(e.is_set());
        e.clear();
        assert!(!e.is_set() && !e.wait_timeout(Duration::from_millis(1)));
    }
}

fn set_event(e: Event) {
    e.set();
}

#[test]
fn event_waiter_in_the_parent_woken_by_a_child() {
    for m in METHODS {
        let e = Event::new().unwrap();
        let p = start(m, set_event, e.clone());
        e.wait();
        p.join().unwrap();
    }
}

/// Waits on the condition, then reports its id on `woke`.
fn cond_waiter((c, id, woke): (Condition, u32, Queue<u32>)) -> bool {
    let mut g = c.acquire();
    let notified = g.wait_timeout(LONG);
    drop(g);
    woke.put(id).unwrap();
    notified
}

fn wait_for_waiters(c: &Condition, n: usize) {
    loop {
        if c.acquire().waiters() == n {
            return;
        }
        std::thread::yield_now();
    }
}

// _TestCondition.test_notify / test_notify_n / test_notify_all: notify(n) wakes exactly n
// waiters of other processes.
#[test]
fn condition_notify_n_across_processes() {
    for m in METHODS {
        let c = Condition::new().unwrap();
        let woke = Queue::new().unwrap();
        let ps: Vec<_> = (0..3)
            .map(|i| start(m, cond_waiter, (c.clone(), i, woke.clone())))
            .collect();
        wait_for_waiters(&c, 3);
        c.acquire().notify(2);
        let a = woke.get().unwrap();
        let b = woke.get().unwrap();
        assert_ne!(a, b);
        // Exactly two went: the third still waits.
        assert_eq!(c.acquire().waiters(), 1, "{m:?}");
        c.acquire().notify_all();
        let last = woke.get().unwrap();
        let mut ids = vec![a, b, last];
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2]);
        for p in ps {
            assert!(p.join().unwrap(), "every waiter was notified");
        }
    }
}

fn bump_and_notify((c, v, n): (Condition, Value<u32>, u32)) {
    for _ in 0..n {
        let g = c.acquire();
        *v.lock() += 1;
        g.notify_all();
    }
}

// _TestCondition.test_waitfor and test_waitfor_timeout: wait_for a predicate changed by
// another process; a timed-out wait returns false after at least the timeout.
#[test]
fn condition_wait_for_and_wait_timeout_across_processes() {
    for m in METHODS {
        let c = Condition::new().unwrap();
        let v = Value::new(0u32).unwrap();
        let mut g = c.acquire();
        let t = Instant::now();
        assert!(!g.wait_timeout(SHORT));
        assert!(t.elapsed() >= SHORT);
        assert!(!g.wait_for(|| v.get() == 5, Some(SHORT)));
        let p = start(m, bump_and_notify, (c.clone(), v.clone(), 5));
        assert!(g.wait_for(|| v.get() == 5, Some(LONG)), "{m:?}");
        drop(g);
        p.join().unwrap();
    }
}

fn barrier_party((b, n): (Barrier, usize)) -> Vec<usize> {
    (0..n).map(|_| b.wait().unwrap()).collect()
}

// _TestBarrier.test_barrier / test_wait_return: every cycle hands out distinct indices.
#[test]
fn barrier_indices_are_distinct_across_processes() {
    for m in METHODS {
        let b = Barrier::new(3).unwrap();
        let ps: Vec<_> = (0..2)
            .map(|_| start(m, barrier_party, (b.clone(), 20)))
            .collect();
        let mine = barrier_party((b.clone(), 20));
        let theirs: Vec<Vec<usize>> = ps.into_iter().map(|p| p.join().unwrap()).collect();
        for cycle in 0..20 {
            let mut idx = vec![mine[cycle], theirs[0][cycle], theirs[1][cycle]];
            idx.sort_unstable();
            assert_eq!(idx, [0, 1, 2], "{m:?} cycle {cycle}");
        }
        assert_eq!((b.parties(), b.n_waiting(), b.broken()), (3, 0, false));
    }
}

#[test]
fn barrier_thousand_cycles_between_two_processes() {
    for m in METHODS {
        let b = Barrier::new(2).unwrap();
        let p = start(m, barrier_party, (b.clone(), 1000));
        let mine = barrier_party((b.clone(), 1000));
        let theirs = p.join().unwrap();
        assert!(mine.iter().zip(&theirs).all(|(a, b)| a + b == 1), "{m:?}");
    }
}

fn wait_expect_broken((b, ready): (Barrier, Event)) -> bool {
    ready.set();
    matches!(b.wait(), Err(Error::BrokenBarrier))
}

fn abort_barrier(b: Barrier) {
    b.abort();
}

// _TestBarrier.test_abort and test_reset: an abort or reset in one process breaks the
// waiters of another; reset makes it usable again.
#[test]
fn barrier_abort_and_reset_across_processes() {
    for m in METHODS {
        let b = Barrier::new(3).unwrap();
        let ready = Event::new().unwrap();
        let waiter = start(m, wait_expect_broken, (b.clone(), ready.clone()));
        ready.wait();
        start(m, abort_barrier, b.clone()).join().unwrap();
        assert!(waiter.join().unwrap(), "{m:?}");
        assert!(b.broken());
        assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
        b.reset();
        assert!(!b.broken());

        // reset while a child waits: it gets BrokenBarrier, and the barrier works after.
        ready.clear();
        let waiter = start(m, wait_expect_broken, (b.clone(), ready.clone()));
        ready.wait();
        while b.n_waiting() != 1 {
            std::thread::yield_now();
        }
        b.reset();
        assert!(waiter.join().unwrap(), "{m:?}");
        let p = start(m, barrier_party, (b.clone(), 1));
        let q = start(m, barrier_party, (b.clone(), 1));
        let mine = b.wait().unwrap();
        let mut idx = vec![mine, p.join().unwrap()[0], q.join().unwrap()[0]];
        idx.sort_unstable();
        assert_eq!(idx, [0, 1, 2]);
    }
}

// _TestBarrier.test_timeout: a wait that times out breaks the barrier for the others.
#[test]
fn barrier_timeout_breaks_it_for_a_waiting_process() {
    for m in METHODS {
        let b = Barrier::new(3).unwrap();
        let ready = Event::new().unwrap();
        let waiter = start(m, wait_expect_broken, (b.clone(), ready.clone()));
        ready.wait();
        let t = Instant::now();
        assert!(matches!(b.wait_timeout(SHORT), Err(Error::BrokenBarrier)));
        assert!(t.elapsed() >= SHORT);
        assert!(waiter.join().unwrap(), "{m:?}");
        assert!(b.broken());
    }
}

fn fill_slice((a, from, to): (Array<u64>, usize, usize)) {
    for i in from..to {
        a.set(i, (i * i) as u64);
    }
}

fn sum_array(a: Array<f64>) -> f64 {
    a.lock().iter().sum()
}

// _TestArray.test_array and _TestValue.test_value: children see and fill the same memory.
#[test]
fn arrays_and_values_are_shared_with_children() {
    for m in METHODS {
        let a = Array::<u64>::new(100).unwrap();
        let ps: Vec<_> = (0..4)
            .map(|k| start(m, fill_slice, (a.clone(), k * 25, k * 25 + 25)))
            .collect();
        ps.into_iter().for_each(|p| p.join().unwrap());
        assert_eq!(
            a.to_vec(),
            (0..100u64).map(|i| i * i).collect::<Vec<_>>(),
            "{m:?}"
        );
        let f = Array::from_slice(&[0.5f64, 1.5, 2.0]).unwrap();
        assert_eq!(start(m, sum_array, f.clone()).join().unwrap(), 4.0);
        assert_eq!((f.len(), f.is_empty(), f.try_get(3)), (3, false, None));
    }
}

fn set_values((a, b, c): (Value<i64>, Value<bool>, Value<[u8; 3]>)) {
    a.set(-7);
    b.set(true);
    *c.lock() = *b"abc";
}

#[test]
fn values_of_several_types_cross_processes() {
    for m in METHODS {
        let (a, b, c) = (
            Value::new(1i64).unwrap(),
            Value::new(false).unwrap(),
            Value::new([0u8; 3]).unwrap(),
        );
        start(m, set_values, (a.clone(), b.clone(), c.clone()))
            .join()
            .unwrap();
        assert_eq!((a.get(), b.get(), c.get()), (-7, true, *b"abc"), "{m:?}");
    }
}

#[test]
fn handles_are_send_sync_debug_and_clone() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>(_: &T) {}
    check(&Lock::new().unwrap());
    check(&RLock::new().unwrap());
    check(&Semaphore::new(1).unwrap());
    check(&BoundedSemaphore::new(1).unwrap());
    check(&Event::new().unwrap());
    check(&Condition::new().unwrap());
    check(&Barrier::new(2).unwrap());
    check(&Value::new(1u8).unwrap());
    check(&Array::<u8>::new(1).unwrap());
    let dbg = format!("{:?}", Value::new(3u16).unwrap());
    assert!(dbg.contains('3'), "{dbg}");
}

fn use_everything(
    (l, r, s, e, c, b, v): (
        Lock,
        RLock,
        Semaphore,
        Event,
        Condition,
        Barrier,
        Value<u32>,
    ),
) {
    drop(l.acquire());
    drop(r.acquire());
    s.release();
    e.set();
    c.acquire().notify_all();
    b.wait().unwrap();
    *v.lock() += 1;
}

#[test]
fn no_descriptor_or_dev_shm_entry_left_behind() {
    // Counted in a fresh process of its own: other tests of this binary may run in threads.
    start(StartMethod::Spawn, leave_nothing_behind, ())
        .join()
        .unwrap();
}

fn leave_nothing_behind(_: ()) {
    // Warm up what the first spawn opens for good (the fork server's socket, the socket pair
    // a finished Fork child leaves for the next one).
    for m in [StartMethod::ForkServer, StartMethod::Fork] {
        start(m, set_event, Event::new().unwrap()).join().unwrap();
    }
    let shm_before: Vec<_> = std::fs::read_dir("/dev/shm")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let before = open_fds();
    for m in METHODS {
        let objs = (
            Lock::new().unwrap(),
            RLock::new().unwrap(),
            Semaphore::new(0).unwrap(),
            Event::new().unwrap(),
            Condition::new().unwrap(),
            Barrier::new(2).unwrap(),
            Value::new(0u32).unwrap(),
        );
        let p = start(m, use_everything, objs.clone());
        objs.5.wait().unwrap();
        p.join().unwrap();
        assert_eq!((objs.2.get_value(), objs.6.get()), (1, 1));
    }
    assert_eq!(open_fds(), before, "descriptors leaked");
    let mine: Vec<_> = std::fs::read_dir(format!("/proc/{}/fd", std::process::id()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|p| p.to_string_lossy().starts_with("/dev/shm"))
        .collect();
    assert!(mine.is_empty(), "{mine:?}");
    let shm_after: Vec<_> = std::fs::read_dir("/dev/shm")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let new: Vec<_> = shm_after
        .iter()
        .filter(|n| !shm_before.contains(n))
        .filter(|n| n.to_string_lossy().contains("multiproc"))
        .collect();
    assert!(
        new.is_empty(),
        "anonymous objects appeared in /dev/shm: {new:?}"
    );
}
