//! Fault tolerance: a worker killed with `kill -9` (or aborting) fails only the task it held
//! and is replaced; a panicking task fails alone; terminate with 10,000 tasks queued returns
//! and fails them all; dropping a busy pool leaves no process and no zombie. Every start method.

mod common;
use common::{METHODS, pool};
use multiproc_testkit::{is_gone, kill_me};

use multiproc::futures::ProcessPoolExecutor;
use multiproc::{Error, StartMethod};
use std::time::Duration;

fn inc(x: u64) -> u64 {
    x + 1
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn abort_me(_: ()) -> u64 {
    std::process::abort()
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

#[test]
fn a_killed_worker_fails_only_its_task_and_is_replaced() {
    for m in METHODS {
        let p = pool(m, 2);
        let before = p.pids();
        let others: Vec<_> = (0..50).map(|i| p.apply_async(inc, i).unwrap()).collect();
        let submitted = std::time::Instant::now();
        let victim = p.apply_async(kill_me, ()).unwrap();
        let more = p.map_async(inc, 0..1000).unwrap();
        let got = victim.get();
        // An upper bound on the detection delay (it includes running `kill`).
        eprintln!("{m:?}: WorkerDied after {:?}", submitted.elapsed());
        match got {
            Err(Error::WorkerDied { exitcode }) => assert_eq!(exitcode, -9, "{m:?}"),
            other => panic!("{m:?}: {other:?}"),
        }
        for (i, r) in others.into_iter().enumerate() {
            assert_eq!(r.get().unwrap(), i as u64 + 1);
        }
        assert_eq!(more.get().unwrap().len(), 1000);
        // The pool is whole again: two live workers, one of them new.
        assert_eq!(p.apply(inc, 1).unwrap(), 2);
        let after = p.pids();
        assert_eq!(after.len(), 2, "{m:?}");
        assert_ne!(before, after, "{m:?}");
        let dead: Vec<_> = before.iter().filter(|x| !after.contains(x)).collect();
        assert_eq!(dead.len(), 1);
        assert!(is_gone(*dead[0]));
    }
}

#[test]
fn an_aborting_worker_reports_its_signal() {
    let p = pool(StartMethod::ForkServer, 1);
    match p.apply(abort_me, ()) {
        Err(Error::WorkerDied { exitcode }) => assert_eq!(exitcode, -6),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.apply(inc, 41).unwrap(), 42);
}

fn exit_zero(_: ()) -> u64 {
    std::process::exit(0)
}

#[test]
fn a_task_that_exits_fails_alone_even_with_code_zero() {
    let p = pool(StartMethod::ForkServer, 1);
    match p.apply(exit_zero, ()) {
        Err(Error::WorkerDied { exitcode }) => assert_eq!(exitcode, 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.apply(inc, 41).unwrap(), 42);
}

#[test]
fn the_executor_survives_a_killed_worker() {
    for m in METHODS {
        let ex = ProcessPoolExecutor::builder()
            .max_workers(2)
            .start_method(m)
            .build()
            .unwrap();
        let f = ex.submit(kill_me, ()).unwrap();
        let g: Vec<_> = (0..20).map(|i| ex.submit(inc, i).unwrap()).collect();
        assert!(matches!(
            f.result(),
            Err(Error::WorkerDied { exitcode: -9 })
        ));
        for (i, f) in g.into_iter().enumerate() {
            assert_eq!(f.result().unwrap(), i as u64 + 1);
        }
        assert_eq!(ex.submit(inc, 1).unwrap().result().unwrap(), 2);
    }
}

#[test]
fn a_panicking_task_fails_alone_and_the_worker_lives() {
    fn boom(x: u32) -> u32 {
        panic!("boom {x}")
    }
    for m in METHODS {
        let p = pool(m, 1);
        let before = p.pids();
        match p.apply(boom, 3) {
            Err(Error::TaskFailed { message }) => assert_eq!(message, "boom 3"),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.apply(inc, 1).unwrap(), 2);
        assert_eq!(p.pids(), before);
    }
}

#[test]
fn terminate_with_10000_tasks_queued_fails_them_all() {
    for m in METHODS {
        let p = pool(m, 2);
        let pids = p.pids();
        let rs: Vec<_> = (0..10_000)
            .map(|_| p.apply_async(nap, 60_000).unwrap())
            .collect();
        let started = std::time::Instant::now();
        p.terminate();
        eprintln!("{m:?}: terminate took {:?}", started.elapsed());
        for r in rs {
            assert!(matches!(r.get(), Err(Error::Cancelled)));
        }
        assert!(pids.iter().all(|&x| is_gone(x)), "{m:?}");
        assert!(matches!(p.apply_async(inc, 1), Err(Error::PoolClosed)));
    }
}

#[test]
fn dropping_a_busy_pool_leaves_no_process_and_no_zombie() {
    for m in METHODS {
        let p = pool(m, 3);
        let pids = p.pids();
        let rs: Vec<_> = (0..10)
            .map(|_| p.apply_async(nap, 60_000).unwrap())
            .collect();
        let imap = p.map_async(inc, 0..100_000).unwrap();
        drop(p);
        // No /proc entry: not running, and not a zombie either.
        assert!(pids.iter().all(|&x| is_gone(x)), "{m:?}: {pids:?}");
        for r in rs {
            assert!(r.get().is_err());
        }
        let _ = imap.get();
    }
}

#[test]
fn dropping_a_busy_executor_waits_for_its_work() {
    let ex = ProcessPoolExecutor::new(2).unwrap();
    let pids = ex.pids();
    let fs: Vec<_> = (0..10).map(|i| ex.submit(nap, i).unwrap()).collect();
    drop(ex);
    assert!(fs.iter().all(|f| f.done()));
    assert!(pids.iter().all(|&x| is_gone(x)));
    assert_eq!(pid(()), std::process::id());
}
