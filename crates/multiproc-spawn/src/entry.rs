//! The start-up hook: a constructor that runs before `main` in every binary that links
//! multiproc, and turns a process started by multiproc into a child or a fork server.
//!
//! This is what makes spawning work with no set-up call in `main`, in `#[test]` functions
//! (cargo test and nextest), examples and benches: the hook looks for one environment variable,
//! and in an ordinary start it does nothing else.
//!
//! # Who may give the hook orders
//!
//! The variable names a socket, and the first frame on it names a function of this binary to
//! run before `main`. Whoever starts the program chooses both, so the hook trusts them only
//! where that person could run any code as this process anyway:
//! - In a program started with elevated rights (setuid, setgid, file capabilities: the kernel's
//!   `AT_SECURE`, glibc's rule for `LD_PRELOAD`), the variable is ignored: the program runs its
//!   own `main`, exactly as without it. Spawn and ForkServer refuse to start children there
//!   (their children would ignore it too); Fork works.
//! - Otherwise the socket must be a Unix socket whose other end was made (`SO_PEERCRED`, fixed
//!   when the pair is made) by our parent, running as our effective user. multiproc makes the
//!   pair in the process that starts the child with `posix_spawn`, so that process is the
//!   child's parent; the fork server's children check against the server's own, checked,
//!   parent (see `server.rs`). A process that fails the check exits with status 1
//!   and a line on standard error, before it reads a byte: it was started as a child and must
//!   not run `main` (the parent may have died in between, and a second run of the program's
//!   `main` could repeat anything it does).
//!
//! Nothing imports this module: the variable's name ([`ENV`]) and the check of the socket
//! ([`authenticate`]) are in `protocol/`, the note that the hook ran in `state.rs`.

use crate::protocol::{ENV, authenticate};
use crate::{child, server, state, sys};
use std::io::Write;
use std::os::fd::RawFd;

#[ctor::ctor(unsafe)]
fn multiproc_start_hook() {
    state::hook_ran();
    let Some(value) = std::env::var_os(ENV) else {
        return;
    };
    // SAFETY: constructors run before `main`, while this process is still single-threaded, so
    // nothing can read the environment concurrently. Removing the variable keeps it from leaking
    // into processes this one starts with `Command`.
    unsafe { std::env::remove_var(ENV) };
    if sys::secure_exec() {
        // Whoever started us chose the variable, the descriptor and the frame; with elevated
        // rights we take no orders from them (see the module docs).
        return;
    }
    let value = value.to_string_lossy().into_owned();
    let Some((mode, fd)) = value.split_once(':') else {
        refuse(&value, "not of the form child:<fd> or server:<fd>")
    };
    let Ok(fd) = fd.parse::<RawFd>() else {
        refuse(&value, "the descriptor is not a number")
    };
    let parent = sys::getppid();
    if let Err(why) = authenticate(fd, parent) {
        refuse(&value, &why);
    }
    // SAFETY: the descriptor is open (authenticate asked the kernel about it) and is the socket
    // our parent made for us and passed across exec; no other code in this fresh process knows
    // of it, since no code of the program has run yet.
    let sock = unsafe { sys::own_fd(fd) };
    // Keep it from leaking into anything this process execs.
    let _ = sys::set_cloexec(std::os::fd::AsFd::as_fd(&sock));
    match mode {
        "child" => child::run_fresh(sock, false),
        "server" => server::serve(sock, parent),
        _ => refuse(&value, "unknown mode"),
    }
}

/// Turns down a start-up order and exits with 1 (see the module docs for why not `main`).
fn refuse(value: &str, why: &str) -> ! {
    // Not `eprintln!`: a panic in a constructor aborts, and nothing here may fail louder than
    // the exit that follows.
    let _ = writeln!(
        std::io::stderr(),
        "multiproc: refusing {ENV}={value}: {why}"
    );
    sys::exit_now(1)
}
