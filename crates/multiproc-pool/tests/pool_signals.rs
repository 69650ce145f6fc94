//! Pools and signals, under every start method: a pool's parent ended by SIGTERM or SIGINT
//! leaves no worker behind, and workers ignore SIGINT (Python's default) unless told not to.

mod common;
use common::METHODS;
use multiproc_testkit::is_running;

use multiproc::futures::ProcessPoolExecutor;
use multiproc::pool::Pool;
use multiproc::signal::Signal;
use multiproc::{Error, Process, Queue, StartMethod};
use std::time::{Duration, Instant};

fn pid(_: u32) -> u32 {
    std::process::id()
}

/// Waits (bounded) until none of `pids` exists; the ones left when the deadline passes.
fn survivors(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| is_running(p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::yield_now();
    }
}

/// A pool's parent: starts a pool, reports its workers' pids, then waits to be signalled.
fn pool_parent((method, pids): (StartMethod, Queue<Vec<u32>>)) {
    let pool = Pool::builder()
        .processes(2)
        .start_method(method)
        .build()
        .unwrap();
    let _ = pool.map(pid, 0..8).unwrap();
    pids.put(pool.pids()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_pool_parent_ended_by_sigterm_or_sigint_leaves_no_worker() {
    for m in METHODS {
        for (sig, code) in [(Signal::SIGTERM, -15), (Signal::SIGINT, -2)] {
            let pids = Queue::new().unwrap();
            let parent = Process::builder()
                .start_method(m)
                .spawn(pool_parent, (m, pids.clone()))
                .unwrap();
            let workers = pids.get_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(workers.len(), 2, "{m:?}");
            parent.send_signal(sig).unwrap();
            match parent.join() {
                Err(Error::ProcessFailed { exitcode, .. }) => assert_eq!(exitcode, code),
                other => panic!("{m:?} {sig}: {other:?}"),
            }
            assert_eq!(
                survivors(&workers),
                Vec::<u32>::new(),
                "{m:?} {sig}: workers outlived their parent"
            );
        }
    }
}

#[test]
fn workers_ignore_sigint_by_default_and_keep_it_when_asked() {
    for m in METHODS {
        let pool = Pool::builder()
            .processes(1)
            .start_method(m)
            .build()
            .unwrap();
        let worker = pool.apply(pid, 0).unwrap();
        multiproc::signal::kill(worker, Signal::SIGINT).unwrap();
        // Still the same worker afterwards: the signal was ignored, nobody replaced it.
        assert_eq!(pool.apply(pid, 0).unwrap(), worker, "{m:?}");
        assert!(is_running(worker));

        let ex = ProcessPoolExecutor::builder()
            .max_workers(1)
            .start_method(m)
            .workers_ignore_sigint(false)
            .build()
            .unwrap();
        let worker = ex.submit(pid, 0).unwrap().result().unwrap();
        multiproc::signal::kill(worker, Signal::SIGINT).unwrap();
        assert_eq!(survivors(&[worker]), Vec::<u32>::new(), "{m:?}");
        // The executor replaced it and goes on.
        assert_ne!(ex.submit(pid, 0).unwrap().result().unwrap(), worker);
    }
}
