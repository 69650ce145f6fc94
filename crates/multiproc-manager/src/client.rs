//! The client side: connections to a server (each a request/answer pair of shared-memory
//! rings: a [`Pipe`]), made lazily, one per thread calling at once. A call checks an idle
//! connection out of its process's [`Client`] for the server, makes its round trip on it alone
//! and checks it back in, so that it waits only for its own answer (a slow method on one
//! object holds up no other thread of the process) and the connection of a thread that has
//! exited serves the next thread that calls.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use multiproc_ipc::{Connection, Pipe, Queue};
use multiproc_sync::{Error, Result};
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::calls::{ERR, WireError, decode, put_varint};
use crate::sys;

/// How to reach a server: its registration queue, and its identity for liveness checks.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Addr {
    pub(crate) registry: Queue<Connection<()>>,
    pub(crate) pid: u32,
    pub(crate) start: u64,
}

impl Addr {
    fn server_alive(&self) -> bool {
        sys::still_running(self.pid, self.start)
    }
}

struct Conn {
    pipe: Connection<()>,
    buf: Vec<u8>,
}

// `Client` holds connections behind a raw pointer, which the compiler does not check: a
// connection must be free to move between the threads that check it out.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<Conn>();
};

/// This process's connections to one server: the idle ones; a call in flight holds its own.
pub(crate) struct Client {
    pub(crate) addr: Addr,
    pid: u32,
    /// The idle connection checked in last (null when none): with one thread calling, every
    /// call takes it and puts it back here, one atomic swap each way and no lock.
    fast: AtomicPtr<Conn>,
    /// The other idle connections: those of threads that called at the same time (their
    /// number is the most threads that have called at once, not the threads that ever did).
    #[allow(
        clippy::vec_box,
        reason = "a connection moves between `fast` and here as the same box, unallocated"
    )]
    idle: Mutex<Vec<Box<Conn>>>,
    /// Set once a connection found the server gone: later calls answer `Err(Closed)` at once.
    gone: AtomicBool,
}

/// Clients of this process, by server (weak: the last proxy dropped closes the connections).
static CLIENTS: Mutex<Vec<Weak<Client>>> = Mutex::new(Vec::new());

/// How often a client waiting for a new connection's greeting checks that the server lives.
const CONNECT_POLL: Duration = Duration::from_millis(20);

impl Client {
    /// This process's client for the server at `addr` (not yet connected when new).
    pub(crate) fn for_addr(addr: &Addr) -> Arc<Client> {
        let me = sys::pid();
        let mut all = CLIENTS.lock();
        all.retain(|w| w.upgrade().is_some_and(|c| c.pid == me));
        if let Some(c) = all
            .iter()
            .filter_map(Weak::upgrade)
            .find(|c| c.addr.pid == addr.pid && c.addr.start == addr.start)
        {
            return c;
        }
        let c = Arc::new(Client {
            addr: addr.clone(),
            pid: me,
            fast: AtomicPtr::new(ptr::null_mut()),
            idle: Mutex::new(Vec::new()),
            gone: AtomicBool::new(false),
        });
        all.push(Arc::downgrade(&c));
        c
    }

    fn connect(&self) -> Result<Box<Conn>> {
        let (mine, theirs) = Pipe::duplex::<()>()?;
        self.addr.registry.put(theirs)?;
        loop {
            match mine.recv_bytes_timeout(CONNECT_POLL) {
                // The server refused the connection (out of descriptors…): say why.
                Ok(greeting) if greeting.first() == Some(&ERR) => {
                    return Err(decode::<WireError>(&greeting[1..])?.into());
                }
                Ok(_) => {
                    return Ok(Box::new(Conn {
                        pipe: mine,
                        buf: Vec::with_capacity(256),
                    }));
                }
                Err(Error::Timeout) if self.addr.server_alive() => {}
                Err(Error::Timeout) => return Err(Error::Closed),
                Err(e) => return Err(e),
            }
        }
    }

    /// An idle connection, or a new one when every connection is in use by another thread.
    #[inline]
    fn check_out(&self) -> Result<Box<Conn>> {
        let p = self.fast.swap(ptr::null_mut(), Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: a non-null `fast` is always a pointer from `Box::into_raw` (`check_in`),
            // and the swap took it out, so that this thread alone owns it now.
            return Ok(unsafe { Box::from_raw(p) });
        }
        self.check_out_slow()
    }

    #[cold]
    fn check_out_slow(&self) -> Result<Box<Conn>> {
        if let Some(c) = self.idle.lock().pop() {
            return Ok(c);
        }
        if self.gone.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        self.connect().inspect_err(|e| self.failed(e))
    }

    /// Puts a connection that is ready for its next request back among the idle ones.
    #[inline]
    fn check_in(&self, conn: Box<Conn>) {
        let p = Box::into_raw(conn);
        // (On failure the exchange answers the pointer already there, not ours: keep `p`.)
        let taken =
            self.fast
                .compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed);
        if taken.is_err() {
            // SAFETY: `p` came from `Box::into_raw` above and the exchange failed, so that
            // `fast` never held it: this thread still owns it.
            self.idle.lock().push(unsafe { Box::from_raw(p) });
        }
    }

    /// Notes a failed connection or round trip: a closed one means the server is gone.
    fn failed(&self, e: &Error) {
        if matches!(e, Error::Closed) {
            self.gone.store(true, Ordering::Relaxed);
        }
    }

    /// Makes sure this process has a connection (answers `Err(Closed)` when the server is
    /// gone).
    pub(crate) fn ensure_connected(&self) -> Result<()> {
        let conn = self.check_out()?;
        self.check_in(conn);
        Ok(())
    }

    /// One call: `method` on object `id`, with `args` appending the arguments; the answer
    /// after its status byte.
    pub(crate) fn call(
        &self,
        method: u8,
        id: u64,
        args: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<Vec<u8>> {
        let mut conn = self.check_out()?;
        conn.buf.clear();
        conn.buf.push(method);
        put_varint(&mut conn.buf, id);
        if let Err(e) = args(&mut conn.buf) {
            // Nothing was sent: the connection is as good as before.
            self.check_in(conn);
            return Err(e);
        }
        let sent = conn.pipe.send_bytes(&conn.buf);
        let mut answer = match sent.and_then(|()| conn.pipe.recv_bytes()) {
            Ok(answer) => {
                self.check_in(conn);
                answer
            }
            Err(e) => {
                // A connection whose round trip broke off is closed, not reused: its next
                // answer might be this call's.
                self.failed(&e);
                return Err(e);
            }
        };
        match answer.first() {
            Some(&ERR) => Err(decode::<WireError>(&answer[1..])?.into()),
            Some(_) => {
                answer.remove(0);
                Ok(answer)
            }
            None => Err(Error::Codec("empty answer from the manager".to_owned())),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let p = *self.fast.get_mut();
        if !p.is_null() {
            // SAFETY: a non-null `fast` is a pointer from `Box::into_raw` that no thread has
            // taken out (`&mut self`: no call is under way).
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// What every proxy holds: the client of its server in this process and the object's id.
#[derive(Clone)]
pub(crate) struct Handle {
    client: Arc<Client>,
    pub(crate) id: u64,
}

impl Handle {
    pub(crate) fn new(client: Arc<Client>, id: u64) -> Handle {
        Handle { client, id }
    }

    /// One call on this object; `args` encodes its arguments with this object's server as
    /// the one values are stored in (so proxies of that server inside them travel as ids).
    #[inline]
    pub(crate) fn call(
        &self,
        method: u8,
        args: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<Vec<u8>> {
        if self.client.pid == sys::pid() {
            stored::within(&self.client, || self.client.call(method, self.id, args))
        } else {
            // A copy made by `fork`: the parent's connection is not ours to use.
            let client = Client::for_addr(&self.client.addr);
            stored::within(&client, || client.call(method, self.id, args))
        }
    }

    /// Runs `decode` on an answer of this object's server: proxies stored there come back as
    /// proxies to the same server objects.
    #[inline]
    pub(crate) fn reading<T>(&self, decode: impl FnOnce() -> Result<T>) -> Result<T> {
        stored::within(&self.client, decode)
    }
}

/// Proxies inside values that a manager stores (Python's nested proxies, 3.6+): a proxy of the
/// server a value goes to (or comes from) travels as its object id alone, so the server keeps
/// it as plain bytes and any process that reads it back gets a proxy to the same object.
/// Between processes (spawn arguments, queue items) a proxy travels with its server's address.
mod stored {
    use super::Client;
    use std::cell::RefCell;
    use std::sync::Arc;

    thread_local! {
        /// The server whose call this thread is encoding or decoding, if any.
        static SERVER: RefCell<Option<Arc<Client>>> = const { RefCell::new(None) };
    }

    /// Restores the previous server when dropped (a panicking encoder included).
    struct Restore(Option<Arc<Client>>);

    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            SERVER.with(|s| *s.borrow_mut() = prev);
        }
    }

    /// Runs `f` with `client`'s server as the one values are stored in.
    pub(super) fn within<R>(client: &Arc<Client>, f: impl FnOnce() -> R) -> R {
        let prev = SERVER.with(|s| s.replace(Some(Arc::clone(client))));
        let _restore = Restore(prev);
        f()
    }

    /// The server values are being stored in or read from now, if any.
    pub(super) fn server() -> Option<Arc<Client>> {
        SERVER.with(|s| s.borrow().clone())
    }
}

#[derive(Serialize, Deserialize)]
enum WireProxy {
    /// Between processes: the server's address, and the object.
    Remote { addr: Addr, id: u64 },
    /// Inside a value stored in that server: the server's identity, and the object.
    Stored { pid: u32, start: u64, id: u64 },
}

impl Addr {
    fn same_server(&self, other: &Addr) -> bool {
        self.pid == other.pid && self.start == other.start
    }
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let wire = match stored::server() {
            Some(server) if server.addr.same_server(&self.client.addr) => WireProxy::Stored {
                pid: self.client.addr.pid,
                start: self.client.addr.start,
                id: self.id,
            },
            // A proxy of another manager cannot be stored here: its address holds descriptors.
            Some(_) => {
                return Err(serde::ser::Error::custom(
                    "a proxy of another manager cannot be stored in this one",
                ));
            }
            None => WireProxy::Remote {
                addr: self.client.addr.clone(),
                id: self.id,
            },
        };
        wire.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match WireProxy::deserialize(d)? {
            WireProxy::Remote { addr, id } => Ok(Handle::new(Client::for_addr(&addr), id)),
            WireProxy::Stored { pid, start, id } => match stored::server() {
                Some(server) if server.addr.pid == pid && server.addr.start == start => {
                    Ok(Handle::new(server, id))
                }
                _ => Err(serde::de::Error::custom(
                    "a proxy stored in a manager was read outside that manager's answer",
                )),
            },
        }
    }
}
