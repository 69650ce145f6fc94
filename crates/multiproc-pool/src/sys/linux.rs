//! Linux backend: descriptor counts and limits, the resident set, the address-space limit.
//! The futex is multiproc-sync's one wrapper (`raw::futex_wait`/`futex_wake`), on the
//! process-private futex.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, at most `timeout` (`None`: no limit). Returns `true` on a
/// wake-up (possibly spurious), a value mismatch or an interruption, `false` when the timeout
/// passed.
#[inline]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    !matches!(
        multiproc_sync::raw::futex_wait(word, expected, timeout, false),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut
    )
}

/// Wakes every thread sleeping on `word`.
#[inline]
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    multiproc_sync::raw::futex_wake(word, u32::MAX, false);
}

/// Descriptors this process has open now (`/proc/self/fd`), or `None` if that cannot be read.
pub(crate) fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// Makes sure the soft `RLIMIT_NOFILE` leaves room for `more` descriptors beside those open
/// now, raising it to the hard limit (which needs no privilege) when it does not, as the Go
/// runtime raises it at start-up. A soft limit already high enough is left alone, so a
/// program that relies on a low one (`select`'s `FD_SETSIZE`) keeps it unless it asks for a
/// pool that could not fit. Best effort: a limit it cannot raise is left for the allocations
/// to report (`EMFILE`).
pub(crate) fn ensure_fd_room(more: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Some(open) = open_fds() else { return };
    let lim = getrlimit(Resource::Nofile);
    let Some(soft) = lim.current else { return };
    let want = open.saturating_add(more);
    if want <= soft {
        return;
    }
    // No hard limit (never so for descriptors on Linux, whose ceiling is `nr_open`): ask for
    // twice the need.
    let raised = lim.maximum.unwrap_or(want.saturating_mul(2));
    if raised > soft {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: lim.maximum,
            },
        );
        tracing::debug!(
            from = soft,
            to = raised,
            "raised the soft RLIMIT_NOFILE for a pool"
        );
    }
}

/// This process's resident set size in bytes (`VmRSS` of `/proc/self/status`).
pub(crate) fn resident_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// A size line (`VmRSS:`, `VmSize:`) of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Lowers the soft `RLIMIT_AS` to this process's address space now (`VmSize`) plus `more`
/// bytes, never above the hard limit; `false` when it could not.
pub(crate) fn limit_address_space(more: u64) -> bool {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Some(now) = status_bytes("VmSize:") else {
        return false;
    };
    let hard = getrlimit(Resource::As).maximum;
    let want = now.saturating_add(more);
    let soft = hard.map_or(want, |h| want.min(h));
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(soft),
            maximum: hard,
        },
    )
    .is_ok()
}

/// Whether a worker's exit code (`-signal` for a death by signal) is an abort (`SIGABRT`),
/// which is how Rust ends a process whose allocation failed.
pub(crate) fn aborted(exitcode: i32) -> bool {
    exitcode == -rustix::process::Signal::ABORT.as_raw()
}
