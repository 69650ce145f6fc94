//! `multiproc::redis::Queue` against a real server: FIFO order, timeouts, acknowledgement,
//! items of a killed consumer requeued, many processes, and clear connection errors.

mod common;

use multiproc::Error;
use multiproc::redis::{Client, Queue};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn put_get_is_fifo_and_counts() {
    let Some(url) = common::url() else { return };
    let q: Queue<u32> = Queue::open(&url, &common::unique("fifo")).unwrap();
    assert!(q.empty().unwrap());
    for i in 1..=5 {
        q.put(i).unwrap();
    }
    assert_eq!(q.qsize().unwrap(), 5);
    for i in 1..=5 {
        assert_eq!(q.get().unwrap(), i);
        assert_eq!(q.unfinished(), 1);
        q.task_done().unwrap();
    }
    assert!(q.empty().unwrap());
    assert!(matches!(q.task_done(), Err(Error::Invalid(_))));
}

#[test]
fn get_timeout_on_an_empty_queue_is_empty_after_the_timeout() {
    let Some(url) = common::url() else { return };
    let q: Queue<String> = Queue::open(&url, &common::unique("empty")).unwrap();
    let t = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(150)),
        Err(Error::Empty)
    ));
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert!(matches!(q.get_timeout(Duration::ZERO), Err(Error::Empty)));
}

/// Timeouts, leases, heartbeats and expiries past the end of the clock (`Duration::MAX`, or a
/// figure computed from user input) mean "for ever": nothing panics adding them to the clock,
/// and none wraps around into a short lease or expiry in Redis.
#[test]
fn durations_near_duration_max_are_for_ever() {
    let Some(url) = common::url() else { return };
    let client = Client::open(&url).unwrap().reconnect_timeout(Duration::MAX);
    let name = common::unique("max");
    let q: Queue<u32> = Queue::builder("", &name)
        .client(&client)
        .heartbeat(Duration::MAX)
        .expire_after(Duration::MAX)
        .build()
        .unwrap();
    q.put(7).unwrap();
    assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 7);
    q.task_done().unwrap();
    q.put(8).unwrap();
    let mut con = client.raw_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{name}*"))
        .query(&mut con)
        .unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut con).unwrap();
        // No TTL (-1), or one of years: never a wrapped-around few milliseconds.
        assert!(ttl == -1 || ttl > 1_000_000_000_000, "{key}: {ttl} ms");
    }
    let lock_name = common::unique("max-lock");
    let lock = multiproc::redis::Lock::with_client(&client, &lock_name, Duration::MAX).unwrap();
    assert!(lock.acquire_timeout(Duration::MAX).unwrap());
    assert!(lock.owned().unwrap());
    assert!(lock.extend().unwrap());
    assert!(lock.release().unwrap());
}

fn take_one_and_die((url, name): (String, String)) {
    let q: Queue<u32> = Queue::with_client(
        &Client::open(&url).unwrap(),
        &name,
        Duration::from_millis(200),
    )
    .unwrap();
    let got = q.get().unwrap();
    assert_eq!(got, 7);
    // Killed while "working" on it: no task_done, no destructor.
    let _ = std::process::Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status();
    std::process::abort();
}

#[test]
fn an_item_held_by_a_killed_consumer_is_delivered_again() {
    let Some(url) = common::url() else { return };
    let name = common::unique("crash");
    let q: Queue<u32> = Queue::with_client(
        &Client::open(&url).unwrap(),
        &name,
        Duration::from_millis(200),
    )
    .unwrap();
    q.put(7).unwrap();
    let child = multiproc::spawn(take_one_and_die, (url.clone(), name.clone())).unwrap();
    assert!(matches!(child.join(), Err(Error::ProcessFailed { .. })));
    assert!(q.empty().unwrap(), "the dead consumer took the item");
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 7);
    q.task_done().unwrap();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(400)),
        Err(Error::Empty)
    ));
}

#[test]
fn a_handle_dropped_with_unfinished_items_gives_them_back() {
    let Some(url) = common::url() else { return };
    let name = common::unique("drop");
    let a: Queue<u8> = Queue::open(&url, &name).unwrap();
    a.put(1).unwrap();
    a.put(2).unwrap();
    assert_eq!(a.get().unwrap(), 1);
    drop(a);
    let b: Queue<u8> = Queue::open(&url, &name).unwrap();
    let got: BTreeSet<u8> = (0..2)
        .map(|_| {
            let v = b.get_timeout(Duration::from_secs(5)).unwrap();
            b.task_done().unwrap();
            v
        })
        .collect();
    assert_eq!(got, BTreeSet::from([1, 2]));
}

fn produce((url, name, base): (String, String, u32)) {
    let q: Queue<u32> = Queue::open(&url, &name).unwrap();
    for i in 0..200 {
        q.put(base + i).unwrap();
    }
}

#[test]
fn producers_in_other_processes_lose_nothing() {
    let Some(url) = common::url() else { return };
    let name = common::unique("many");
    let q: Queue<u32> = Queue::open(&url, &name).unwrap();
    let kids: Vec<_> = (0..3)
        .map(|k| multiproc::spawn(produce, (url.clone(), name.clone(), k * 1000)).unwrap())
        .collect();
    let mut seen = BTreeSet::new();
    while seen.len() < 600 {
        let v = q.get_timeout(Duration::from_secs(20)).unwrap();
        q.task_done().unwrap();
        assert!(seen.insert(v), "{v} delivered twice without any failure");
    }
    for k in kids {
        k.join().unwrap();
    }
    let want: BTreeSet<u32> = (0..3)
        .flat_map(|k| (0..200).map(move |i| k * 1000 + i))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn a_bad_url_is_a_clear_error() {
    for bad in ["http://localhost:6379", "redis://[::1", "not a url"] {
        match Client::open(bad) {
            Err(Error::Redis(m)) => assert!(m.contains("bad redis url"), "{m}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn a_refused_connection_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match Client::open(&format!("redis://127.0.0.1:{port}/0")) {
        Err(Error::Redis(m)) => assert!(m.contains("cannot connect"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wrong_password_is_an_authentication_error_that_hides_the_password() {
    let Some(server) = common::own_server(false) else {
        return;
    };
    let mut con = Client::open(server.url())
        .unwrap()
        .raw_connection()
        .unwrap();
    let _: () = multiproc::redis::raw::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("right-one")
        .query(&mut con)
        .unwrap();
    let wrong = server.url().replace("redis://", "redis://:wrong-one@");
    match Client::open(&wrong) {
        Err(Error::Redis(m)) => {
            assert!(m.contains("authentication failed"), "{m}");
            assert!(!m.contains("wrong-one"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let right = server.url().replace("redis://", "redis://:right-one@");
    let q: Queue<u8> = Queue::open(&right, "auth").unwrap();
    q.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);
}

#[test]
fn an_item_larger_than_the_socket_buffers_arrives_whole() {
    let Some(url) = common::url() else { return };
    let q: Queue<Vec<u8>> = Queue::open(&url, &common::unique("large")).unwrap();
    // 8 MiB: far past a socket's buffer, so the send waits for the server to read and the
    // reply is parsed from many reads.
    let item: Vec<u8> = (0..8 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    q.put(&item).unwrap();
    q.put(vec![7u8]).unwrap();
    assert!(q.get().unwrap() == item);
    assert_eq!(q.get().unwrap(), vec![7u8]);
    q.task_done().unwrap();
    q.task_done().unwrap();
    assert!(q.empty().unwrap());
}
