//! A manager under a limited address space (`ulimit -v 4 GiB`, RLIMIT_AS): each of its queues
//! and pipes reserved 64 GiB of address space, so `Manager::new` failed with a bare `ENOMEM`
//! where Python's manager works.
//!
//! The test re-runs this test binary under `sh -c 'ulimit -v …; exec …'` with the `#[ignore]`d
//! child test selected, so the limit applies to a fresh process.

use std::process::Command;

use multiproc_manager::Manager;

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

#[test]
fn a_manager_works_under_a_4_gib_address_space_limit() {
    run_child_under(FOUR_GIB, "child_manager_under_rlimit_as");
}

#[test]
#[ignore = "run by a_manager_works_under_a_4_gib_address_space_limit under `ulimit -v`"]
fn child_manager_under_rlimit_as() {
    let manager = Manager::new().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    d.insert("answer".to_string(), 42).unwrap();
    assert_eq!(d.items().unwrap(), [("answer".to_string(), 42)]);
}
