//! All operating-system code of the crate lives below this module.
//!
//! A backend provides:
//! - `futex_wait(word, expected, timeout) -> bool`: sleep while `*word == expected`, at most
//!   `timeout` (`None`: no limit), on the process-private futex; spurious returns are allowed;
//!   `false` only when the timeout passed.
//! - `futex_wake_all(word)`: wake every sleeper on `word`.
//! - `open_fds()`: how many descriptors the process has open.
//! - `resident_bytes()`: this process's resident set size.
//! - `limit_address_space(n)`: lower the soft `RLIMIT_AS` to the address space now plus `n`.
//! - `aborted(exitcode)`: whether a worker died of `SIGABRT` (a failed allocation).
//! - `ensure_fd_room(n)`: raise the soft descriptor limit, if it must and can, so that `n`
//!   more fit.
//!
//! The pool's words are plain `std` atomics that only threads of one process touch: its futex
//! calls go through multiproc-sync's one wrapper on `std` atomics (`raw::futex_wait`), not
//! `raw::ThreadFutex`, whose words become loom atomics under `--cfg multiproc_loom`.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
