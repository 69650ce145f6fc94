//! `multiproc::redis::Lock` against a real server: mutual exclusion between processes, the
//! token check on release, lease extension, and the lock of a killed holder expiring.

mod common;

use multiproc::Error;
use multiproc::redis::{Lock, Queue};
use std::time::{Duration, Instant};

#[test]
fn one_holder_at_a_time_and_release_needs_the_token() {
    let Some(url) = common::url() else { return };
    let name = common::unique("lock");
    let a = Lock::open(&url, &name, Duration::from_millis(300)).unwrap();
    let b = Lock::open(&url, &name, Duration::from_secs(10)).unwrap();
    assert!(matches!(b.release(), Err(Error::Invalid(_))));
    assert!(a.acquire_timeout(Duration::ZERO).unwrap());
    assert!(a.owned().unwrap());
    // Held by this very handle: like a `threading.Lock`, a second acquire waits (here:
    // gives up at once) instead of failing.
    assert!(!a.acquire_timeout(Duration::ZERO).unwrap());
    assert!(!b.acquire_timeout(Duration::from_millis(20)).unwrap());
    // a's lease lapses; b takes it; a's late release must not free b's lock.
    assert!(b.acquire_timeout(Duration::from_secs(5)).unwrap());
    assert!(!a.owned().unwrap());
    assert!(!a.release().unwrap());
    assert!(b.owned().unwrap());
    assert!(b.extend().unwrap());
    assert!(b.release().unwrap());
}

#[test]
fn extend_keeps_the_lock_past_its_first_lease() {
    let Some(url) = common::url() else { return };
    let name = common::unique("extend");
    let a = Lock::open(&url, &name, Duration::from_millis(400)).unwrap();
    let b = Lock::open(&url, &name, Duration::from_millis(400)).unwrap();
    a.acquire().unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1000) {
        assert!(a.extend().unwrap());
        assert!(!b.acquire_timeout(Duration::from_millis(100)).unwrap());
    }
    assert!(a.release().unwrap());
    assert!(b.acquire_timeout(Duration::ZERO).unwrap());
}

fn hold_and_die((url, name, ready): (String, String, String)) {
    let l = Lock::open(&url, &name, Duration::from_millis(500)).unwrap();
    l.acquire().unwrap();
    Queue::<u8>::open(&url, &ready).unwrap().put(1).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status();
    std::process::abort();
}

#[test]
fn the_lock_of_a_killed_holder_expires() {
    let Some(url) = common::url() else { return };
    let name = common::unique("crashlock");
    let ready = common::unique("ready");
    let signal: Queue<u8> = Queue::open(&url, &ready).unwrap();
    let child = multiproc::spawn(hold_and_die, (url.clone(), name.clone(), ready.clone())).unwrap();
    signal.get_timeout(Duration::from_secs(20)).unwrap();
    signal.task_done().unwrap();
    let l = Lock::open(&url, &name, Duration::from_secs(5)).unwrap();
    assert!(matches!(child.join(), Err(Error::ProcessFailed { .. })));
    assert!(!l.acquire_timeout(Duration::ZERO).unwrap(), "still leased");
    assert!(l.acquire_timeout(Duration::from_secs(5)).unwrap());
    l.release().unwrap();
}

fn count_under_lock((url, name, counter): (String, String, String)) {
    let l = Lock::open(&url, &name, Duration::from_secs(10)).unwrap();
    let mut con = multiproc::redis::Client::open(&url)
        .unwrap()
        .raw_connection()
        .unwrap();
    for _ in 0..50 {
        l.acquire().unwrap();
        // A read-modify-write that loses updates without the lock.
        let v: Option<i64> = multiproc::redis::raw::cmd("GET")
            .arg(&counter)
            .query(&mut con)
            .unwrap();
        let _: () = multiproc::redis::raw::cmd("SET")
            .arg(&counter)
            .arg(v.unwrap_or(0) + 1)
            .query(&mut con)
            .unwrap();
        assert!(l.release().unwrap());
    }
}

#[test]
fn processes_never_hold_it_together() {
    let Some(url) = common::url() else { return };
    let name = common::unique("mutex");
    let counter = common::unique("counter");
    let kids: Vec<_> = (0..4)
        .map(|_| {
            multiproc::spawn(
                count_under_lock,
                (url.clone(), name.clone(), counter.clone()),
            )
            .unwrap()
        })
        .collect();
    for k in kids {
        k.join().unwrap();
    }
    let mut con = multiproc::redis::Client::open(&url)
        .unwrap()
        .raw_connection()
        .unwrap();
    let v: i64 = multiproc::redis::raw::cmd("GET")
        .arg(&counter)
        .query(&mut con)
        .unwrap();
    assert_eq!(v, 200);
}
