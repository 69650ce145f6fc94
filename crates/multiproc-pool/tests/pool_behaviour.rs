//! `Pool` and `ProcessPoolExecutor`: Python's behaviours under every start method (ported from
//! CPython's `_test_multiprocessing.TestPool` and `test_concurrent_futures` where noted).

mod common;
use common::{METHODS, pool};

use multiproc::futures::{ProcessPoolExecutor, ReturnWhen, as_completed, wait};
use multiproc::pool::Pool;
use multiproc::{Error, StartMethod};
use std::time::{Duration, Instant};

fn sqr(x: i64) -> i64 {
    x * x
}

fn pid(_: u32) -> u32 {
    std::process::id()
}

fn fail_on_5(x: u32) -> u32 {
    if x == 5 {
        panic!("item {x} is bad");
    }
    x
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

// TestPool.test_apply, test_map, test_starmap
#[test]
fn apply_map_starmap_under_every_method() {
    fn pow((b, e): (i64, u32)) -> i64 {
        b.pow(e)
    }
    for m in METHODS {
        let p = pool(m, 2);
        assert_eq!(p.apply(sqr, 5).unwrap(), 25);
        assert_eq!(
            p.map(sqr, 0..10).unwrap(),
            (0..10).map(|x| x * x).collect::<Vec<_>>()
        );
        assert_eq!(p.starmap(pow, [(2, 10), (3, 3)]).unwrap(), [1024, 27]);
        assert_ne!(p.apply(pid, 0).unwrap(), std::process::id());
    }
}

// TestPool.test_empty_iterable
#[test]
fn map_of_an_empty_input_is_empty() {
    let p = pool(StartMethod::ForkServer, 2);
    assert!(p.map(sqr, Vec::new()).unwrap().is_empty());
    assert!(p.map_chunked(sqr, Vec::new(), 3).unwrap().is_empty());
    assert_eq!(p.imap(sqr, Vec::new()).unwrap().count(), 0);
    assert_eq!(p.imap_unordered(sqr, Vec::new()).unwrap().count(), 0);
}

// TestPool.test_map_chunksize
#[test]
fn results_do_not_depend_on_chunksize() {
    let p = pool(StartMethod::Fork, 3);
    let want: Vec<i64> = (0..257).map(|x| x * x).collect();
    for cs in [1, 2, 7, 64, 1000] {
        assert_eq!(
            p.map_chunked(sqr, 0..257, cs).unwrap(),
            want,
            "chunksize {cs}"
        );
        let got: Vec<i64> = p
            .imap_chunked(sqr, 0..257, cs)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, want, "imap chunksize {cs}");
        let mut un: Vec<i64> = p
            .imap_unordered_chunked(sqr, 0..257, cs)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        un.sort();
        assert_eq!(un, want, "imap_unordered chunksize {cs}");
    }
}

#[test]
fn never_more_than_max_workers() {
    for m in METHODS {
        let p = pool(m, 2);
        let mut pids = p.map_chunked(pid, 0..200, 1).unwrap();
        pids.sort();
        pids.dedup();
        assert!(pids.len() <= 2, "{pids:?}");
        let mut all = p.pids();
        all.sort();
        assert!(pids.iter().all(|p| all.contains(p)));
    }
}

// TestPool.test_maxtasksperchild (one worker: the pid changes after every 3 tasks)
#[test]
fn maxtasksperchild_replaces_the_worker_after_k_tasks() {
    for m in METHODS {
        let p = Pool::builder()
            .processes(1)
            .maxtasksperchild(3)
            .start_method(m)
            .build()
            .unwrap();
        let pids: Vec<u32> = (0..9).map(|i| p.apply(pid, i).unwrap()).collect();
        for group in pids.chunks(3) {
            assert!(group.iter().all(|&x| x == group[0]), "{pids:?}");
        }
        assert_ne!(pids[0], pids[3]);
        assert_ne!(pids[3], pids[6]);
    }
}

// TestPool.test_async_timeout
#[test]
fn apply_async_get_timeout_errs_after_the_timeout() {
    let p = pool(StartMethod::ForkServer, 1);
    let mut r = p.apply_async(nap, 2_000).unwrap();
    let start = Instant::now();
    assert!(matches!(
        r.get_timeout(Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert!(!r.ready());
    assert!(!r.wait_timeout(Duration::from_millis(1)));
}

// TestPool.test_map_unplicklable / test_traceback: the first failing task is reported
#[test]
fn map_reports_the_failing_task() {
    for m in METHODS {
        let p = pool(m, 2);
        match p.map_chunked(fail_on_5, 0..20, 1) {
            Err(Error::TaskFailed { message }) => assert_eq!(message, "item 5 is bad"),
            other => panic!("{other:?}"),
        }
        // imap reports it at its place and goes on.
        let out: Vec<_> = p.imap(fail_on_5, 0..8).unwrap().collect();
        assert!(matches!(&out[5], Err(Error::TaskFailed { .. })));
        assert_eq!(out[7].as_ref().unwrap(), &7);
        // The pool goes on.
        assert_eq!(p.apply(sqr, 3).unwrap(), 9);
    }
}

// TestPool.test_close / test_join: close then join finishes queued work
#[test]
fn close_then_join_finishes_queued_work() {
    for m in METHODS {
        let p = pool(m, 2);
        let rs: Vec<_> = (0..20).map(|i| p.apply_async(sqr, i).unwrap()).collect();
        let mapped = p.map_async(sqr, 0..50).unwrap();
        assert!(matches!(p.join(), Err(Error::Invalid(_))));
        p.close();
        assert!(matches!(p.apply_async(sqr, 1), Err(Error::PoolClosed)));
        p.join().unwrap();
        for (i, r) in rs.into_iter().enumerate() {
            assert!(r.ready());
            assert_eq!(r.get().unwrap(), (i * i) as i64);
        }
        assert_eq!(mapped.get().unwrap().len(), 50);
        assert!(p.pids().is_empty());
    }
}

#[test]
fn initializer_runs_in_every_worker() {
    fn init(tag: String) {
        // SAFETY-free: worker processes are single-purpose; the variable is read by `read`.
        unsafe_free_set(tag);
    }
    fn unsafe_free_set(tag: String) {
        TAG.set(tag).unwrap();
    }
    fn read(_: ()) -> String {
        TAG.get().cloned().unwrap_or_default()
    }
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    for m in METHODS {
        let p = Pool::builder()
            .processes(2)
            .initializer(init, "ready".to_string())
            .start_method(m)
            .build()
            .unwrap();
        let out = p.map_chunked(read, vec![(); 10], 1).unwrap();
        assert!(out.iter().all(|t| t == "ready"), "{out:?}");
    }
}

#[test]
fn imap_is_lazy_and_exact_size() {
    let p = pool(StartMethod::Fork, 2);
    let pulled = std::cell::Cell::new(0usize);
    let input = (0..10_000i64).inspect(|_| pulled.set(pulled.get() + 1));
    let mut it = p.imap(sqr, input).unwrap();
    assert_eq!(pulled.get(), 0);
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert!(pulled.get() < 10_000, "read {} items ahead", pulled.get());
    drop(it);
    let it = p
        .imap_unordered(sqr, (0..1000i64).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(it.len(), 1000);
    let mut n = 0;
    let mut it = it;
    while let Some(r) = it.next() {
        r.unwrap();
        n += 1;
        assert_eq!(it.len(), 1000 - n);
    }
}

// ProcessPoolExecutor: submit after shutdown, cancel_futures, wait and as_completed.
#[test]
fn executor_submit_after_shutdown_is_pool_closed() {
    for m in METHODS {
        let ex = ProcessPoolExecutor::builder()
            .max_workers(2)
            .start_method(m)
            .build()
            .unwrap();
        assert_eq!(ex.submit(sqr, 4).unwrap().result().unwrap(), 16);
        ex.shutdown(true, false);
        assert!(matches!(ex.submit(sqr, 4), Err(Error::PoolClosed)));
    }
}

#[test]
fn executor_shutdown_cancel_futures_cancels_queued_ones() {
    let ex = ProcessPoolExecutor::new(1).unwrap();
    let first = ex.submit(nap, 300).unwrap();
    while !first.running() {
        std::thread::yield_now();
    }
    let queued: Vec<_> = (0..5).map(|i| ex.submit(sqr, i).unwrap()).collect();
    ex.shutdown(true, true);
    assert_eq!(first.result().unwrap(), 300);
    for f in queued {
        assert!(f.cancelled());
        assert!(matches!(f.result(), Err(Error::Cancelled)));
    }
}

#[test]
fn executor_wait_and_as_completed() {
    let ex = ProcessPoolExecutor::new(2).unwrap();
    let quick = ex.submit(nap, 0).unwrap();
    let (done, _) = wait(
        std::slice::from_ref(&quick),
        Some(Duration::from_secs(60)),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(done, [0]);
    let fs = vec![quick, ex.submit(nap, 5_000).unwrap()];
    let (done, not_done) = wait(
        &fs,
        Some(Duration::from_secs(60)),
        ReturnWhen::FirstCompleted,
    );
    assert_eq!((done, not_done), (vec![0], vec![1]));
    let fs: Vec<_> = (0..30).map(|i| ex.submit(sqr, i).unwrap()).collect();
    let mut got: Vec<i64> = as_completed(fs, None)
        .map(|f| f.unwrap().result().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..30).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn executor_map_with_chunksize_and_max_tasks_per_child() {
    for m in METHODS {
        let ex = ProcessPoolExecutor::builder()
            .max_workers(2)
            .max_tasks_per_child(5)
            .start_method(m)
            .build()
            .unwrap();
        for cs in [1, 4, 50] {
            let out: Vec<i64> = ex
                .map_chunked(sqr, 0..40, cs)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(out, (0..40).map(|x| x * x).collect::<Vec<_>>());
        }
    }
}

// Handles in initializer arguments reach every worker (Python's initargs=(queue,)).
#[test]
fn a_queue_reaches_the_workers_through_the_initializer() {
    static Q: std::sync::OnceLock<multiproc::Queue<u32>> = std::sync::OnceLock::new();
    fn init(q: multiproc::Queue<u32>) {
        let _ = Q.set(q);
    }
    fn report(x: u32) {
        Q.get().unwrap().put(x * 10).unwrap();
    }
    for m in METHODS {
        let q = multiproc::Queue::new().unwrap();
        let p = Pool::builder()
            .processes(2)
            .initializer(init, q.clone())
            .start_method(m)
            .build()
            .unwrap();
        p.map_chunked(report, 0..6, 1).unwrap();
        let mut got: Vec<u32> = (0..6).map(|_| q.get().unwrap()).collect();
        got.sort();
        assert_eq!(got, [0, 10, 20, 30, 40, 50], "{m:?}");
    }
}
