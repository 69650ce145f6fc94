//! The process-wide state that starting a child touches, kept together on one memory page.
//!
//! After a `fork()` every page the parent or the child writes costs it a copy-on-write fault
//! (about a microsecond and a half on a small virtual machine), and a Fork spawn+join takes and
//! releases most of these locks on both sides of the fork. Scattered by the linker they landed on
//! two or three pages; gathered in one aligned block they cost one fault each side.
//!
//! The page sits above the types it holds: the modules that define them (identity, start
//! method, the parent's registry, fork pool and fork-server connection, a child's report)
//! import nothing from here, and the accessors that reach the page live here. The modules
//! above (process, child, entry) reach the page only through them.

use crate::identity::{Ident, ProcessInfo};
use crate::parent::fork_pool::ForkPool;
use crate::parent::registry::Registry;
use crate::parent::server_conn::Server;
use crate::protocol::outcome::Report;
use crate::start_method::StartMethod;
use crate::sys;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

/// See the module docs. Each module reaches its field through its own accessor.
#[derive(Debug)]
pub(crate) struct State {
    /// Who this process is (see [`crate::identity`]).
    pub(crate) identity: Mutex<Ident>,
    /// How a child reports to its parent while its target runs (see [`crate::child`]).
    pub(crate) report: Mutex<Option<Report>>,
    /// Every child this process started that has not been seen to finish.
    pub(crate) registry: Registry,
    /// Socket pairs and outcome slots for Fork children.
    pub(crate) fork_pool: Mutex<ForkPool>,
    /// The connection to this process's fork server.
    pub(crate) server: Mutex<Option<Server>>,
    /// The default start method (see [`crate::start_method`]).
    pub(crate) start_method: AtomicU8,
}

/// [`State`], aligned so that it never straddles two pages.
#[derive(Debug)]
#[repr(align(1024))]
pub(crate) struct Aligned(pub(crate) State);

const _: () = assert!(std::mem::size_of::<State>() <= 1024);

pub(crate) static STATE: Aligned = Aligned(State {
    identity: Mutex::new(Ident::EMPTY),
    report: Mutex::new(None),
    registry: Registry::new(),
    fork_pool: Mutex::new(ForkPool::EMPTY),
    server: Mutex::new(None),
    start_method: AtomicU8::new(StartMethod::ForkServer.to_u8()),
});

/// Locks `m` (a poisoned lock is still usable: every update leaves its data consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every child this process started that has not been seen to finish, with the orphan reaper.
pub(crate) fn registry() -> &'static Registry {
    &STATE.0.registry
}

/// The lock the Fork children's socket pairs and outcome slots sit in (a slot's ticket finds
/// its way back to it).
pub(crate) fn fork_pool_lock() -> &'static Mutex<ForkPool> {
    &STATE.0.fork_pool
}

/// The Fork children's socket pairs and outcome slots, locked.
pub(crate) fn fork_pool() -> MutexGuard<'static, ForkPool> {
    lock(fork_pool_lock())
}

/// The connection to this process's fork server, locked.
pub(crate) fn server() -> MutexGuard<'static, Option<Server>> {
    lock(&STATE.0.server)
}

/// Our [`Report`] while the target runs, kept in the process state so that a child the target
/// forks closes its copies of our descriptors.
pub(crate) fn parked_report() -> MutexGuard<'static, Option<Report>> {
    lock(&STATE.0.report)
}

/// Set by the start-up hook, first thing: a process where it is unset never ran the hook.
/// (Off the page: it is written once, before `main`, and read only when a child starts.)
static HOOK_RAN: AtomicBool = AtomicBool::new(false);

/// Notes that the start-up hook ran in this binary (called by the hook, first thing).
pub(crate) fn hook_ran() {
    HOOK_RAN.store(true, Ordering::Relaxed);
}

/// Whether the hook ran in this binary: `spawn` refuses to start children otherwise, since a
/// child would then run the program's `main` again.
pub(crate) fn hook_is_linked() -> bool {
    HOOK_RAN.load(Ordering::Relaxed)
}

/// Whether this process ignores the start-up variable (started with elevated rights), so a
/// Spawn or ForkServer child of it would run `main` instead of its target.
pub(crate) fn hook_is_disabled() -> bool {
    sys::secure_exec()
}

/// Locks this process's identity (a poisoned lock is still usable: the data is replaced whole).
pub(crate) fn identity() -> MutexGuard<'static, Ident> {
    lock(&STATE.0.identity)
}

/// Returns this process's description: `MainProcess` in the program's own process.
///
/// ```
/// use multiproc_spawn::{Process, current_process};
/// assert_eq!(current_process().name, "MainProcess");
/// assert_eq!(current_process().pid, std::process::id());
/// let p = Process::builder()
///     .name("reporter")
///     .spawn(|_: ()| current_process().name, ())?;
/// assert_eq!(p.join()?, "reporter");
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn current_process() -> ProcessInfo {
    let guard = identity();
    match &guard.me {
        Some(id) => ProcessInfo {
            pid: sys::getpid(),
            name: id.name.clone(),
            daemon: id.daemon,
        },
        None => ProcessInfo {
            pid: sys::getpid(),
            name: "MainProcess".to_owned(),
            daemon: false,
        },
    }
}

/// Returns the process that started this one, or `None` in the program's own process.
///
/// ```
/// use multiproc_spawn::parent_process;
/// assert!(parent_process().is_none());
/// let p = multiproc_spawn::spawn(|_: ()| parent_process().map(|p| p.pid), ())?;
/// assert_eq!(p.join()?, Some(std::process::id()));
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    let guard = identity();
    guard.me.as_ref().and_then(|id| id.parent.clone())
}

/// The default name of the next child: `Process-N` from the main process, `<my name>:N` from a
/// child (Python's identity chain, e.g. `Process-1:2`).
pub(crate) fn next_child_name() -> String {
    identity().name_next_child()
}

/// Sets the start method that `spawn` and builders without `.start_method(…)` use, in this
/// process (children inherit it).
///
/// ```
/// use multiproc_spawn::{StartMethod, get_start_method, set_start_method};
/// set_start_method(StartMethod::Spawn);
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// set_start_method(StartMethod::ForkServer);
/// ```
pub fn set_start_method(method: StartMethod) {
    STATE
        .0
        .start_method
        .store(method.to_u8(), Ordering::Relaxed);
}

/// The start method in force (`ForkServer` unless changed, as Python 3.14 on Linux).
///
/// ```
/// use multiproc_spawn::{StartMethod, get_start_method, set_start_method};
/// assert_eq!(get_start_method(), StartMethod::ForkServer);
/// set_start_method(StartMethod::Spawn);
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// ```
pub fn get_start_method() -> StartMethod {
    StartMethod::from_u8(STATE.0.start_method.load(Ordering::Relaxed))
}
