//! [`Wire`]: the connection this crate's own types talk through, a `redis` crate
//! [`ConnectionLike`] that polls its socket for a moment before it sleeps.
//!
//! Why not `redis::Connection`: its reads block at once. A reply from a local server comes
//! back in ~20 µs, but a reader that went to sleep is woken through the scheduler, and on a
//! virtual machine whose idle vCPUs halt that wake-up costs more than the round trip itself
//! (a PING between two vCPUs took 46 µs blocking and 20 µs polling on the 2-vCPU test
//! machine). So every read first polls the non-blocking socket for [`SPIN`], yielding the CPU
//! between polls, then blocks like any client. The bytes
//! on the wire are the `redis` crate's own: commands come packed by [`redis::Cmd`] and
//! [`redis::Pipeline`], replies are parsed by [`redis::Parser`]; only the socket is ours.
//!
//! Over TLS (`rediss://`) the socket is wrapped in a rustls client connection
//! ([`rustls::StreamOwned`]) and everything above stays the same: a read that finds no
//! complete TLS record yet answers "would block" like the bare socket, so the spin and the
//! switch to a blocking read work unchanged; the handshake runs blocking within the connect
//! timeout, and the certificate is checked against the host name (or IP address) of the URL.
//!
//! Commands are sent as RESP2 and a connection only authenticates and selects its database
//! (no `CLIENT SETINFO`, no RESP3 push messages), which is all this crate's types need. Users
//! who want the full client get a plain `redis::Connection` from
//! [`Client::raw_connection`](crate::Client::raw_connection).

use redis::{ConnectionAddr, ConnectionInfo, ConnectionLike, ErrorKind, RedisResult, Value};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a read polls the socket before it blocks: long enough to cover a round trip to a
/// local server and a short task's result (~20-80 µs), short enough that an idle consumer
/// burns next to nothing (once per blocking command, which waits up to a second).
const SPIN: Duration = Duration::from_micros(150);

/// A TLS connection over TCP.
type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The socket: TCP, TLS over TCP or, where there are any, a Unix socket.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    #[cfg(unix)]
    Unix(UnixStream),
}

fn set_tcp_timeouts(s: &TcpStream, t: Duration) -> io::Result<()> {
    s.set_read_timeout(Some(t))?;
    s.set_write_timeout(Some(t))
}

impl Stream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Tls(s) => s.sock.set_nonblocking(on),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }

    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => set_tcp_timeouts(s, t),
            Stream::Tls(s) => set_tcp_timeouts(&s.sock, t),
            #[cfg(unix)]
            Stream::Unix(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
        }
    }

    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => match s.write(buf) {
                // rustls takes nothing while its buffer of records not yet sent is full (the
                // socket would block): wait as for a full socket.
                Ok(0) if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
                r => r,
            },
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }

    /// Sends what TLS still holds (nothing to do for a bare socket).
    fn flush_some(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }

    /// One blocking call of `op` (the socket is non-blocking between calls): after the spin,
    /// or when a large command fills the socket's buffer.
    fn blocking<T>(&mut self, op: impl FnOnce(&mut Stream) -> io::Result<T>) -> io::Result<T> {
        self.set_nonblocking(false)?;
        let r = op(self);
        self.set_nonblocking(true)?;
        r
    }
}

/// The reader the parser pulls from: spins, then blocks (see the module documentation). The
/// second field takes the alert of a server that refused this client's TLS certificate
/// (see [`refused_certificate`]).
struct Spinning<'a>(&'a mut Stream, &'a mut Option<String>);

/// The alert, when `e` is a TLS server refusing this client's certificate. Under TLS 1.3 the
/// server checks a client certificate after the client's side of the handshake is over, so
/// its refusal arrives with the first reply instead of failing the handshake.
fn refused_certificate(e: &io::Error) -> Option<String> {
    use rustls::AlertDescription as A;
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(
            alert @ (A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateRequired
            | A::HandshakeFailure),
        ) => Some(format!("{alert:?}")),
        _ => None,
    }
}

impl Read for Spinning<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.read_spinning(buf);
        if let Err(e) = &r
            && let Some(alert) = refused_certificate(e)
        {
            *self.1 = Some(alert);
        }
        r
    }
}

impl Spinning<'_> {
    fn read_spinning(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut started: Option<Instant> = None;
        loop {
            match self.0.read_some(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
            if started.get_or_insert_with(Instant::now).elapsed() >= SPIN {
                // A read timeout (the socket's, see `Wire::connect`) comes back as an error
                // and the caller replaces the connection, as with `redis::Connection`.
                return self.0.blocking(|s| {
                    loop {
                        match s.read_some(buf) {
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            r => break r,
                        }
                    }
                });
            }
            // Yield, not a pause instruction: on two vCPUs the server (or a worker of the same
            // machine) often wakes on this one, and a pure spin held the vCPU until the
            // scheduler's slice ran out (an executor task took 120 µs instead of 55).
            std::thread::yield_now();
        }
    }
}

/// A TCP connection to the first address of `host` that answers within `connect`.
fn tcp(host: &str, port: u16, connect: Duration) -> RedisResult<TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, connect) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => e.into(),
        None => (ErrorKind::InvalidClientConfig, "no address for host").into(),
    })
}

/// Whether the server at `host:port` answers a TLS client hello with a TLS record: a plain
/// `redis://` client that the server hung up on is then talking plaintext to a TLS port,
/// which retrying cannot mend (a server that restarts refuses the connection instead). The
/// probe sends a client hello (no certificate is checked: only the first bytes of the answer
/// count) and reads at most 5 bytes, within `t` for the connect and `t` for the answer.
pub(crate) fn speaks_tls(host: &str, port: u16, t: Duration) -> bool {
    let Ok(mut sock) = tcp(host, port, t) else {
        return false;
    };
    if set_tcp_timeouts(&sock, t).is_err() {
        return false;
    }
    let provider = Arc::new(crypto_provider());
    let Ok(builder) =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
    else {
        return false;
    };
    let config = builder
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    use rustls::pki_types::ServerName;
    // Any name will do: the probe stops before the certificate would be checked.
    let Ok(name) = ServerName::try_from(host.to_string())
        .or_else(|_| ServerName::try_from("localhost".to_string()))
    else {
        return false;
    };
    let Ok(mut conn) = rustls::ClientConnection::new(Arc::new(config), name) else {
        return false;
    };
    while conn.wants_write() {
        if conn.write_tls(&mut sock).is_err() {
            return false;
        }
    }
    // A TLS handshake record: content type 22, protocol major version 3.
    let mut head = [0u8; 2];
    sock.read_exact(&mut head).is_ok() && head == [0x16, 0x03]
}

/// The cryptography under TLS: *ring*, which builds with a C compiler alone (no system
/// OpenSSL, no CMake as aws-lc-rs needs). rustls marks it deprecated for lacking the
/// post-quantum key exchange; classical ECDHE is what Redis servers offer today.
#[allow(deprecated)]
pub(crate) fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The TLS handshake with `host` on `sock`, blocking, within `connect`. A certificate that
/// does not verify (or a server that refuses ours) is `InvalidClientConfig`, which is not
/// retried; a socket error stays an I/O error, which is.
fn handshake(
    host: &str,
    mut sock: TcpStream,
    config: &Arc<rustls::ClientConfig>,
    connect: Duration,
) -> RedisResult<TlsStream> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        redis::RedisError::from((
            ErrorKind::InvalidClientConfig,
            "not a TLS server name",
            format!("{host:?}: {e}"),
        ))
    })?;
    let mut conn = rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| {
        redis::RedisError::from((
            ErrorKind::InvalidClientConfig,
            "cannot start TLS",
            e.to_string(),
        ))
    })?;
    set_tcp_timeouts(&sock, connect)?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            // rustls reports its own failures (a certificate, an alert from the server) as
            // `InvalidData` with the rustls error inside.
            if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Err((
                    ErrorKind::InvalidClientConfig,
                    "TLS handshake failed",
                    format!("with {host}: {tls}"),
                )
                    .into());
            }
            return Err(e.into());
        }
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// A connection to one server (see the module documentation).
pub(crate) struct Wire {
    stream: Stream,
    parser: redis::Parser,
    db: i64,
    open: bool,
    /// The socket's read and write timeout now (set again only when it changes).
    io: Duration,
    /// The alert of a TLS server that refused this client's certificate (see [`Spinning`]).
    refused: Option<String>,
}

/// Test hook (see [`crate::__lose_next_blpop_reply`]): the next `BLPOP` reply that popped
/// something is read and then thrown away with the connection, as when a network cut kills
/// the connection after the server ran the command.
pub(crate) static LOSE_BLPOP_REPLY: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// How many replies the test hook [`LOSE_BLPOP_REPLY`] threw away.
pub(crate) static BLPOP_REPLIES_LOST: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Whether the test hook [`LOSE_BLPOP_REPLY`] takes this reply of `cmd`.
fn lose(cmd: &[u8], first_reply: Option<&Value>) -> bool {
    use std::sync::atomic::Ordering;
    LOSE_BLPOP_REPLY.load(Ordering::Relaxed)
        && cmd.windows(5).any(|w| w == b"BLPOP")
        && first_reply.is_some_and(|v| !matches!(v, Value::Nil))
        && LOSE_BLPOP_REPLY
            .compare_exchange(true, false, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

impl Wire {
    /// Connects, authenticates and selects the database that `info` names. `connect` bounds
    /// the TCP connect, `io` every read and write afterwards.
    /// `tls` is the configuration of a `rediss://` address (see [`crate::Client`]).
    pub(crate) fn connect(
        info: &ConnectionInfo,
        tls: Option<&Arc<rustls::ClientConfig>>,
        connect: Duration,
        io: Duration,
    ) -> RedisResult<Wire> {
        let stream = match (info.addr(), tls) {
            (ConnectionAddr::Tcp(host, port), _) => Stream::Tcp(tcp(host, *port, connect)?),
            (ConnectionAddr::TcpTls { host, port, .. }, Some(config)) => {
                let sock = tcp(host, *port, connect)?;
                Stream::Tls(Box::new(handshake(host, sock, config, connect)?))
            }
            #[cfg(unix)]
            (ConnectionAddr::Unix(path), _) => Stream::Unix(UnixStream::connect(path)?),
            _ => {
                return Err((
                    ErrorKind::InvalidClientConfig,
                    "only redis://, rediss:// (with its TLS settings) and unix:// addresses \
                     are supported",
                )
                    .into());
            }
        };
        stream.set_timeouts(io)?;
        stream.set_nonblocking(true)?;
        let settings = info.redis_settings();
        let mut wire = Wire {
            stream,
            parser: redis::Parser::new(),
            db: settings.db(),
            open: true,
            io,
            refused: None,
        };
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password);
            if let Err(e) = auth.query::<()>(&mut wire) {
                return Err(match e.kind() {
                    // WRONGPASS is no code the `redis` crate names: an `Extension`.
                    ErrorKind::Server(_) | ErrorKind::Extension => (
                        ErrorKind::AuthenticationFailed,
                        "the server refused the password",
                        e.to_string(),
                    )
                        .into(),
                    _ => e,
                });
            }
        }
        if wire.db != 0 {
            redis::cmd("SELECT").arg(wire.db).query::<()>(&mut wire)?;
        }
        Ok(wire)
    }

    /// Sets the socket's read and write timeout (a system call only when it changes): a call
    /// with a deadline bounds its reads by the time left.
    pub(crate) fn set_io_timeout(&mut self, t: Duration) -> RedisResult<()> {
        let t = t.max(Duration::from_millis(1));
        if t != self.io {
            self.stream.set_timeouts(t)?;
            self.io = t;
        }
        Ok(())
    }

    /// After the test hook took a reply: the connection is dropped, the reply lost.
    fn lost(&mut self) -> redis::RedisError {
        self.open = false;
        BLPOP_REPLIES_LOST.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        io::Error::from(io::ErrorKind::ConnectionReset).into()
    }

    fn send(&mut self, bytes: &[u8]) -> RedisResult<()> {
        let r = self.send_all(bytes).and_then(|()| {
            loop {
                match self.stream.flush_some() {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        break self.stream.blocking(|s| s.flush_some());
                    }
                    r => break r,
                }
            }
        });
        r.map_err(|e| {
            self.open = false;
            e.into()
        })
    }

    fn send_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = match self.stream.write_some(bytes) {
                Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The socket's buffer is full: a large item. Wait for the server to read.
                    self.stream.blocking(|s| s.write_some(bytes))
                }
                r => r,
            };
            bytes = &bytes[n?..];
        }
        Ok(())
    }

    fn recv(&mut self) -> RedisResult<Value> {
        let r = self
            .parser
            .parse_value(Spinning(&mut self.stream, &mut self.refused));
        if r.is_err() {
            // An I/O or protocol error leaves the stream at an unknown point of a reply.
            self.open = false;
            if let Some(alert) = self.refused.take() {
                // Not an outage: retrying cannot mend it (see `crate::conn`).
                return Err((
                    ErrorKind::InvalidClientConfig,
                    "TLS refused",
                    format!("the server refused this client's certificate (alert {alert})"),
                )
                    .into());
            }
        }
        r
    }

    fn live(&self) -> RedisResult<()> {
        if self.open {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::NotConnected).into())
        }
    }
}

impl ConnectionLike for Wire {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.live()?;
        self.send(cmd)?;
        let v = self.recv()?;
        if lose(cmd, Some(&v)) {
            return Err(self.lost());
        }
        Ok(v)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.live()?;
        self.send(cmd)?;
        let mut replies = Vec::with_capacity(count);
        let mut refused = None;
        for i in 0..offset + count {
            let v = self.recv()?;
            if i >= offset {
                replies.push(v);
            } else if matches!(v, Value::ServerError(_)) && refused.is_none() {
                // A command of a transaction the server refused to queue: EXEC aborts.
                refused = Some(v);
            }
        }
        if lose(cmd, replies.first()) {
            return Err(self.lost());
        }
        match refused.map(Value::extract_error) {
            Some(Err(e)) => Err(e),
            _ => Ok(replies),
        }
    }

    fn get_db(&self) -> i64 {
        self.db
    }

    fn check_connection(&mut self) -> bool {
        redis::cmd("PING").query::<String>(self).is_ok()
    }

    fn is_open(&self) -> bool {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire() -> Option<Wire> {
        let url = match crate::test_server_url() {
            Ok(url) => url,
            Err(e) => {
                multiproc_testkit::skip_this(&format!("no Redis server ({e})"));
                return None;
            }
        };
        let client = redis::Client::open(url.as_str()).unwrap();
        let t = Duration::from_secs(5);
        Some(Wire::connect(client.get_connection_info(), None, t, t).unwrap())
    }

    #[test]
    fn a_refused_transaction_is_an_error_and_the_connection_stays_in_step() {
        let Some(mut w) = wire() else { return };
        let key = format!("wire-tx-{}", std::process::id());
        let mut p = redis::pipe();
        // GET without its key is refused when queued, so EXEC aborts the whole transaction.
        p.atomic().cmd("SET").arg(&key).arg(1).ignore().cmd("GET");
        let e = p.query::<()>(&mut w).unwrap_err();
        // The error is the refused command's own, which says why.
        assert!(matches!(e.kind(), ErrorKind::Server(_)), "{e}");
        assert!(e.to_string().contains("wrong number of arguments"), "{e}");
        let set: Option<i64> = redis::cmd("GET").arg(&key).query(&mut w).unwrap();
        assert_eq!(set, None, "nothing of an aborted transaction runs");
        let pong: String = redis::cmd("PING").query(&mut w).unwrap();
        assert_eq!(pong, "PONG");
        assert!(w.is_open());
    }

    #[test]
    fn replies_of_a_pipeline_come_back_in_order() {
        let Some(mut w) = wire() else { return };
        let key = format!("wire-pipe-{}", std::process::id());
        let mut p = redis::pipe();
        for i in 0..1000 {
            p.cmd("RPUSH").arg(&key).arg(i);
        }
        let lens: Vec<i64> = p.query(&mut w).unwrap();
        assert_eq!(lens, (1..=1000).collect::<Vec<i64>>());
        let all: Vec<i64> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query(&mut w)
            .unwrap();
        assert_eq!(all, (0..1000).collect::<Vec<i64>>());
        redis::cmd("DEL").arg(&key).query::<()>(&mut w).unwrap();
    }
}
