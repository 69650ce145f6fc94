//! Replaced pool workers leave no descriptor behind: with `maxtasksperchild(1)` every task
//! retires its worker, and a task that kills its worker (`kill -9`) gets it replaced too; once
//! the pool has its workers back, the open descriptors (`/proc/self/fd`) are within 2 of what
//! they were with its first workers, and within 2 of the count before the pool once it is
//! gone (joined, or dropped with work in flight). Every start method, one test each (nextest runs each test in a process of its own).

mod common;
use common::METHODS;
use multiproc_testkit::{eventually, is_gone, kill_me, open_fds};

use multiproc::pool::Pool;
use multiproc::{Error, StartMethod};
use std::time::Duration;

fn inc(x: u64) -> u64 {
    x + 1
}

/// `x + 1`, and which worker computed it.
fn inc_where(x: u64) -> (u64, u32) {
    (x + 1, std::process::id())
}

/// Whether every one of `pids` is gone (reaped, by us or by the fork server).
fn all_gone(pids: &[u32]) -> bool {
    pids.iter().all(|&p| is_gone(p))
}

fn replaced_workers_leak_nothing(m: StartMethod) {
    // Warm up: the fork server's connection is opened once and kept.
    multiproc::Process::builder()
        .start_method(m)
        .spawn(inc, 0)
        .unwrap()
        .join()
        .unwrap();
    let without_pool = open_fds();
    let p = Pool::builder()
        .processes(2)
        .maxtasksperchild(1)
        .start_method(m)
        .build()
        .unwrap();
    let with_pool = open_fds();
    let first = p.pids();
    let mut retired = first.clone();

    // 200 tasks, each the last of its worker's: 200 different workers run them.
    let ran = p.map_chunked(inc_where, 0..200, 1).unwrap();
    let values: Vec<u64> = ran.iter().map(|&(v, _)| v).collect();
    assert_eq!(values, (1..=200).collect::<Vec<u64>>(), "{m:?}");
    let ran_in: std::collections::HashSet<u32> = ran.iter().map(|&(_, pid)| pid).collect();
    assert_eq!(ran_in.len(), 200, "{m:?}: a worker ran more than one task");
    retired.extend(ran_in);
    // Some tasks that kill their worker.
    for _ in 0..10 {
        retired.extend(p.pids());
        match p.apply(kill_me, ()) {
            Err(Error::WorkerDied { exitcode }) => assert_eq!(exitcode, -9, "{m:?}"),
            other => panic!("{m:?}: {other:?}"),
        }
    }
    assert_eq!(p.apply(inc, 1).unwrap(), 2);
    retired.extend(p.pids());
    let busy = open_fds();
    // Settled: two fresh workers again, none of the old ones left.
    let settled = eventually(Duration::from_secs(30), || {
        let now = p.pids();
        now.len() == 2
            && now.iter().all(|x| !first.contains(x))
            && open_fds() <= with_pool + 2
            && all_gone(
                &retired
                    .iter()
                    .copied()
                    .filter(|x| !now.contains(x))
                    .collect::<Vec<_>>(),
            )
    });
    let after = open_fds();
    eprintln!(
        "{m:?}: {without_pool} descriptors without the pool, {with_pool} with its first \
         workers, {busy} right after 211 worker replacements, {after} once settled"
    );
    assert!(
        settled,
        "{m:?}: {after} descriptors open after the workers were replaced, {with_pool} with the \
         first ones"
    );
    p.close();
    p.join().unwrap();
    drop(p);
    let gone = eventually(Duration::from_secs(30), || open_fds() <= without_pool + 2);
    assert!(
        gone,
        "{m:?}: {} descriptors open after the pool was joined, {without_pool} before it",
        open_fds()
    );
    // Pools dropped (so terminated) with work in flight: their workers go, and so do their
    // descriptors, in the background.
    let mut workers = Vec::new();
    for _ in 0..10 {
        let p = Pool::builder()
            .processes(2)
            .start_method(m)
            .build()
            .unwrap();
        workers.extend(p.pids());
        let _pending = p.map_async(inc, 0..1000).unwrap();
        drop(p);
    }
    let gone = eventually(Duration::from_secs(30), || {
        all_gone(&workers) && open_fds() <= without_pool + 2
    });
    assert!(
        gone,
        "{m:?}: {} descriptors open after 10 pools were dropped, {without_pool} before them",
        open_fds()
    );
}

#[test]
fn replaced_workers_leak_nothing_under_fork() {
    replaced_workers_leak_nothing(StartMethod::Fork);
}

#[test]
fn replaced_workers_leak_nothing_under_spawn() {
    replaced_workers_leak_nothing(StartMethod::Spawn);
}

#[test]
fn replaced_workers_leak_nothing_under_forkserver() {
    replaced_workers_leak_nothing(StartMethod::ForkServer);
}

/// All start methods in turn in one process.
#[test]
fn replaced_workers_leak_nothing_under_every_method_in_turn() {
    for m in METHODS {
        replaced_workers_leak_nothing(m);
    }
}
