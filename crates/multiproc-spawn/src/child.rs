//! The child's side of a start: read the bootstrap frame, become the named child, run the
//! target, join our own children, report its outcome (on the bootstrap socket, or in a Fork
//! child's outcome slot), and exit.
//!
//! A fresh child (Spawn, or a fork-server child) gets here from the start-up hook in
//! [`crate::entry`], before `main` would run; a Fork child gets here straight after `fork()`.
//! None of them ever returns: they end with `_exit`, so no code of the parent's `main` runs.
//!
//! # The child's page faults
//!
//! `fork()` copies no page-table entry of the executable's code (it is file-backed, and the
//! kernel refills such entries on demand), so a forked child pays a page fault, with its
//! fault-around of 16 pages, for every 64 KiB window of code it runs in first: scattered over
//! the binary by the linker, the path from `fork()` to `_exit` enters about five of them. The
//! child's path is kept short for that reason (no `join_all_children` when it started none,
//! no handle table for arguments without handles, stdout flushed through the handle taken
//! before the fork). Gathering that path into one linker section was tried and measured: the
//! child's faults stayed at 13 (std's flush and lock, the state page and the outcome slot are
//! windows of their own), and a named section is not portable, so it is not done.

use crate::decode::decode_exact;
use crate::fnref::{address_at, offset_of};
use crate::handoff;
use crate::identity::{self, Ident, Identity};
use crate::protocol::Header;
use crate::protocol::frame::{self, FrameReader, Kind};
use crate::protocol::outcome::{Encoded, Outcome, Report};
use crate::start_method::StartMethod;
use crate::state::{self, parked_report, set_start_method};
use crate::sys;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The offset of a second non-generic, never-inlined function from
/// [`anchor`](crate::fnref::anchor). (A generic function would not do: each codegen unit may
/// hold its own copy of an instantiation.)
#[inline(never)]
pub(crate) fn fingerprint() -> isize {
    offset_of(run_fresh as fn(OwnedFd, bool) -> ! as usize)
}

/// Every trampoline has this one signature, so its address can travel and be called.
pub(crate) type Trampoline = fn(usize, &[u8], Vec<OwnedFd>) -> Outcome;

/// Decodes `A`, calls the `fn(A) -> R` at `target`, encodes `R`.
pub(crate) fn trampoline<A: DeserializeOwned, R: Serialize>(
    target: usize,
    args: &[u8],
    fds: Vec<OwnedFd>,
) -> Outcome {
    let args: A = match handoff::with_received_fds(fds, || decode_exact(args)) {
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
    match handoff::collect_fds(|| postcard::serialize_with_flavor(value, Encoded::default())) {
        (Ok(bytes), fds) => Outcome::Value(bytes, fds),
        (Err(e), _) => Outcome::Failed(format!("could not encode the result: {e}")),
    }
}

/// Runs a fresh child (Spawn or fork server) on its bootstrap socket. Never returns.
pub(crate) fn run_fresh(sock: OwnedFd, via_server: bool) -> ! {
    if !via_server {
        // A fork-server child inherits the server's setting; an exec'd child may not have it.
        sys::ignore_sigpipe();
    }
    let mut reader = FrameReader::default();
    let (payload, fds) = match reader.read_first_frame(sock.as_fd()) {
        Ok(Some(frame)) if frame.kind == Kind::Bootstrap => (frame.payload, frame.fds),
        // Say why (no room for the descriptors of the handles in the arguments: EMFILE).
        Err(e) => report_and_exit(sock, format!("could not receive its arguments: {e}")),
        // The parent went away before telling us what to run: nobody is left to tell.
        _ => sys::exit_now(1),
    };
    let parsed = parse_bootstrap(payload);
    let (header, args) = match parsed {
        Ok(p) => p,
        Err(msg) => report_and_exit(sock, msg),
    };
    let me = Identity::child(header.name, header.daemon, header.parent);
    take_identity(&mut state::identity(), me, !via_server);
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
    let report = Report {
        sock,
        parents_end: None,
        slot: None,
    };
    run_target(report, || tramp(target, args, fds))
}

/// Runs the target, reports its outcome and exits. While the target runs, the report channel is
/// parked in the process state, so that a child the target forks closes its copy.
pub(crate) fn run_target(report: Report, target: impl FnOnce() -> Outcome) -> ! {
    let sock_raw = report.sock.as_raw_fd();
    *parked_report() = Some(report);
    let outcome = catch_unwind(AssertUnwindSafe(target));
    let report = parked_report()
        .take()
        .filter(|r| r.sock.as_raw_fd() == sock_raw);
    match report {
        Some(report) => finish(report, outcome.map_err(|p| panic_text(&*p))),
        None => sys::exit_now(1),
    }
}

/// Standard output's handle, taken by [`prepare_fork`] (see [`finish`]).
static STDOUT: std::sync::OnceLock<std::io::Stdout> = std::sync::OnceLock::new();

/// Done in the parent just before a `fork()`, so that the child need not: flush standard output
/// (else the child would print what the parent had buffered a second time, as Python's
/// `multiprocessing` also guards against) and register the handle-passing thread-locals'
/// destructors (each registration allocates, which costs a forked child page faults).
///
/// Returns standard output locked: held across the fork like multiproc's own locks, so that the
/// child never inherits it held by another thread (a test harness printing, say), which would
/// deadlock the child's final flush. Both sides release it right after the fork.
pub(crate) fn prepare_fork() -> std::io::StdoutLock<'static> {
    let mut out = STDOUT.get_or_init(std::io::stdout).lock();
    let _ = out.flush();
    handoff::warm_up();
    out
}

/// Releases the standard-output lock [`prepare_fork`] took, in the child: here, in this
/// function, rather than in a drop function the compiler places among the caller's code.
#[inline(never)]
pub(crate) fn release_stdout(lock: std::io::StdoutLock<'static>) {
    drop(lock);
}

/// Releases a lock guard held across the fork, in the child, in a function of its own (as
/// [`release_stdout`]; generic, so it stays next to the caller's code).
#[inline(never)]
pub(crate) fn release<T>(guard: std::sync::MutexGuard<'static, T>) {
    drop(guard);
}

fn parse_bootstrap(payload: &[u8]) -> Result<(Header, &[u8]), String> {
    let len = frame::payload_u32(payload).map_err(|e| e.to_string())? as usize;
    let header_bytes = payload
        .get(4..4 + len)
        .ok_or("truncated start-up message")?;
    let header: Header =
        decode_exact(header_bytes).map_err(|e| format!("bad start-up header: {e}"))?;
    Ok((header, &payload[4 + len..]))
}

/// Takes on the identity the parent chose; a daemon started by Spawn or Fork also starts
/// watching its parent (a fork-server child has `PR_SET_PDEATHSIG` on the single-threaded
/// server instead).
pub(crate) fn take_identity(slot: &mut Ident, me: Identity, watch_parent: bool) {
    let watch = match &me.parent {
        Some(parent) if me.daemon && watch_parent => Some(parent.pid),
        _ => None,
    };
    identity::become_child(slot, me);
    if let Some(parent_pid) = watch {
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
    let report = Report {
        sock,
        parents_end: None,
        slot: None,
    };
    finish(report, Ok(Outcome::Failed(reason)))
}

/// Flushes standard output, joins our own children, then sends the outcome (`Err` = a panic's
/// text) and exits at once: 0 after a value, 1 after a panic or a failure to decode or encode.
///
/// The outcome goes last, just before `_exit`, so that a parent woken by it finds the child
/// (nearly) gone and needs no second wake-up for the exit.
pub(crate) fn finish(report: Report, outcome: Result<Outcome, String>) -> ! {
    let (kind, payload, fds, code) = match &outcome {
        Ok(Outcome::Value(bytes, fds)) => (Kind::ResultOk, bytes.as_slice(), &fds[..], 0),
        Ok(Outcome::Failed(msg)) => (Kind::StartFailed, msg.as_bytes(), &[][..], 1),
        Err(panic) => (Kind::ResultPanic, panic.as_bytes(), &[][..], 1),
    };
    // Through the handle kept by `prepare_fork` where there is one: `std::io::stdout()` is one
    // more function, and so one more code page, for a forked child to fault in.
    let _ = match STDOUT.get() {
        Some(out) => (&*out).flush(),
        None => std::io::stdout().flush(),
    };
    if state::registry().may_have_children() {
        state::registry().join_all_children();
    }
    if let Some(slot) = report.slot
        && fds.is_empty()
        && slot.put(kind, payload)
    {
        sys::exit_now(code)
    }
    drop(report.parents_end);
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    // A parent that dropped its handle no longer listens: the child still exits normally.
    let _ = frame::write_frame(report.sock.as_fd(), kind, &[payload], &raw);
    sys::exit_now(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(s: String) -> usize {
        s.len()
    }

    fn run(args: &[u8]) -> Result<Vec<u8>, String> {
        match trampoline::<String, usize>(len as fn(String) -> usize as usize, args, Vec::new()) {
            Outcome::Value(bytes, _) => Ok(bytes.as_slice().to_vec()),
            Outcome::Failed(e) => Err(e),
        }
    }

    #[test]
    fn arguments_decode_exactly() {
        let good = postcard::to_allocvec("Bob the Builder").unwrap();
        assert_eq!(
            run(&good).unwrap(),
            postcard::to_allocvec(&15usize).unwrap()
        );
        for cut in 0..good.len() {
            let e = run(&good[..cut]).unwrap_err();
            assert!(e.contains("expected alloc::string::String: "), "{e}");
        }
        let mut longer = good.clone();
        longer.push(0);
        let e = run(&longer).unwrap_err();
        assert!(
            e.contains("expected alloc::string::String: 1 byte left over"),
            "{e}"
        );
        // A u64's bytes are no string's.
        let e = run(&postcard::to_allocvec(&300u64).unwrap()).unwrap_err();
        assert!(e.contains("alloc::string::String"), "{e}");
    }

    #[test]
    fn random_arguments_and_headers_never_panic() {
        let mut rng = multiproc_testkit::XorShift(0x2545_F491_4F6C_DD1D);
        for _ in 0..10_000 {
            let b = rng.bytes(48);
            if let Err(e) = run(&b) {
                assert!(e.contains("expected alloc::string::String: "), "{e}");
            }
            let _ = parse_bootstrap(&b);
        }
    }
}
