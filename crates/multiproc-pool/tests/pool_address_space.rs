//! A pool under a limited address space (`ulimit -v 4 GiB`, RLIMIT_AS): each of its queues
//! reserved 64 GiB of address space, so `Pool::new(2)` failed with a bare `ENOMEM` (even under
//! ~140 GB) where Python's pool works.
//!
//! The test re-runs this test binary under `sh -c 'ulimit -v …; exec …'` with the `#[ignore]`d
//! child test selected, so the limit applies to a fresh process.

use std::process::Command;

use multiproc::pool::Pool;

/// Runs the ignored test `child` of this binary in a fresh process under the shell limits
/// `ulimits` (e.g. `ulimit -v 4194304`) and asserts that it passed.
fn run_child_under(ulimits: &str, child: &str) {
    let exe = std::env::current_exe().unwrap();
    let script = format!("{ulimits} && exec \"$0\" \"$@\"");
    let out = Command::new("sh")
        .args(["-c", &script])
        .arg(exe)
        .args([
            child,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{child} under `{ulimits}`: {:?}\n{text}",
        out.status
    );
}

/// 4 GiB of address space, in KiB for `ulimit -v`.
const FOUR_GIB: &str = "ulimit -v 4194304";

fn sqr(x: i64) -> i64 {
    x * x
}

#[test]
fn a_pool_works_under_a_4_gib_address_space_limit() {
    run_child_under(FOUR_GIB, "child_pool_under_rlimit_as");
}

#[test]
#[ignore = "run by a_pool_works_under_a_4_gib_address_space_limit under `ulimit -v`"]
fn child_pool_under_rlimit_as() {
    let p = Pool::new(2).unwrap();
    assert_eq!(
        p.map(sqr, 0..100).unwrap(),
        (0..100).map(|x| x * x).collect::<Vec<_>>()
    );
}
