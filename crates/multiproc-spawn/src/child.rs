//! The child's side of a start: read the bootstrap frame, become the named child, run the
//! target, report its outcome on the bootstrap socket, join our own children, and exit.
//!
//! A fresh child (Spawn, or a fork-server child) gets here from the start-up hook in
//! [`crate::entry`], before `main` would run; a Fork child gets here straight after `fork()`.
//! None of them ever returns: they end with `_exit`, so no code of the parent's `main` runs.

use crate::handoff;
use crate::identity::{self, ProcessInfo};
use crate::registry;
use crate::start_method::{StartMethod, set_start_method};
use crate::sys;
use crate::wire::{self, FrameReader, Kind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

/// What the parent tells a fresh child, ahead of the argument bytes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    /// Offset of the monomorphised trampoline from [`anchor`].
    pub(crate) trampoline: isize,
    /// Offset of the user's `fn(A) -> R` from [`anchor`].
    pub(crate) target: isize,
    /// Offset of a second known function from [`anchor`]: equal on both sides only if the
    /// executables are identical.
    pub(crate) fingerprint: isize,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) parent: ProcessInfo,
    pub(crate) start_method: u8,
}

/// A fixed point in this executable; function addresses travel as offsets from it, because
/// address-space layout randomisation moves the whole binary between processes.
#[inline(never)]
pub(crate) fn anchor() {}

/// The address of `f` relative to [`anchor`].
pub(crate) fn offset_of(f: usize) -> isize {
    f.wrapping_sub(anchor as fn() as usize) as isize
}

pub(crate) fn address_at(offset: isize) -> usize {
    (anchor as fn() as usize).wrapping_add(offset as usize)
}

/// The offset of a second non-generic, never-inlined function from [`anchor`]. (A generic
/// function would not do: each codegen unit may hold its own copy of an instantiation.)
#[inline(never)]
pub(crate) fn fingerprint() -> isize {
    offset_of(run_fresh as fn(OwnedFd, bool) -> ! as usize)
}

/// What running the target gave, short of a panic.
pub(crate) enum Outcome {
    /// The encoded return value and the descriptors of handles inside it.
    Value(Vec<u8>, Vec<OwnedFd>),
    /// The arguments could not be decoded or the result encoded.
    Failed(String),
}

/// Every trampoline has this one signature, so its address can travel and be called.
pub(crate) type Trampoline = fn(usize, &[u8], Vec<OwnedFd>) -> Outcome;

/// Decodes `A`, calls the `fn(A) -> R` at `target`, encodes `R`.
pub(crate) fn trampoline<A: DeserializeOwned, R: Serialize>(
    target: usize,
    args: &[u8],
    fds: Vec<OwnedFd>,
) -> Outcome {
    let args: A = match handoff::with_received_fds(fds, || postcard::from_bytes(args)) {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(format!("could not decode the arguments: {e}")),
    };
    // SAFETY: `target` is the address of a `fn(A) -> R` in the identical executable: the parent
    // took it from exactly this monomorphisation's `f` (see `Header`), and the fingerprint check
    // in `run_fresh` rejected a different binary before we got here.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(target) };
    encode_value(&f(args))
}

/// Encodes a target's return value together with the handles it contains.
pub(crate) fn encode_value<R: Serialize>(value: &R) -> Outcome {
    match handoff::collect_fds(|| postcard::to_allocvec(value)) {
        (Ok(bytes), fds) => Outcome::Value(bytes, fds),
        (Err(e), _) => Outcome::Failed(format!("could not encode the result: {e}")),
    }
}

/// The socket to our own parent, kept so that a Fork child of ours can close its copy.
pub(crate) static PARENT_SOCKET: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// Runs a fresh child (Spawn or fork server) on its bootstrap socket. Never returns.
pub(crate) fn run_fresh(sock: OwnedFd, via_server: bool) -> ! {
    sys::ignore_sigpipe();
    if via_server {
        let pidfd = sys::pidfd_open(sys::getpid());
        let fds: Vec<RawFd> = pidfd.iter().map(AsRawFd::as_raw_fd).collect();
        let hello = sys::getpid().to_le_bytes();
        if wire::write_frame(sock.as_fd(), Kind::Hello, &[&hello], &fds).is_err() {
            sys::exit_now(1);
        }
    }
    let mut reader = FrameReader::default();
    let frame = match reader.read_frame(sock.as_fd()) {
        Ok(Some(f)) if f.kind == Kind::Bootstrap => f,
        // The parent went away before telling us what to run: nobody is left to tell.
        _ => sys::exit_now(1),
    };
    let parsed = parse_bootstrap(&frame.payload);
    let (header, args) = match parsed {
        Ok(p) => p,
        Err(msg) => report_and_exit(sock, msg),
    };
    take_identity(
        &header.name,
        header.daemon,
        header.parent.clone(),
        !via_server,
    );
    set_start_method(StartMethod::from_u8(header.start_method));
    if header.fingerprint != fingerprint() {
        report_and_exit(
            sock,
            "the child runs a different executable than its parent".to_owned(),
        );
    }
    // SAFETY: the trampoline offset came from the parent's `trampoline::<A, R> as Trampoline`,
    // and the fingerprint check above proved the executable identical, so the address holds a
    // function of exactly the `Trampoline` signature.
    let tramp: Trampoline =
        unsafe { std::mem::transmute::<usize, Trampoline>(address_at(header.trampoline)) };
    let target = address_at(header.target);
    let fds = frame.fds;
    let sock_raw = sock.as_raw_fd();
    *PARENT_SOCKET.lock().unwrap_or_else(|e| e.into_inner()) = Some(sock);
    let outcome = catch_unwind(AssertUnwindSafe(|| tramp(target, args, fds)));
    let sock = PARENT_SOCKET
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .filter(|s| s.as_raw_fd() == sock_raw);
    match sock {
        Some(sock) => finish(sock, outcome.map_err(|p| panic_text(&*p))),
        None => sys::exit_now(1),
    }
}

fn parse_bootstrap(payload: &[u8]) -> Result<(Header, &[u8]), String> {
    let len = wire::payload_u32(payload).map_err(|e| e.to_string())? as usize;
    let header_bytes = payload
        .get(4..4 + len)
        .ok_or("truncated start-up message")?;
    let header: Header =
        postcard::from_bytes(header_bytes).map_err(|e| format!("bad start-up header: {e}"))?;
    Ok((header, &payload[4 + len..]))
}

/// Takes on the identity the parent chose; a daemon started by Spawn or Fork also starts
/// watching its parent (a fork-server child has `PR_SET_PDEATHSIG` on the single-threaded
/// server instead).
pub(crate) fn take_identity(name: &str, daemon: bool, parent: ProcessInfo, watch_parent: bool) {
    let parent_pid = parent.pid;
    {
        let mut slot = identity::IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
        identity::become_child(&mut slot, name.to_owned(), daemon, parent);
    }
    if daemon && watch_parent {
        watch_parent_death(parent_pid);
    }
}

/// Kills this process when `parent_pid` dies (or at once if it already has).
///
/// `PR_SET_PDEATHSIG` would fire when the parent *thread* that started us exits, which for a
/// test harness or a worker thread is long before the parent process ends; a pidfd does not
/// have that flaw, at the price of one sleeping thread in each daemon child.
fn watch_parent_death(parent_pid: u32) {
    let Ok(pidfd) = sys::pidfd_open(parent_pid) else {
        sys::kill_self()
    };
    if sys::getppid() != parent_pid {
        sys::kill_self();
    }
    let spawned = std::thread::Builder::new()
        .name("multiproc-parent-watch".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = sys::poll(&[(pidfd.as_raw_fd(), false)], None);
            sys::kill_self()
        });
    if spawned.is_err() {
        sys::kill_self();
    }
}

/// Turns a panic payload into its text.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked with a non-string payload".to_owned()
    }
}

/// Reports a failure that happened before the target ran, and exits with 1.
fn report_and_exit(sock: OwnedFd, reason: String) -> ! {
    finish(sock, Ok(Outcome::Failed(reason)))
}

/// Sends the outcome (`Err` = a panic's text), joins our own children, and exits:
/// 0 after a value, 1 after a panic or a failure to decode or encode.
pub(crate) fn finish(sock: OwnedFd, outcome: Result<Outcome, String>) -> ! {
    let (kind, payload, fds, code) = match outcome {
        Ok(Outcome::Value(bytes, fds)) => (Kind::ResultOk, bytes, fds, 0),
        Ok(Outcome::Failed(msg)) => (Kind::StartFailed, msg.into_bytes(), Vec::new(), 1),
        Err(panic) => (Kind::ResultPanic, panic.into_bytes(), Vec::new(), 1),
    };
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    // A parent that dropped its handle no longer listens: the child still exits normally.
    let _ = wire::write_frame(sock.as_fd(), kind, &[&payload], &raw);
    drop(fds);
    exit_child(code)
}

/// The end of every child: flush standard output, join live non-daemon children (terminate
/// daemon ones), then `_exit` without running the parent's atexit handlers or destructors.
pub(crate) fn exit_child(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    registry::join_all_children();
    sys::exit_now(code)
}
