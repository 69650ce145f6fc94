//! Frictions met porting Python `concurrent.futures` code: `as_completed` raising
//! `TimeoutError`, futures as dict keys, `as_completed` over any iterable.

use multiproc::Error;
use multiproc::futures::{ReturnWhen, ThreadPoolExecutor, as_completed, wait};
use multiproc::threading::Event;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

// `for f in as_completed(fs, timeout=0.1)` raises TimeoutError when futures are still pending.
#[test]
fn as_completed_yields_one_timeout_error_then_ends() {
    let pool = ThreadPoolExecutor::new(2);
    let gate = Arc::new(Event::new());
    let g = gate.clone();
    let quick = pool.submit(|| true).unwrap();
    // Done before the iteration starts.
    wait(
        std::slice::from_ref(&quick),
        Some(LONG),
        ReturnWhen::AllCompleted,
    );
    let slow = pool.submit(move || g.wait_timeout(LONG)).unwrap();
    let started = Instant::now();
    let mut it = as_completed(
        vec![quick.clone(), slow.clone()],
        Some(Duration::from_millis(100)),
    );
    assert_eq!(it.next().unwrap().unwrap(), quick);
    match it.next() {
        Some(Err(Error::Timeout)) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(it.next().is_none());
    assert!(it.next().is_none(), "the timeout is reported once");
    assert_eq!(it.into_pending(), std::slice::from_ref(&slow));
    gate.set();
    assert!(slow.result().unwrap());
}

#[test]
fn as_completed_without_pending_futures_never_times_out() {
    let pool = ThreadPoolExecutor::new(2);
    let fs: Vec<_> = (0..5).map(|i| pool.submit(move || i).unwrap()).collect();
    let got: Vec<_> = as_completed(fs, Some(LONG)).collect();
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(Result::is_ok));
    // An empty set of futures ends at once, even with a zero timeout.
    let none: Vec<multiproc::futures::Future<u8>> = Vec::new();
    assert!(as_completed(none, Some(Duration::ZERO)).next().is_none());
}

// `future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}`
// (clippy's `mutable_key_type` cannot see that a future hashes its identity, which never changes.)
#[test]
#[allow(clippy::mutable_key_type)]
fn futures_are_hash_map_keys_by_identity() {
    let pool = ThreadPoolExecutor::new(3);
    let urls = [
        "http://a.example/",
        "http://bb.example/",
        "http://ccc.example/",
    ];
    let future_to_url: HashMap<_, _> = urls
        .iter()
        .map(|&url| (pool.submit(move || url.len()).unwrap(), url))
        .collect();
    assert_eq!(
        future_to_url.len(),
        3,
        "different futures are different keys"
    );
    let mut seen = HashSet::new();
    for f in as_completed(future_to_url.keys().cloned(), Some(LONG)) {
        let f = f.unwrap();
        let url = future_to_url[&f];
        assert_eq!(f.result().unwrap(), url.len());
        seen.insert(url);
    }
    assert_eq!(seen.len(), 3);
}

#[test]
#[allow(clippy::mutable_key_type)]
fn clones_are_equal_and_hash_alike_and_share_one_result() {
    let pool = ThreadPoolExecutor::new(1);
    let a = pool.submit(|| 7).unwrap();
    let b = pool.submit(|| 7).unwrap();
    let a2 = a.clone();
    assert_eq!(a, a2);
    assert_ne!(a, b);
    let set: HashSet<_> = [a.clone(), a2.clone(), b.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(a.result().unwrap(), 7);
    assert!(a2.done());
    assert!(
        matches!(a2.result(), Err(Error::Invalid(_))),
        "the result is taken once"
    );
    assert_eq!(b.result().unwrap(), 7);
}

#[test]
fn as_completed_takes_any_iterable_and_yields_a_future_once() {
    let pool = ThreadPoolExecutor::new(2);
    let f = pool.submit(|| 1).unwrap();
    let g = pool.submit(|| 2).unwrap();
    // An array, with a duplicate (Python's `as_completed` works on `set(fs)`).
    let got: Vec<_> = as_completed([f.clone(), g.clone(), f.clone()], Some(LONG))
        .map(Result::unwrap)
        .collect();
    assert_eq!(got.len(), 2);
    // A chained iterator.
    let sum: i32 = as_completed(std::iter::once(f).chain([g]), Some(LONG))
        .map(|f| f.unwrap().result().unwrap())
        .sum();
    assert_eq!(sum, 3);
}
