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
//! - **Fork**: `fork()` in the caller; the child runs the target (a closure too, with
//!   `spawn_closure`) and sends the result back over a socket pair.
//! - **Spawn**: `posix_spawn` of `/proc/self/exe` (the identical executable) with one inherited
//!   socket. A start-up hook that runs before `main` ([`ctor`]) recognises the child, reads the
//!   function's address (as an offset from a fixed function, since ASLR moves the binary) and the
//!   serde-encoded arguments, runs it, sends the result, and exits without ever running `main`.
//! - **ForkServer** (the default): the first use starts a single-threaded server by a fresh exec,
//!   which forks each child on request; the child then talks to the parent directly.
//!
//! Handles of multiproc objects (queues, locks…) travel inside the arguments: their descriptors
//! ride along with `SCM_RIGHTS` (see [`handoff`]).
//!
//! # Never hang, never leak
//!
//! The parent watches a child through its socket and its pidfd, so every wait ends when the
//! child ends, however it ends. Daemon children die with their parent (`kill -9` too); at a
//! normal exit live non-daemon children are joined. Every descriptor is close-on-exec; a
//! dropped handle's child is reaped when it ends.
#![warn(missing_docs)]

mod child;
mod entry;
pub mod fnref;
mod forkserver;
pub mod handoff;
mod identity;
mod process;
mod registry;
mod start_method;
pub mod subprocess;
mod sys;
mod wire;

pub use identity::{ProcessInfo, cpu_count, current_process, parent_process};
pub use process::{Process, ProcessBuilder, active_children, spawn};
pub use start_method::{StartMethod, get_start_method, set_start_method};

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
