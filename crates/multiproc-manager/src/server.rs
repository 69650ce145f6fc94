//! The server process: one thread per client connection, objects in a table, each behind its
//! own lock (a slow user method holds up only its own object).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indexmap::IndexMap;
use multiproc_ipc::{Connection, Queue};
use multiproc_spawn::fnref::FnRef;
use multiproc_sync::{Error, Result};
use parking_lot::{Condvar, Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::number;
use crate::served::{Ctor, DynServed};
use crate::wire::{self, ERR, OK, Reader, WireError, kind, op, put_bytes, put_varint};

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
    /// Live connections, and whether shutdown was asked for.
    life: Mutex<(usize, bool)>,
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
        life: Mutex::new((0, false)),
        changed: Condvar::new(),
    });
    let registry = args.registry;
    {
        let server = Arc::clone(&server);
        let registry = registry.clone();
        std::thread::Builder::new()
            .name("manager-accept".to_owned())
            .spawn(move || {
                while let Ok(conn) = registry.get() {
                    server.life.lock().0 += 1;
                    let s = Arc::clone(&server);
                    let started = std::thread::Builder::new()
                        .name("manager-client".to_owned())
                        .spawn(move || s.serve_connection(conn));
                    if started.is_err() {
                        server.connection_ended();
                    }
                }
            })
            .expect("the manager server could not start its accepting thread");
    }
    let mut life = server.life.lock();
    // Ends on shutdown, or once the last connection has gone (the first one, the Manager's
    // own, is made right after start-up: wait for it).
    let mut seen = false;
    loop {
        if life.1 {
            break;
        }
        if life.0 > 0 {
            seen = true;
        } else if seen && registry.qsize() == 0 {
            break;
        }
        server.changed.wait(&mut life);
    }
}

impl Server {
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
    let encoded = wire::encode(&WireError::from(e)).unwrap_or_default();
    out.extend_from_slice(&encoded);
}
