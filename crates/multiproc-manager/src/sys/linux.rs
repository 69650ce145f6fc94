//! Linux backend: the process id and `/proc` liveness of the server process (both through
//! multiproc-ipc's one reader and pid cache), and the descriptor limit.

use multiproc_ipc::proc_stat::{Task, task};

/// This process's id, cached (one relaxed load per proxy call); right in a fork child too
/// (multiproc-ipc's cache, which its fork hook refreshes).
#[inline]
pub(crate) fn pid() -> u32 {
    multiproc_ipc::proc_stat::pid()
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`, clock ticks since boot),
/// or `None` when it is gone, a zombie, or cannot be read. Names one process even if its id
/// is reused.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    match task(pid) {
        Task::Alive { start_time } => Some(start_time),
        Task::Gone | Task::Unread => None,
    }
}

/// Whether process `pid`, started at `start`, still runs. When `/proc` cannot be read (this
/// process at its descriptor limit) but the pid exists, it counts as running: taking a live
/// server for dead would fail every call with `Closed`.
pub(crate) fn still_running(pid: u32, start: u64) -> bool {
    match task(pid) {
        Task::Alive { start_time } => start_time == start,
        Task::Unread => true,
        Task::Gone => false,
    }
}

/// `EMFILE`: the process is at its descriptor limit.
pub(crate) const EMFILE: i32 = libc::EMFILE;

/// The soft `RLIMIT_NOFILE` of this process (`None` if it cannot be read or is unlimited).
pub(crate) fn nofile_soft_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(lim.rlim_cur)
}

/// A descriptor that holds nothing but its place in the descriptor table (an eventfd), kept in
/// reserve by the server's accept loop.
pub(crate) fn spare_fd() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: eventfd has no memory-safety preconditions.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd, is open, and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
