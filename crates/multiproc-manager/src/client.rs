//! The client side: one connection per process and server (a request/answer pair of
//! shared-memory rings: a [`Pipe`]), made lazily by the first proxy call of a process, and
//! shared by every proxy of that process under a lock.

use std::sync::{Arc, Weak};
use std::time::Duration;

use multiproc_ipc::{Connection, Pipe, Queue};
use multiproc_sync::{Error, Result};
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sys;
use crate::wire::{ERR, WireError, decode, put_varint};

/// How to reach a server: its registration queue, and its identity for liveness checks.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Addr {
    pub(crate) registry: Queue<Connection<()>>,
    pub(crate) pid: u32,
    pub(crate) start: u64,
}

impl Addr {
    fn server_alive(&self) -> bool {
        sys::start_time(self.pid) == Some(self.start)
    }
}

struct Conn {
    pipe: Connection<()>,
    buf: Vec<u8>,
}

/// This process's connection to one server.
pub(crate) struct Client {
    pub(crate) addr: Addr,
    pid: u32,
    conn: Mutex<Option<Conn>>,
}

/// Clients of this process, by server (weak: the last proxy dropped closes the connection).
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
            conn: Mutex::new(None),
        });
        all.push(Arc::downgrade(&c));
        c
    }

    fn connect(&self) -> Result<Conn> {
        let (mine, theirs) = Pipe::duplex::<()>()?;
        self.addr.registry.put(theirs)?;
        loop {
            match mine.recv_bytes_timeout(CONNECT_POLL) {
                // The server refused the connection (out of descriptors…): say why.
                Ok(greeting) if greeting.first() == Some(&ERR) => {
                    return Err(decode::<WireError>(&greeting[1..])?.into());
                }
                Ok(_) => {
                    return Ok(Conn {
                        pipe: mine,
                        buf: Vec::with_capacity(256),
                    });
                }
                Err(Error::Timeout) if self.addr.server_alive() => {}
                Err(Error::Timeout) => return Err(Error::Closed),
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes sure this process is connected (answers `Err(Closed)` when the server is gone).
    pub(crate) fn ensure_connected(&self) -> Result<()> {
        let mut conn = self.conn.lock();
        if conn.is_none() {
            *conn = Some(self.connect()?);
        }
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
        let mut guard = self.conn.lock();
        if guard.is_none() {
            *guard = Some(self.connect()?);
        }
        let conn = guard.as_mut().expect("connected above");
        conn.buf.clear();
        conn.buf.push(method);
        put_varint(&mut conn.buf, id);
        args(&mut conn.buf)?;
        conn.pipe.send_bytes(&conn.buf)?;
        let mut answer = conn.pipe.recv_bytes()?;
        drop(guard);
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

    #[inline]
    pub(crate) fn call(
        &self,
        method: u8,
        args: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<Vec<u8>> {
        if self.client.pid == sys::pid() {
            self.client.call(method, self.id, args)
        } else {
            // A copy made by `fork`: the parent's connection is not ours to use.
            Client::for_addr(&self.client.addr).call(method, self.id, args)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireProxy {
    addr: Addr,
    id: u64,
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        WireProxy {
            addr: self.client.addr.clone(),
            id: self.id,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = WireProxy::deserialize(d)?;
        Ok(Handle::new(Client::for_addr(&w.addr), w.id))
    }
}
