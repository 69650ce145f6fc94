//! All operating-system code of the crate lives below this module.
//!
//! A backend provides:
//! - `futex_wait(word, expected, timeout, shared)`: sleep while `*word == expected`, at most
//!   `timeout`; spurious returns are allowed. `shared == false` uses the process-private futex
//!   (cheaper); `true` the process-shared one (the word may live in memory mapped by several
//!   processes).
//! - `futex_wake(word, n, shared) -> usize`: wake up to `n` sleepers on `word`.
//! - `gettid() -> u32`: the kernel id of the calling thread (unique across processes of one
//!   PID namespace, at most 2^22, so it fits the owner bits of a lock word).
//! - `on_exit(f)`: run `f` once when the program exits normally (after `main` returns or
//!   `std::process::exit`), used to join non-daemon threads.
//! - `on_fork_child(f)`: run `f` in the child after a `fork`, used to forget cached thread ids.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
