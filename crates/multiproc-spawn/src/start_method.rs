//! The three ways Python starts a child process, and the process-wide default.

use crate::state::STATE;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// How a child process is started.
///
/// ```
/// use multiproc_spawn::{StartMethod, get_start_method};
/// assert_eq!(get_start_method(), StartMethod::ForkServer);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StartMethod {
    /// `fork()` the calling process: fastest for a small parent, and closures work
    /// (`spawn_closure`). The child is a copy of a possibly multi-threaded parent, so only the
    /// forking thread exists in it.
    Fork,
    /// A fresh exec of the current executable, which runs the target by its address in the
    /// identical binary; arguments and result travel with serde. Costs an exec per child.
    Spawn,
    /// The default: a small single-threaded server, started once from a fresh exec of the
    /// binary, forks each child, so a child's start cost does not grow with the parent's memory
    /// or threads.
    ForkServer,
}

impl StartMethod {
    pub(crate) const fn to_u8(self) -> u8 {
        match self {
            StartMethod::Fork => 0,
            StartMethod::Spawn => 1,
            StartMethod::ForkServer => 2,
        }
    }

    pub(crate) fn from_u8(b: u8) -> StartMethod {
        match b {
            0 => StartMethod::Fork,
            1 => StartMethod::Spawn,
            _ => StartMethod::ForkServer,
        }
    }
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
