//! A dropped, un-joined `Process` leaves neither a zombie nor a descriptor once its child has
//! ended: 100 spawns per start method, every even one joined, every odd one dropped un-joined
//! (half of those at once, half while they certainly run: they wait on a gate), then the gate
//! opens and, once those children are gone, the open descriptors (`/proc/self/fd`) are back
//! within 2 of what they were, and the one reaper thread that watched them is gone. One test per start
//! method, so that under nextest (one process per test) the counts are this method's alone.

mod common;
use common::{Gate, METHODS, exits_within};
use multiproc_testkit::{eventually, is_zombie};

use multiproc_spawn::{Process, StartMethod, active_children, open_fd_count};
use std::time::Duration;

const SPAWNS: u32 = 100;

fn quick(x: u32) -> u32 {
    x
}

/// Runs until the test opens the gate.
fn held(gate: Gate) -> bool {
    gate.wait()
}

/// How many threads this process has.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn dropped_handles_leak_nothing(m: StartMethod) {
    // Warm up: the fork server's connection (two descriptors) is opened once and kept.
    let warm = Process::builder().start_method(m).spawn(quick, 0).unwrap();
    assert_eq!(warm.join().unwrap(), 0);
    let (mut opener, gate) = Gate::pair();
    let before = open_fd_count();
    let threads_before = threads();
    let mut dropped = Vec::new();
    let mut held_back = 0;
    for i in 0..SPAWNS {
        if i % 2 == 0 {
            let p = Process::builder().start_method(m).spawn(quick, i).unwrap();
            assert_eq!(p.join().unwrap(), i, "{m:?}");
        } else if i % 4 == 1 {
            // Dropped at once: it may or may not have ended by then.
            let p = Process::builder().start_method(m).spawn(quick, i).unwrap();
            dropped.push(p.pid());
            drop(p);
        } else {
            // Dropped while it certainly runs.
            let gate = Gate(gate.0.try_clone().unwrap());
            let p = Process::builder()
                .start_method(m)
                .spawn(held, gate)
                .unwrap();
            dropped.push(p.pid());
            held_back += 1;
            drop(p);
        }
    }
    let during = open_fd_count();
    let threads_during = threads();
    // Let them go before anything can fail: a Fork child holds a copy of the gate's write end,
    // so a gated child would otherwise wait for ever (and the test's exit with it).
    opener.open(held_back);
    // One reaper thread watches them all, however many there are.
    assert!(
        threads_during <= threads_before + 1,
        "{m:?}: {threads_during} threads with {held_back} dropped handles running, \
         {threads_before} before"
    );
    for &pid in &dropped {
        assert!(
            exits_within(pid, Duration::from_secs(60)),
            "{m:?}: child {pid} did not end after the gate opened"
        );
    }
    let settled = eventually(Duration::from_secs(20), || {
        open_fd_count() <= before + 2
            && threads() <= threads_before
            && dropped.iter().all(|&pid| !is_zombie(pid))
    });
    let after = open_fd_count();
    eprintln!(
        "{m:?}: {before} descriptors before, {during} once {} handles were dropped ({held_back} \
         of them certainly running), {after} after their children ended",
        dropped.len()
    );
    let zombies: Vec<u32> = dropped.iter().copied().filter(|&p| is_zombie(p)).collect();
    assert!(zombies.is_empty(), "{m:?}: zombies left: {zombies:?}");
    assert!(
        settled,
        "{m:?}: {after} descriptors open after the dropped children ended, {before} before"
    );
    let live: Vec<u32> = active_children().iter().map(|c| c.pid).collect();
    assert!(
        live.iter().all(|p| !dropped.contains(p)),
        "{m:?}: ended children still listed as active: {live:?}"
    );
}

#[test]
fn dropped_handles_leak_nothing_under_fork() {
    dropped_handles_leak_nothing(StartMethod::Fork);
}

#[test]
fn dropped_handles_leak_nothing_under_spawn() {
    dropped_handles_leak_nothing(StartMethod::Spawn);
}

#[test]
fn dropped_handles_leak_nothing_under_forkserver() {
    dropped_handles_leak_nothing(StartMethod::ForkServer);
}

/// All three start methods in one process, one after another: the bound holds across them.
#[test]
fn dropped_handles_leak_nothing_under_every_method_in_turn() {
    for m in METHODS {
        dropped_handles_leak_nothing(m);
    }
}

/// A Fork child made while this process's reaper watches running orphans has no reaper (and no
/// orphans) of its parent's: its own dropped children are reaped by a reaper of its own.
#[test]
fn a_forked_child_reaps_its_own_orphans() {
    let (mut opener, gate) = Gate::pair();
    let mut parents_orphans = Vec::new();
    for _ in 0..5 {
        let gate = Gate(gate.0.try_clone().unwrap());
        let p = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn(held, gate)
            .unwrap();
        parents_orphans.push(p.pid());
    }
    let outcomes: Vec<_> = METHODS
        .into_iter()
        .map(|m| {
            let child = Process::builder()
                .start_method(StartMethod::Fork)
                .spawn_closure(move || dropped_handles_leak_nothing(m))
                .unwrap();
            (m, child.join())
        })
        .collect();
    // Before anything can fail (a gated child would wait for ever).
    opener.open(parents_orphans.len());
    for (m, outcome) in outcomes {
        outcome.unwrap_or_else(|e| panic!("{m:?} in a forked child: {e}"));
    }
    for &pid in &parents_orphans {
        assert!(exits_within(pid, Duration::from_secs(60)));
    }
    assert!(
        eventually(Duration::from_secs(20), || parents_orphans
            .iter()
            .all(|&p| !is_zombie(p))),
        "the parent's orphans were not reaped"
    );
}
