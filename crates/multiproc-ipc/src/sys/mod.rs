//! All operating-system code of the crate lives below this module (mio's `sys/` layering).
//!
//! A backend provides:
//! - `memfd(name)`: an anonymous shared-memory file (freed when its last descriptor and mapping
//!   are gone, `kill -9` included), close-on-exec; `set_len(fd, len)`; `file_len(fd)`.
//! - `map_shared(fd, len)` / `unmap(ptr, len)`: a shared mapping that may be longer than the
//!   file (address space reserved, no memory committed: `MAP_NORESERVE`); its `ENOMEM` names
//!   what ran out. `address_space_left()` (what `RLIMIT_AS` and the user address space still
//!   allow, to size a reserve) and `address_space_error(len)` (that error).
//! - `pid()`: this process's id (cached, refreshed after `fork`); `task(id)`: what
//!   `/proc/<id>/stat` says (alive with its start time, gone or a zombie, or unreadable while
//!   the task exists), the workspace's one reader of it (the manager uses it too);
//!   `is_dead(id)`: whether a process or thread id no longer names a running task.
//! - `futex_wait(word, expected, timeout)` / `futex_wake_all(word)`: the process-shared futex
//!   on a word in shared memory (through multiproc-sync's one futex wrapper).
//! - `shm_open`/`shm_unlink` for named segments that unrelated processes open by name;
//!   `shm_names(min_len)` (the names in `/dev/shm` of this user's private files),
//!   `shm_id(name)`/`fd_id(fd)` (a file's device, inode and owner, to tell one file from a
//!   successor of the same name), `check_private(fd, name)` (owned by `euid()`, mode 0600),
//!   `ofd_lock(fd, kind, wait)` (a namespace-proof "who holds this file" lock).
//! - The descriptor channel beside a ring (see `shm/channel.rs`): `dgram_pair()` (a connected
//!   pair of local datagram sockets, close-on-exec), `is_unix_dgram(fd)`, `send_dgram(sock,
//!   data, fds)` (one datagram with descriptors attached, without waiting),
//!   `peek_dgram(sock, buf)` (the oldest datagram's bytes, without taking it or its
//!   descriptors), `recv_dgram(sock, buf, fds)` (take it, with its descriptors),
//!   `wait_writable(sock, timeout)`, and `MAX_FDS_PER_DATAGRAM`.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
pub use linux::{Task, task};
