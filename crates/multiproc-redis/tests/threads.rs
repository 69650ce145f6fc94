//! One handle shared by threads (`Arc<Queue>`, `Arc<Lock>`, an `Executor` and its futures):
//! a call that waits on one thread never stops another thread's calls, and the call that the
//! waiter needs wakes it (issue #26: a `get` holding the connection that `put` needed
//! deadlocked).

mod common;

use multiproc::redis::{Executor, Lock, Queue, Worker};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// "Did not hang": generous, never a latency bound.
const PROMPT: Duration = Duration::from_secs(10);

/// Runs `f` on a thread and answers its value, or panics when it has not answered in
/// [`PROMPT`] (the thread is left behind: the test fails anyway).
fn answers<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PROMPT)
        .unwrap_or_else(|_| panic!("{what} did not answer while another thread was waiting"))
}

fn raw(url: &str) -> multiproc::redis::raw::Connection {
    multiproc::redis::Client::open(url)
        .unwrap()
        .raw_connection()
        .unwrap()
}

/// Waits until the server shows `key` (a set) with `n` members: the consumer of a `get` has
/// registered, i.e. the `get` is under way.
fn wait_for_members(url: &str, key: &str, n: i64) {
    let mut con = raw(url);
    let t = std::time::Instant::now();
    loop {
        let got: i64 = multiproc::redis::raw::cmd("SCARD")
            .arg(key)
            .query(&mut con)
            .unwrap();
        if got >= n {
            return;
        }
        assert!(t.elapsed() < PROMPT, "the get never started");
        std::thread::yield_now();
    }
}

#[test]
fn a_thread_blocked_in_get_does_not_stop_put_or_qsize_and_the_put_wakes_it() {
    let Some(url) = common::url() else { return };
    let name = common::unique("threads-get");
    let q: Arc<Queue<u32>> = Arc::new(Queue::open(&url, &name).unwrap());
    let (got_tx, got_rx) = mpsc::channel();
    let getter = {
        let q = Arc::clone(&q);
        std::thread::spawn(move || {
            let v = q.get();
            let done = v.is_ok() && q.task_done().is_ok();
            got_tx.send((v, done)).unwrap();
        })
    };
    wait_for_members(&url, &format!("multiproc:queue:{name}:consumers"), 1);
    let q2 = Arc::clone(&q);
    assert_eq!(answers("qsize", move || q2.qsize().unwrap()), 0);
    let q2 = Arc::clone(&q);
    answers("put", move || q2.put(42).unwrap());
    // The consumer needed that put: it must wake (the deadlock of issue #26).
    let (v, done) = got_rx
        .recv_timeout(PROMPT)
        .expect("the put did not wake the get");
    assert_eq!(v.unwrap(), 42);
    assert!(done);
    getter.join().unwrap();
    assert_eq!(q.unfinished(), 0);
}

#[test]
fn two_threads_blocked_in_get_on_one_handle_each_get_one_item() {
    let Some(url) = common::url() else { return };
    let name = common::unique("threads-2get");
    let q: Arc<Queue<u32>> = Arc::new(Queue::open(&url, &name).unwrap());
    let (tx, rx) = mpsc::channel();
    let getters: Vec<_> = (0..2)
        .map(|_| {
            let (q, tx) = (Arc::clone(&q), tx.clone());
            std::thread::spawn(move || {
                let v = q.get().unwrap();
                q.task_done().unwrap();
                tx.send(v).unwrap();
            })
        })
        .collect();
    wait_for_members(&url, &format!("multiproc:queue:{name}:consumers"), 1);
    let q2 = Arc::clone(&q);
    answers("two puts", move || {
        q2.put(1).unwrap();
        q2.put(2).unwrap();
    });
    let mut got = [
        rx.recv_timeout(PROMPT).unwrap(),
        rx.recv_timeout(PROMPT).unwrap(),
    ];
    got.sort();
    assert_eq!(got, [1, 2]);
    for g in getters {
        g.join().unwrap();
    }
}

#[test]
fn a_thread_waiting_in_acquire_does_not_stop_the_holders_calls_and_its_release_wakes_it() {
    let Some(url) = common::url() else { return };
    let name = common::unique("threads-lock");
    let l = Arc::new(Lock::open(&url, &name, Duration::from_secs(30)).unwrap());
    let other = Lock::open(&url, &name, Duration::from_secs(30)).unwrap();
    // Held by another handle: a thread of `l` waits for it.
    assert!(other.acquire_timeout(Duration::ZERO).unwrap());
    let (started_tx, started) = mpsc::channel();
    let (got_tx, got) = mpsc::channel();
    let waiter = {
        let l = Arc::clone(&l);
        std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            got_tx.send(l.acquire()).unwrap();
        })
    };
    started.recv().unwrap();
    let l2 = Arc::clone(&l);
    assert!(!answers("owned", move || l2.owned().unwrap()));
    assert!(other.release().unwrap());
    got.recv_timeout(PROMPT)
        .expect("a release did not wake acquire")
        .unwrap();
    waiter.join().unwrap();
    // Now `l` holds it; a second thread of the same handle waits like on a
    // `threading.Lock`, and the first thread's release wakes it.
    let (got_tx, got) = mpsc::channel();
    let second = {
        let l = Arc::clone(&l);
        std::thread::spawn(move || got_tx.send(l.acquire()).unwrap())
    };
    let l2 = Arc::clone(&l);
    assert!(answers("owned", move || l2.owned().unwrap()));
    let l2 = Arc::clone(&l);
    assert!(answers("release", move || l2.release().unwrap()));
    got.recv_timeout(PROMPT)
        .expect("the release did not wake the second acquire")
        .unwrap();
    second.join().unwrap();
    assert!(l.owned().unwrap());
    assert!(l.release().unwrap());
}

fn triple(x: u64) -> u64 {
    3 * x
}

multiproc::redis::task!(triple);

#[test]
fn a_thread_waiting_in_result_does_not_stop_submit_and_the_worker_completes_both() {
    let Some(url) = common::url() else { return };
    let ns = common::unique("threads-exec");
    let exec = Arc::new(Executor::builder(&url).namespace(&ns).build().unwrap());
    let first = exec.submit(triple, 1).unwrap();
    let (got_tx, got) = mpsc::channel();
    let waiter = std::thread::spawn(move || got_tx.send(first.result()).unwrap());
    let e2 = Arc::clone(&exec);
    let second = answers("submit", move || e2.submit(triple, 2).unwrap());
    let e2 = Arc::clone(&exec);
    assert_eq!(answers("pending", move || e2.pending().unwrap()), 2);
    let worker = {
        let (url, ns) = (url.clone(), ns.clone());
        std::thread::spawn(move || Worker::new(&url).namespace(&ns).run_in_this_process())
    };
    assert_eq!(got.recv_timeout(PROMPT).unwrap().unwrap(), 3);
    assert_eq!(second.result().unwrap(), 6);
    exec.shutdown_workers().unwrap();
    worker.join().unwrap().unwrap();
    waiter.join().unwrap();
}
