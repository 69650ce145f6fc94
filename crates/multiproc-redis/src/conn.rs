//! [`Client`]: a Redis server's address, and the reconnecting connection every other type of
//! this crate talks through.
//!
//! A connection that breaks (the server restarted, a network blip) is replaced transparently:
//! the command is sent again on a new connection, retrying for the client's reconnect window.
//! A command can therefore run twice when the server ran it but its reply was lost; every
//! command this crate sends is either idempotent or covered by the at-least-once contract
//! (see the crate documentation).
//!
//! A call with a deadline ([`Conn::run_until`]) caps both by the time left: each read waits
//! at most the time left plus [`GRACE`], the reconnect window ends at the deadline, and a
//! deadline passed with the server out of reach is `Err(Timeout)`.

use crate::socket::{Wire, crypto_provider};
use multiproc_sync::{Error, Result};
use redis::{ErrorKind, RedisError, RedisResult};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a dropped connection is retried before the call fails, by default.
const DEFAULT_RECONNECT: Duration = Duration::from_secs(10);

/// The longest a reply may take before the connection counts as dead (a blocking command
/// never asks the server to wait longer than [`BLOCK_CHUNK`]).
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// How much longer than the time left a call with a deadline waits for a reply: the server
/// answers a blocking command that it ends at the deadline a moment after it.
const GRACE: Duration = Duration::from_millis(250);

/// The longest one blocking command (BLMOVE, BLPOP) waits on the server.
pub(crate) const BLOCK_CHUNK: Duration = Duration::from_secs(1);

/// A Redis server's address and the connection settings of everything opened from it.
///
/// Cheap to clone. The URL is one of
///
/// - `redis://[user:password@]host[:port][/db]`: plain TCP;
/// - `rediss://[user:password@]host[:port][/db][?cacert=PATH[&cert=PATH&key=PATH]]`: TLS
///   (see the crate documentation's "Security"): `cacert` a PEM file of the certificate
///   authorities to trust (without it, the system's), `cert` and `key` a PEM client
///   certificate and its key for servers that ask for one (`tls-auth-clients yes`);
/// - `unix:///path/to/redis.sock[?db=N]` for a Unix socket.
///
/// A `user:password` (percent-encoded where needed) is sent as `AUTH user password` on every
/// connection and reconnection; a refused password fails at once with `Err(Redis)` saying
/// "authentication failed", never retried.
///
/// ```
/// use multiproc::redis::Client;
/// let bad = Client::open("http://localhost");
/// assert!(matches!(bad, Err(multiproc::Error::Redis(m)) if m.contains("bad redis url")));
/// ```
#[derive(Clone)]
pub struct Client {
    inner: redis::Client,
    shown: String,
    reconnect: Duration,
    /// The TLS settings of a `rediss://` URL, for this crate's own socket ([`Wire`]).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.shown)
            .field("reconnect", &self.reconnect)
            .finish()
    }
}

/// The URL with any password replaced by `***`, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Client {
    /// Parses `url` and checks that the server answers (one `PING`, after `AUTH` and `SELECT`
    /// when the URL names them). Fails fast with `Err(Redis)`: a bad URL, a refused
    /// connection, a rejected password.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let client = multiproc::redis::Client::open(&url)?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn open(url: &str) -> Result<Client> {
        let client = Client::parse(url)?;
        client.connect_once()?;
        Ok(client)
    }

    /// Parses `url` without connecting (a worker waiting for its server checks the URL
    /// first: a bad one fails at once, an unreachable server is waited for).
    pub(crate) fn parse(url: &str) -> Result<Client> {
        let shown = redact(url);
        let bad = |e: &dyn fmt::Display| Error::Redis(format!("bad redis url {shown:?}: {e}"));
        let files = TlsFiles::of(url).map_err(|e| bad(&e))?;
        let inner = redis::Client::open(url).map_err(|e| bad(&e))?;
        let tls = match inner.get_connection_info().addr() {
            redis::ConnectionAddr::TcpTls { insecure: true, .. } => {
                return Err(bad(&"#insecure (no certificate check) is not supported: \
                     give the server's certificate authority with ?cacert=PATH"));
            }
            redis::ConnectionAddr::TcpTls { .. } => Some(files.load().map_err(|e| bad(&e))?),
            _ if files.any() => {
                return Err(bad(&"cacert, cert and key need a rediss:// (TLS) URL"));
            }
            _ => None,
        };
        let inner = match &tls {
            // The `redis` crate's own connections (`raw_connection`, `open`'s check) get the
            // same certificates through its `TlsCertificates`.
            Some((_, certs)) => {
                redis::Client::build_with_tls(url, certs.clone()).map_err(|e| bad(&e))?
            }
            None => inner,
        };
        Ok(Client {
            inner,
            shown,
            reconnect: DEFAULT_RECONNECT,
            tls: tls.map(|(config, _)| config),
        })
    }

    /// How long a broken connection is retried before a call fails with `Err(Redis)`
    /// (default 10 s): long enough to ride out a server restart. A call with a timeout
    /// stops retrying at its deadline and answers as on a timeout (see the crate's
    /// "Network cuts"); a read from a server that stopped answering counts as broken after
    /// 15 s, or at such a deadline.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// use std::time::Duration;
    /// let client = multiproc::redis::Client::open(&url)?.reconnect_timeout(Duration::from_secs(30));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn reconnect_timeout(mut self, window: Duration) -> Client {
        // Added to the clock when a connection drops: ~136 years is as good as for ever, and
        // `Duration::MAX` would overflow it.
        self.reconnect = window.min(Duration::from_secs(u64::from(u32::MAX)));
        self
    }

    /// The URL this client connects to, with any password hidden.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// let client = multiproc::redis::Client::open(&url)?;
    /// assert!(client.url().contains("redis") || client.url().starts_with("unix"));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// A plain connection of the `redis` crate (re-exported as [`raw`](crate::raw)), for the
    /// commands this crate does not wrap: transactions, `WATCH`, scripts of your own.
    ///
    /// ```
    /// # let Some(url) = multiproc_redis::doc_url() else { return Ok(()) };
    /// use multiproc::redis::raw::Commands;
    /// let mut con = multiproc::redis::Client::open(&url)?.raw_connection()?;
    /// let _: () = con.set("doc:raw", 7).unwrap();
    /// let v: i64 = con.get("doc:raw").unwrap();
    /// assert_eq!(v, 7);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn raw_connection(&self) -> Result<redis::Connection> {
        self.connect_once()
    }

    fn connect_once(&self) -> Result<redis::Connection> {
        let mut con = self
            .inner
            .get_connection_with_timeout(Duration::from_secs(5))
            .map_err(|e| self.error("cannot connect to", &e))?;
        con.set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|e| self.error("cannot configure", &e))?;
        redis::cmd("PING").query::<()>(&mut con).map_err(|e| {
            self.plaintext_on_tls("cannot talk to", &e, Duration::from_secs(5))
                .unwrap_or_else(|| self.error("cannot talk to", &e))
        })?;
        Ok(con)
    }

    pub(crate) fn error(&self, what: &str, e: &RedisError) -> Error {
        match e.kind() {
            ErrorKind::AuthenticationFailed => {
                Error::Redis(format!("authentication failed at {}: {e}", self.shown))
            }
            _ => Error::Redis(format!("{what} {}: {e}", self.shown)),
        }
    }

    /// A connection for this crate's own types (see [`Wire`]), answering a PING.
    fn wire(&self) -> Result<Wire> {
        self.wire_within(None).map_err(|(_, e)| e)
    }

    /// Like [`wire`](Client::wire), taking at most about `left` (when given) to connect and
    /// to hear the PING answered. The flag says whether the error is one that retrying
    /// cannot mend (see [`is_refusal`]).
    fn wire_within(&self, left: Option<Duration>) -> std::result::Result<Wire, (bool, Error)> {
        let cap = |d: Duration| {
            left.map_or(d, |l| (l + GRACE).min(d))
                .max(Duration::from_millis(1))
        };
        let mut wire = Wire::connect(
            self.inner.get_connection_info(),
            self.tls.as_ref(),
            cap(Duration::from_secs(5)),
            cap(READ_TIMEOUT),
        )
        .map_err(|e| self.refusal_or("cannot connect to", &e, cap(Duration::from_secs(5))))?;
        redis::cmd("PING")
            .query::<()>(&mut wire)
            .map_err(|e| self.refusal_or("cannot talk to", &e, cap(Duration::from_secs(5))))?;
        Ok(wire)
    }

    /// The error of a failed connect, flagged when retrying cannot mend it (see
    /// [`is_refusal`]); a refusal of this client's configuration is noted for
    /// [`is_refused`]. A plain TCP connection the server hung up on is probed for TLS
    /// ([`speaks_tls`](crate::socket::speaks_tls), within `t`): plaintext on a TLS port is
    /// such a refusal too.
    fn refusal_or(&self, what: &str, e: &RedisError, t: Duration) -> (bool, Error) {
        if let Some(err) = self.plaintext_on_tls(what, e, t) {
            return (true, note_refusal(err));
        }
        let err = self.error(what, e);
        if refuses(e) {
            return (true, note_refusal(err));
        }
        (is_refusal(e), err)
    }

    /// `Some` error saying so when `e` is a plain TCP connection's hang-up and the server
    /// answers a TLS client hello.
    fn plaintext_on_tls(&self, what: &str, e: &RedisError, t: Duration) -> Option<Error> {
        let redis::ConnectionAddr::Tcp(host, port) = self.inner.get_connection_info().addr() else {
            return None;
        };
        // A hang-up only: not a refused connect, a timeout or an answer of the server.
        let hung_up = e.is_io_error() || e.is_connection_dropped();
        if !hung_up || e.is_connection_refusal() || e.is_timeout() {
            return None;
        }
        crate::socket::speaks_tls(host, *port, t).then(|| {
            Error::Redis(format!(
                "{what} {}: the server speaks TLS on this port: use a rediss:// URL ({e})",
                self.shown
            ))
        })
    }

    /// Whether the server answers a PING within about `t`, if only with a refusal (for
    /// [`LocalServer`](crate::LocalServer)'s start).
    pub(crate) fn answers(&self, t: Duration) -> bool {
        let Ok(mut wire) = Wire::connect(self.inner.get_connection_info(), self.tls.as_ref(), t, t)
        else {
            return false;
        };
        match redis::cmd("PING").query::<()>(&mut wire) {
            Ok(()) => true,
            Err(e) => matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension),
        }
    }

    pub(crate) fn conn(&self) -> Result<Conn> {
        Ok(Conn {
            con: Some(self.wire()?),
            client: self.clone(),
            reconnects: 0,
            opened: true,
        })
    }

    /// A connection that connects on its first command (within that command's deadline,
    /// see [`Conn::run_until`]).
    pub(crate) fn conn_lazy(&self) -> Conn {
        Conn {
            con: None,
            client: self.clone(),
            reconnects: 0,
            opened: false,
        }
    }
}

/// A connection that replaces itself when it breaks (see the module documentation).
pub(crate) struct Conn {
    client: Client,
    con: Option<Wire>,
    /// How many times the connection was replaced (callers notice a reconnect by it).
    pub(crate) reconnects: u64,
    /// Whether it was connected once (the first connection of a lazy one is no reconnect).
    opened: bool,
}

/// Whether `e` is the server saying "not now" (still loading its data after a restart, a
/// replica without its master): worth waiting for, within the reconnect window.
fn is_transient(e: &RedisError) -> bool {
    use redis::ServerErrorKind as S;
    matches!(
        e.kind(),
        ErrorKind::Server(S::BusyLoading | S::TryAgain | S::MasterDown)
    )
}

/// Whether `e` is the server (or its certificate) refusing this client: a wrong password, a
/// user without the right to a command, a certificate that does not verify, a missing file;
/// on a connect, any answer of the server but "not now" (a full server's "max number of
/// clients" too: see [`refuses`] for the narrower set that a worker gives up on).
/// Retrying cannot mend it, so a reconnect fails at once with it instead of retrying for the
/// reconnect window.
fn is_refusal(e: &RedisError) -> bool {
    match e.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig => true,
        // Any other answer of the server (NOPERM; NOAUTH, which the `redis` crate does not
        // name) but "not now".
        ErrorKind::Server(_) | ErrorKind::Extension => !is_transient(e),
        _ => false,
    }
}

/// Whether `e` is this client's configuration refused: a wrong password or unknown user
/// (`WRONGPASS`, `NOAUTH`), a command outside the user's ACL (`NOPERM`), a certificate that
/// does not verify or TLS settings that cannot work. Unlike a server that is down,
/// restarting or full, no wait mends it: a [`Worker`](crate::Worker) stops on it (see
/// [`is_refused`]) where it waits out an outage.
fn refuses(e: &RedisError) -> bool {
    const CODES: [&str; 3] = ["NOPERM", "NOAUTH", "WRONGPASS"];
    match e.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig => true,
        ErrorKind::Server(redis::ServerErrorKind::NoPerm) => true,
        ErrorKind::Extension => {
            e.code().is_some_and(|c| CODES.contains(&c)) || {
                // A pipeline's error names no code: its text starts with the first one's.
                let text = e.to_string();
                CODES.iter().any(|c| text.contains(c))
            }
        }
        _ => false,
    }
}

thread_local! {
    /// The text of the last refusal error (see [`refuses`]) this thread's calls returned.
    static REFUSED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Notes `e` as a refusal of this client's configuration (see [`is_refused`]).
fn note_refusal(e: Error) -> Error {
    REFUSED.with(|r| *r.borrow_mut() = Some(e.to_string()));
    e
}

/// Whether `e`, returned by a call of this crate on this thread, is this client's
/// configuration refused by the server (see [`refuses`]) rather than an outage. The error
/// type stays `Err(Redis)` with the same words as elsewhere; the classification travels
/// beside it, so that errors passed on through other layers (a queue's take) keep it.
pub(crate) fn is_refused(e: &Error) -> bool {
    let text = e.to_string();
    REFUSED.with(|r| r.borrow().as_deref() == Some(text.as_str()))
}

/// Whether `e` means the connection is gone (as opposed to an answer from the server).
fn is_broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

impl Conn {
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `f` on a live connection, reconnecting and running it again while the connection
    /// keeps breaking, for at most the client's reconnect window.
    pub(crate) fn run<T>(&mut self, f: impl FnMut(&mut Wire) -> RedisResult<T>) -> Result<T> {
        self.run_until(None, f)
    }

    /// Like [`run`](Conn::run), within `deadline` too: every read waits at most the time left
    /// (plus [`GRACE`], for the reply of a blocking command that the server ends at the
    /// deadline), the reconnect window ends at the deadline, and a deadline passed while the
    /// connection is broken is `Err(Timeout)`. A server gone past the reconnect window before
    /// the deadline is still `Err(Redis)`.
    pub(crate) fn run_until<T>(
        &mut self,
        deadline: Option<Instant>,
        mut f: impl FnMut(&mut Wire) -> RedisResult<T>,
    ) -> Result<T> {
        let mut window: Option<Instant> = None;
        let mut pause = Duration::from_millis(5);
        // What to answer once the window or the deadline is over, if it is: `Err(Timeout)`
        // when the deadline came first.
        let over = |window: Instant, e: Error| -> Option<Error> {
            let now = Instant::now();
            match deadline {
                Some(d) if now >= d && d <= window => Some(Error::Timeout),
                _ if now >= window => Some(e),
                _ => None,
            }
        };
        let left = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        loop {
            let con = match self.con.as_mut() {
                Some(c) => c,
                None => match self.client.wire_within(left()) {
                    Ok(c) => {
                        if self.opened {
                            self.reconnects += 1;
                        }
                        self.opened = true;
                        self.con.insert(c)
                    }
                    Err((true, e)) => return Err(e),
                    Err((false, e)) => {
                        let w =
                            *window.get_or_insert_with(|| Instant::now() + self.client.reconnect);
                        if let Some(e) = over(w, e) {
                            return Err(e);
                        }
                        std::thread::sleep(left().map_or(pause, |l| pause.min(l)));
                        pause = (pause * 2).min(Duration::from_millis(200));
                        continue;
                    }
                },
            };
            let io = left().map_or(READ_TIMEOUT, |l| (l + GRACE).min(READ_TIMEOUT));
            let r = match con.set_io_timeout(io) {
                Ok(()) => f(con),
                Err(e) => Err(e),
            };
            match r {
                Ok(v) => return Ok(v),
                Err(e) if is_broken(&e) => {
                    self.con = None;
                    let w = *window.get_or_insert_with(|| Instant::now() + self.client.reconnect);
                    if let Some(e) = over(w, self.client.error("connection lost to", &e)) {
                        return Err(e);
                    }
                }
                Err(e) if is_transient(&e) => {
                    let w = *window.get_or_insert_with(|| Instant::now() + self.client.reconnect);
                    if let Some(e) = over(w, self.client.error("server not ready at", &e)) {
                        return Err(e);
                    }
                    std::thread::sleep(left().map_or(pause, |l| pause.min(l)));
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(e) => {
                    let err = self.client.error("command failed at", &e);
                    return Err(if refuses(&e) { note_refusal(err) } else { err });
                }
            }
        }
    }
}

impl Conn {
    /// Runs `f` once, with at most one fresh connection and no waiting: for destructors,
    /// which must not block for a reconnect window.
    pub(crate) fn run_once<T>(
        &mut self,
        mut f: impl FnMut(&mut Wire) -> RedisResult<T>,
    ) -> Result<T> {
        if self.con.is_none() {
            self.con = Some(self.client.wire()?);
            self.opened = true;
        }
        let con = self.con.as_mut().ok_or(Error::Closed)?;
        // A call with a deadline may have left a shorter read timeout.
        let r = match con.set_io_timeout(READ_TIMEOUT) {
            Ok(()) => f(con),
            Err(e) => Err(e),
        };
        r.map_err(|e| {
            if is_broken(&e) {
                self.con = None;
            }
            let err = self.client.error("command failed at", &e);
            if refuses(&e) { note_refusal(err) } else { err }
        })
    }
}

/// 16 random bytes as 32 hex digits: consumer ids, lock tokens, task ids.
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 16];
    // The OS's random source failing is not a state this library can act on; fall back to
    // time and pid, still unique per process and call.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = (t ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A handle's connections: a call takes one (or opens one when all are busy) and gives it
/// back, so a command that blocks on the server (`BLMOVE`, a lock's wait) never holds the
/// connection that another thread's `put` needs, while a single thread reuses one connection
/// and connects once.
pub(crate) struct Pool {
    client: Client,
    idle: std::sync::Mutex<Vec<Conn>>,
}

/// Idle connections a pool keeps; more (after a burst of threads) are closed.
const POOL_KEEP: usize = 4;

impl Pool {
    /// A pool holding one live connection (so opening a handle still checks the server).
    pub(crate) fn new(client: &Client) -> Result<Pool> {
        Ok(Pool {
            idle: std::sync::Mutex::new(vec![client.conn()?]),
            client: client.clone(),
        })
    }

    /// A pooled connection, or a new one that connects on its first command (within that
    /// command's deadline).
    fn take(&self) -> Result<Conn> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        Ok(pooled.unwrap_or_else(|| self.client.conn_lazy()))
    }

    fn give(&self, c: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_KEEP {
            idle.push(c);
        }
    }

    /// Runs `f` on a connection of its own (see [`Conn::run`] for the reconnects); the
    /// connection is given back afterwards.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut c = self.take()?;
        let r = f(&mut c);
        self.give(c);
        r
    }

    /// Like [`with`](Pool::with) around [`Conn::run`].
    pub(crate) fn run<T>(&self, f: impl FnMut(&mut Wire) -> RedisResult<T>) -> Result<T> {
        self.with(|c| c.run(f))
    }

    /// Like [`with`](Pool::with) around [`Conn::run_once`]: for destructors.
    pub(crate) fn run_once<T>(&self, f: impl FnMut(&mut Wire) -> RedisResult<T>) -> Result<T> {
        self.with(|c| c.run_once(f))
    }
}

/// The TLS query parameters of a URL (`cacert`, `cert`, `key`: see [`Client`]).
#[derive(Default)]
struct TlsFiles {
    ca: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

impl TlsFiles {
    fn of(url: &str) -> std::result::Result<TlsFiles, String> {
        let mut f = TlsFiles::default();
        let Some(parsed) = redis::parse_redis_url(url) else {
            return Ok(f);
        };
        for (name, value) in parsed.query_pairs() {
            let slot = match name.as_ref() {
                "cacert" => &mut f.ca,
                "cert" => &mut f.cert,
                "key" => &mut f.key,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        if f.cert.is_some() != f.key.is_some() {
            return Err("a client certificate needs both cert=PATH and key=PATH".into());
        }
        Ok(f)
    }

    fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// Reads the files: the configuration of this crate's socket, and the same certificates
    /// for the `redis` crate's connections.
    fn load(
        &self,
    ) -> std::result::Result<(Arc<rustls::ClientConfig>, redis::TlsCertificates), String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let read = |what: &str, path: &str| {
            std::fs::read(path).map_err(|e| format!("cannot read the {what} file {path:?}: {e}"))
        };
        let certs = |what: &str, path: &str, pem: &[u8]| {
            let all = CertificateDer::pem_slice_iter(pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| format!("bad {what} file {path:?}: {e}"))?;
            if all.is_empty() {
                return Err(format!("no certificate in the {what} file {path:?}"));
            }
            Ok(all)
        };
        let provider = Arc::new(crypto_provider());
        // The `redis` crate's connections build their configuration with the process's
        // default provider: make it this one where the program chose none.
        let _ = crypto_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        let root_pem = match &self.ca {
            Some(path) => {
                let pem = read("cacert", path)?;
                for c in certs("cacert", path, &pem)? {
                    roots
                        .add(c)
                        .map_err(|e| format!("bad certificate in {path:?}: {e}"))?;
                }
                Some(pem)
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    // A system certificate rustls cannot use is skipped, as browsers do.
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    return Err("no cacert=PATH given and no system certificate found".into());
                }
                None
            }
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let (config, client_tls) = match (&self.cert, &self.key) {
            (Some(cert_path), Some(key_path)) => {
                let cert_pem = read("cert", cert_path)?;
                let key_pem = read("key", key_path)?;
                let chain = certs("cert", cert_path, &cert_pem)?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem)
                    .map_err(|e| format!("no private key in the key file {key_path:?}: {e}"))?;
                let config = builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("bad client certificate or key: {e}"))?;
                let client = redis::ClientTlsConfig {
                    client_cert: cert_pem,
                    client_key: key_pem,
                };
                (config, Some(client))
            }
            _ => (builder.with_no_client_auth(), None),
        };
        Ok((
            Arc::new(config),
            redis::TlsCertificates {
                client_tls,
                root_cert: root_pem,
            },
        ))
    }
}

/// `d` in whole milliseconds for Redis (`PX`, `PEXPIRE`, a heartbeat's interval), at most
/// ~136 years: longer is for ever in practice, and a plain cast would wrap a longer one
/// (`Duration::MAX`) into an arbitrary, possibly tiny, lease or expiry.
pub(crate) fn redis_millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u32::MAX) * 1000) as u64
}
