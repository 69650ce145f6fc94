//! The three ways Python starts a child process, and the process-wide default.

use serde::{Deserialize, Serialize};

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
