//! Whose children the fork server's are, and what happens when its spare child or the server
//! itself is killed: a non-daemon child is born the program's own (`CLONE_PARENT`), a daemon
//! stays the server's, a start after `kill -9` of both still runs the target, leaving no
//! zombie, `raise` in a child born by the raw `clone3` hits that child, and threads starting
//! children at once each get their own.

mod common;

use common::exits_within;
use multiproc_spawn::{Process, StartMethod, active_children};
use multiproc_testkit::is_zombie_child;
use std::time::Duration;

fn parent_pid(_: ()) -> u32 {
    std::os::unix::process::parent_id()
}

fn start(daemon: bool) -> u32 {
    Process::builder()
        .start_method(StartMethod::ForkServer)
        .daemon(daemon)
        .spawn(parent_pid, ())
        .unwrap()
        .join()
        .unwrap()
}

/// The pids of this process's children, from every thread's `children` list.
fn our_children() -> Vec<u32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path().join("children");
        if let Ok(list) = std::fs::read_to_string(path) {
            pids.extend(list.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
        }
    }
    pids
}

#[test]
fn a_non_daemon_child_is_ours_and_a_daemon_the_servers() {
    let me = std::process::id();
    // Twice: the first start forks on request, the second gets the spare made after it.
    assert_eq!(start(false), me);
    assert_eq!(start(false), me);
    let daemons_parent = start(true);
    assert_ne!(daemons_parent, me, "a daemon's parent is the fork server");
    assert!(
        our_children().contains(&daemons_parent),
        "the fork server {daemons_parent} is our child"
    );
}

#[test]
fn a_start_after_the_spare_and_the_server_were_killed_still_runs() {
    let me = std::process::id();
    assert_eq!(start(false), me);
    // A daemon's start first reads the server's answer about the spare asked for after the
    // start above, so the spare exists by now.
    let server = start(true);
    // Nothing runs for us now, so every child of ours is the fork server or its spare.
    assert!(active_children().is_empty());
    let hidden = our_children();
    assert_eq!(hidden.len(), 2, "the server and one spare: {hidden:?}");
    assert!(hidden.contains(&server), "{hidden:?}");
    for &pid in &hidden {
        // SAFETY: signalling a child of this process that no handle refers to.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        assert!(exits_within(pid, Duration::from_secs(10)), "{pid} lives on");
    }
    for round in 0..3 {
        assert_eq!(start(false), me, "start {round} after the kills");
    }
    let zombies: Vec<u32> = hidden.into_iter().filter(|&p| is_zombie_child(p)).collect();
    assert!(zombies.is_empty(), "killed, never reaped: {zombies:?}");
}

#[test]
fn a_start_after_the_server_alone_was_killed_still_runs() {
    let me = std::process::id();
    // A daemon's parent is the server; the non-daemon start after it leaves a spare behind.
    let server = start(true);
    assert_eq!(start(false), me);
    // SAFETY: signalling the fork server, a child of this process that no handle refers to.
    assert_eq!(unsafe { libc::kill(server as i32, libc::SIGKILL) }, 0);
    assert!(exits_within(server, Duration::from_secs(10)));
    for round in 0..3 {
        assert_eq!(start(false), me, "start {round} after the kill");
    }
    assert_ne!(start(true), server, "a new server starts daemons");
    assert!(
        !is_zombie_child(server),
        "the killed server was never reaped"
    );
}

fn raise_sigterm(_: ()) {
    // SAFETY: raising a signal in this process; its default action ends it.
    unsafe { libc::raise(libc::SIGTERM) };
}

/// glibc's `raise` targets the calling thread by its kernel id: in a child born by the raw
/// `clone3` (which skips glibc's fork bookkeeping) it must still hit the child itself.
#[test]
fn raise_in_a_child_born_ours_ends_that_child() {
    for _ in 0..2 {
        let mut p = Process::builder()
            .start_method(StartMethod::ForkServer)
            .spawn(raise_sigterm, ())
            .unwrap();
        assert!(p.wait_timeout(Duration::from_secs(30)));
        assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
    }
}

fn tagged(x: u64) -> (u64, u32) {
    (x * 3, std::os::unix::process::parent_id())
}

/// Threads starting daemons and non-daemons at once each get their own child's answer: spares
/// are handed out and asked for under the server lock, and answers come back in request order.
#[test]
fn threads_starting_at_once_get_their_own_answers() {
    let me = std::process::id();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..150u64 {
                    let x = t * 1_000 + i;
                    let daemon = i % 5 == 0;
                    let (y, parent) = Process::builder()
                        .start_method(StartMethod::ForkServer)
                        .daemon(daemon)
                        .spawn(tagged, x)
                        .unwrap()
                        .join()
                        .unwrap();
                    assert_eq!(y, x * 3);
                    assert_eq!(parent == me, !daemon, "start {x}: parent {parent}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
