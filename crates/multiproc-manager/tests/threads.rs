//! Manager calls from many threads of one process (issue 26): each thread's call waits only
//! for its own answer, so a slow method on one object holds up no other thread, calls that
//! depend on each other from two threads complete, and the connections of exited threads are
//! reused rather than leaked.
//!
//! Every blocking step runs on a worker thread and the test thread waits for it with a
//! timeout, so that a regression fails the test instead of hanging it.

use multiproc_testkit::{is_running, open_fds};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::Duration;

use multiproc_manager::{Error, Manager, Proxy, Result, Served, decode, encode};

/// Held by every test of this file: run by `cargo test` (threads of one process, not
/// nextest's process per test), the descriptor count must not see another test's connections.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a step may take before the test fails (a hang on the old one-connection client).
const STEP: Duration = Duration::from_secs(20);

/// Latches of the server process, by name: (set, threads that arrived in `wait`).
static LATCHES: Mutex<Option<HashMap<String, (bool, u32)>>> = Mutex::new(None);
static CHANGED: Condvar = Condvar::new();

/// A named latch served by the manager: `wait` blocks (in the server) until some object of
/// the same name gets `set`; `arrived` blocks until a thread is inside `wait`. Two objects of
/// one name are two proxies' worth of independent objects sharing one latch, so that one
/// object's call can depend on another's.
struct Latch(String);

impl Latch {
    fn with<R>(&self, f: impl FnOnce(&mut (bool, u32)) -> R) -> R {
        let mut all = LATCHES.lock().unwrap();
        let r = f(all
            .get_or_insert_with(HashMap::new)
            .entry(self.0.clone())
            .or_default());
        CHANGED.notify_all();
        r
    }

    /// Waits (in the server) until `done` holds for this latch; `Err(Timeout)` after 60 s so
    /// that a failing test frees the server thread.
    fn wait_until(&self, done: impl Fn(&(bool, u32)) -> bool) -> Result<()> {
        let mut all = LATCHES.lock().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let st = all
                .get_or_insert_with(HashMap::new)
                .entry(self.0.clone())
                .or_default();
            if done(st) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            all = CHANGED.wait_timeout(all, left).unwrap().0;
        }
    }
}

impl Served for Latch {
    type Init = String;
    fn create(name: String) -> Result<Self> {
        Ok(Latch(name))
    }
    fn call(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        decode::<()>(args)?;
        match method {
            "wait" => {
                self.with(|st| st.1 += 1);
                self.wait_until(|st| st.0)?;
            }
            "set" => self.with(|st| st.0 = true),
            "arrived" => self.wait_until(|st| st.1 > 0)?,
            _ => return Err(Error::Invalid(format!("no method {method}"))),
        }
        encode(&())
    }
}

fn latch_manager() -> Manager {
    Manager::builder()
        .register::<Latch>("Latch")
        .build()
        .unwrap()
}

fn latch(manager: &Manager, name: &str) -> Proxy<Latch> {
    manager.create::<Latch>("Latch", name.to_owned()).unwrap()
}

/// Runs `f` on a new thread and answers a receiver of its result.
fn on_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

fn within<R>(rx: &mpsc::Receiver<R>, what: &str) -> R {
    rx.recv_timeout(STEP)
        .unwrap_or_else(|_| panic!("{what} did not finish within {STEP:?}: a call is held up"))
}

#[test]
fn a_slow_method_on_one_thread_does_not_delay_a_dict_get_on_another() {
    let _serial = serial();
    let manager = latch_manager();
    let d = manager.dict::<u64, u64>().unwrap();
    d.insert(1, 10).unwrap();
    let (slow, release, probe) = (
        latch(&manager, "slow"),
        latch(&manager, "slow"),
        latch(&manager, "slow"),
    );
    // Thread 1: a call that stays in the server until the latch is set.
    let waiting = on_thread(move || slow.call::<_, ()>("wait", &()));
    // Thread 2: once thread 1's call is inside the server, a dict get of another object.
    let got = on_thread(move || {
        probe.call::<_, ()>("arrived", &()).unwrap();
        d.get(&1)
    });
    assert_eq!(within(&got, "the dict get").unwrap(), Some(10));
    // Only now is the slow call let go.
    within(&on_thread(move || release.call::<_, ()>("set", &())), "set").unwrap();
    within(&waiting, "the slow call").unwrap();
}

#[test]
fn calls_that_depend_on_each_other_from_two_threads_complete() {
    let _serial = serial();
    let manager = latch_manager();
    let (x, y) = (latch(&manager, "xy"), latch(&manager, "xy"));
    let go = Arc::new(Barrier::new(2));
    let g = Arc::clone(&go);
    // X.wait() on one thread can end only after Y.set() on the other.
    let a = on_thread(move || {
        g.wait();
        x.call::<_, ()>("wait", &())
    });
    let b = on_thread(move || {
        go.wait();
        // Set only once X's wait is under way, so that the two calls overlap.
        y.call::<_, ()>("arrived", &())?;
        y.call::<_, ()>("set", &())
    });
    within(&b, "Y.set()").unwrap();
    within(&a, "X.wait()").unwrap();
}

#[test]
fn a_thousand_short_lived_threads_leak_no_descriptors() {
    let _serial = serial();
    let manager = latch_manager();
    let d = manager.dict::<u64, u64>().unwrap();
    d.insert(1, 1).unwrap();
    // A call stays open on its own thread the whole time: the short-lived threads' calls
    // must not wait for it.
    let (slow, release, probe) = (
        latch(&manager, "fds"),
        latch(&manager, "fds"),
        latch(&manager, "fds"),
    );
    let waiting = on_thread(move || slow.call::<_, ()>("wait", &()));
    within(
        &on_thread(move || probe.call::<_, ()>("arrived", &())),
        "arrived",
    )
    .unwrap();
    const BATCH: usize = 4;
    let batch = |d: &multiproc_manager::DictProxy<u64, u64>| {
        let threads: Vec<_> = (0..BATCH)
            .map(|_| {
                let d = d.clone();
                std::thread::spawn(move || d.get(&1).unwrap())
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Some(1));
        }
    };
    let run = |n: usize| {
        let d = d.clone();
        within(
            &on_thread(move || (0..n / BATCH).for_each(|_| batch(&d))),
            "the short-lived threads' calls",
        );
    };
    // The first batch opens the connections that later ones reuse.
    run(BATCH);
    let before = open_fds();
    run(1000);
    let after = open_fds();
    // Connections are bounded by the threads calling at once (a batch), never by the
    // threads that have called: a leak would be at least one descriptor per thread.
    assert!(
        after <= before + 8 * BATCH,
        "descriptors grew from {before} to {after} over 1,000 threads"
    );
    within(&on_thread(move || release.call::<_, ()>("set", &())), "set").unwrap();
    within(&waiting, "the slow call").unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(1));
}

#[test]
fn threads_calling_at_once_get_their_own_answers_and_their_connections_close() {
    let _serial = serial();
    let manager = Manager::new().unwrap();
    const THREADS: u64 = 4;
    let start = Arc::new(Barrier::new(THREADS as usize));
    let dicts: Vec<_> = (0..THREADS)
        .map(|i| {
            let d = manager.dict::<u64, u64>().unwrap();
            d.insert(0, i).unwrap();
            d
        })
        .collect();
    let done: Vec<_> = dicts
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (d, start) = (d.clone(), Arc::clone(&start));
            on_thread(move || {
                start.wait();
                for n in 1..=2000u64 {
                    // Each answer is this thread's own: its object, its value.
                    assert_eq!(
                        d.insert(0, n).unwrap(),
                        Some(if n == 1 { i as u64 } else { n - 1 })
                    );
                }
            })
        })
        .collect();
    for rx in &done {
        within(rx, "a thread's calls");
    }
    assert!(manager.connections().unwrap() <= THREADS as usize + 1);
    // Dropping every proxy and the manager closes the idle connections (the server then ends).
    let pid = manager.pid();
    drop(dicts);
    drop(manager);
    server_ends(pid);
}

/// Waits (bounded) for the server process `pid` to end.
fn server_ends(pid: u32) {
    let gone = on_thread(move || {
        // Gone, or a zombie (the manager's process handle was dropped unjoined).
        while is_running(pid) {
            std::thread::yield_now();
        }
    });
    within(&gone, "the server's exit once every connection closed");
}

#[test]
fn a_manager_dropped_without_shutdown_ends_its_server() {
    let _serial = serial();
    // The server ends when its last connection closes, however fast they all close (it once
    // missed an end it had not seen a connection before).
    for _ in 0..5 {
        let manager = Manager::new().unwrap();
        let pid = manager.pid();
        drop(manager);
        server_ends(pid);
    }
}
