//! `ThreadPoolExecutor`, `Future`, `wait` and `as_completed`: Python's behaviours (ported from
//! CPython's `test_concurrent_futures` where noted).

use multiproc::Error;
use multiproc::futures::{ReturnWhen, ThreadPoolExecutor, as_completed, wait};
use multiproc::threading::Event;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

// test_shutdown: ExecutorShutdownTest.test_run_after_shutdown
#[test]
fn submit_after_shutdown_is_pool_closed() {
    let pool = ThreadPoolExecutor::new(2);
    assert_eq!(pool.submit(|| 1).unwrap().result().unwrap(), 1);
    pool.shutdown(true, false);
    assert!(matches!(pool.submit(|| 2), Err(Error::PoolClosed)));
    assert!(matches!(pool.map(|x: u8| x, [1]), Err(Error::PoolClosed)));
}

// ThreadPoolShutdownTest.test_cancel_futures
#[test]
fn shutdown_cancel_futures_cancels_the_queued_ones() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Arc::new(Event::new());
    let started = Arc::new(Event::new());
    let (g, s) = (gate.clone(), started.clone());
    let first = pool.submit(move || {
        s.set();
        g.wait();
        "first"
    });
    let first = first.unwrap();
    started.wait();
    let queued: Vec<_> = (0..5).map(|i| pool.submit(move || i).unwrap()).collect();
    pool.shutdown(false, true);
    for f in &queued {
        assert!(f.cancelled() && f.done() && !f.running());
    }
    assert!(first.running());
    gate.set();
    assert_eq!(first.result().unwrap(), "first");
    for f in queued {
        assert!(matches!(f.result(), Err(Error::Cancelled)));
    }
}

#[test]
fn shutdown_wait_runs_everything_queued() {
    let pool = ThreadPoolExecutor::new(2);
    let count = Arc::new(AtomicUsize::new(0));
    let fs: Vec<_> = (0..100)
        .map(|_| {
            let c = count.clone();
            pool.submit(move || c.fetch_add(1, Ordering::SeqCst))
                .unwrap()
        })
        .collect();
    pool.shutdown(true, false);
    assert_eq!(count.load(Ordering::SeqCst), 100);
    assert!(fs.iter().all(|f| f.done()));
}

// WaitTests.test_first_completed
#[test]
fn wait_first_completed_gives_the_exact_done_set() {
    let pool = ThreadPoolExecutor::new(3);
    let gate = Arc::new(Event::new());
    let quick = pool.submit(|| 1).unwrap();
    while !quick.done() {
        std::thread::yield_now();
    }
    let g1 = gate.clone();
    let g2 = gate.clone();
    let fs = vec![
        pool.submit(move || {
            g1.wait();
            2
        })
        .unwrap(),
        quick,
        pool.submit(move || {
            g2.wait();
            3
        })
        .unwrap(),
    ];
    let (done, not_done) = wait(&fs, Some(LONG), ReturnWhen::FirstCompleted);
    assert_eq!((done, not_done), (vec![1], vec![0, 2]));
    gate.set();
}

#[test]
fn wait_first_completed_wakes_when_one_finishes_later() {
    let pool = ThreadPoolExecutor::new(2);
    let gate = Arc::new(Event::new());
    let never = Arc::new(Event::new());
    let (g, n) = (gate.clone(), never.clone());
    let fs = vec![
        pool.submit(move || g.wait()).unwrap(),
        pool.submit(move || n.wait()).unwrap(),
    ];
    let t = std::thread::spawn(move || {
        // Not a synchronisation: the result is the same either way; the pause makes `wait`
        // likely to be asleep already, so its wake-up path is the one exercised.
        std::thread::sleep(Duration::from_millis(20));
        gate.set();
    });
    let (done, not_done) = wait(&fs, Some(LONG), ReturnWhen::FirstCompleted);
    assert_eq!((done, not_done), (vec![0], vec![1]));
    never.set();
    t.join().unwrap();
}

// WaitTests.test_first_exception
#[test]
fn wait_first_exception_gives_the_exact_done_set() {
    let pool = ThreadPoolExecutor::new(3);
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let ok = pool.submit(|| 1).unwrap();
    ok_wait(&ok);
    let fs = vec![
        ok,
        pool.submit(|| -> i32 { panic!("bad") }).unwrap(),
        pool.submit(move || {
            g.wait();
            3
        })
        .unwrap(),
    ];
    let (done, not_done) = wait(&fs, Some(LONG), ReturnWhen::FirstException);
    assert_eq!((done, not_done), (vec![0, 1], vec![2]));
    gate.set();
}

fn ok_wait<R>(f: &multiproc::futures::Future<R>) {
    let (done, _) = wait(
        std::slice::from_ref(f),
        Some(LONG),
        ReturnWhen::AllCompleted,
    );
    assert_eq!(done, [0]);
}

// WaitTests.test_first_exception_one_already_failed / no exception: all completed
#[test]
fn wait_first_exception_without_errors_waits_for_all() {
    let pool = ThreadPoolExecutor::new(2);
    let fs: Vec<_> = (0..6).map(|i| pool.submit(move || i).unwrap()).collect();
    let (done, not_done) = wait(&fs, Some(LONG), ReturnWhen::FirstException);
    assert_eq!((done, not_done), ((0..6).collect(), vec![]));
}

// WaitTests.test_all_completed and test_timeout
#[test]
fn wait_all_completed_and_timeout() {
    let pool = ThreadPoolExecutor::new(2);
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let fs = vec![
        pool.submit(|| 1).unwrap(),
        pool.submit(move || {
            g.wait();
            2
        })
        .unwrap(),
    ];
    let start = Instant::now();
    let (done, not_done) = wait(
        &fs,
        Some(Duration::from_millis(50)),
        ReturnWhen::AllCompleted,
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!((done, not_done), (vec![0], vec![1]));
    gate.set();
    let (done, not_done) = wait(&fs, None, ReturnWhen::AllCompleted);
    assert_eq!((done, not_done), (vec![0, 1], vec![]));
}

// AsCompletedTests.test_no_timeout / test_duplicate_futures
#[test]
fn as_completed_yields_each_once() {
    let pool = ThreadPoolExecutor::new(4);
    let fs: Vec<_> = (0..200).map(|i| pool.submit(move || i).unwrap()).collect();
    let mut seen: Vec<usize> = as_completed(fs, Some(LONG))
        .map(|f| f.unwrap().result().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
}

// AsCompletedTests.test_zero_timeout
#[test]
fn as_completed_stops_at_the_timeout_and_gives_back_the_rest() {
    let pool = ThreadPoolExecutor::new(2);
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let fs = vec![
        pool.submit(|| 1).unwrap(),
        pool.submit(move || {
            g.wait();
            2
        })
        .unwrap(),
    ];
    let mut it = as_completed(fs, Some(Duration::from_millis(50)));
    assert_eq!(it.next().unwrap().unwrap().result().unwrap(), 1);
    assert!(matches!(it.next(), Some(Err(multiproc::Error::Timeout))));
    assert!(it.next().is_none());
    let rest = it.into_pending();
    assert_eq!(rest.len(), 1);
    gate.set();
    assert_eq!(rest.into_iter().next().unwrap().result().unwrap(), 2);
}

#[test]
fn a_panicking_task_fails_alone_with_its_text() {
    let pool = ThreadPoolExecutor::new(1);
    let bad = pool
        .submit(|| -> u8 { panic!("task {} exploded", 7) })
        .unwrap();
    let good = pool.submit(|| 8u8).unwrap();
    match bad.result() {
        Err(Error::TaskFailed { message }) => assert_eq!(message, "task 7 exploded"),
        other => panic!("{other:?}"),
    }
    assert_eq!(good.result().unwrap(), 8);
}

#[test]
fn result_timeout_then_result() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let mut f = pool
        .submit(move || {
            g.wait();
            5
        })
        .unwrap();
    assert!(matches!(
        f.result_timeout(Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    gate.set();
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
    assert!(matches!(f.result_timeout(LONG), Err(Error::Invalid(_))));
}

#[test]
fn map_keeps_order_and_is_exact_size() {
    let pool = ThreadPoolExecutor::new(3);
    let it = pool.map(|x: u64| x * x, 0..100u64).unwrap();
    assert_eq!(it.len(), 100);
    let out: Vec<u64> = it.map(Result::unwrap).collect();
    assert_eq!(out, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn never_more_than_max_workers_threads() {
    let pool = ThreadPoolExecutor::new(3);
    let names: Vec<String> = pool
        .map(
            |_: u32| {
                std::thread::sleep(Duration::from_millis(1));
                multiproc::threading::current_thread().name
            },
            0..60,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut distinct = names.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() <= 3, "{distinct:?}");
    assert!(distinct[0].starts_with("ThreadPoolExecutor-"));
}

#[test]
fn done_callbacks_run_once_also_when_added_late() {
    let pool = ThreadPoolExecutor::new(1);
    let hits = Arc::new(AtomicUsize::new(0));
    let f = pool.submit(|| 1).unwrap();
    let h = hits.clone();
    f.add_done_callback(move |f| {
        assert!(f.done());
        h.fetch_add(1, Ordering::SeqCst);
    });
    ok_wait(&f);
    // The callback runs right after the result is published; wait for it without sleeping.
    while hits.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let h = hits.clone();
    f.add_done_callback(move |_| {
        h.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

struct Unpark(std::thread::Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn a_future_can_be_awaited() {
    let pool = ThreadPoolExecutor::new(2);
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let slow = pool
        .submit(move || {
            g.wait();
            40
        })
        .unwrap();
    let quick = pool.submit(|| 2).unwrap();
    let opener = std::thread::spawn(move || {
        // Not a synchronisation: lets the await register its waker first (the path tested).
        std::thread::sleep(Duration::from_millis(10));
        gate.set();
    });
    let total = block_on(async { slow.await.unwrap() + quick.await.unwrap() });
    assert_eq!(total, 42);
    opener.join().unwrap();
}

#[test]
fn dropping_the_executor_waits_for_its_work() {
    let count = Arc::new(AtomicUsize::new(0));
    {
        let pool = ThreadPoolExecutor::new(2);
        for _ in 0..50 {
            let c = count.clone();
            drop(
                pool.submit(move || c.fetch_add(1, Ordering::SeqCst))
                    .unwrap(),
            );
        }
    }
    assert_eq!(count.load(Ordering::SeqCst), 50);
}
