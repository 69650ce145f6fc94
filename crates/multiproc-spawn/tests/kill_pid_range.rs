//! `signal::kill` signals one process or answers `Err(Invalid)`: pid 0 (our process group),
//! `u32::MAX` (-1 after a cast: every process we may signal) and every pid above `i32::MAX` (a
//! process group) never reach `kill(2)`.
//!
//! Run only inside a private pid namespace (`unshare -Urpf --mount-proc`): the test re-executes
//! its own binary there, in a session of its own, so a `kill(-1)` or `kill(0)` that got through
//! could only hit that namespace (a process group, unlike `-1`, reaches across pid namespaces).

use multiproc_spawn::signal::{self, Signal};
use multiproc_sync::Error;
use std::process::{Command, Stdio};

/// Set in the re-executed test binary inside the namespace.
const INNER_ENV: &str = "MULTIPROC_TEST_KILL_INNER";
/// What the inner run prints when every check passed.
const INNER_OK: &str = "KILL-PID-RANGE-INNER-OK";

#[test]
fn kill_refuses_pids_that_name_groups() {
    let name = "kill_refuses_pids_that_name_groups";
    let unshare = ["-Urpf", "--mount-proc"];
    if !multiproc_testkit::require_root_and_unshare(name, &unshare) {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(unshare)
        .arg(&exe)
        .args([
            "--exact",
            "helper_kill_inner",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(INNER_OK),
        "inner run failed ({:?})\n{stdout}\n{stderr}",
        out.status
    );
}

/// The checks, inside the namespace (a helper, not a test: it does nothing unless
/// [`INNER_ENV`] is set, which only the test above does).
#[test]
fn helper_kill_inner() {
    if std::env::var_os(INNER_ENV).is_none() {
        return;
    }
    // A session and process group of our own first: a process group spans pid namespaces, so
    // a wrong kill(0) would otherwise reach the test runner outside.
    // SAFETY: setsid takes no arguments; we were forked by unshare, so we lead no group.
    let sid = unsafe { libc::setsid() };
    assert!(sid > 0, "setsid: {}", std::io::Error::last_os_error());
    // A bystander in our process group: a wrong kill(0), kill(-1) or kill(-pgid) would end it.
    let mut bystander = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // SAFETY: getpgrp cannot fail.
    let pgrp = unsafe { libc::getpgrp() } as u32;
    for pid in [
        0,
        u32::MAX,
        i32::MAX as u32 + 1,
        pgrp.wrapping_neg(),
        bystander.id().wrapping_neg(),
    ] {
        match signal::kill(pid, Signal::SIGTERM) {
            Err(Error::Invalid(m)) => assert!(m.contains(&pid.to_string()), "{pid}: {m}"),
            other => panic!("kill({pid}) gave {other:?}, not Err(Invalid)"),
        }
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "kill({pid}) reached the bystander"
        );
    }
    // One process is still fine.
    signal::kill(bystander.id(), Signal::SIGTERM).unwrap();
    let status = bystander.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15)
    );
    println!("{INNER_OK}");
}
