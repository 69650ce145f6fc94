//! The one error type of the whole multiproc workspace.
//!
//! It is defined here, in the lowest crate, so that every other crate (spawn, ipc, pool and the
//! facade) returns the same `multiproc::Error` and users match on one set of variants.

use std::fmt;

/// Every way a multiproc call can fail, named after the Python exception it stands for.
///
/// `Display` is short and lower-case; [`std::error::Error::source`] exposes the underlying
/// [`std::io::Error`] of [`Error::Io`].
///
/// ```
/// use multiproc_sync::Error;
/// let e = Error::ProcessFailed { exitcode: -9, message: "killed by signal 9 (SIGKILL)".into() };
/// assert_eq!(e.to_string(), "process failed with exit code -9: killed by signal 9 (SIGKILL)");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A get found no item before its deadline (`queue.Empty`).
    Empty,
    /// A put found no room before its deadline (`queue.Full`).
    Full,
    /// Any other deadline passed (`TimeoutError`).
    Timeout,
    /// The other side is gone for good: every peer handle dropped or its process died
    /// (`EOFError`, `BrokenPipeError`).
    Closed,
    /// A barrier was aborted, reset, or a wait on it timed out (`BrokenBarrierError`).
    BrokenBarrier,
    /// A `BoundedSemaphore` was released above its initial value (`ValueError`).
    TooManyReleases,
    /// A child process panicked (exit code 1, the panic text), exited non-zero, was killed by a
    /// signal (exit code `-signal`), or could not be started (the reason).
    ProcessFailed {
        /// Python's `exitcode`: `n` for `exit(n)`, 1 for a panic, `-s` for death by signal `s`.
        exitcode: i32,
        /// What went wrong, in words: the panic text, the signal's name or the start-up failure.
        message: String,
    },
    /// A pool or executor task panicked; the pool itself goes on.
    TaskFailed {
        /// The panic text.
        message: String,
    },
    /// The worker process running this task died (killed, aborted); the pool replaces it.
    WorkerDied {
        /// The worker's exit code (`-signal` when killed by a signal).
        exitcode: i32,
    },
    /// A pool task went past its worker's hard memory limit
    /// (`memory_limit_per_worker`): the worker was stopped and replaced, the pool goes on.
    MemoryLimit {
        /// The limit, in bytes, that the task's worker ran under.
        limit: u64,
    },
    /// A future was cancelled.
    Cancelled,
    /// A thread-level `queue` was shut down (`queue.ShutDown`).
    ShutDown,
    /// Work was submitted after `close`/`shutdown`.
    PoolClosed,
    /// `subprocess::check_*` saw a non-zero return code (`CalledProcessError`).
    CalledProcess {
        /// The child's return code (`-signal` when killed by a signal).
        returncode: i32,
        /// What the child wrote to standard output, when it was captured.
        stdout: Vec<u8>,
        /// What the child wrote to standard error, when it was captured.
        stderr: Vec<u8>,
    },
    /// `subprocess::run` killed a child that outlived its timeout (`subprocess.TimeoutExpired`),
    /// with what it had written by then (when captured).
    ///
    /// ```
    /// use multiproc_sync::Error;
    /// let e = Error::TimeoutExpired { timeout: std::time::Duration::from_secs(2), stdout: b"so far".to_vec(), stderr: Vec::new() };
    /// assert_eq!(e.to_string(), "command timed out after 2s");
    /// ```
    TimeoutExpired {
        /// The timeout that passed.
        timeout: std::time::Duration,
        /// What the child wrote to standard output before it was killed, when it was captured.
        stdout: Vec<u8>,
        /// What the child wrote to standard error before it was killed, when it was captured.
        stderr: Vec<u8>,
    },
    /// A value could not be encoded or decoded.
    Codec(String),
    /// An operating-system call failed.
    Io(std::io::Error),
    /// A call was used in a way it does not support (for example `spawn_closure` outside the
    /// `Fork` start method, or a `task_done` without a matching item: Python's `ValueError`).
    Invalid(String),
    /// A Redis server (`multiproc::redis`) could not be reached, refused the credentials, broke
    /// the connection for longer than the reconnect window, or answered with an error: the
    /// reason, with the server's address (never its password).
    Redis(String),
}

/// `Result<T, multiproc::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Empty => f.write_str("queue is empty"),
            Error::Full => f.write_str("queue is full"),
            Error::Timeout => f.write_str("timed out"),
            Error::Closed => f.write_str("closed: the other side is gone"),
            Error::BrokenBarrier => f.write_str("barrier is broken"),
            Error::TooManyReleases => f.write_str("semaphore released too many times"),
            Error::ProcessFailed { exitcode, message } => {
                write!(f, "process failed with exit code {exitcode}: {message}")
            }
            Error::TaskFailed { message } => write!(f, "task failed: {message}"),
            Error::WorkerDied { exitcode } => {
                write!(f, "worker process died with exit code {exitcode}")
            }
            Error::MemoryLimit { limit } => write!(
                f,
                "the task went past its worker's memory limit of {limit} bytes: the worker was stopped"
            ),
            Error::Cancelled => f.write_str("cancelled"),
            Error::ShutDown => f.write_str("queue is shut down"),
            Error::PoolClosed => f.write_str("pool is closed"),
            Error::CalledProcess { returncode, .. } => {
                write!(f, "command returned non-zero exit status {returncode}")
            }
            Error::TimeoutExpired { timeout, .. } => {
                write!(f, "command timed out after {timeout:?}")
            }
            Error::Codec(m) => write!(f, "codec error: {m}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Invalid(m) => write!(f, "invalid use: {m}"),
            Error::Redis(m) => write!(f, "redis: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_source() {
        let e: Error = std::io::Error::from_raw_os_error(libc_enoent()).into();
        assert!(std::error::Error::source(&e).is_some());
        assert!(e.to_string().starts_with("i/o error: "));
    }

    fn libc_enoent() -> i32 {
        2
    }

    #[test]
    fn display_is_lower_case_and_short() {
        for e in [
            Error::Empty,
            Error::Full,
            Error::Timeout,
            Error::Closed,
            Error::Cancelled,
        ] {
            let s = e.to_string();
            assert!(s.chars().next().unwrap().is_lowercase(), "{s}");
            assert!(s.len() < 40, "{s}");
        }
    }
}
