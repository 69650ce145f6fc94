//! Dispatch is work-conserving: no task waits at one worker while another worker is idle, even
//! after a history of short tasks made the pool queue work at each worker in advance.
//!
//! Every test holds one task inside a worker behind a gate (a socket the task reads one byte
//! from) and asserts that the tasks submitted after it all finish while it is still held: the
//! assertions are about order of completion, never about time. The deadlines only turn a
//! failure into a prompt `assert!` instead of a hang.

mod common;
use common::{METHODS, pool};

use multiproc::futures::{ProcessPoolExecutor, ReturnWhen, wait};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for what must happen before it calls it a failure.
const PATIENCE: Duration = Duration::from_secs(20);
/// What a held task returns, so it cannot be mistaken for a quick one.
const HELD: u64 = 7_777;

/// A task that is held until the test opens the gate at `path` (empty: a quick task).
fn task((x, path): (u64, String)) -> u64 {
    if path.is_empty() {
        return x + 1;
    }
    let mut s = UnixStream::connect(&path).expect("the gate listens");
    let mut b = [0u8; 1];
    let _ = s.read(&mut b);
    HELD
}

/// The test's end of the gate: held tasks connect and wait for one byte.
struct Gate {
    listener: UnixListener,
    path: PathBuf,
}

impl Gate {
    fn new() -> Gate {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "multiproc-gate-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        Gate { listener, path }
    }

    fn held(&self) -> (u64, String) {
        (0, self.path.to_str().unwrap().to_owned())
    }

    /// Lets `n` held tasks go (waiting for them to connect first).
    fn open(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        let mut let_go = 0;
        while let_go < n {
            match self.listener.accept() {
                Ok((mut s, _)) => {
                    s.write_all(&[1]).unwrap();
                    let_go += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "a held task never reached its gate"
                    );
                    std::thread::yield_now();
                }
                Err(e) => panic!("gate: {e}"),
            }
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // Lets go whatever still waits, so a failed test does not leave workers held.
        while let Ok((mut s, _)) = self.listener.accept() {
            let _ = s.write_all(&[1]);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn quick(x: u64) -> (u64, String) {
    (x, String::new())
}

// The scenario, after CPython's behaviour: ProcessPoolExecutor(max_workers=2), a map
// of 100 short tasks, then one long and two short submits; wait(FIRST_COMPLETED) returns a
// short one, and both short ones finish while the long one still runs.
#[test]
fn executor_short_tasks_pass_a_long_one_under_every_method() {
    for m in METHODS {
        let ex = ProcessPoolExecutor::builder()
            .max_workers(2)
            .start_method(m)
            .build()
            .unwrap();
        let warm: Vec<u64> = ex
            .map(task, (0..100).map(quick))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(warm, (1..=100).collect::<Vec<_>>());
        let gate = Gate::new();
        let fs = vec![
            ex.submit(task, gate.held()).unwrap(),
            ex.submit(task, quick(10)).unwrap(),
            ex.submit(task, quick(20)).unwrap(),
        ];
        let (done, _) = wait(&fs, Some(PATIENCE), ReturnWhen::FirstCompleted);
        assert!(
            !done.is_empty(),
            "{m:?}: nothing finished while one task was held"
        );
        assert!(
            !done.contains(&0),
            "{m:?}: the held task cannot have finished"
        );
        let (done, not_done) = wait(&fs[1..], Some(PATIENCE), ReturnWhen::AllCompleted);
        assert_eq!(
            (done.len(), not_done.len()),
            (2, 0),
            "{m:?}: a short task waited behind the held one while a worker idled"
        );
        assert!(!fs[0].done(), "{m:?}");
        gate.open(1);
        let mut fs = fs.into_iter();
        assert_eq!(fs.next().unwrap().result().unwrap(), HELD);
        assert_eq!(fs.next().unwrap().result().unwrap(), 11);
        assert_eq!(fs.next().unwrap().result().unwrap(), 21);
    }
}

#[test]
fn apply_async_short_tasks_pass_a_long_one_under_every_method() {
    for m in METHODS {
        let p = pool(m, 2);
        assert_eq!(p.map(task, (0..100).map(quick)).unwrap().len(), 100);
        let gate = Gate::new();
        let held = p.apply_async(task, gate.held()).unwrap();
        let mut quick_ones: Vec<_> = (0..5)
            .map(|i| p.apply_async(task, quick(i)).unwrap())
            .collect();
        for (i, r) in quick_ones.iter_mut().enumerate() {
            assert_eq!(
                r.get_timeout(PATIENCE).unwrap(),
                i as u64 + 1,
                "{m:?}: short task {i} waited behind the held one while a worker idled"
            );
        }
        assert!(!held.ready(), "{m:?}");
        gate.open(1);
        assert_eq!(held.get().unwrap(), HELD);
    }
}

#[test]
fn imap_unordered_short_tasks_pass_a_long_one_under_every_method() {
    for m in METHODS {
        let p = pool(m, 2);
        assert_eq!(p.map(task, (0..100).map(quick)).unwrap().len(), 100);
        let gate = Gate::new();
        let items: Vec<_> = std::iter::once(gate.held())
            .chain((0..6).map(quick))
            .collect();
        let mut it = p.imap_unordered(task, items).unwrap();
        let mut got: Vec<u64> = (0..6)
            .map(|_| {
                it.next_timeout(PATIENCE)
                    .expect("more results")
                    .unwrap_or_else(|e| panic!("{m:?}: a short task waited: {e}"))
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3, 4, 5, 6], "{m:?}");
        gate.open(1);
        assert_eq!(it.next().unwrap().unwrap(), HELD);
        assert!(it.next().is_none());
    }
}

// Taking tasks back must neither lose nor repeat one: many tasks of mixed lengths, all
// accounted for exactly once.
#[test]
fn tasks_taken_back_run_exactly_once() {
    fn mixed(x: u64) -> u64 {
        if x.is_multiple_of(97) {
            // A few slower tasks make the workers' queues uneven, so idle ones take back.
            let mut acc = x;
            for i in 0..2_000_000u64 {
                acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(i));
            }
            std::hint::black_box(acc);
        }
        x
    }
    for m in METHODS {
        let p = pool(m, 3);
        let mut got: Vec<u64> = p
            .imap_unordered(mixed, 0..5_000u64)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        got.sort_unstable();
        assert_eq!(got, (0..5_000).collect::<Vec<_>>(), "{m:?}");
    }
}
