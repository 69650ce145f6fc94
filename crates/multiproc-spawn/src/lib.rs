//! Start and supervise processes the way Python's `multiprocessing.Process` does, under all
//! three of its start methods, plus Python's `subprocess` helpers.
//!
//! ```
//! use multiproc_spawn::{Process, StartMethod};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! for method in [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork] {
//!     let p = Process::builder().start_method(method).spawn(square, 7).unwrap();
//!     assert_eq!(p.join().unwrap(), 49);
//! }
//! ```
//!
//! # How a child starts
//!
//! Every child gets a Unix socket pair to its parent ("bootstrap socket") and, except under
//! Fork, a start-up message on it: the target's address, the serde-encoded arguments, the
//! child's name, daemon flag and parent, with the descriptors of handles inside the arguments
//! attached (`SCM_RIGHTS`, see [`handoff`]). It answers with one frame: the encoded return value
//! (plus handles), a panic's text, or why it could not start. Then it exits with `_exit`, so no
//! code of the parent's `main` and no atexit handler of the parent's ever runs in it.
//!
//! - **Fork**: `fork()` in the caller. The child is a copy of the parent, so the target may be a
//!   closure ([`ProcessBuilder::spawn_closure`]) and its arguments are not encoded at all. The
//!   parent flushes standard output first, holds multiproc's own locks across the fork (the
//!   child finds them consistent), and prepares everything the child needs, because a forked
//!   child pays a page fault for every page of memory or code it first touches: the child
//!   allocates nothing on the way to the target, and a small result goes back through a slot
//!   in a memory page shared with the parent instead of the socket.
//! - **Spawn**: `posix_spawn` of `/proc/self/exe` (the identical executable, even if the file was
//!   replaced) with the child's end of the socket as the one inherited descriptor. A start-up
//!   hook that runs before `main` ([`ctor`]) recognises the child by an environment variable,
//!   reads the start-up message, checks that the executable really is the parent's (by the
//!   distance between two functions), finds the target from its offset to a fixed function
//!   (address-space layout randomisation moves the whole binary), runs it, reports, and exits
//!   without ever running `main`.
//! - **ForkServer** (the default, as Python 3.14 on Linux): the first use starts a
//!   single-threaded server, by Spawn's route. The parent sends it a request with the child's
//!   end of a new socket pair attached, writes the start-up message into its own end, and gets
//!   the new child's pid and a pidfd of it back from the server. The server forks; the child
//!   closes every descriptor but its socket, then proceeds as a Spawn child would. A child's
//!   start cost thus does not grow with the parent's memory or threads.
//!
//! Waits look for a short while before they sleep, yielding the CPU (most short children are
//! over before a sleeping parent could even be woken), and stop looking at once when the CPU
//! turns out to be wanted by another task (see the `spin` module).
//!
//! # How a dead child is detected
//!
//! Never by `SIGCHLD` (a library must not take that signal from its program) and never by a
//! timeout: every wait ends when the child ends, however it ends.
//!
//! - A Fork or Spawn child is the caller's own child: a wait asks `waitid(WNOHANG)` whether it
//!   has exited (which also reaps it), and sleeps, if it must, in one `poll` on the child's
//!   pidfd (readable once it has exited) and its socket (read meanwhile, so that a child
//!   writing a large result never blocks). A pid cannot be reused before its process is reaped,
//!   and signals and reaping take the same lock, so [`Process::kill`] never hits a stranger.
//! - A fork-server child is the server's child: the server reaps it and sends its exit status
//!   on the child's socket, and the parent watches the child's pidfd too, so that a dead
//!   server cannot leave a wait hanging.
//! - A child that dies before or during start-up, or cannot decode its arguments, is reported
//!   by [`Process::join`] as `Err(ProcessFailed)` with its exit status or the reason it gave.
//! - Daemon children die with their parent, `kill -9` included: a fork-server child through
//!   `PR_SET_PDEATHSIG` on the single-threaded server (which kills its daemons when the parent's
//!   connection closes), a Fork or Spawn child through a small thread that polls the parent's
//!   pidfd (`PR_SET_PDEATHSIG` would fire when the parent *thread* ends).
//!
//! # Never hang, never leak
//!
//! At a normal exit live non-daemon children are joined and daemon ones terminated, as Python
//! does. Every descriptor is close-on-exec. A dropped handle's child is reaped when it ends, and
//! its descriptors closed then: one reaper thread per process, started with the first running
//! child whose handle is dropped and ended with the last, sleeps in one `poll` on those
//! children's pidfds and an eventfd of its own, so however many handles are dropped, nothing of
//! theirs outlives their children.
//!
//! # Tracing
//!
//! With a [`tracing`](https://docs.rs/tracing) subscriber installed, the crate reports child
//! starts (pid, name, start method), exits (pid, exit code or signal), the fork server's start,
//! exit and loss, and the reaping of children whose handles were dropped. Without one, each of
//! these costs a load of the global level filter.
#![deny(missing_docs)]

mod child;
#[doc(hidden)]
pub mod decode;
mod entry;
// Not API (`decode`, `fnref`, `handoff`): public for the workspace's crates, hidden from the docs, and
// free to change in any release.
#[doc(hidden)]
pub mod fnref;
#[doc(hidden)]
pub mod handoff;
mod identity;
mod parent;
mod process;
mod protocol;
mod server;
pub mod signal;
mod spin;
mod start_method;
mod state;
pub mod subprocess;
mod sys;

/// Whether this program was started with elevated rights (setuid, setgid or file
/// capabilities: the kernel's `AT_SECURE`), where the environment belongs to whoever started
/// it and no variable may steer the library. Not API: for the workspace's crates.
#[doc(hidden)]
pub fn secure_exec() -> bool {
    sys::secure_exec()
}

pub use identity::{ProcessInfo, cpu_count};
pub use process::{Process, ProcessBuilder, active_children, spawn};
pub use start_method::StartMethod;
pub use state::{current_process, get_start_method, parent_process, set_start_method};

/// Optional, idempotent start-up call. Spawning needs no set-up: the start-up hook runs before
/// `main` on its own. This exists for programs that want to say so explicitly.
///
/// ```
/// multiproc_spawn::init();
/// ```
pub fn init() {}

/// How many file descriptors this process has open (for leak checks in tests and examples).
///
/// ```
/// assert!(multiproc_spawn::open_fd_count() >= 3);
/// ```
pub fn open_fd_count() -> usize {
    sys::open_fd_count()
}
