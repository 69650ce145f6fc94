//! `kill -9` of a process inside a lock, a value's lock or a barrier: the survivors recover
//! (the lock with `previous_owner_died`, the barrier broken), never hang. Python's
//! `multiprocessing` deadlocks for ever in every one of these cases.

mod common;
use common::{METHODS, start};
use multiproc_testkit::open_fds;

use std::time::{Duration, Instant};

use multiproc_ipc::{Array, Barrier, Condition, Error, Event, Lock, RLock, Semaphore, Value};
use multiproc_spawn::StartMethod;

fn park() -> ! {
    loop {
        std::thread::park();
    }
}

fn hold_lock_forever((lock, ready): (Lock, Event)) {
    let _g = lock.acquire();
    ready.set();
    park();
}

#[test]
fn a_lock_holder_killed_a_hundred_times_in_a_row() {
    let lock = Lock::new().unwrap();
    let ready = Event::new().unwrap();
    for i in 0..100 {
        let m = METHODS[i % 3];
        ready.clear();
        let p = start(m, hold_lock_forever, (lock.clone(), ready.clone()));
        ready.wait();
        assert!(lock.locked() && lock.try_acquire().is_none());
        p.kill().unwrap();
        let g = lock.acquire();
        assert!(g.previous_owner_died(), "round {i} ({m:?})");
        drop(g);
        let g = lock.acquire();
        assert!(!g.previous_owner_died(), "only the first acquirer is told");
        drop(g);
        drop(p);
    }
}

fn wait_for_lock(lock: Lock) -> bool {
    lock.acquire().previous_owner_died()
}

#[test]
fn survivors_in_other_processes_recover_the_lock() {
    for m in METHODS {
        let lock = Lock::new().unwrap();
        let ready = Event::new().unwrap();
        let holder = start(m, hold_lock_forever, (lock.clone(), ready.clone()));
        ready.wait();
        let waiters: Vec<_> = (0..2)
            .map(|_| start(m, wait_for_lock, lock.clone()))
            .collect();
        holder.kill().unwrap();
        let died: Vec<bool> = waiters.into_iter().map(|p| p.join().unwrap()).collect();
        // Exactly one survivor took the dead owner's lock over; the other got it from it.
        assert_eq!(died.iter().filter(|d| **d).count(), 1, "{m:?}: {died:?}");
        assert!(!lock.locked());
    }
}

#[test]
fn try_acquire_and_timeouts_take_over_a_dead_owner() {
    let lock = Lock::new().unwrap();
    let ready = Event::new().unwrap();
    let p = start(
        StartMethod::Fork,
        hold_lock_forever,
        (lock.clone(), ready.clone()),
    );
    ready.wait();
    p.kill().unwrap();
    let g = lock
        .acquire_timeout(Duration::from_secs(30))
        .expect("a dead owner's lock is recovered within the timeout");
    assert!(g.previous_owner_died());
    drop(g);

    let mut p = start(
        StartMethod::Spawn,
        hold_lock_forever,
        (lock.clone(), ready.clone()),
    );
    ready.clear();
    ready.wait();
    p.kill().unwrap();
    assert!(p.wait_timeout(Duration::from_secs(30)));
    let g = lock
        .try_acquire()
        .expect("the owner is dead: no waiting needed");
    assert!(g.previous_owner_died());
}

fn take_permit_and_park((s, ready): (Semaphore, Event)) {
    s.acquire();
    ready.set();
    park();
}

// Documented behaviour: permits are not owned, so a dead holder's permit is gone until
// someone releases one on its behalf.
#[test]
fn a_dead_semaphore_holder_takes_its_permit_with_it() {
    let s = Semaphore::new(1).unwrap();
    let ready = Event::new().unwrap();
    let mut p = start(
        StartMethod::Fork,
        take_permit_and_park,
        (s.clone(), ready.clone()),
    );
    ready.wait();
    p.kill().unwrap();
    assert!(p.wait_timeout(Duration::from_secs(30)));
    assert_eq!(s.get_value(), 0);
    assert!(!s.acquire_timeout(Duration::from_millis(20)));
    s.release(); // the supervisor, having seen it die
    assert!(s.try_acquire());
}

fn hold_rlock_twice((r, ready): (RLock, Event)) {
    let _a = r.acquire();
    let _b = r.acquire();
    ready.set();
    park();
}

#[test]
fn an_rlock_holder_killed_at_depth_two() {
    for m in METHODS {
        let r = RLock::new().unwrap();
        let ready = Event::new().unwrap();
        let p = start(m, hold_rlock_twice, (r.clone(), ready.clone()));
        ready.wait();
        p.kill().unwrap();
        let g = r.acquire();
        assert!(g.previous_owner_died(), "{m:?}");
        assert_eq!(r.depth(), 1, "the new owner starts at depth 1");
        drop(g);
        assert!(!r.locked());
    }
}

fn write_half_and_die((v, a, ready): (Value<u64>, Array<u32>, Event)) {
    let mut g = v.lock();
    *g = 42;
    let mut h = a.lock();
    h[0] = 7;
    ready.set();
    park();
}

#[test]
fn value_and_array_locks_recover_with_the_data_written_so_far() {
    for m in METHODS {
        let v = Value::new(0u64).unwrap();
        let a = Array::<u32>::new(2).unwrap();
        let ready = Event::new().unwrap();
        let p = start(m, write_half_and_die, (v.clone(), a.clone(), ready.clone()));
        ready.wait();
        p.kill().unwrap();
        let g = v.lock();
        assert!(g.previous_owner_died(), "{m:?}");
        assert_eq!(*g, 42);
        drop(g);
        let h = a.lock();
        assert!(h.previous_owner_died());
        assert_eq!(*h, [7, 0]);
        drop(h);
        assert_eq!((v.get(), a.get(0)), (42, 7));
    }
}

fn hold_condition((c, ready): (Condition, Event)) {
    let _g = c.acquire();
    ready.set();
    park();
}

#[test]
fn a_condition_whose_lock_holder_died() {
    let c = Condition::new().unwrap();
    let ready = Event::new().unwrap();
    let p = start(
        StartMethod::Spawn,
        hold_condition,
        (c.clone(), ready.clone()),
    );
    ready.wait();
    p.kill().unwrap();
    let mut g = c.acquire();
    assert!(g.previous_owner_died());
    assert!(!g.wait_timeout(Duration::from_millis(5)));
}

fn barrier_wait((b, ready): (Barrier, Event)) -> bool {
    ready.set();
    matches!(b.wait(), Err(Error::BrokenBarrier))
}

fn wait_until_waiting(b: &Barrier, n: usize) {
    while b.n_waiting() != n {
        std::thread::yield_now();
    }
}

#[test]
fn a_waiter_killed_inside_a_barrier_breaks_it_for_the_others() {
    for m in METHODS {
        // Three parties: one killed while it waits, one live waiter, and us arriving last.
        let b = Barrier::new(3).unwrap();
        let ready = Event::new().unwrap();
        let mut doomed = start(m, barrier_wait, (b.clone(), ready.clone()));
        wait_until_waiting(&b, 1);
        let survivor = start(m, barrier_wait, (b.clone(), ready.clone()));
        wait_until_waiting(&b, 2);
        doomed.kill().unwrap();
        // Dead (not just signalled) before we arrive.
        assert!(doomed.wait_timeout(Duration::from_secs(30)));
        let t = Instant::now();
        assert!(
            matches!(b.wait(), Err(Error::BrokenBarrier)),
            "{m:?}: the last arrival must not pass with a dead party"
        );
        assert!(
            survivor.join().unwrap(),
            "{m:?}: the live waiter is released"
        );
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(b.broken());
        b.reset();
        assert_eq!(b.n_waiting(), 0);
        drop(doomed);

        // Killed while the others sleep in it: the sleepers notice on their own.
        let b = Barrier::new(3).unwrap();
        let doomed = start(m, barrier_wait, (b.clone(), ready.clone()));
        wait_until_waiting(&b, 1);
        let survivor = start(m, barrier_wait, (b.clone(), ready.clone()));
        wait_until_waiting(&b, 2);
        doomed.kill().unwrap();
        assert!(
            survivor.join().unwrap(),
            "{m:?}: a sleeper notices the death"
        );
        assert!(b.broken());
    }
}

#[test]
fn killing_every_participant_leaves_no_descriptor_behind() {
    // Counted in a fresh process of its own: other tests of this binary may run in threads.
    let (before, after) = start(StartMethod::Spawn, kill_everyone, ()).join().unwrap();
    assert_eq!(before, after, "descriptors leaked");
}

fn kill_everyone(_: ()) -> (usize, usize) {
    // Warm up (the fork server's connection is kept). Joined, not dropped: a dropped handle's
    // descriptors close in the background once its child ends, which would skew `before`.
    let warm = start(
        StartMethod::ForkServer,
        park_with_lock,
        Lock::new().unwrap(),
    );
    warm.kill().unwrap();
    assert!(warm.join().is_err(), "killed");
    // And the socket pair a finished Fork child leaves for the next one.
    start(StartMethod::Fork, |()| (), ()).join().unwrap();
    let before = open_fds();
    for m in METHODS {
        let lock = Lock::new().unwrap();
        let v = Value::new(1u8).unwrap();
        let b = Barrier::new(3).unwrap();
        let ps: Vec<_> = (0..2)
            .map(|_| start(m, use_and_park, (lock.clone(), v.clone(), b.clone())))
            .collect();
        wait_until_waiting(&b, 2);
        for p in &ps {
            p.kill().unwrap();
        }
        for mut p in ps {
            assert!(p.wait_timeout(Duration::from_secs(30)));
        }
    }
    (before, open_fds())
}

fn park_with_lock(l: Lock) {
    let _g = l.acquire();
    park();
}

fn use_and_park((l, v, b): (Lock, Value<u8>, Barrier)) {
    drop(l.acquire());
    *v.lock() += 1;
    let _ = b.wait();
    park();
}
