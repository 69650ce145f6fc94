//! Test support shared by the workspace's crates (a path-only dev-dependency, never published).
//!
//! A test that cannot run here (not root, no `unshare`, no server) must not pass silently:
//! [`skip`] reports it by name, appends it to the file named by `MULTIPROC_SKIP_LOG` (where
//! `cargo xtask test` counts and lists the skipped tests), and panics under `CI`, where
//! everything a test needs is provided and a skip is a defect.
//!
//! It also holds the small probes the tests of several crates share, so that each has one
//! copy: descriptors ([`open_fds`], [`set_soft_nofile`]), processes ([`is_running`],
//! [`is_stopped`], [`is_gone`], [`is_zombie`], [`is_zombie_child`], [`zombie_children`]), shared memory ([`shm_exists`], [`unique_name`],
//! [`mount_tmpfs`], [`in_private_mount_namespace`]), bounded polling ([`eventually`]) and a fault task ([`kill_me`]).
//!
//! ```
//! if !multiproc_testkit::is_root() {
//!     multiproc_testkit::skip("doc_example", "needs root");
//!     return;
//! }
//! ```

mod sys;

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

/// The variable that marks a process as the re-run of one test (see [`run_self`]).
pub const CHILD_ENV: &str = "MULTIPROC_TEST_CHILD";

/// Whether this process is the re-run of `test` that [`run_self`] started: the test then does
/// its real work (under the limit or in the namespace the wrapper set up).
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|t| t == test)
}

/// Runs test `test` of the running test binary again in a fresh process, behind `wrapper` (a
/// command that ends by running the program it is given: `["unshare", "-m"]`, or
/// `["sh", "-c", "ulimit -v 4194304 && exec \"$0\" \"$@\""]`), with [`CHILD_ENV`] naming the
/// test. A fresh process, not a fork: a limit then applies from the first instruction, and no
/// mapping or descriptor of the test runner comes along. Panics unless the re-run died of no
/// signal, succeeded, and really ran the test; returns what it printed.
///
/// ```no_run
/// #[test]
/// fn queues_work_under_a_4_gib_address_space_limit() {
///     const TEST: &str = "queues_work_under_a_4_gib_address_space_limit";
///     if !multiproc_testkit::is_child(TEST) {
///         multiproc_testkit::run_self(TEST, &multiproc_testkit::under_ulimit("ulimit -v 4194304"));
///         return;
///     }
///     // … the test itself, under the limit …
/// }
/// ```
pub fn run_self<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(test: &str, wrapper: &[S]) -> String {
    use std::os::unix::process::ExitStatusExt;
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program.as_ref());
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let out = cmd
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .output()
        .unwrap_or_else(|e| panic!("cannot re-run {test} behind {wrapper:?}: {e}"));
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.signal(),
        None,
        "{test}: the re-run died of a signal: {:?}\n{log}",
        out.status
    );
    assert!(
        out.status.success(),
        "{test}: the re-run failed: {:?}\n{log}",
        out.status
    );
    assert!(
        log.contains("1 passed"),
        "{test}: the re-run ran no test:\n{log}"
    );
    log
}

/// A `wrapper` for [`run_self`] that runs the test under the shell limit `ulimit` (e.g.
/// `"ulimit -v 4194304"`).
pub fn under_ulimit(ulimit: &str) -> [String; 3] {
    [
        "sh".to_owned(),
        "-c".to_owned(),
        format!("{ulimit} && exec \"$0\" \"$@\""),
    ]
}

/// A deterministic xorshift64 generator, for the decoders' fuzz-style tests: the same seed gives
/// the same bytes on every run, so a failure can be replayed (no dependency for a few lines).
///
/// ```
/// let mut rng = multiproc_testkit::XorShift(0x9E37_79B9_7F4A_7C15);
/// let buf = rng.bytes(32);
/// assert!(buf.len() < 32);
/// assert_ne!(rng.next_u64(), rng.next_u64());
/// ```
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number (the seed must not be 0).
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A buffer of fewer than `max_len` random bytes.
    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = (self.next_u64() % max_len as u64) as usize;
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Whether the run is a CI run (`CI` set, and not to `false` or `0`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether this process runs as root (effective uid 0), as `/proc/self/status` says (the
/// second field of its `Uid:` line).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
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

/// How many descriptors this process has open now: the entries of `/proc/self/fd`. The count
/// includes the one descriptor opened to read that directory, so it is one more than the
/// descriptors open before and after the call; compare two counts, not a count with a
/// constant. Panics if `/proc/self/fd` cannot be read.
///
/// ```
/// let before = multiproc_testkit::open_fds();
/// let file = std::fs::File::open("/proc/self/status").unwrap();
/// assert!(multiproc_testkit::open_fds() > before);
/// drop(file);
/// ```
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Polls `cond` every 2 ms until it holds or `within` passes; whether it held. For what the
/// test cannot wait on (a descriptor closed, a process reaped by someone else).
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// assert!(multiproc_testkit::eventually(Duration::from_secs(5), || {
///     n += 1;
///     n == 3
/// }));
/// assert!(!multiproc_testkit::eventually(Duration::from_millis(10), || false));
/// ```
pub fn eventually(within: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Whether the POSIX shared-memory object `name` (without the leading `/`) exists: whether
/// `/dev/shm/name` does.
///
/// ```
/// assert!(!multiproc_testkit::shm_exists(&multiproc_testkit::unique_name("mptest_doc")));
/// ```
pub fn shm_exists(name: &str) -> bool {
    std::path::Path::new("/dev/shm").join(name).exists()
}

/// A name no other call in any process makes: `{prefix}_{pid}_{n}`, `n` counting the calls
/// of this process.
///
/// ```
/// let a = multiproc_testkit::unique_name("mptest_doc");
/// let b = multiproc_testkit::unique_name("mptest_doc");
/// assert_ne!(a, b);
/// assert!(a.starts_with(&format!("mptest_doc_{}_", std::process::id())));
/// ```
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The state letter and the parent of process `pid`, from `/proc/pid/stat` (`pid (comm) state
/// ppid …`: the command may hold spaces and parentheses, so the fields after the last `)`);
/// `None` if there is no such process.
fn stat_of(pid: u32) -> Option<(String, Option<u32>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let mut fields = after.split_whitespace();
    let state = fields.next().unwrap_or("").to_owned();
    Some((state, fields.next().and_then(|p| p.parse().ok())))
}

/// Whether process `pid` exists and is not a zombie (a zombie runs nothing: it has ended and
/// waits only to be reaped).
///
/// ```
/// assert!(multiproc_testkit::is_running(std::process::id()));
/// let mut child = std::process::Command::new("true").spawn().unwrap();
/// child.wait().unwrap();
/// assert!(!multiproc_testkit::is_running(child.id()));
/// ```
pub fn is_running(pid: u32) -> bool {
    stat_of(pid).is_some_and(|(state, _)| state != "Z")
}

/// Whether process `pid` is stopped by a signal (`SIGSTOP`, `SIGTSTP`: state `T` in
/// `/proc/pid/stat`); a stop is asynchronous, so wait for it with [`eventually`].
///
/// ```
/// let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
/// let pid = child.id();
/// assert!(!multiproc_testkit::is_stopped(pid));
/// let stop = std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status();
/// assert!(stop.unwrap().success());
/// assert!(multiproc_testkit::eventually(
///     std::time::Duration::from_secs(10),
///     || multiproc_testkit::is_stopped(pid)
/// ));
/// child.kill().unwrap();
/// child.wait().unwrap();
/// ```
pub fn is_stopped(pid: u32) -> bool {
    stat_of(pid).is_some_and(|(state, _)| state == "T")
}

/// Whether process `pid` is gone altogether (`/proc/pid` does not exist): ended and reaped.
/// A zombie is not gone.
///
/// ```
/// assert!(!multiproc_testkit::is_gone(std::process::id()));
/// let mut child = std::process::Command::new("true").spawn().unwrap();
/// child.wait().unwrap();
/// assert!(multiproc_testkit::is_gone(child.id()));
/// ```
pub fn is_gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether process `pid` is a zombie (ended, not yet reaped by its parent, whichever that is).
/// A process that is gone, or still runs, is not.
///
/// ```
/// let mut child = std::process::Command::new("true").spawn().unwrap();
/// let pid = child.id();
/// assert!(multiproc_testkit::eventually(
///     std::time::Duration::from_secs(10),
///     || multiproc_testkit::is_zombie(pid)
/// ));
/// child.wait().unwrap();
/// assert!(!multiproc_testkit::is_zombie(pid));
/// ```
pub fn is_zombie(pid: u32) -> bool {
    stat_of(pid).is_some_and(|(state, _)| state == "Z")
}

/// Whether `pid` is a zombie child of this process (ended, not yet reaped by us).
///
/// ```
/// let mut child = std::process::Command::new("true").spawn().unwrap();
/// let pid = child.id();
/// assert!(multiproc_testkit::eventually(
///     std::time::Duration::from_secs(10),
///     || multiproc_testkit::is_zombie_child(pid)
/// ));
/// child.wait().unwrap();
/// assert!(!multiproc_testkit::is_zombie_child(pid));
/// ```
pub fn is_zombie_child(pid: u32) -> bool {
    stat_of(pid).is_some_and(|(state, ppid)| state == "Z" && ppid == Some(std::process::id()))
}

/// How many zombie children this process has now (ended, not reaped).
///
/// ```
/// let mut child = std::process::Command::new("true").spawn().unwrap();
/// assert!(multiproc_testkit::eventually(
///     std::time::Duration::from_secs(10),
///     || multiproc_testkit::zombie_children() >= 1
/// ));
/// child.wait().unwrap();
/// ```
pub fn zombie_children() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| is_zombie_child(pid))
        .count()
}

/// Runs test `test` in a private mount namespace of its own: called first thing in the test,
/// it answers `true` in the re-run (behind `unshare -m --propagation private`, see
/// [`run_self`]), where the test goes on and may mount what it likes; in the test runner it
/// does the re-run (or skips `test` where that needs root or `unshare` that is missing, see
/// [`require_root_and_unshare`]) and answers `false`: the test then returns.
///
/// ```no_run
/// #[test]
/// fn a_tiny_dev_shm_is_enough() {
///     const TEST: &str = "a_tiny_dev_shm_is_enough";
///     if !multiproc_testkit::in_private_mount_namespace(TEST) {
///         return;
///     }
///     multiproc_testkit::mount_tmpfs("/dev/shm", "size=1m,mode=1777");
///     // … the test itself …
/// }
/// ```
pub fn in_private_mount_namespace(test: &str) -> bool {
    if is_child(test) {
        return true;
    }
    if require_root_and_unshare(test, &["-m"]) {
        run_self(test, &["unshare", "-m", "--propagation", "private", "--"]);
    }
    false
}

/// Mounts a fresh tmpfs on `target` with the mount `options` (e.g. `"size=1m,mode=1777"`), by
/// running `mount -t tmpfs -o options tmpfs target`; panics unless that succeeds. Only in a
/// private mount namespace (a test re-run behind `unshare -m`, see [`run_self`]): it hides what
/// was mounted there before.
///
/// ```no_run
/// // In a test re-run behind `["unshare", "-m", "--propagation", "private", "--"]`:
/// multiproc_testkit::mount_tmpfs("/dev/shm", "size=1m,mode=1777");
/// assert_eq!(std::fs::read_dir("/dev/shm").unwrap().count(), 0);
/// ```
pub fn mount_tmpfs(target: &str, options: &str) {
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs", target])
        .status()
        .unwrap();
    assert!(st.success(), "mount: {st:?}");
}

/// A task that kills the process running it with SIGKILL, as `kill -9 <pid>` from outside
/// would (it runs `kill`), then waits up to a minute for the signal to land; answers 0 only
/// if it never does. For fault tests: hand it to a pool worker or a child process.
///
/// ```no_run
/// // In a pool test: the worker running this dies, and the pool must notice.
/// let _ = multiproc_testkit::kill_me(());
/// unreachable!("killed");
/// ```
pub fn kill_me(_: ()) -> u64 {
    let me = std::process::id().to_string();
    let _ = Command::new("kill").args(["-9", &me]).status();
    std::thread::sleep(std::time::Duration::from_secs(60));
    0
}

/// Sets this process's soft limit on open descriptors (`None`, or more than the hard limit: the
/// hard limit; children inherit it) and returns the soft limit it had, for tests that open
/// thousands of them or that run out on purpose.
///
/// ```
/// let old = multiproc_testkit::set_soft_nofile(None);
/// assert!(multiproc_testkit::set_soft_nofile(Some(old)) >= old);
/// ```
pub fn set_soft_nofile(soft: Option<u64>) -> u64 {
    sys::set_soft_nofile(soft)
}
