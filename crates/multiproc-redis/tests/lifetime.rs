//! What a Redis queue's items and keys live through: `task_done` acknowledges at once (a
//! consumer killed right after it never gets the item again), `clear` and `delete` remove
//! what an earlier run left, and a queue built with `expire_after` disappears when no handle
//! touches it.

mod common;

use multiproc::Error;
use multiproc::redis::{Client, Queue};
use std::time::{Duration, Instant};

fn keys(url: &str, name: &str) -> Vec<String> {
    let mut con = Client::open(url).unwrap().raw_connection().unwrap();
    multiproc::redis::raw::cmd("KEYS")
        .arg(format!("multiproc:queue:{name}:*"))
        .query(&mut con)
        .unwrap()
}

fn take_ack_and_die((url, name, done): (String, String, String)) {
    let client = Client::open(&url).unwrap();
    let q: Queue<u32> = Queue::with_client(&client, &name, Duration::from_millis(200)).unwrap();
    assert_eq!(q.get().unwrap(), 7);
    q.task_done().unwrap();
    // Tell the parent, on a queue this process never consumes from, then die at once.
    Queue::<u8>::open(&url, &done).unwrap().put(1).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status();
    std::process::abort();
}

#[test]
fn an_item_acknowledged_by_a_consumer_killed_right_after_is_not_delivered_again() {
    let Some(url) = common::url() else { return };
    let (name, done) = (common::unique("acked"), common::unique("acked-done"));
    let q: Queue<u32> = Queue::with_client(
        &Client::open(&url).unwrap(),
        &name,
        Duration::from_millis(200),
    )
    .unwrap();
    q.put(7).unwrap();
    let signal: Queue<u8> = Queue::open(&url, &done).unwrap();
    let child = multiproc::spawn(take_ack_and_die, (url.clone(), name, done)).unwrap();
    assert_eq!(signal.get_timeout(Duration::from_secs(20)).unwrap(), 1);
    signal.task_done().unwrap();
    assert!(matches!(child.join(), Err(Error::ProcessFailed { .. })));
    // Past the dead consumer's heartbeat (200 ms), a get requeues what it held: nothing.
    assert!(matches!(
        q.get_timeout(Duration::from_millis(2500)),
        Err(Error::Empty)
    ));
    assert_eq!(q.requeue_dead().unwrap(), 0);
}

#[test]
fn clear_drops_waiting_items_and_delete_removes_every_key() {
    let Some(url) = common::url() else { return };
    let name = common::unique("clear");
    let q: Queue<String> = Queue::open(&url, &name).unwrap();
    let s = "kept by reference".to_string();
    q.put(&s).unwrap();
    q.put(s).unwrap();
    q.put("by value".to_string()).unwrap();
    assert_eq!(q.clear().unwrap(), 3);
    assert!(q.empty().unwrap());
    q.put("left over".to_string()).unwrap();
    assert_eq!(q.get().unwrap(), "left over");
    q.put("unread".to_string()).unwrap();
    assert!(!keys(&url, &name).is_empty());
    q.delete().unwrap();
    assert_eq!(keys(&url, &name), Vec::<String>::new());
    let again: Queue<String> = Queue::open(&url, &name).unwrap();
    assert!(again.empty().unwrap());
}

#[test]
fn a_queue_with_expire_after_is_gone_once_no_handle_touches_it() {
    let Some(url) = common::url() else { return };
    let name = common::unique("ttl");
    let q: Queue<u8> = Queue::builder(&url, &name)
        .expire_after(Duration::from_millis(500))
        .build()
        .unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert_eq!(q.get().unwrap(), 1);
    q.task_done().unwrap();
    drop(q);
    assert!(!keys(&url, &name).is_empty());
    let t = Instant::now();
    while !keys(&url, &name).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the keys never expired"
        );
        std::thread::yield_now();
    }
    assert!(t.elapsed() >= Duration::from_millis(100), "expired at once");
    let fresh: Queue<u8> = Queue::open(&url, &name).unwrap();
    assert!(fresh.empty().unwrap());
}
