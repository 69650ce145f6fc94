//! `info` tells a worker's running task from the tasks it prefetched behind it: a worker that
//! took four tasks in one round trip and runs the first (held until the test lets it go) shows
//! that one running and the other three prefetched, in the struct, `--json` and the lines for
//! people. (A file of its own: the test hook that keeps prefetched tasks held is process-wide.)

mod common;

use multiproc::redis::{Executor, Worker};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A counter with a condition variable: the worker runs in this test process (on a thread),
/// so its tasks and the test meet here.
struct Gate {
    entered: Mutex<u32>,
    open: Mutex<bool>,
    changed: Condvar,
}

static GATE: Gate = Gate {
    entered: Mutex::new(0),
    open: Mutex::new(false),
    changed: Condvar::new(),
};

/// Says it started, then waits until the test opens the gate (at most 60 s).
fn gated(x: u64) -> u64 {
    *GATE.entered.lock().unwrap() += 1;
    GATE.changed.notify_all();
    let open = GATE.open.lock().unwrap();
    let _ = GATE
        .changed
        .wait_timeout_while(open, Duration::from_secs(60), |o| !*o)
        .unwrap();
    x
}

fn quick(x: u64) -> u64 {
    x + 1
}

multiproc::redis::task!(gated, quick);

#[test]
fn info_tells_the_running_task_from_the_prefetched_ones() {
    let Some(url) = common::url() else { return };
    // The watchdog would give the prefetched tasks back after 50 ms (they would show as
    // waiting): kept, so that the test sees them without racing it.
    multiproc_redis::__keep_prefetched(true);
    let ns = common::unique("prefetched");
    let worker = {
        let (url, ns) = (url.clone(), ns.clone());
        std::thread::spawn(move || {
            Worker::new(&url)
                .namespace(&ns)
                .prefetch(8)
                .run_in_this_process()
        })
    };
    let pool = Executor::builder(&url).namespace(&ns).build().unwrap();
    // Short tasks first: the worker takes a batch only once its tasks have looked short.
    let want: Vec<u64> = (1..=64).collect();
    assert_eq!(pool.map(quick, 0..64).unwrap(), want);

    // Four tasks in one LPUSH: the worker takes them in one round trip and runs the first.
    let mapped = {
        let (url, ns) = (url.clone(), ns.clone());
        std::thread::spawn(move || {
            let pool = Executor::builder(&url).namespace(&ns).build().unwrap();
            pool.map(gated, [10, 11, 12, 13])
        })
    };
    {
        let entered = GATE.entered.lock().unwrap();
        let (entered, _) = GATE
            .changed
            .wait_timeout_while(entered, Duration::from_secs(30), |n| *n == 0)
            .unwrap();
        assert_eq!(*entered, 1, "the first task did not start");
    }
    let info = pool.info().unwrap();
    assert_eq!(info.workers.len(), 1, "{info:#?}");
    let w = &info.workers[0];
    assert_eq!((w.running, w.prefetched), (1, 3), "{info:#?}");
    assert_eq!(
        (info.running.len(), info.prefetched.len()),
        (1, 3),
        "{info:#?}"
    );
    assert_eq!(info.waiting, 0, "{info:#?}");
    let running = &info.running[0];
    assert!(
        running.task.ends_with("gated") && running.worker == w.id,
        "{running:?}"
    );
    for t in &info.prefetched {
        assert!(t.task.ends_with("gated") && t.worker == w.id, "{t:?}");
        assert_ne!(t.id, running.id);
    }
    let json = info.to_json();
    assert!(json.contains(",\"running\":1,\"prefetched\":3}"), "{json}");
    assert!(
        json.contains(&format!(
            "\"running\":[{{\"id\":\"{}\",\"task\":",
            running.id
        )),
        "{json}"
    );
    assert!(
        json.contains(&format!(
            "\"prefetched\":[{{\"id\":\"{}\",",
            info.prefetched[0].id
        )),
        "{json}"
    );
    let human = info.to_string();
    for part in [
        format!("namespace {ns}: 0 waiting, 1 running, 3 prefetched, "),
        "running 1  prefetched 3".to_string(),
        "prefetched (taken, not started):".to_string(),
        format!("{}  ", info.prefetched[2].id),
    ] {
        assert!(human.contains(&part), "{part:?} not in:\n{human}");
    }

    // Let them all run: the worker holds nothing afterwards.
    *GATE.open.lock().unwrap() = true;
    GATE.changed.notify_all();
    assert_eq!(mapped.join().unwrap().unwrap(), [10, 11, 12, 13]);
    let after = pool.info().unwrap();
    assert!(
        after.running.is_empty() && after.prefetched.is_empty(),
        "{after:#?}"
    );
    multiproc_redis::__keep_prefetched(false);
    pool.shutdown_workers().unwrap();
    worker.join().unwrap().unwrap();
}
