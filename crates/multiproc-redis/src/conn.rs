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

use crate::socket::Wire;
use multiproc_sync::{Error, Result};
use redis::{ErrorKind, RedisError, RedisResult};
use std::fmt;
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
/// Cheap to clone. The URL is `redis://[user:password@]host[:port][/db]`,
/// `rediss://…` is not supported (no TLS in this build), `unix:///path/to/redis.sock[?db=N]`
/// for a Unix socket.
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
        let inner = redis::Client::open(url)
            .map_err(|e| Error::Redis(format!("bad redis url {shown:?}: {e}")))?;
        Ok(Client {
            inner,
            shown,
            reconnect: DEFAULT_RECONNECT,
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
        self.reconnect = window;
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
        redis::cmd("PING")
            .query::<()>(&mut con)
            .map_err(|e| self.error("cannot talk to", &e))?;
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
        self.wire_within(None)
    }

    /// Like [`wire`](Client::wire), taking at most about `left` (when given) to connect and
    /// to hear the PING answered.
    fn wire_within(&self, left: Option<Duration>) -> Result<Wire> {
        let cap = |d: Duration| {
            left.map_or(d, |l| (l + GRACE).min(d))
                .max(Duration::from_millis(1))
        };
        let mut wire = Wire::connect(
            self.inner.get_connection_info(),
            cap(Duration::from_secs(5)),
            cap(READ_TIMEOUT),
        )
        .map_err(|e| self.error("cannot connect to", &e))?;
        redis::cmd("PING")
            .query::<()>(&mut wire)
            .map_err(|e| self.error("cannot talk to", &e))?;
        Ok(wire)
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
                    Err(e) => {
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
                Err(e) => return Err(self.client.error("command failed at", &e)),
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
            self.client.error("command failed at", &e)
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
