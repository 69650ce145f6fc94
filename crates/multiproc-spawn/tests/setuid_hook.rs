//! The start-up hook takes no orders from someone who merely starts the program: a setuid or
//! setcap copy of a binary linking multiproc ignores `MULTIPROC_BOOTSTRAP` (its own `main`
//! runs, never a function named by a forged frame), and an ordinary process refuses a bootstrap
//! socket that its parent did not make, as our user, or a descriptor that is no socket at all.
//!
//! The program under attack is this very test binary (it links multiproc-spawn, so it carries
//! the hook); its "own main" is the [`helper_probe_main`] test, run alone. The forged frame is a
//! well-formed `Bootstrap` frame whose trampoline is [`pwned`], with the executable's
//! fingerprint read from its symbol table with `nm`, as an attacker would: before the checks,
//! the hook ran `pwned` (the probe printed `PWNED` and exited 42).

use multiproc_spawn::ProcessInfo;
use multiproc_spawn::fnref::FnRef;
use serde::Serialize;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Set (to `main` or `spawn`) in the probe's environment: [`helper_probe_main`] then acts.
const PROBE_ENV: &str = "MULTIPROC_TEST_HOOK_PROBE";
/// What the probe's own `main` prints.
const MAIN_RAN: &str = "PROBE-MAIN-RAN";
/// What the forged function prints.
const PWNED: &str = "PWNED";
/// The descriptor number the forged socket gets in the probe (high, clear of std's own).
const FD: i32 = 100;
/// `nobody`.
const NOBODY: u32 = 65534;

/// The function the forged frame names: what an attacker would have run with the program's
/// rights. It is called through the trampoline's signature, which it ignores: it never returns.
fn pwned() -> ! {
    let msg = b"PWNED: the forged function ran\n";
    // SAFETY: write and _exit take plain arguments; `msg` is valid for its length.
    unsafe {
        libc::write(1, msg.as_ptr().cast(), msg.len());
        libc::_exit(42)
    }
}

/// The probe's own `main` (a helper, not a test: it does nothing unless [`PROBE_ENV`] is set,
/// which only the tests below do, in the probe's environment).
#[test]
fn helper_probe_main() {
    let Some(what) = std::env::var_os(PROBE_ENV) else {
        return;
    };
    println!("{MAIN_RAN}");
    if what == "spawn" {
        use multiproc_spawn::{Process, StartMethod};
        for method in [StartMethod::Spawn, StartMethod::ForkServer] {
            match Process::builder().start_method(method).spawn(seven, ()) {
                Err(multiproc_sync::Error::Invalid(m)) => println!("REFUSED {method:?}: {m}"),
                Err(e) => println!("OTHER-ERROR {method:?}: {e}"),
                Ok(p) => println!("STARTED {method:?}: {:?}", p.join()),
            }
        }
        let p = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn(seven, ())
            .unwrap();
        println!("FORK-JOINED {}", p.join().unwrap());
    }
}

fn seven(_: ()) -> u32 {
    7
}

/// The bootstrap header, as the spawn crate lays it out (`protocol::Header`).
#[derive(Serialize)]
struct Header {
    trampoline: isize,
    target: isize,
    fingerprint: isize,
    name: String,
    daemon: bool,
    parent: ProcessInfo,
    start_method: u8,
}

/// The executable's fingerprint (the offset of `child::run_fresh` from `fnref::anchor`), read
/// from its symbol table; `None` without `nm` or symbols (the frame then fails the fingerprint
/// check, which an unchecked hook still reached: it answered on the socket and exited 1).
fn fingerprint(exe: &Path) -> Option<isize> {
    let out = Command::new("nm").arg(exe).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let addr = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .and_then(|l| isize::from_str_radix(l.split_whitespace().next()?, 16).ok())
    };
    Some(addr("5child9run_fresh17h")? - addr("5fnref6anchor17h")?)
}

/// A well-formed `Bootstrap` frame that names [`pwned`].
fn forged_frame(exe: &Path) -> Vec<u8> {
    let f = FnRef::new(pwned as fn() -> ! as usize).offset();
    let header = Header {
        trampoline: f,
        target: f,
        fingerprint: fingerprint(exe).unwrap_or(0),
        name: "Process-1".into(),
        daemon: false,
        parent: ProcessInfo {
            pid: 1,
            name: "MainProcess".into(),
            daemon: false,
        },
        start_method: 1,
    };
    let header = postcard::to_allocvec(&header).unwrap();
    let mut payload = (header.len() as u32).to_le_bytes().to_vec();
    payload.extend_from_slice(&header);
    // `Kind::Bootstrap` = 2, no descriptors attached.
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&[2, 0, 0, 0]);
    frame.extend_from_slice(&payload);
    frame
}

/// Who makes the forged socket pair.
#[derive(Clone, Copy)]
enum Maker {
    /// The probe's parent, as `maker_uid` (else root); the probe then runs as `probe_uid`.
    Parent {
        maker_uid: Option<u32>,
        probe_uid: Option<u32>,
    },
    /// The probe itself, just before its exec: its peer is not its parent.
    Itself,
}

/// Drops this (forked) process to `uid`, group `uid`, no supplementary groups (if not there
/// already: as nobody, `setgroups` is refused).
fn drop_to(uid: u32) -> std::io::Result<()> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == uid {
        return Ok(());
    }
    // SAFETY: plain system calls with integer arguments (a null list of no groups).
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(uid, uid, uid) == 0
            && libc::setresuid(uid, uid, uid) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes a socket pair (not close-on-exec) and writes `frame` into one end, which it returns
/// with the other end moved to [`FD`].
fn forge_socket(frame: &[u8]) -> std::io::Result<i32> {
    let mut sv = [0; 2];
    // SAFETY: `sv` is valid for the two descriptors the kernel writes; `frame` for its length;
    // the rest are plain system calls on descriptors this forked process just made.
    unsafe {
        if libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) != 0
            || libc::write(sv[0], frame.as_ptr().cast(), frame.len()) != frame.len() as isize
            || libc::dup2(sv[1], FD) != FD
        {
            return Err(std::io::Error::last_os_error());
        }
        libc::close(sv[1]);
    }
    Ok(sv[0])
}

/// Runs `exe` as the probe (its `helper_probe_main`, with [`PROBE_ENV`] = `probe`) with
/// `MULTIPROC_BOOTSTRAP=<mode>:100` and a forged frame on descriptor 100, made by `maker`.
fn run_probe(exe: &Path, mode: &str, probe: &str, maker: Maker) -> Output {
    let frame = forged_frame(exe);
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "helper_probe_main",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("MULTIPROC_BOOTSTRAP", format!("{mode}:{FD}"))
    .env(PROBE_ENV, probe)
    .current_dir(exe.parent().unwrap())
    .stdin(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec, and only makes system calls
    // (no allocation: the frame was built before the fork); a second fork there leaves a
    // single-threaded process, which may do the same.
    unsafe {
        cmd.pre_exec(move || match maker {
            Maker::Itself => {
                let other = forge_socket(&frame)?;
                libc::close(other);
                Ok(())
            }
            Maker::Parent {
                maker_uid,
                probe_uid,
            } => {
                if let Some(uid) = maker_uid {
                    drop_to(uid)?;
                }
                let other = forge_socket(&frame)?;
                let pid = libc::fork();
                if pid < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if pid == 0 {
                    // The probe-to-be: the pair's maker is now its parent.
                    libc::close(other);
                    if let Some(uid) = probe_uid {
                        drop_to(uid)?;
                    }
                    return Ok(());
                }
                // The maker: closes its end (the frame is already in the socket) and reports
                // the probe's exit as its own.
                libc::close(FD);
                libc::close(other);
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                libc::_exit(code)
            }
        });
    }
    cmd.output().expect("run the probe")
}

/// A directory for privileged copies of this binary, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("multiproc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }

    /// A copy of this test binary in the directory, owned by root, with `mode`.
    fn copy_of_self(&self, mode: u32) -> PathBuf {
        let exe = self.0.join("probe");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::os::unix::fs::chown(&exe, Some(0), Some(0)).unwrap();
        // Set after chown, which clears the setuid bit.
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(mode)).unwrap();
        exe
    }

    /// Whether the directory's file system honours setuid bits and file capabilities.
    fn honours_setuid(&self) -> bool {
        let path = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: `path` is NUL-terminated and `st` is valid storage for statvfs to fill.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            libc::statvfs(path.as_ptr(), &mut st) == 0 && st.f_flag & libc::ST_NOSUID == 0
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts the probe ran its own `main` and not the forged function.
fn assert_main_ran(out: &Output, ctx: &str) {
    let (stdout, stderr) = text(out);
    assert!(
        !stdout.contains(PWNED),
        "{ctx}: the forged function ran\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains(MAIN_RAN) && out.status.success(),
        "{ctx}: the program's own main did not run to the end ({:?})\n{stdout}\n{stderr}",
        out.status
    );
}

/// Asserts the probe refused the socket before reading it: exit 1, the reason on stderr, and
/// neither `main` nor the forged function ran.
fn assert_refused(out: &Output, why: &str, ctx: &str) {
    let (stdout, stderr) = text(out);
    assert!(
        !stdout.contains(PWNED),
        "{ctx}: the forged function ran\n{stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains(MAIN_RAN),
        "{ctx}: main ran\n{stdout}\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{ctx}\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("multiproc: refusing MULTIPROC_BOOTSTRAP") && stderr.contains(why),
        "{ctx}: no reason, or not {why:?}, on stderr\n{stderr}"
    );
}

/// Skips unless root (to chown and drop to nobody); answers whether to go on.
fn require_root(test: &str) -> bool {
    if !multiproc_testkit::is_root() {
        multiproc_testkit::skip(test, "needs root");
        return false;
    }
    true
}

#[test]
fn setuid_root_program_ignores_forged_bootstrap() {
    let name = "setuid_root_program_ignores_forged_bootstrap";
    if !require_root(name) {
        return;
    }
    let dir = TempDir::new("setuid");
    if !dir.honours_setuid() {
        multiproc_testkit::skip(name, "the temporary directory is on a nosuid file system");
        return;
    }
    let exe = dir.copy_of_self(0o4755);
    for mode in ["child", "server"] {
        // nobody makes the pair and is the probe's parent: a real local attacker.
        let maker = Maker::Parent {
            maker_uid: Some(NOBODY),
            probe_uid: None,
        };
        let out = run_probe(&exe, mode, "spawn", maker);
        let ctx = format!("setuid root, {mode}");
        assert_main_ran(&out, &ctx);
        let (stdout, _) = text(&out);
        // In there, Spawn and ForkServer refuse to start children (they would run main); Fork
        // works.
        assert!(stdout.contains("REFUSED Spawn"), "{ctx}\n{stdout}");
        assert!(stdout.contains("REFUSED ForkServer"), "{ctx}\n{stdout}");
        assert!(stdout.contains("FORK-JOINED 7"), "{ctx}\n{stdout}");
    }
}

/// File capabilities leave the uid as it is, so the socket's peer (nobody, the parent) passes
/// the peer check: only `AT_SECURE` stops the forged frame here.
#[test]
fn setcap_program_ignores_forged_bootstrap() {
    let name = "setcap_program_ignores_forged_bootstrap";
    if !require_root(name) {
        return;
    }
    if !multiproc_testkit::has_program("setcap") {
        multiproc_testkit::skip(name, "no setcap program");
        return;
    }
    let dir = TempDir::new("setcap");
    if !dir.honours_setuid() {
        multiproc_testkit::skip(name, "the temporary directory is on a nosuid file system");
        return;
    }
    let exe = dir.copy_of_self(0o755);
    let set = Command::new("setcap")
        .args(["cap_net_bind_service+ep"])
        .arg(&exe)
        .output()
        .unwrap();
    if !set.status.success() {
        multiproc_testkit::skip(
            name,
            &format!(
                "setcap failed here: {}",
                String::from_utf8_lossy(&set.stderr).trim()
            ),
        );
        return;
    }
    for mode in ["child", "server"] {
        let maker = Maker::Parent {
            maker_uid: Some(NOBODY),
            probe_uid: Some(NOBODY),
        };
        let out = run_probe(&exe, mode, "main", maker);
        assert_main_ran(&out, &format!("setcap, {mode}"));
    }
}

/// An ordinary process whose bootstrap socket was made by itself, not by its parent.
#[test]
fn hook_refuses_socket_not_made_by_parent() {
    let exe = std::env::current_exe().unwrap();
    for mode in ["child", "server"] {
        let out = run_probe(&exe, mode, "main", Maker::Itself);
        assert_refused(
            &out,
            "not by our parent",
            &format!("peer is itself, {mode}"),
        );
    }
}

/// An ordinary process (nobody) whose parent made its socket, but as another user (root).
#[test]
fn hook_refuses_socket_of_another_user() {
    let name = "hook_refuses_socket_of_another_user";
    if !require_root(name) {
        return;
    }
    let dir = TempDir::new("uid");
    let exe = dir.copy_of_self(0o755);
    for mode in ["child", "server"] {
        let maker = Maker::Parent {
            maker_uid: None,
            probe_uid: Some(NOBODY),
        };
        let out = run_probe(&exe, mode, "main", maker);
        assert_refused(&out, "belongs to uid 0", &format!("peer is root, {mode}"));
    }
}

/// A descriptor that is not a socket (standard input, here `/dev/null`; a terminal would have
/// made an unchecked hook wait for a line), or not open at all, is refused before it is read
/// or closed.
#[test]
fn hook_refuses_descriptor_that_is_not_a_socket() {
    let exe = std::env::current_exe().unwrap();
    for value in ["child:0", "server:0", "child:999", "child:-1"] {
        let out = Command::new(&exe)
            .args(["--exact", "helper_probe_main", "--nocapture"])
            .env("MULTIPROC_BOOTSTRAP", value)
            .env(PROBE_ENV, "main")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_refused(&out, "is not a Unix socket", value);
    }
}
