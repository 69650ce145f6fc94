//! The Redis server of `cargo xtask test`: a `redis-server` with no persistence on a Unix
//! socket in a fresh temporary folder, started before the tests and stopped (and the folder
//! removed) when the returned guard drops. Its URL goes to the tests, doc tests and examples
//! in `MULTIPROC_REDIS_URL`.
//!
//! Without `redis-server`, [`ensure_installed`] installs it where this user may install
//! packages (root, or `sudo` without a password, with `apt-get`), saying so; elsewhere the
//! Redis tests, doc examples and examples are skipped, each reported by name and counted in
//! the run's summary, and the command that installs the server is printed. Under `CI` a
//! missing server is an error, so CI never skips them.

use crate::DynResult;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable the Redis tests, examples and benchmarks read.
const URL_ENV: &str = "MULTIPROC_REDIS_URL";

/// A running `redis-server`; dropping it stops the server.
pub(crate) struct Server {
    child: Child,
    dir: PathBuf,
}

/// Makes sure `redis-server` is there: installs it with `apt-get` where this user can (see the
/// module documentation), else says how to get it. An error only under `CI`.
pub(crate) fn ensure_installed() -> DynResult {
    ensure_ip()?;
    if std::env::var_os(URL_ENV).is_some() || has_redis_server() {
        return Ok(());
    }
    let root = multiproc_testkit::is_root();
    let sudo = !root
        && Command::new("sudo")
            .args(["-n", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let apt = Command::new("apt-get")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    const HOW: &str = "sudo apt-get install redis-server (or your system's redis package)";
    if apt && (root || sudo) {
        eprintln!("redis-server is missing: installing it with apt-get for the Redis tests");
        let prefix: &[&str] = if root { &[] } else { &["sudo", "-n"] };
        let mut update: Vec<&str> = prefix.to_vec();
        update.extend(["apt-get", "update", "-qq"]);
        let mut install: Vec<&str> = prefix.to_vec();
        install.extend([
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "redis-server",
        ]);
        let ok = crate::run(update[0], &update[1..])
            .and_then(|()| {
                crate::run_env(
                    install[0],
                    &install[1..],
                    &[("DEBIAN_FRONTEND", "noninteractive")],
                )
            })
            .is_ok();
        if ok && has_redis_server() {
            return Ok(());
        }
        eprintln!("could not install redis-server");
    }
    if multiproc_testkit::under_ci() {
        return Err(format!("CI needs redis-server; install it with: {HOW}").into());
    }
    eprintln!(
        "redis-server is not installed and this user cannot install packages: the Redis tests \
         will be SKIPPED (listed at the end). To run them: {HOW}"
    );
    Ok(())
}

/// Makes sure `ip` (iproute2) is there for the namespace cluster tests
/// (`crates/multiproc-redis/tests/cluster.rs`, which need root too): installs `iproute2` with
/// `apt-get` as root where it is missing (a slim CI image), else leaves those tests to report
/// themselves skipped. An error only under `CI` as root, where the cluster tests must run.
fn ensure_ip() -> DynResult {
    let has_ip = || {
        Command::new("ip")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_ip() || !multiproc_testkit::is_root() {
        return Ok(());
    }
    eprintln!(
        "ip (iproute2) is missing: installing it with apt-get for the namespace cluster tests"
    );
    let ok = crate::run("apt-get", &["update", "-qq"])
        .and_then(|()| {
            crate::run_env(
                "apt-get",
                &[
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "iproute2",
                ],
                &[("DEBIAN_FRONTEND", "noninteractive")],
            )
        })
        .is_ok();
    if (ok && has_ip()) || !multiproc_testkit::under_ci() {
        return Ok(());
    }
    Err(
        "CI needs ip for the namespace cluster tests; install it with: apt-get install iproute2"
            .into(),
    )
}

fn has_redis_server() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts the server and exports its URL (see the module documentation). `Ok(None)` when
/// `redis-server` is missing outside CI, or when `MULTIPROC_REDIS_URL` is set already (that
/// server is used).
pub(crate) fn start_for_tests() -> DynResult<Option<Server>> {
    if std::env::var_os(URL_ENV).is_some() {
        return Ok(None);
    }
    let dir = std::env::temp_dir().join(format!("multiproc-xtask-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("redis.sock");
    let sock = socket.to_str().ok_or("non-UTF-8 temp dir")?;
    let args = [
        "--port",
        "0",
        "--unixsocket",
        sock,
        "--unixsocketperm",
        "700",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        dir.to_str().unwrap_or("."),
    ];
    eprintln!("$ redis-server {}", args.join(" "));
    let child = match Command::new("redis-server")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if !multiproc_testkit::under_ci() => {
            eprintln!("redis-server is not installed ({e}): the Redis tests will skip");
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(None);
        }
        Err(e) => {
            return Err(
                format!("CI needs redis-server (apt-get install redis-server): {e}").into(),
            );
        }
    };
    let mut server = Server { child, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pong(&socket) {
        if Instant::now() >= deadline || server.child.try_wait()?.is_some() {
            return Err("redis-server did not answer PING within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let url = format!("unix://{sock}");
    eprintln!("redis: {URL_ENV}={url}");
    // SAFETY: xtask is single-threaded here (it only ever waits on child processes), so no
    // other thread reads the environment while it changes.
    unsafe { std::env::set_var(URL_ENV, &url) };
    Ok(Some(server))
}

/// Whether the server behind `socket` answers `PING`.
fn pong(socket: &std::path::Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
