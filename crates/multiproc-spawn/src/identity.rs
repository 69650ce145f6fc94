//! Who this process is: its name, daemon flag and parent, as Python's `current_process()` and
//! `parent_process()` report them, plus the `Process-N` naming of its children.

use crate::sys;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A process as `current_process()`, `parent_process()` and `active_children()` describe it.
///
/// ```
/// let me = multiproc_spawn::current_process();
/// assert_eq!(me.name, "MainProcess");
/// assert_eq!(me.pid, std::process::id());
/// assert!(multiproc_spawn::parent_process().is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// The operating system's process id.
    pub pid: u32,
    /// The name given at spawn (`Process-N` by default, `MainProcess` for the program itself).
    pub name: String,
    /// Whether it is a daemon (killed with its parent, not joined at exit).
    pub daemon: bool,
}

/// What a child learns about itself at start-up.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) parent: Option<ProcessInfo>,
}

/// `None` in the program's own process ("MainProcess"); set once a child starts.
pub(crate) static IDENTITY: Mutex<Option<Identity>> = Mutex::new(None);

/// Counts the children this process has named, for `Process-N`.
static CHILD_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Returns this process's description: `MainProcess` in the program's own process.
pub fn current_process() -> ProcessInfo {
    let guard = IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
    match &*guard {
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
pub fn parent_process() -> Option<ProcessInfo> {
    let guard = IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().and_then(|id| id.parent.clone())
}

/// The default name of the next child: `Process-N` from the main process, `<my name>:N` from a
/// child (Python's identity chain, e.g. `Process-1:2`).
pub(crate) fn next_child_name() -> String {
    let n = CHILD_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    let guard = IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
    match &*guard {
        Some(id) => format!("{}:{n}", id.name),
        None => format!("Process-{n}"),
    }
}

/// Makes this (new child) process `name`, child of `parent`, restarting its own child count.
pub(crate) fn become_child(
    slot: &mut Option<Identity>,
    name: String,
    daemon: bool,
    parent: ProcessInfo,
) {
    CHILD_COUNTER.store(0, Ordering::Relaxed);
    *slot = Some(Identity {
        name,
        daemon,
        parent: Some(parent),
    });
}

/// The number of CPUs this process may run on (its affinity mask and cgroup quota count).
///
/// ```
/// assert!(multiproc_spawn::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
