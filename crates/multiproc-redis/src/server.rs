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
    /// `--tls-port` and its files instead of `--port` (see [`LocalServerBuilder::tls`]).
    tls: Option<ServerTls>,
    /// The configuration file of [`LocalServerBuilder::config_line`], if any.
    conf: Option<PathBuf>,
    /// A client of [`url`](LocalServer::url), to see the server answer.
    client: Option<crate::conn::Client>,
}

#[derive(Debug, Clone)]
struct ServerTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client: Option<(PathBuf, PathBuf)>,
}

/// A [`LocalServer`] with TLS, ACL users or other configuration: from
/// [`LocalServer::builder`].
///
/// ```
/// use multiproc::redis::LocalServer;
/// # if !LocalServer::available() { return Ok(()); }
/// let s = LocalServer::builder()
///     .config_line("user app on >s3cret ~app:* +ping +get +set")
///     .start()?;
/// let url = s.url_with_user("app", "s3cret");
/// let mut con = multiproc::redis::Client::open(&url)?.raw_connection()?;
/// let _: () = multiproc::redis::raw::cmd("SET").arg("app:x").arg(1).query(&mut con).unwrap();
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct LocalServerBuilder {
    durable: bool,
    tls: Option<ServerTls>,
    lines: Vec<String>,
}

impl LocalServerBuilder {
    /// Persist every command before answering (as [`LocalServer::start_durable`]).
    ///
    /// ```
    /// let b = multiproc::redis::LocalServer::builder().durable(true);
    /// ```
    pub fn durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }

    /// Serve TLS only (`--port 0 --tls-port PORT`) with the server certificate `cert` and its
    /// `key` (PEM files), trusting client certificates signed by `ca`; clients without a
    /// certificate are let in (`--tls-auth-clients optional`) unless
    /// [`client_cert`](LocalServerBuilder::client_cert) is given. The server's
    /// [`url`](LocalServer::url) is then `rediss://127.0.0.1:PORT/0?cacert=CA`, so the
    /// certificate must name the IP address 127.0.0.1 (subjectAltName `IP:127.0.0.1`).
    ///
    /// ```
    /// let b = multiproc::redis::LocalServer::builder().tls("ca.pem", "server.pem", "server.key");
    /// ```
    pub fn tls(
        mut self,
        ca: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls = Some(ServerTls {
            ca: ca.into(),
            cert: cert.into(),
            key: key.into(),
            client: self.tls.and_then(|t| t.client),
        });
        self
    }

    /// With [`tls`](LocalServerBuilder::tls): the server demands a client certificate
    /// (`--tls-auth-clients yes`), and the [`url`](LocalServer::url) presents this one
    /// (`&cert=…&key=…`).
    ///
    /// ```
    /// let b = multiproc::redis::LocalServer::builder()
    ///     .tls("ca.pem", "server.pem", "server.key")
    ///     .client_cert("client.pem", "client.key");
    /// ```
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        if let Some(t) = self.tls.as_mut() {
            t.client = Some((cert.into(), key.into()));
        }
        self
    }

    /// A line of `redis.conf` (for example `user worker on >password ~app:* +get`), written
    /// to a configuration file the server reads at start.
    ///
    /// ```
    /// let b = multiproc::redis::LocalServer::builder().config_line("user default off");
    /// ```
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.lines.push(line.into());
        self
    }

    /// Starts the server (see [`LocalServer::start`]); it is up once it answers, even if
    /// only to refuse an unauthenticated client.
    ///
    /// ```
    /// # if !multiproc::redis::LocalServer::available() { return Ok(()); }
    /// let s = multiproc::redis::LocalServer::builder().start()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn start(self) -> Result<LocalServer> {
        LocalServer::start_with(self)
    }
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
        Self::builder().start()
    }

    /// A server with TLS, ACL users or other configuration (see [`LocalServerBuilder`]).
    ///
    /// ```
    /// let b = multiproc::redis::LocalServer::builder();
    /// ```
    pub fn builder() -> LocalServerBuilder {
        LocalServerBuilder::default()
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
        Self::builder().durable(true).start()
    }

    fn start_with(b: LocalServerBuilder) -> Result<LocalServer> {
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
        let conf = if b.lines.is_empty() {
            None
        } else {
            let path = dir.join("extra.conf");
            std::fs::write(&path, b.lines.join("\n") + "\n")?;
            Some(path)
        };
        let url = match &b.tls {
            None => format!("redis://127.0.0.1:{port}/0"),
            Some(t) => {
                let mut url = format!("rediss://127.0.0.1:{port}/0?cacert={}", t.ca.display());
                if let Some((cert, key)) = &t.client {
                    url += &format!("&cert={}&key={}", cert.display(), key.display());
                }
                url
            }
        };
        let mut s = LocalServer {
            port,
            dir,
            durable: b.durable,
            url,
            guard: None,
            pid: 0,
            tls: b.tls,
            conf,
            client: None,
        };
        // Bad TLS files fail here, at once, not after the start-up deadline.
        s.client = Some(crate::conn::Client::parse(&s.url)?);
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
        let path = |p: &Path| {
            p.to_str()
                .map(str::to_string)
                .ok_or_else(|| Error::Invalid(format!("non-UTF-8 path {p:?}")))
        };
        let conf = match &self.conf {
            Some(c) => vec![path(c)?],
            None => vec![],
        };
        let tls = match &self.tls {
            Some(t) => vec![
                "--port".to_string(),
                "0".into(),
                "--tls-port".into(),
                port.clone(),
                "--tls-cert-file".into(),
                path(&t.cert)?,
                "--tls-key-file".into(),
                path(&t.key)?,
                "--tls-ca-cert-file".into(),
                path(&t.ca)?,
                "--tls-auth-clients".into(),
                if t.client.is_some() {
                    "yes"
                } else {
                    "optional"
                }
                .into(),
            ],
            None => vec!["--port".to_string(), port.clone()],
        };
        // The configuration file must come first.
        let mut args: Vec<&str> = conf.iter().map(String::as_str).collect();
        args.extend(tls.iter().map(String::as_str));
        args.extend([
            "--bind",
            "127.0.0.1",
            "--dir",
            dir,
            "--daemonize",
            "no",
            "--save",
            "",
            "--logfile",
            &log,
        ]);
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

    /// Whether the server answers a PING, if only with a refusal (a server whose default
    /// user is off says `NOAUTH`).
    fn ping(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(|c| c.answers(Duration::from_millis(200)))
    }

    /// The [`url`](LocalServer::url) with `user:password@` (percent-encoded) in it, for a
    /// server with ACL users (see [`LocalServerBuilder::config_line`]).
    ///
    /// ```
    /// # if !multiproc::redis::LocalServer::available() { return Ok(()); }
    /// let s = multiproc::redis::LocalServer::start()?;
    /// assert!(s.url_with_user("worker", "p@ss").starts_with("redis://worker:p%40ss@127.0.0.1:"));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn url_with_user(&self, user: &str, password: &str) -> String {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        };
        match self.url.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://{}:{}@{rest}", enc(user), enc(password)),
            None => self.url.clone(),
        }
    }

    /// The URL to connect to: `redis://127.0.0.1:PORT/0` (`rediss://…?cacert=…` with
    /// [`LocalServerBuilder::tls`]).
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
