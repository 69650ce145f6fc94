//! The server process: one thread per client connection, objects in a table, each behind its
//! own lock (a slow user method holds up only its own object).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indexmap::IndexMap;
use multiproc_ipc::{Connection, Queue};
use multiproc_spawn::fnref::FnRef;
use multiproc_sync::{Error, Result};
use parking_lot::{Condvar, Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::calls::{self, ERR, OK, Reader, WireError, kind, op, put_bytes, put_varint};
use crate::number;
use crate::served::{Ctor, DynServed};
use crate::sys;

/// What the server process is started with.
#[derive(Serialize, Deserialize)]
pub(crate) struct ServerArgs {
    pub(crate) registry: Queue<Connection<()>>,
    /// Registered user types: type id and constructor.
    pub(crate) types: Vec<(String, FnRef)>,
}

enum Object {
    /// Dicts and namespaces: encoded key to encoded value, in insertion order.
    Dict(IndexMap<Vec<u8>, Vec<u8>>),
    List(Vec<Vec<u8>>),
    Value(Vec<u8>),
    User(Box<dyn DynServed>),
}

struct Server {
    objects: RwLock<HashMap<u64, Arc<Mutex<Object>>>>,
    next_id: AtomicU64,
    types: HashMap<String, Ctor>,
    /// Live connections, whether shutdown was asked for, and whether any connection was ever
    /// taken (set by the accept loop itself: the main thread, woken only when a connection
    /// ends, may never see the count above zero when they all end at once).
    life: Mutex<(usize, bool, bool)>,
    changed: Condvar,
}

/// The server process's main function.
pub(crate) fn serve(args: ServerArgs) {
    let mut types = HashMap::new();
    for (name, f) in args.types {
        // SAFETY: the parent made every `FnRef` here from a `Ctor` (`served::construct::<T>`)
        // of this same executable (a child multiproc starts checks it runs the identical
        // binary), so the address is that function's.
        let ctor = unsafe { std::mem::transmute::<usize, Ctor>(f.address()) };
        types.insert(name, ctor);
    }
    let server = Arc::new(Server {
        objects: RwLock::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        types,
        life: Mutex::new((0, false, false)),
        changed: Condvar::new(),
    });
    let registry = args.registry;
    {
        let server = Arc::clone(&server);
        let registry = registry.clone();
        std::thread::Builder::new()
            .name("manager-accept".to_owned())
            .spawn(move || server.accept_loop(&registry))
            .expect("the manager server could not start its accepting thread");
    }
    let mut life = server.life.lock();
    // Ends on shutdown, or once the last connection has gone (the first one, the Manager's
    // own, is made right after start-up: wait for it).
    loop {
        if life.1 || (life.0 == 0 && life.2 && registry.qsize() == 0) {
            break;
        }
        server.changed.wait(&mut life);
    }
}

/// Descriptors the accept loop keeps in reserve and frees just before it takes the next
/// connection. A connection brings 6 (two rings, each a segment and a two-socket descriptor
/// channel); were there no room for them, the kernel would drop them with the message, the
/// connection would be lost and its client would wait for its greeting for ever.
const RESERVE: usize = 8;

/// Most time the accept loop waits after failures in a row (so that an error that repeats
/// at once costs no busy loop).
const MAX_BACKOFF: Duration = Duration::from_millis(100);

impl Server {
    /// Takes connections from the registry for as long as the server lives. One failure (a
    /// connection whose descriptors were lost, a thread that could not start) is logged and
    /// ends nothing: the loop keeps serving, as Python's accepter does after an `OSError`.
    ///
    /// At its descriptor limit the server still takes each connection (into the room its
    /// reserve left) and answers it with an `Err(Io)` that names `RLIMIT_NOFILE`, so that no
    /// client waits for a connection the server cannot serve.
    fn accept_loop(self: &Arc<Self>, registry: &Queue<Connection<()>>) {
        let mut reserve = Vec::with_capacity(RESERVE);
        refill(&mut reserve);
        let mut failures = 0u32;
        loop {
            reserve.clear();
            let got = registry.get();
            // Without a full reserve again, the next connection might not fit: refuse this
            // one (freeing its descriptors) rather than lose the next.
            let at_limit = !refill(&mut reserve);
            let conn = match got {
                Ok(conn) => conn,
                Err(Error::Closed) => {
                    tracing::debug!("the manager's registry has no holders left: accepting ends");
                    return;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(
                        error = %e,
                        "the manager server could not take a new connection; it keeps accepting"
                    );
                    std::thread::sleep(
                        MAX_BACKOFF.min(Duration::from_millis(u64::from(failures) * 10)),
                    );
                    continue;
                }
            };
            failures = 0;
            if at_limit {
                refuse(conn, out_of_descriptors());
                refill(&mut reserve);
                continue;
            }
            {
                let mut life = self.life.lock();
                life.0 += 1;
                life.2 = true;
            }
            // The connection goes to its thread through this slot, so that it can still be
            // refused if the thread cannot start.
            let slot = Arc::new(Mutex::new(Some(conn)));
            let (s, theirs) = (Arc::clone(self), Arc::clone(&slot));
            let started = std::thread::Builder::new()
                .name("manager-client".to_owned())
                .spawn(move || {
                    if let Some(conn) = theirs.lock().take() {
                        s.serve_connection(conn);
                    }
                });
            if let Err(e) = started {
                tracing::warn!(error = %e, "the manager server could not start a client thread");
                if let Some(conn) = slot.lock().take() {
                    refuse(conn, WireError::from(&Error::Io(e)));
                }
                self.connection_ended();
            }
        }
    }

    fn connection_ended(&self) {
        self.life.lock().0 -= 1;
        self.changed.notify_all();
    }

    fn serve_connection(&self, conn: Connection<()>) {
        let mut out = Vec::with_capacity(256);
        if conn.send_bytes(&[OK]).is_ok() {
            while let Ok(req) = conn.recv_bytes() {
                out.clear();
                let shutdown = req.first() == Some(&op::SHUTDOWN);
                match catch_unwind(AssertUnwindSafe(|| self.handle(&req, &mut out))) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => error_answer(&mut out, &e),
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "a method panicked".to_owned());
                        error_answer(&mut out, &Error::TaskFailed { message });
                    }
                }
                if conn.send_bytes(&out).is_err() {
                    break;
                }
                if shutdown {
                    self.life.lock().1 = true;
                    self.changed.notify_all();
                }
            }
        }
        // The client dropped its end or died (mid-call too: its answer is simply not read).
        drop(conn);
        self.connection_ended();
    }

    fn object(&self, id: u64) -> Result<Arc<Mutex<Object>>> {
        self.objects
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("the manager holds no object {id}")))
    }

    fn handle(&self, req: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut r = Reader::new(req);
        let method = r.byte()?;
        let id = r.varint()?;
        out.push(OK);
        match method {
            op::CREATE => return self.create(&mut r, out),
            op::SHUTDOWN => return Ok(()),
            op::CLIENTS => {
                put_varint(out, self.life.lock().0 as u64);
                return Ok(());
            }
            _ => {}
        }
        let obj = self.object(id)?;
        let mut obj = obj.lock();
        match (&mut *obj, method) {
            (Object::Dict(d), op::LEN) => put_varint(out, d.len() as u64),
            (Object::List(l), op::LEN) => put_varint(out, l.len() as u64),
            (Object::Dict(d), op::CLEAR) => d.clear(),
            (Object::List(l), op::CLEAR) => l.clear(),
            (Object::Dict(d), op::DICT_GET) => option(out, d.get(r.bytes()?)),
            (Object::Dict(d), op::DICT_INSERT) => {
                let k = r.bytes()?.to_vec();
                let v = r.bytes()?.to_vec();
                option(out, d.insert(k, v).as_ref());
            }
            (Object::Dict(d), op::DICT_REMOVE) => option(out, d.shift_remove(r.bytes()?).as_ref()),
            (Object::Dict(d), op::DICT_CONTAINS) => out.push(u8::from(d.contains_key(r.bytes()?))),
            (Object::Dict(d), op::DICT_KEYS) => blobs(out, d.len(), d.keys()),
            (Object::Dict(d), op::DICT_VALUES) => blobs(out, d.len(), d.values()),
            (Object::Dict(d), op::DICT_ITEMS) => {
                put_varint(out, d.len() as u64);
                for (k, v) in d.iter() {
                    put_bytes(out, k);
                    put_bytes(out, v);
                }
            }
            (Object::Dict(d), op::DICT_UPDATE) => {
                let n = r.varint()?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push((r.bytes()?.to_vec(), r.bytes()?.to_vec()));
                }
                d.extend(items);
            }
            (Object::Dict(d), op::DICT_UPDATE_WITH) => {
                let num = r.byte()?;
                let code = r.byte()?;
                let key = r.bytes()?;
                let default = r.bytes()?;
                let operand = r.bytes()?;
                let new =
                    number::apply(num, d.get(key).map(Vec::as_slice), default, code, operand)?;
                put_bytes(out, &new);
                match d.get_mut(key) {
                    Some(v) => *v = new,
                    None => {
                        d.insert(key.to_vec(), new);
                    }
                }
            }
            (Object::List(l), op::LIST_PUSH) => l.push(r.bytes()?.to_vec()),
            (Object::List(l), op::LIST_POP) => option(out, l.pop().as_ref()),
            (Object::List(l), op::LIST_GET) => {
                option(out, index(r.varint()?, l.len()).map(|i| &l[i]))
            }
            (Object::List(l), op::LIST_SET) => {
                let i = index(r.varint()?, l.len()).ok_or_else(out_of_range)?;
                l[i] = r.bytes()?.to_vec();
            }
            (Object::List(l), op::LIST_INSERT) => {
                let i = usize::try_from(r.varint()?)
                    .unwrap_or(usize::MAX)
                    .min(l.len());
                l.insert(i, r.bytes()?.to_vec());
            }
            (Object::List(l), op::LIST_EXTEND) => {
                let n = r.varint()?;
                for _ in 0..n {
                    l.push(r.bytes()?.to_vec());
                }
            }
            (Object::List(l), op::LIST_TO_VEC) => blobs(out, l.len(), l.iter()),
            (Object::List(l), op::LIST_REVERSE) => l.reverse(),
            (Object::Value(v), op::VALUE_GET) => put_bytes(out, v),
            (Object::Value(v), op::VALUE_SET) => *v = r.bytes()?.to_vec(),
            (Object::User(u), op::USER_CALL) => {
                let method = std::str::from_utf8(r.bytes()?)
                    .map_err(|_| Error::Codec("method name is not UTF-8".to_owned()))?;
                let answer = u.call(method, r.bytes()?)?;
                out.extend_from_slice(&answer);
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "object {id} has no method {method} (a proxy of another type?)"
                )));
            }
        }
        Ok(())
    }

    fn create(&self, r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<()> {
        let object = match r.byte()? {
            kind::DICT | kind::NAMESPACE => Object::Dict(IndexMap::new()),
            kind::LIST => Object::List(Vec::new()),
            kind::VALUE => Object::Value(r.bytes()?.to_vec()),
            kind::USER => {
                let name = std::str::from_utf8(r.bytes()?)
                    .map_err(|_| Error::Codec("type id is not UTF-8".to_owned()))?;
                let ctor = self.types.get(name).ok_or_else(|| {
                    Error::Invalid(format!("no type registered with the manager as {name:?}"))
                })?;
                Object::User(ctor(r.bytes()?)?)
            }
            k => return Err(Error::Codec(format!("unknown object kind {k}"))),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.objects
            .write()
            .insert(id, Arc::new(Mutex::new(object)));
        put_varint(out, id);
        Ok(())
    }
}

/// Tops the descriptor reserve up to [`RESERVE`]; `false` when the process is at its limit.
fn refill(reserve: &mut Vec<std::os::fd::OwnedFd>) -> bool {
    while reserve.len() < RESERVE {
        match sys::spare_fd() {
            Ok(fd) => reserve.push(fd),
            Err(_) => return false,
        }
    }
    true
}

/// Why a connection is refused at the descriptor limit.
fn out_of_descriptors() -> WireError {
    let limit = sys::nofile_soft_limit().map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    tracing::warn!(
        limit,
        "the manager server is at its descriptor limit: a client is refused"
    );
    WireError::Io(
        sys::EMFILE,
        format!(
            "the manager server has no descriptors left for a new connection: too many open \
             files (RLIMIT_NOFILE soft limit {limit}); retry once other clients have gone, or \
             raise the limit of the process that starts the manager"
        ),
    )
}

/// Answers a new connection's greeting with an error and closes it.
fn refuse(conn: Connection<()>, why: WireError) {
    let mut out = vec![ERR];
    out.extend_from_slice(&calls::encode(&why).unwrap_or_default());
    // A client already gone needs no answer.
    let _ = conn.send_bytes(&out);
}

fn out_of_range() -> Error {
    Error::Invalid("list index out of range".to_owned())
}

fn index(i: u64, len: usize) -> Option<usize> {
    usize::try_from(i).ok().filter(|&i| i < len)
}

fn option(out: &mut Vec<u8>, v: Option<&Vec<u8>>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v);
        }
    }
}

fn blobs<'a>(out: &mut Vec<u8>, n: usize, items: impl Iterator<Item = &'a Vec<u8>>) {
    put_varint(out, n as u64);
    for b in items {
        put_bytes(out, b);
    }
}

fn error_answer(out: &mut Vec<u8>, e: &Error) {
    out.clear();
    out.push(ERR);
    let encoded = calls::encode(&WireError::from(e)).unwrap_or_default();
    out.extend_from_slice(&encoded);
}
