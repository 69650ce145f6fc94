//! The operating-system layer of the spawn crate: every system call lives below this module.
//!
//! A backend provides:
//! - sockets: `socketpair`, `send_with_fds` (gathered slices), `recv_with_fds` (SCM_RIGHTS),
//!   `poll`;
//! - processes: `fork`, `fork_for_parent` (a child born our parent's), `spawn_self` (a fresh exec of this very binary), `pidfd_open`,
//!   `pidfd_send_signal`, `kill`, `waitid_pidfd`, `waitid_pid`, `exit_now`, `kill_self`,
//!   `getpid`, `getppid`, `is_process_id` (pids that name one process, not a group);
//! - start-up checks: `secure_exec` (`AT_SECURE`), `geteuid`, `unix_peer` (`SO_PEERCRED`);
//! - wake-ups: `eventfd`, `eventfd_signal`, `eventfd_drain` (the orphan reaper's);
//! - memory: `map_shared` (a page shared with forked children), `page_size`;
//! - child set-up: `set_parent_death_signal`, `close_fds_except`, `ignore_sigpipe`,
//!   `own_fd`, `set_cloexec`;
//! - process exit: `register_atexit`; names: `signal_name`; leak checks: `open_fd_count`;
//! - signals (the `signal` module): `disposition`, `set_disposition`, `alarm`, `strsignal`,
//!   `signal_numbers`.
//!
//! Linux is the backend that works fully; another OS gets a sibling file with the same items.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!("multiproc-spawn supports Linux for now: add a sys backend for this OS");
