//! Who this process is: its name, daemon flag and parent, as Python's `current_process()` and
//! `parent_process()` report them, plus the `Process-N` naming of its children.

use serde::{Deserialize, Serialize};

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

impl Identity {
    /// A child's identity: `name`, started by `parent`.
    pub(crate) fn child(name: String, daemon: bool, parent: ProcessInfo) -> Identity {
        Identity {
            name,
            daemon,
            parent: Some(parent),
        }
    }
}

/// Who this process is, and how many children it has named.
#[derive(Debug)]
pub(crate) struct Ident {
    /// `None` in the program's own process ("MainProcess"); set once a child starts.
    pub(crate) me: Option<Identity>,
    /// Children named so far, for `Process-N`. (Kept under the same lock, on the same memory
    /// page: every page a forked child writes costs it a copy-on-write fault.)
    named: usize,
}

impl Ident {
    /// The main process's: no identity yet, no child named.
    pub(crate) const EMPTY: Ident = Ident { me: None, named: 0 };

    /// The default name of the next child: `Process-N` from the main process, `<my name>:N`
    /// from a child.
    pub(crate) fn name_next_child(&mut self) -> String {
        self.named += 1;
        let n = self.named;
        match &self.me {
            Some(id) => format!("{}:{n}", id.name),
            None => format!("Process-{n}"),
        }
    }
}

/// Makes this (new child) process `me`, restarting its own child count. The old identity (our
/// parent's) is forgotten, not dropped: a forked child that frees memory writes heap pages it
/// shares copy-on-write with its parent, which costs a page fault each.
pub(crate) fn become_child(slot: &mut Ident, me: Identity) {
    slot.named = 0;
    std::mem::forget(slot.me.replace(me));
}

/// The number of CPUs this process may run on (its affinity mask and cgroup quota count).
///
/// ```
/// assert!(multiproc_spawn::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
