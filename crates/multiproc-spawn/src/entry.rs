//! The start-up hook: a constructor that runs before `main` in every binary that links
//! multiproc, and turns a process started by multiproc into a child or a fork server.
//!
//! This is what makes spawning work with no set-up call in `main`, in `#[test]` functions
//! (cargo test and nextest), examples and benches: the hook looks for one environment variable,
//! and in an ordinary start it does nothing else.

use crate::{child, forkserver, sys};
use std::sync::OnceLock;

/// `child:<fd>` (a Spawn child) or `server:<fd>` (the fork server); the descriptor is the
/// inherited bootstrap socket.
pub(crate) const ENV: &str = "MULTIPROC_BOOTSTRAP";

#[ctor::ctor(unsafe)]
fn multiproc_start_hook() {
    let Some(value) = std::env::var_os(ENV) else {
        return;
    };
    // SAFETY: constructors run before `main`, while this process is still single-threaded, so
    // nothing can read the environment concurrently. Removing the variable keeps it from leaking
    // into processes this one starts with `Command`.
    unsafe { std::env::remove_var(ENV) };
    let value = value.to_string_lossy().into_owned();
    let Some((mode, fd)) = value.split_once(':') else {
        sys::exit_now(1)
    };
    let Ok(fd) = fd.parse::<i32>() else {
        sys::exit_now(1)
    };
    // SAFETY: the parent created this descriptor for us alone and passed it across exec; no
    // other code in this fresh process knows of it.
    let sock = unsafe { sys::own_fd(fd) };
    // Keep it from leaking into anything this process execs.
    let _ = sys::set_cloexec(std::os::fd::AsFd::as_fd(&sock));
    match mode {
        "child" => child::run_fresh(sock, false),
        "server" => forkserver::serve(sock),
        _ => sys::exit_now(1),
    }
}

/// Whether the hook ran in this binary: `spawn` refuses to start children otherwise, since a
/// child would then run the program's `main` again. (The hook removes the variable, so it is
/// still set only where the hook did not run. Looked up once: reading the environment takes a
/// process-wide lock and scans every variable.)
pub(crate) fn hook_is_linked() -> bool {
    static LINKED: OnceLock<bool> = OnceLock::new();
    *LINKED.get_or_init(|| std::env::var_os(ENV).is_none())
}
