//! What crosses a process boundary: the start-up variable ([`ENV`]) and the check of the
//! socket it names ([`authenticate`]), the bootstrap [`Header`], the frames on a bootstrap or
//! control socket ([`frame`]), a Fork child's outcome slots in a page shared with its parent
//! ([`slots`]), and what a child reports ([`outcome`]). Nothing here reaches a process-wide
//! global.

pub(crate) mod frame;
pub(crate) mod outcome;
pub(crate) mod slots;

use crate::identity::ProcessInfo;
use crate::sys;
use serde::{Deserialize, Serialize};
use std::os::fd::RawFd;

/// `child:<fd>` (a Spawn child) or `server:<fd>` (the fork server); the descriptor is the
/// inherited bootstrap socket (read by the start-up hook in `entry.rs`).
pub(crate) const ENV: &str = "MULTIPROC_BOOTSTRAP";

/// What the parent tells a fresh child, ahead of the argument bytes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    /// Offset of the monomorphised trampoline from [`anchor`](crate::fnref::anchor).
    pub(crate) trampoline: isize,
    /// Offset of the user's `fn(A) -> R` from [`anchor`](crate::fnref::anchor).
    pub(crate) target: isize,
    /// Offset of a second known function from [`anchor`](crate::fnref::anchor): equal on both
    /// sides only if the executables are identical.
    pub(crate) fingerprint: isize,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) parent: ProcessInfo,
    pub(crate) start_method: u8,
}

/// Checks that `fd` is a Unix socket whose other end was made by process `expected_pid`,
/// running as our effective user. Touches nothing but `getsockopt`, so a descriptor that fails
/// (a terminal on fd 0, say) is left as it was. (The start-up hook checks its own socket with
/// it, and a fork-server child the socket the server was sent.)
pub(crate) fn authenticate(fd: RawFd, expected_pid: u32) -> Result<(), String> {
    let peer = sys::unix_peer(fd)
        .map_err(|e| format!("descriptor {fd} is not a Unix socket we can check ({e})"))?;
    let uid = sys::geteuid();
    if peer.uid != uid {
        return Err(format!(
            "the socket's other end belongs to uid {}, not to ours ({uid})",
            peer.uid
        ));
    }
    // 0: that process (or our parent) is outside our pid namespace, so we cannot tell.
    if expected_pid == 0 || peer.pid != expected_pid {
        return Err(format!(
            "the socket's other end was made by process {}, not by our parent ({expected_pid})",
            peer.pid
        ));
    }
    Ok(())
}
