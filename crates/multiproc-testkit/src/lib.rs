//! Test support shared by the workspace's crates (a path-only dev-dependency, never published).
//!
//! A test that cannot run here (not root, no `unshare`, no server) must not pass silently:
//! [`skip`] reports it by name, appends it to the file named by `MULTIPROC_SKIP_LOG` (where
//! `cargo xtask test` counts and lists the skipped tests), and panics under `CI`, where
//! everything a test needs is provided and a skip is a defect.
//!
//! ```
//! if !multiproc_testkit::is_root() {
//!     multiproc_testkit::skip("doc_example", "needs root");
//!     return;
//! }
//! ```

use std::io::Write;
use std::process::Command;

/// The variable naming the file that collects skipped tests, one line each.
pub const SKIP_LOG_ENV: &str = "MULTIPROC_SKIP_LOG";

/// Reports `test` as skipped because of `reason`; panics under `CI` (the variable set to
/// anything but `false` or `0`).
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
        // One `write` of one line on an O_APPEND file: lines from parallel tests never mix.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
    if under_ci() {
        panic!("{line} (under CI every test must run)");
    }
}

/// Reports the running test (named by its thread, as libtest and nextest name it) as skipped
/// because of `reason`; see [`skip`].
pub fn skip_this(reason: &str) {
    let thread = std::thread::current();
    skip(thread.name().unwrap_or("<unnamed test>"), reason);
}

/// Whether the run is a CI run (`CI` set, and not to `false` or `0`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `program` can be started from `PATH` (it runs `program --version`).
pub fn has_program(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// Whether `unshare` can make the namespaces a test asks for here (`args` as for
/// `unshare`, e.g. `["-m"]` or `["-Urpf", "--mount-proc"]`): root alone is not enough inside
/// some containers.
pub fn can_unshare(args: &[&str]) -> bool {
    Command::new("unshare")
        .args(args)
        .arg("true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Skips `test` (see [`skip`]) unless this process is root and `unshare args… true` works;
/// answers whether the test may go on.
pub fn require_root_and_unshare(test: &str, args: &[&str]) -> bool {
    if !is_root() {
        skip(test, "needs root");
        return false;
    }
    if !can_unshare(args) {
        skip(
            test,
            &format!("`unshare {}` is not allowed here", args.join(" ")),
        );
        return false;
    }
    true
}
