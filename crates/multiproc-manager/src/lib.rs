//! Python's `multiprocessing.Manager()` and `BaseManager` for Rust: a server process holds
//! shared dicts, lists, namespaces, values and objects of registered types, and every process
//! reaches them through proxies that travel like every multiproc handle (in spawn arguments
//! and queue items).
//!
//! ```
//! use multiproc_manager::{DictProxy, ListProxy, Manager, Op};
//!
//! fn work((d, l): (DictProxy<String, u64>, ListProxy<u32>)) {
//!     d.update_with("calls".into(), 0, Op::Add(1)).unwrap();
//!     l.push(std::process::id()).unwrap();
//! }
//!
//! let manager = Manager::new()?;
//! let d = manager.dict::<String, u64>()?;
//! let l = manager.list::<u32>()?;
//! let children: Vec<_> = (0..2)
//!     .map(|_| multiproc_spawn::spawn(work, (d.clone(), l.clone())))
//!     .collect::<Result<_, _>>()?;
//! for c in children {
//!     c.join()?;
//! }
//! assert_eq!(d.get(&"calls".into())?, Some(2));
//! assert_eq!(l.len()?, 2);
//! manager.shutdown()?;
//! # Ok::<(), multiproc_manager::Error>(())
//! ```
//!
//! # How it works
//!
//! A process that uses a proxy opens a connection to the server, lazily, on its first call:
//! a [`Pipe`](multiproc_ipc::Pipe) (two shared-memory rings whose waits spin briefly, then
//! sleep on a futex) whose far end it sends through the server's registration queue; the
//! server answers each connection on a thread of its own. A call is one message each way.
//!
//! Each thread has its own connection, as in Python: a call takes an idle connection of its
//! process (opening one only when all are in use by other threads' calls) and gives it back
//! when its answer has come. A call therefore waits only for its own answer: a slow method of
//! a registered type called on one thread holds up no other thread's calls, and calls that
//! depend on each other (one thread's `X.wait()` until another's `Y.set()`) complete. A
//! process keeps as many connections as it has had threads calling at once; an exited
//! thread's connection serves the next thread that calls.
//!
//! ```
//! use multiproc_manager::Manager;
//!
//! let manager = Manager::new()?;
//! let d = manager.dict::<u32, u32>()?;
//! std::thread::scope(|s| {
//!     for i in 0..4 {
//!         let d = &d;
//!         s.spawn(move || d.insert(i, i * 10).unwrap());
//!     }
//! });
//! assert_eq!(d.len()?, 4);
//! // Calls no longer under way leave at most one connection per thread that called at once.
//! assert!(manager.connections()? <= 5);
//! # Ok::<(), multiproc_manager::Error>(())
//! ```
//!
//! # Nested proxies
//!
//! As in Python 3.6+, a proxy can be stored inside a dict, list, namespace or value of its own
//! manager: the server keeps the object's id, and whoever reads it back, in any process, gets
//! a proxy to the same server object. A handle that a manager cannot keep (a shared-memory
//! [`Queue`], pipe, lock or value, or a proxy of another manager: they
//! hold descriptors) is refused with an `Err(Codec)` that says so; pass those to processes
//! directly.
//!
//! ```
//! use multiproc_manager::{ListProxy, Manager};
//!
//! let manager = Manager::new()?;
//! let table = manager.dict::<String, ListProxy<u32>>()?;
//! let scores = manager.list::<u32>()?;
//! table.insert("ada".into(), scores.clone())?;
//! table.get(&"ada".into())?.expect("stored").push(42)?;
//! assert_eq!(scores.to_vec()?, [42]);
//!
//! let q = multiproc_ipc::Queue::<u32>::new()?;
//! let queues = manager.dict::<u32, multiproc_ipc::Queue<u32>>()?;
//! assert!(queues.insert(1, q).is_err()); // a shared-memory queue cannot live in a manager
//! # Ok::<(), multiproc_manager::Error>(())
//! ```
//!
//! # Failure modes
//!
//! - The server lives while its [`Manager`] or any connected proxy lives (and is killed when
//!   the program that started it exits), or until [`Manager::shutdown`].
//! - A server that dies (even `kill -9`) makes every call answer `Err(Closed)` within some
//!   20 ms, never a hang.
//! - A client killed mid-call loses only its own answer: each call's change is made under its
//!   object's lock, whole or not at all, and the server drops the dead client's connection.
//! - Objects live until the server ends (no per-object reference counts, unlike Python).
//! - Each connection costs the server 6 descriptors. A server at its `RLIMIT_NOFILE` answers
//!   a new client's first call with `Err(Io)` (`EMFILE`, naming the limit) and keeps
//!   accepting: clients are served again once others have gone. No failure to take one
//!   connection stops the server from taking the next.
#![deny(missing_docs)]

mod sys;

mod calls;
mod client;
mod number;
mod proxies;
mod served;
mod server;

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use multiproc_ipc::Queue;
use multiproc_spawn::fnref::FnRef;
use multiproc_spawn::{Process, StartMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use multiproc_sync::{Error, Result};
pub use number::{Number, Op};
pub use proxies::{DictProxy, ListProxy, NamespaceProxy, Proxy, ValueProxy};
pub use served::Served;

use calls::{kind, op, put_bytes, put_value};
use client::{Addr, Client, Handle};
use served::Ctor;

/// Decodes a postcard-encoded value: the arguments a [`Served::call`] receives.
///
/// ```
/// let b = multiproc_manager::encode(&(1u8, "x"))?;
/// assert_eq!(multiproc_manager::decode::<(u8, String)>(&b)?, (1, "x".to_string()));
/// # Ok::<(), multiproc_manager::Error>(())
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    calls::decode(bytes)
}

/// Encodes a value with postcard: the answer of a [`Served::call`].
///
/// ```
/// assert_eq!(multiproc_manager::encode(&7u64)?, [7]);
/// # Ok::<(), multiproc_manager::Error>(())
/// ```
pub fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    calls::encode(v)
}

/// Settings for a [`Manager`] (Python's `BaseManager` subclass with `register` calls).
///
/// ```
/// use multiproc_manager::Manager;
/// let manager = Manager::builder().start_method(multiproc_spawn::StartMethod::Spawn).build()?;
/// assert!(manager.dict::<u8, u8>()?.is_empty()?);
/// # Ok::<(), multiproc_manager::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until build() is called"]
pub struct ManagerBuilder {
    types: Vec<(String, TypeId, FnRef)>,
    start_method: Option<StartMethod>,
}

impl ManagerBuilder {
    /// Registers `T` under `typeid` (Python's `BaseManager.register(typeid, callable)`);
    /// [`Manager::create`] makes instances. See [`Served`].
    ///
    /// ```
    /// # use multiproc_manager::{Manager, Served, decode, encode};
    /// # struct Counter(i64);
    /// # impl Served for Counter {
    /// #     type Init = i64;
    /// #     fn create(start: i64) -> multiproc_manager::Result<Self> { Ok(Counter(start)) }
    /// #     fn call(&mut self, _: &str, args: &[u8]) -> multiproc_manager::Result<Vec<u8>> {
    /// #         self.0 += decode::<i64>(args)?;
    /// #         encode(&self.0)
    /// #     }
    /// # }
    /// let manager = Manager::builder().register::<Counter>("Counter").build()?;
    /// assert_eq!(manager.create::<Counter>("Counter", 1)?.call::<_, i64>("add", &2)?, 3);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn register<T: Served>(mut self, typeid: &str) -> Self {
        let ctor: Ctor = served::construct::<T>;
        self.types.retain(|(n, ..)| n != typeid);
        self.types.push((
            typeid.to_owned(),
            TypeId::of::<T>(),
            FnRef::new(ctor as usize),
        ));
        self
    }

    /// How the server process starts (the default: the program's start method).
    ///
    /// ```
    /// use multiproc_manager::Manager;
    /// use multiproc_spawn::StartMethod;
    /// let manager = Manager::builder().start_method(StartMethod::Spawn).build()?;
    /// assert_eq!(manager.value(7u8)?.get()?, 7);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Starts the server and connects to it (Python's `manager.start()`).
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::builder().build()?;
    /// assert!(manager.dict::<u8, u8>()?.is_empty()?);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn build(self) -> Result<Manager> {
        let registry = Queue::new()?;
        let args = server::ServerArgs {
            registry: registry.clone(),
            types: self.types.iter().map(|(n, _, f)| (n.clone(), *f)).collect(),
        };
        let mut b = Process::builder().name("SyncManager").daemon(true);
        if let Some(m) = self.start_method {
            b = b.start_method(m);
        }
        let process = b.spawn(server::serve, args)?;
        let pid = process.pid();
        let start = sys::start_time(pid).ok_or_else(|| Error::ProcessFailed {
            exitcode: -1,
            message: "the manager server exited at start-up".to_owned(),
        })?;
        let client = Client::for_addr(&Addr {
            registry,
            pid,
            start,
        });
        client.ensure_connected()?;
        Ok(Manager {
            client,
            process: Some(process),
            types: self.types.into_iter().map(|(n, t, _)| (n, t)).collect(),
        })
    }
}

/// Python's `multiprocessing.Manager()`: a server process holding shared objects, and the
/// factory of proxies to them. See the crate docs for an example and the failure modes.
///
/// Dropping it does not stop the server while proxies of this or other processes are
/// connected; [`shutdown`](Self::shutdown) does (Python's `with Manager() as m:` ending).
///
/// ```
/// use multiproc_manager::Manager;
/// let manager = Manager::new()?;
/// let d = manager.dict::<String, u32>()?;
/// d.insert("x".into(), 1)?;
/// manager.shutdown()?;
/// assert!(d.len().is_err()); // the server is gone: every call is an error, never a hang
/// # Ok::<(), multiproc_manager::Error>(())
/// ```
pub struct Manager {
    client: Arc<Client>,
    process: Option<Process<()>>,
    types: Vec<(String, TypeId)>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Starts a server (Python's `Manager()`).
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// assert_ne!(manager.pid(), std::process::id());
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn new() -> Result<Manager> {
        Manager::builder().build()
    }

    /// Settings: registered types, start method.
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::builder().build()?;
    /// assert_ne!(manager.pid(), 0);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// The server's process id.
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// assert_ne!(manager.pid(), std::process::id()); // a process of its own
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.client.addr.pid
    }

    fn make(&self, k: u8, args: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<Handle> {
        // Through a handle, so that proxies inside the initial value are stored as ids.
        let server = Handle::new(Arc::clone(&self.client), 0);
        let a = server.call(op::CREATE, |b| {
            b.push(k);
            args(b)
        })?;
        let id = calls::Reader::new(&a).varint()?;
        Ok(Handle::new(Arc::clone(&self.client), id))
    }

    /// A new shared dict (Python's `manager.dict()`); see [`DictProxy`].
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let d = manager.dict::<u32, String>()?;
    /// d.insert(1, "one".into())?;
    /// assert_eq!(d.get(&1)?.as_deref(), Some("one"));
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>> {
        Ok(DictProxy::from_handle(self.make(kind::DICT, |_| Ok(()))?))
    }

    /// A new shared list (Python's `manager.list()`); see [`ListProxy`].
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let l = manager.list::<u32>()?;
    /// l.extend([1, 2, 3])?;
    /// assert_eq!(l.to_vec()?, [1, 2, 3]);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn list<T>(&self) -> Result<ListProxy<T>> {
        Ok(ListProxy::from_handle(self.make(kind::LIST, |_| Ok(()))?))
    }

    /// A new namespace (Python's `manager.Namespace()`); see [`NamespaceProxy`].
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let ns = manager.namespace()?;
    /// ns.set("x", 10)?;
    /// assert_eq!(ns.get::<i32>("x")?, Some(10));
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn namespace(&self) -> Result<NamespaceProxy> {
        Ok(NamespaceProxy::from_handle(
            self.make(kind::NAMESPACE, |_| Ok(()))?,
        ))
    }

    /// A new shared value (Python's `manager.Value(typecode, x)`); see [`ValueProxy`].
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let v = manager.value(0.5f64)?;
    /// v.set(1.5)?;
    /// assert_eq!(v.get()?, 1.5);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn value<T: Serialize>(&self, x: T) -> Result<ValueProxy<T>> {
        Ok(ValueProxy::from_handle(
            self.make(kind::VALUE, |b| put_value(b, &x))?,
        ))
    }

    /// An instance of the type registered as `typeid`, made in the server by
    /// [`Served::create`]`(init)` (Python's `manager.typeid(*args)`); see [`Served`].
    ///
    /// ```
    /// # use multiproc_manager::{Manager, Served, decode, encode};
    /// # struct Counter(i64);
    /// # impl Served for Counter {
    /// #     type Init = i64;
    /// #     fn create(start: i64) -> multiproc_manager::Result<Self> { Ok(Counter(start)) }
    /// #     fn call(&mut self, _: &str, args: &[u8]) -> multiproc_manager::Result<Vec<u8>> {
    /// #         self.0 += decode::<i64>(args)?;
    /// #         encode(&self.0)
    /// #     }
    /// # }
    /// let manager = Manager::builder().register::<Counter>("Counter").build()?;
    /// let c = manager.create::<Counter>("Counter", 100)?;
    /// assert_eq!(c.call::<_, i64>("add", &1)?, 101);
    /// assert!(manager.create::<Counter>("Unknown", 0).is_err());
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn create<T: Served>(&self, typeid: &str, init: T::Init) -> Result<Proxy<T>> {
        match self.types.iter().find(|(n, _)| n == typeid) {
            Some((_, t)) if *t == TypeId::of::<T>() => {}
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "{typeid:?} is registered with another type"
                )));
            }
            None => return Err(Error::Invalid(format!("no type registered as {typeid:?}"))),
        }
        let h = self.make(kind::USER, |b| {
            put_bytes(b, typeid.as_bytes());
            put_value(b, &init)
        })?;
        Ok(Proxy::from_handle(h))
    }

    /// A process-shared queue (Python's `manager.Queue()`). Unlike Python's, it is the
    /// workspace's shared-memory [`Queue`], not a proxy: it needs no
    /// server round trip and lives as long as its handles, not as long as the server.
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let q = manager.queue::<u8>()?;
    /// q.put(1)?;
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn queue<T>(&self) -> Result<Queue<T>> {
        Queue::new()
    }

    /// A process-shared lock (Python's `manager.Lock()`; the shared-memory
    /// [`Lock`](multiproc_ipc::Lock), as for [`queue`](Self::queue)).
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let lock = manager.lock()?;
    /// drop(lock.acquire());
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn lock(&self) -> Result<multiproc_ipc::Lock> {
        multiproc_ipc::Lock::new()
    }

    /// A process-shared event (Python's `manager.Event()`; see [`queue`](Self::queue)).
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let e = manager.event()?;
    /// e.set();
    /// assert!(e.is_set());
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn event(&self) -> Result<multiproc_ipc::Event> {
        multiproc_ipc::Event::new()
    }

    /// A process-shared semaphore (Python's `manager.Semaphore(n)`; see
    /// [`queue`](Self::queue)).
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let s = manager.semaphore(1)?;
    /// assert!(s.try_acquire());
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn semaphore(&self, n: usize) -> Result<multiproc_ipc::Semaphore> {
        multiproc_ipc::Semaphore::new(n)
    }

    /// A process-shared barrier (Python's `manager.Barrier(n)`; see [`queue`](Self::queue)).
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let b = manager.barrier(1)?;
    /// assert_eq!(b.parties(), 1);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn barrier(&self, parties: usize) -> Result<multiproc_ipc::Barrier> {
        multiproc_ipc::Barrier::new(parties)
    }

    /// How many connections the server has now (this process's included): one per process
    /// that has called, or more where several threads of a process called at once.
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// assert_eq!(manager.connections()?, 1);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn connections(&self) -> Result<usize> {
        let a = self.client.call(op::CLIENTS, 0, |_| Ok(()))?;
        Ok(calls::Reader::new(&a).varint()? as usize)
    }

    /// Stops the server and waits for it (Python's `manager.shutdown()`); every proxy's next
    /// call answers `Err(Closed)`.
    ///
    /// ```
    /// let manager = multiproc_manager::Manager::new()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// manager.shutdown()?;
    /// assert!(matches!(d.len(), Err(multiproc_manager::Error::Closed)));
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn shutdown(mut self) -> Result<()> {
        let asked = self.client.call(op::SHUTDOWN, 0, |_| Ok(()));
        let joined = match self.process.take() {
            Some(p) => p.join(),
            None => Ok(()),
        };
        asked.map(drop).or_else(|e| match e {
            Error::Closed => Ok(()),
            e => Err(e),
        })?;
        joined
    }
}
