//! The life of a child under every start method: signals and exit codes, liveness, names,
//! parents, nesting, daemons, start-up failures, and no leaks over 1,000 spawns.
//! (Ports of CPython's `_test_multiprocessing` process tests where they apply.)

mod common;

use common::{METHODS, Reporter, exits_within, hear, park_forever};
use multiproc_spawn::{Process, StartMethod, active_children, current_process, parent_process};
use multiproc_sync::Error;
use multiproc_testkit::is_zombie_child;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::{Duration, Instant};

fn park(r: Reporter) -> () {
    r.say(std::process::id());
    park_forever()
}

/// CPython `test_terminate` / `test_kill`: -15 after terminate, -9 after kill; is_alive,
/// active_children and wait_timeout before and after.
#[test]
fn terminate_and_kill_give_minus_the_signal() {
    for m in METHODS {
        for (signal, terminate) in [(15, true), (9, false)] {
            let (mut rx, tx) = Reporter::pair();
            let mut p = Process::builder().start_method(m).spawn(park, tx).unwrap();
            assert_eq!(hear(&mut rx), Some(p.pid()), "{m:?}: the child started");
            assert!(p.is_alive(), "{m:?}");
            assert!(active_children().iter().any(|c| c.pid == p.pid()), "{m:?}");
            assert!(
                !p.wait_timeout(Duration::from_millis(20)),
                "{m:?}: still running"
            );
            assert_eq!(p.exitcode(), None);
            if terminate {
                p.terminate().unwrap()
            } else {
                p.kill().unwrap()
            }
            assert!(
                p.wait_timeout(Duration::from_secs(30)),
                "{m:?}: ended after the signal"
            );
            assert!(!p.is_alive());
            assert_eq!(p.exitcode(), Some(-signal), "{m:?}");
            assert!(!active_children().iter().any(|c| c.pid == p.pid()), "{m:?}");
            match p.join() {
                Err(Error::ProcessFailed { exitcode, message }) => {
                    assert_eq!(exitcode, -signal);
                    assert!(
                        message.contains(if terminate { "SIGTERM" } else { "SIGKILL" }),
                        "{message}"
                    );
                }
                other => panic!("{m:?}: {other:?}"),
            }
        }
    }
}

fn who_am_i(_: ()) -> (String, u32, Option<u32>, Option<String>) {
    let me = current_process();
    let parent = parent_process();
    (
        me.name,
        me.pid,
        parent.as_ref().map(|p| p.pid),
        parent.map(|p| p.name),
    )
}

/// CPython `test_current` / `test_parent_process`: names default to `Process-N`; the child
/// sees its parent's pid and name.
#[test]
fn names_and_parents() {
    for m in METHODS {
        let p = Process::builder()
            .start_method(m)
            .spawn(who_am_i, ())
            .unwrap();
        let (name, pid) = (p.name().to_owned(), p.pid());
        assert!(
            name.strip_prefix("Process-")
                .is_some_and(|n| n.parse::<u32>().is_ok()),
            "{name}"
        );
        let (child_name, child_pid, parent_pid, parent_name) = p.join().unwrap();
        assert_eq!(
            (child_name.as_str(), child_pid),
            (name.as_str(), pid),
            "{m:?}"
        );
        assert_eq!(parent_pid, Some(std::process::id()), "{m:?}");
        assert_eq!(parent_name.as_deref(), Some("MainProcess"));
        let named = Process::builder()
            .start_method(m)
            .name("mrsoft")
            .spawn(who_am_i, ())
            .unwrap();
        assert_eq!(named.join().unwrap().0, "mrsoft");
    }
    assert_eq!(current_process().name, "MainProcess");
    assert!(parent_process().is_none());
}

fn spawn_grandchild(m: StartMethod) -> (u64, String, u32) {
    let g = Process::builder()
        .start_method(m)
        .spawn(|x: u64| x + 1, 41)
        .unwrap();
    let name = g.name().to_owned();
    let value = g.join().unwrap();
    (value, name, std::process::id())
}

/// A child started from a child works, under every method (the inner one uses the same method),
/// and is named after its parent (`Process-N:1`).
#[test]
fn a_child_can_start_a_child() {
    for m in METHODS {
        let p = Process::builder()
            .start_method(m)
            .spawn(spawn_grandchild, m)
            .unwrap();
        let (outer_name, outer_pid) = (p.name().to_owned(), p.pid());
        let (value, inner_name, reported_pid) = p.join().unwrap();
        assert_eq!(value, 42, "{m:?}");
        assert_eq!(reported_pid, outer_pid);
        assert_eq!(inner_name, format!("{outer_name}:1"));
    }
}

fn start_daemon_then_park((m, r): (StartMethod, Reporter)) {
    let d = Process::builder()
        .start_method(m)
        .daemon(true)
        .spawn(|_: ()| -> () { park_forever() }, ())
        .unwrap();
    r.say(d.pid());
    park_forever()
}

/// A daemon child dies within 1 s of its parent's `kill -9` (no orphans).
#[test]
fn a_daemon_dies_with_its_killed_parent() {
    for m in METHODS {
        let (mut rx, tx) = Reporter::pair();
        let parent = Process::builder()
            .start_method(m)
            .spawn(start_daemon_then_park, (m, tx))
            .unwrap();
        let daemon_pid = hear(&mut rx).expect("the parent reported its daemon");
        assert!(
            !exits_within(daemon_pid, Duration::ZERO),
            "{m:?}: the daemon runs"
        );
        parent.kill().unwrap();
        assert!(
            exits_within(daemon_pid, Duration::from_secs(1)),
            "{m:?}: the daemon outlived its parent"
        );
        assert!(matches!(
            parent.join(),
            Err(Error::ProcessFailed { exitcode: -9, .. })
        ));
    }
}

/// Arguments whose `Deserialize` fails (or aborts the process).
#[derive(Debug)]
struct Poison {
    abort: bool,
}

impl Serialize for Poison {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.abort.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Poison {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if bool::deserialize(d)? {
            std::process::abort();
        }
        Err(serde::de::Error::custom("this value refuses to be decoded"))
    }
}

/// A child whose args cannot be decoded, or that aborts during start-up, is an error within 1 s
/// (Spawn and ForkServer decode args; Fork moves them without decoding).
#[test]
fn start_up_failures_are_errors_not_hangs() {
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        let mut p = Process::builder()
            .start_method(m)
            .spawn(|_: Poison| 0u8, Poison { abort: false })
            .unwrap();
        assert!(p.wait_timeout(Duration::from_secs(1)), "{m:?}");
        match p.join() {
            Err(Error::ProcessFailed {
                exitcode: 1,
                message,
            }) => {
                assert!(
                    message.contains("could not decode the arguments"),
                    "{message}"
                );
            }
            other => panic!("{m:?}: {other:?}"),
        }
        let mut p = Process::builder()
            .start_method(m)
            .spawn(|_: Poison| 0u8, Poison { abort: true })
            .unwrap();
        assert!(p.wait_timeout(Duration::from_secs(1)), "{m:?}");
        match p.join() {
            Err(Error::ProcessFailed {
                exitcode: -6,
                message,
            }) => assert!(message.contains("SIGABRT"), "{message}"),
            other => panic!("{m:?}: {other:?}"),
        }
    }
}

#[test]
fn spawn_closure_outside_fork_errs_clearly() {
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        match Process::builder().start_method(m).spawn_closure(|| 1u8) {
            Err(Error::Invalid(msg)) => assert!(msg.contains("Fork start method"), "{msg}"),
            other => panic!("{m:?}: {other:?}"),
        }
    }
    let captured = String::from("captured");
    let p = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn_closure(move || captured.len())
        .unwrap();
    assert_eq!(p.join().unwrap(), 8);
}

/// 1,000 sequential spawn+join leave no zombie and no extra open descriptor.
#[test]
fn a_thousand_spawns_leak_nothing() {
    for m in METHODS {
        // Warm up: the fork server's connection is opened once and kept.
        Process::builder()
            .start_method(m)
            .spawn(|x: u32| x, 0)
            .unwrap()
            .join()
            .unwrap();
        let fds_before = multiproc_spawn::open_fd_count();
        let rounds = if m == StartMethod::Spawn { 300 } else { 1000 };
        let mut pids = Vec::with_capacity(rounds);
        let start = Instant::now();
        for i in 0..rounds as u32 {
            let p = Process::builder()
                .start_method(m)
                .spawn(|x: u32| x + 1, i)
                .unwrap();
            pids.push(p.pid());
            assert_eq!(p.join().unwrap(), i + 1);
        }
        eprintln!("{m:?}: {rounds} spawn+join in {:?}", start.elapsed());
        assert_eq!(
            multiproc_spawn::open_fd_count(),
            fds_before,
            "{m:?}: descriptors leaked"
        );
        let zombies: Vec<u32> = pids.into_iter().filter(|&p| is_zombie_child(p)).collect();
        assert!(zombies.is_empty(), "{m:?}: zombies {zombies:?}");
    }
}

/// A dropped handle of a running child does not leave a zombie once the child ends.
#[test]
fn a_dropped_handle_leaves_no_zombie() {
    for m in [StartMethod::Fork, StartMethod::Spawn] {
        let (mut rx, tx) = Reporter::pair();
        let p = Process::builder().start_method(m).spawn(park, tx).unwrap();
        let pid = hear(&mut rx).unwrap();
        drop(p);
        // SAFETY: signalling a child this test started and that is still alive (parked).
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        assert!(exits_within(pid, Duration::from_secs(10)));
        // The reaper thread reaps it: wait until it is no zombie any more (or the deadline).
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_zombie_child(pid) && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!is_zombie_child(pid), "{m:?}: zombie left");
    }
}

fn reverse(s: String) -> String {
    let mut bytes = s.into_bytes();
    bytes.reverse();
    String::from_utf8(bytes).expect("ASCII stays valid reversed")
}

/// Args and results of 64 MiB travel under every method (a `String`, which serde moves in one
/// piece; a `Vec<u8>` goes byte by byte, which only a debug build makes slow).
#[test]
fn sixty_four_mib_args_and_results() {
    let data: String = (0..64usize << 20)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let expected = reverse(data.clone());
    for m in METHODS {
        let p = Process::builder()
            .start_method(m)
            .spawn(reverse, data.clone())
            .unwrap();
        assert!(p.join().unwrap() == expected, "{m:?}");
    }
}
