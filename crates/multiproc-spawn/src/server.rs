//! The fork server: a small single-threaded process, started once from a fresh exec of this
//! binary, that forks every `ForkServer` child. (The parent's side of it, and the protocol
//! between the two, are in `parent/server_conn.rs`.)
//!
//! Because the server holds no user memory and no other threads, a child's start cost does not
//! grow with the parent's size, and a fork never copies another thread's held lock.
//!
//! After any activity the server keeps looking for more (without blocking, yielding the CPU)
//! for [`SERVER_SPIN`](crate::spin::SERVER_SPIN) before it sleeps: a request or a child's exit
//! that comes soon after another, as they do when a program starts short children one after another, then costs no
//! wake-up of a sleeping server (60-80 µs on a small virtual machine).

use crate::protocol::authenticate;
use crate::protocol::frame::{self, FrameReader, Kind};
use crate::spin::Spinner;
use crate::{child, sys};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// One child of the server.
struct Kid {
    pidfd: OwnedFd,
    sock: OwnedFd,
    daemon: bool,
    /// The `Status` frame still to send (the socket was full), and how much of it went out.
    pending: Option<([u8; 12], usize)>,
}

/// The server's main loop. Never returns. `owner` is the process that started us, which the
/// start-up hook has checked made `ctrl`'s other end: every child's socket must come from it too.
pub(crate) fn serve(ctrl: OwnedFd, owner: u32) -> ! {
    sys::ignore_sigpipe();
    // What each child would otherwise do for itself, paying page faults on memory it shares
    // with us: set up standard output and the handle-passing thread-locals, and stock malloc's
    // per-thread cache with small blocks (a child's first small allocations, its name and its
    // parent's, then come from there instead of from the main heap's bookkeeping).
    drop(child::prepare_fork());
    let blocks: Vec<Vec<u8>> = [16usize, 24, 32, 48, 64]
        .iter()
        .flat_map(|&n| (0..3).map(move |_| Vec::with_capacity(n)))
        .collect();
    drop(blocks);
    let me = sys::getpid();
    let mut kids: Vec<Kid> = Vec::new();
    let mut reader = FrameReader::default();
    let mut fds: Vec<(RawFd, bool)> = Vec::new();
    let mut spinner = Spinner::until(Instant::now());
    let mut spinning = false;
    // Until the kernel refuses `clone3` once.
    let mut adopt = true;
    loop {
        fds.clear();
        fds.push((ctrl.as_raw_fd(), false));
        for k in &kids {
            match k.pending {
                Some(_) => fds.push((k.sock.as_raw_fd(), true)),
                None => fds.push((k.pidfd.as_raw_fd(), false)),
            }
        }
        let Ok(ready) = sys::poll(&fds, spinning.then_some(Duration::ZERO)) else {
            continue;
        };
        if !ready.iter().any(|r| r.readable || r.writable) {
            spinning = spinner.spin();
            continue;
        }
        spinner = Spinner::until(Instant::now() + crate::spin::SERVER_SPIN);
        spinning = true;
        if ready[0].readable {
            if reader.fill(ctrl.as_fd(), true).is_err() {
                shut_down_server(&kids);
            }
            while let Ok(Some(frame)) = reader.next_frame() {
                if frame.kind != Kind::Request {
                    continue;
                }
                let daemon = frame.payload.first() == Some(&1);
                if let Some(sock) = frame.fds.into_iter().next()
                    && let Some(kid) = fork_child(me, owner, &ctrl, sock, daemon, &mut adopt)
                {
                    kids.push(kid);
                }
            }
            if reader.eof() {
                shut_down_server(&kids);
            }
        }
        for (i, r) in ready[1..].iter().enumerate() {
            let k = &mut kids[i];
            if r.readable || r.writable {
                if k.pending.is_none()
                    && let Ok(Some(code)) = sys::waitid_pidfd(k.pidfd.as_fd(), true)
                {
                    let mut frame = [0u8; 12];
                    frame[..4].copy_from_slice(&4u32.to_le_bytes());
                    frame[4] = Kind::Status as u8;
                    frame[8..].copy_from_slice(&code.to_le_bytes());
                    k.pending = Some((frame, 0));
                }
                if let Some((frame, sent)) = &mut k.pending {
                    let rest = [IoSlice::new(&frame[*sent..])];
                    match sys::send_with_fds(k.sock.as_fd(), &rest, &[], true) {
                        Ok(n) => *sent += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        // The parent dropped its handle: nobody to tell.
                        Err(_) => *sent = frame.len(),
                    }
                }
            }
        }
        kids.retain(|k| !matches!(&k.pending, Some((f, sent)) if *sent >= f.len()));
    }
}

/// Forks one child and answers the parent on `ctrl`; in the child, never returns. Returns the
/// child to watch, if it is ours (see the module docs); `adopt` turns off for good when the
/// kernel refuses to give a child to the parent.
///
/// The child checks, before it reads its socket, that the socket's other end was made by
/// `owner`, as a Spawn child checks its parent (see [`crate::entry`]): only `owner` sends us
/// requests, so this holds unless someone else got hold of our control socket.
fn fork_child(
    server_pid: u32,
    owner: u32,
    ctrl: &OwnedFd,
    sock: OwnedFd,
    daemon: bool,
    adopt: &mut bool,
) -> Option<Kid> {
    if !daemon && *adopt {
        // SAFETY: the server is single-threaded and registers no atfork handlers, so the child
        // inherits no lock held by another thread and misses no handler; it closes the server's
        // descriptors and never returns into this loop.
        match unsafe { sys::fork_for_parent() } {
            Ok(Some(sys::Adopted::Child)) => {
                sys::close_fds_except(sock.as_raw_fd());
                if authenticate(sock.as_raw_fd(), owner).is_err() {
                    sys::exit_now(1);
                }
                child::run_fresh(sock, true)
            }
            Ok(Some(sys::Adopted::Sibling(pid))) => {
                hello(ctrl, pid, true, None);
                return None;
            }
            Ok(None) => *adopt = false,
            Err(e) => {
                could_not_fork(ctrl, &e);
                return None;
            }
        }
    }
    // SAFETY: as above.
    match unsafe { sys::fork() } {
        Ok(sys::Forked::Child) => {
            sys::close_fds_except(sock.as_raw_fd());
            if daemon && (sys::set_parent_death_signal().is_err() || sys::getppid() != server_pid) {
                sys::kill_self();
            }
            if authenticate(sock.as_raw_fd(), owner).is_err() {
                sys::exit_now(1);
            }
            child::run_fresh(sock, true)
        }
        Ok(sys::Forked::Parent(pid)) => {
            // Answer first: the parent is waiting for it. The pidfd goes along, so the parent
            // can watch a child it may not reap.
            let pidfd = sys::pidfd_open(pid).ok();
            hello(ctrl, pid, false, pidfd.as_ref());
            pidfd.map(|pidfd| Kid {
                pidfd,
                sock,
                daemon,
                pending: None,
            })
        }
        Err(e) => {
            could_not_fork(ctrl, &e);
            None
        }
    }
}

/// Tells the parent the new child's pid, whether it is the parent's own, and (attached) a pidfd.
fn hello(ctrl: &OwnedFd, pid: u32, ours: bool, pidfd: Option<&OwnedFd>) {
    let attached: Vec<RawFd> = pidfd.iter().map(|fd| fd.as_raw_fd()).collect();
    let pid = pid.to_le_bytes();
    let _ = frame::write_frame(ctrl.as_fd(), Kind::Hello, &[&pid, &[ours as u8]], &attached);
}

/// Tells the parent that this request got no child, and why.
fn could_not_fork(ctrl: &OwnedFd, e: &io::Error) {
    let msg = format!("the fork server could not fork: {e}");
    let _ = frame::write_frame(ctrl.as_fd(), Kind::ServerError, &[msg.as_bytes()], &[]);
}

fn shut_down_server(kids: &[Kid]) -> ! {
    for k in kids.iter().filter(|k| k.daemon) {
        let _ = sys::pidfd_send_signal(k.pidfd.as_fd(), sys::SIGKILL);
    }
    sys::exit_now(0)
}
