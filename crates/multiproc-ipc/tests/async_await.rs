//! The async forms (`get_async`, `put_async`, `recv_async`, `acquire_async`, `wait_async`,
//! `join_async`) against real processes under every start method, on tokio.
//!
//! Each test runs on a current-thread runtime, so a call that blocked its thread instead of
//! parking its task would keep the other task of the test from running: the test would hang
//! (and nextest would fail it) instead of passing. No sleeps synchronise anything: children
//! wait for events that the other task sets.

mod common;
use common::{METHODS, start};

use multiproc_ipc::{Connection, Error, Event, Lock, Pipe, Queue};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Waits for `go`, then puts `0..n` and returns.
fn produce_after((go, q, n): (Event, Queue<u64>, u64)) {
    go.wait();
    for i in 0..n {
        q.put(i).unwrap();
    }
}

#[test]
fn get_async_parks_the_task_and_takes_every_item_then_closed() {
    for m in METHODS {
        let (go, q) = (Event::new().unwrap(), Queue::new().unwrap());
        let p = start(m, produce_after, (go.clone(), q.clone(), 1000));
        runtime().block_on(async {
            // The getter is polled first and must park: only then can the setter run.
            let getter = async {
                let mut sum = 0;
                for i in 0..1000 {
                    let got = q.get_async().await.unwrap();
                    assert_eq!(got, i, "{m:?}");
                    sum += got;
                }
                sum
            };
            let setter = async { go.set() };
            let (sum, ()) = tokio::join!(getter, setter);
            assert_eq!(sum, 999 * 1000 / 2);
        });
        p.join().unwrap();
        let closed = runtime().block_on(q.get_async());
        assert!(matches!(closed, Err(Error::Closed)), "{m:?}: {closed:?}");
    }
}

/// Waits for `go`, then takes `n` items and returns their sum.
fn consume_after((go, q, n): (Event, Queue<u64>, u64)) -> u64 {
    go.wait();
    (0..n).map(|_| q.get().unwrap()).sum()
}

#[test]
fn put_async_waits_for_room_on_a_bounded_queue() {
    for m in METHODS {
        let (go, q) = (Event::new().unwrap(), Queue::with_maxsize(2).unwrap());
        let p = start(m, consume_after, (go.clone(), q.clone(), 100));
        runtime().block_on(async {
            let putter = async {
                for i in 0..100 {
                    q.put_async(i).await.unwrap();
                }
            };
            let setter = async { go.set() };
            tokio::join!(putter, setter);
        });
        assert_eq!(p.join().unwrap(), 99 * 100 / 2, "{m:?}");
        // Nobody left to make room: a put on the full queue answers Closed.
        q.put(1).unwrap();
        q.put(2).unwrap();
        let closed = runtime().block_on(q.put_async(3));
        assert!(matches!(closed, Err(Error::Closed)), "{m:?}: {closed:?}");
    }
}

/// Waits for `go`, then echoes each message back doubled until the other end closes.
fn echo_after((go, c): (Event, Connection<u64>)) {
    go.wait();
    while let Ok(x) = c.recv() {
        c.send(x * 2).unwrap();
    }
}

#[test]
fn recv_async_round_trips_with_a_child_then_closed() {
    for m in METHODS {
        let go = Event::new().unwrap();
        let (mine, theirs) = Pipe::duplex().unwrap();
        let p = start(m, echo_after, (go.clone(), theirs));
        runtime().block_on(async {
            let first = async {
                mine.send(1).unwrap();
                mine.recv_async().await.unwrap()
            };
            let (got, ()) = tokio::join!(first, async { go.set() });
            assert_eq!(got, 2);
            for i in 0..200 {
                mine.send(i).unwrap();
                assert_eq!(mine.recv_async().await.unwrap(), i * 2, "{m:?}");
            }
        });
        let (ours, theirs) = Pipe::duplex::<u64>().unwrap();
        drop(theirs);
        assert!(matches!(
            runtime().block_on(ours.recv_async()),
            Err(Error::Closed)
        ));
        drop(mine);
        p.join().unwrap();
    }
}

/// Takes `lock`, says so on `held`, and keeps it until `release`.
fn hold_until((lock, held, release): (Lock, Event, Event)) {
    let _g = lock.acquire();
    held.set();
    release.wait();
}

/// Takes `lock` and exits without releasing it.
fn die_holding(lock: Lock) {
    std::mem::forget(lock.acquire());
}

#[test]
fn acquire_async_waits_for_a_child_and_takes_over_from_a_dead_one() {
    for m in METHODS {
        let (lock, held, release) = (
            Lock::new().unwrap(),
            Event::new().unwrap(),
            Event::new().unwrap(),
        );
        let p = start(m, hold_until, (lock.clone(), held.clone(), release.clone()));
        runtime().block_on(async {
            held.wait_async().await;
            let acquirer = async {
                let g = lock.acquire_async().await;
                assert!(!g.previous_owner_died());
            };
            tokio::join!(acquirer, async { release.set() });
        });
        p.join().unwrap();
        assert!(!lock.locked(), "{m:?}");

        start(m, die_holding, lock.clone()).join().unwrap();
        assert!(lock.locked());
        let died = runtime().block_on(async { lock.acquire_async().await.previous_owner_died() });
        assert!(died, "{m:?}");
    }
}

/// Waits for `ping`, then sets `pong`.
fn answer((ping, pong): (Event, Event)) {
    ping.wait();
    pong.set();
}

#[test]
fn wait_async_sees_a_set_from_a_child() {
    for m in METHODS {
        let (ping, pong) = (Event::new().unwrap(), Event::new().unwrap());
        let p = start(m, answer, (ping.clone(), pong.clone()));
        runtime().block_on(async {
            tokio::join!(pong.wait_async(), async { ping.set() });
        });
        assert!(pong.is_set());
        p.join().unwrap();
    }
}

/// Waits for `go`, then returns `len` bytes of `fill` (more than a socket buffer holds).
fn big_result_after((go, len, fill): (Event, usize, u8)) -> Vec<u8> {
    go.wait();
    vec![fill; len]
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

#[test]
fn join_async_awaits_many_children_large_results_and_failures() {
    for m in METHODS {
        let go = Event::new().unwrap();
        let children: Vec<_> = (0..8u8)
            .map(|i| start(m, big_result_after, (go.clone(), 1 << 19, i)))
            .collect();
        let results = runtime().block_on(async {
            let joins = async {
                let mut tasks = tokio::task::JoinSet::new();
                for (i, p) in children.into_iter().enumerate() {
                    tasks.spawn(async move { (i, p.join_async().await) });
                }
                let mut got = Vec::new();
                while let Some(done) = tasks.join_next().await {
                    got.push(done.unwrap());
                }
                got
            };
            let (got, ()) = tokio::join!(joins, async { go.set() });
            got
        });
        assert_eq!(results.len(), 8);
        for (i, r) in results {
            let bytes = r.unwrap();
            assert!(
                bytes.len() == 1 << 19 && bytes.iter().all(|&b| b == i as u8),
                "{m:?}"
            );
        }
        let failed = runtime().block_on(start(m, exit_with, 3).join_async());
        assert!(
            matches!(failed, Err(Error::ProcessFailed { exitcode: 3, .. })),
            "{m:?}: {failed:?}"
        );
    }
}

#[test]
fn a_dropped_future_takes_nothing_and_passes_the_lock_on() {
    let q = Queue::<u32>::new().unwrap();
    let _other = q.clone();
    let lock = Lock::new().unwrap();
    runtime().block_on(async {
        // A get that is parked, then abandoned by a timeout.
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(5), q.get_async());
        assert!(timed_out.await.is_err());
        q.put(9).unwrap();
        assert_eq!(q.get_async().await.unwrap(), 9);

        // An acquire that is parked, then abandoned: the lock still goes to the next one.
        let g = lock.acquire();
        let abandoned =
            tokio::time::timeout(std::time::Duration::from_millis(5), lock.acquire_async());
        assert!(abandoned.await.is_err());
        drop(g);
        let again = lock.acquire_async().await;
        assert!(!again.previous_owner_died());
    });
}

/// Compiles only if every async form is a `Send` future, which `tokio::spawn` on a
/// multi-thread runtime needs.
#[test]
fn every_future_is_send() {
    fn send<F: std::future::Future + Send>(_: F) {}
    let q = Queue::<u32>::new().unwrap();
    let (a, _b): (Connection<u32>, _) = Pipe::duplex().unwrap();
    let (lock, event) = (Lock::new().unwrap(), Event::new().unwrap());
    send(q.get_async());
    send(q.put_async(1));
    send(a.recv_async());
    send(lock.acquire_async());
    send(event.wait_async());
    send(start(common::METHODS[0], exit_with, 0).join_async());
}
