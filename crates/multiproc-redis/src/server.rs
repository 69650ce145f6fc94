//! [`LocalServer`]: a throwaway `redis-server` on a free loopback port, for tests, benchmarks
//! and trying things out.
//!
//! The server runs under a tiny `sh` guard that kills it when this process's end of a pipe
//! closes, so a server never outlives the program that started it, even when that program is
//! killed.

use crate::conn::random_token;
use multiproc_sync::{Error, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The guard: starts the server, prints its pid, and kills it when a line arrives on its
/// standard input, or when that closes (the owner is gone: then it removes the data
/// directory, too).
const GUARD: &str = r#"redis-server "$@" & pid=$!; echo $pid; if read _line; then kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; else kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$MULTIPROC_REDIS_TMP"; fi; exit 0"#;

/// A `redis-server` child on `127.0.0.1`, stopped (SIGKILL) on drop; its data directory is a
/// fresh temporary folder, removed on drop.
///
/// [`start`](LocalServer::start) keeps nothing on disk (`--save "" --appendonly no`), as the
/// test suite runs it; [`start_durable`](LocalServer::start_durable) writes every command to
/// an append-only file and fsyncs it before answering, so [`restart`](LocalServer::restart)
/// brings back every item the server ever acknowledged.
///
/// ```
/// use multiproc::redis::LocalServer;
/// # if !LocalServer::available() { return Ok(()); }
/// let server = LocalServer::start()?;
/// let client = multiproc::redis::Client::open(server.url())?;
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Debug)]
pub struct LocalServer {
    port: u16,
    dir: PathBuf,
    durable: bool,
    url: String,
    guard: Option<(Child, ChildStdin)>,
    pid: u32,
}

impl LocalServer {
    /// Whether a `redis-server` program is on `PATH`.
    ///
    /// ```
    /// let _ = multiproc::redis::LocalServer::available();
    /// ```
    pub fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Starts a server that keeps everything in memory only.
    ///
    /// ```
    /// # if !multiproc::redis::LocalServer::available() { return Ok(()); }
    /// let s = multiproc::redis::LocalServer::start()?;
    /// assert!(s.url().starts_with("redis://127.0.0.1:"));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn start() -> Result<LocalServer> {
        Self::start_with(false)
    }

    /// Starts a server with `--appendonly yes --appendfsync always`: whatever it acknowledged
    /// survives [`kill`](LocalServer::kill) and [`restart`](LocalServer::restart).
    ///
    /// ```
    /// # if !multiproc::redis::LocalServer::available() { return Ok(()); }
    /// let s = multiproc::redis::LocalServer::start_durable()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn start_durable() -> Result<LocalServer> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<LocalServer> {
        // Fail at once, not after the start-up deadline: without the program, the guard shell
        // would wait out the whole deadline before saying so.
        if !Self::available() {
            return Err(Error::Redis(
                "redis-server is not installed or not on PATH \
                 (Debian/Ubuntu: apt-get install redis-server)"
                    .into(),
            ));
        }
        let dir = std::env::temp_dir().join(format!(
            "multiproc-redis-{}-{}",
            std::process::id(),
            &random_token()[..8]
        ));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut s = LocalServer {
            port,
            dir,
            durable,
            url: format!("redis://127.0.0.1:{port}/0"),
            guard: None,
            pid: 0,
        };
        s.launch()?;
        Ok(s)
    }

    fn launch(&mut self) -> Result<()> {
        let port = self.port.to_string();
        let dir = self
            .dir
            .to_str()
            .ok_or_else(|| Error::Invalid("non-UTF-8 temp dir".into()))?;
        let log = self.dir.join("redis.log");
        let log = log.to_str().unwrap_or("redis.log").to_string();
        let mut args: Vec<&str> = vec![
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--dir",
            dir,
            "--daemonize",
            "no",
            "--save",
            "",
            "--logfile",
            &log,
        ];
        if self.durable {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            args.extend(["--appendonly", "no"]);
        }
        // In a session of its own (`setsid`, where there is one), so that a test runner killing
        // this process's group does not kill the guard before it has stopped the server.
        let mut cmd = if Path::new("/usr/bin/setsid").exists() {
            let mut c = Command::new("/usr/bin/setsid");
            c.arg("sh");
            c
        } else {
            Command::new("sh")
        };
        let mut child = cmd
            .arg("-c")
            .arg(GUARD)
            .arg("redis-server-guard")
            .env("MULTIPROC_REDIS_TMP", &self.dir)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Redis(format!("cannot run sh to start redis-server: {e}")))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::Invalid("no stdin".into()))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        self.pid = line.trim().parse().unwrap_or(0);
        self.guard = Some((child, stdin));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.ping() {
                return Ok(());
            }
            let exited = match self.guard.as_mut() {
                Some((c, _)) => c.try_wait().ok().flatten().is_some(),
                None => true,
            };
            let gone = exited || !Path::new(&format!("/proc/{}", self.pid)).exists();
            if gone || Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                self.kill();
                return Err(Error::Redis(format!(
                    "redis-server did not start on port {} (is the `redis-server` package installed?): {}",
                    self.port,
                    log.lines().last().unwrap_or("no log")
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ping(&self) -> bool {
        let Ok(c) = redis::Client::open(self.url.as_str()) else {
            return false;
        };
        let Ok(mut con) = c.get_connection_with_timeout(Duration::from_millis(200)) else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut con).is_ok()
    }

    /// The URL to connect to: `redis://127.0.0.1:PORT/0`.
    ///
    /// ```
    /// # if !multiproc::redis::LocalServer::available() { return Ok(()); }
    /// let s = multiproc::redis::LocalServer::start()?;
    /// assert!(s.url().ends_with("/0"));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process id (0 when it is not running).
    ///
    /// ```
    /// # if !multiproc::redis::LocalServer::available() { return Ok(()); }
    /// let s = multiproc::redis::LocalServer::start()?;
    /// assert!(s.pid() > 0);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the server with SIGKILL (no shutdown, no save) and waits until it is gone.
    ///
    /// ```
    /// # if !multiproc::redis::LocalServer::available() { return Ok(()); }
    /// let mut s = multiproc::redis::LocalServer::start()?;
    /// s.kill();
    /// assert!(multiproc::redis::Client::open(s.url()).is_err());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn kill(&mut self) {
        if let Some((mut child, mut stdin)) = self.guard.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
        self.pid = 0;
    }

    /// Kills the server (as [`kill`](LocalServer::kill)) if it runs, and starts it again on the
    /// same port and data directory.
    ///
    /// ```
    /// # if !multiproc::redis::LocalServer::available() { return Ok(()); }
    /// let mut s = multiproc::redis::LocalServer::start()?;
    /// s.restart()?;
    /// multiproc::redis::Client::open(s.url())?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.launch()
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
