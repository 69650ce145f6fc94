//! The Redis server of `cargo xtask test`: a `redis-server` with no persistence on a Unix
//! socket in a fresh temporary folder, started before the tests and stopped (and the folder
//! removed) when the returned guard drops. Its URL goes to the tests, doc tests and examples
//! in `MULTIPROC_REDIS_URL`.
//!
//! Without `redis-server` the Redis tests start their own server or, failing that, skip with
//! a note; under `CI` a missing server is an error here, so CI never skips them.

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
        Err(e) if std::env::var_os("CI").is_none() => {
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
