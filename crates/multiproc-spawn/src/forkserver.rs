//! The fork server: a small single-threaded process, started once from a fresh exec of this
//! binary, that forks every `ForkServer` child.
//!
//! Because the server holds no user memory and no other threads, a child's start cost does not
//! grow with the parent's size, and a fork never copies another thread's held lock.
//!
//! Protocol: the parent sends a `Request` frame (daemon flag) on the control socket with the
//! child's end of a fresh socket pair attached, writes the child's `Bootstrap` frame into its own
//! end, and waits for the server's answer on the control socket: `Hello` (the child's pid, with
//! a pidfd of it attached) or `ServerError`. The parent holds the server lock from request to
//! answer, so answers never cross. From then on the child talks to the parent directly, just
//! like a Spawn child; the server keeps its copy of the child's socket only to send the `Status`
//! frame once it has reaped the child. When the control socket closes (the parent exited or
//! died, `kill -9` included) the server kills its daemon children and exits; its daemon children
//! also carry `PR_SET_PDEATHSIG`, so they die even if the server is killed.
//!
//! After any activity the server keeps looking for more (without blocking, yielding the CPU)
//! for [`SERVER_SPIN`] before it sleeps: a request or a child's exit that comes soon after
//! another, as they do when a program starts short children one after another, then costs no
//! wake-up of a sleeping server (60-80 µs on a small virtual machine).

use crate::spin::Spinner;
use crate::state::STATE;
use crate::wire::{self, FrameReader, Kind};
use crate::{child, registry, sys};
use multiproc_sync::{Error, Result};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

/// How long the server keeps looking after its last activity before it sleeps.
const SERVER_SPIN: Duration = Duration::from_micros(500);

/// The parent's connection to its fork server.
#[derive(Debug)]
pub(crate) struct Server {
    /// The process that started the server; a forked copy of the parent must start its own.
    owner: u32,
    pid: u32,
    ctrl: OwnedFd,
    /// Reads the server's answers.
    reader: FrameReader,
    pidfd: OwnedFd,
}

pub(crate) fn server() -> MutexGuard<'static, Option<Server>> {
    STATE.0.server.lock().unwrap_or_else(|e| e.into_inner())
}

/// Has the fork server (starting it on first use, restarting it if it died) fork a child that
/// talks over `child_end`; runs `bootstrap` (which writes the child's arguments into the
/// parent's end) while the server forks. Returns the child's pid and pidfd.
pub(crate) fn start_child(
    daemon: bool,
    child_end: OwnedFd,
    bootstrap: impl FnOnce(),
) -> Result<(u32, OwnedFd)> {
    let mut guard = server();
    let mut last_error = None;
    for _attempt in 0..2 {
        if guard.as_ref().is_none_or(|s| s.owner != sys::getpid()) {
            *guard = Some(start()?);
        }
        let srv = guard.as_ref().expect("just started");
        match wire::write_frame(
            srv.ctrl.as_fd(),
            Kind::Request,
            &[&[daemon as u8]],
            &[child_end.as_raw_fd()],
        ) {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(e) => {
                lost(guard.take(), &e);
                last_error = Some(e);
            }
        }
    }
    if let Some(e) = last_error {
        return Err(Error::Io(e));
    }
    drop(child_end);
    bootstrap();
    let srv = guard.as_mut().expect("the request went to it");
    let answer = srv
        .reader
        .read_frame_spinning(srv.ctrl.as_fd(), registry::SPIN);
    match answer {
        Ok(Some(frame)) if frame.kind == Kind::Hello => {
            let pid = wire::payload_u32(&frame.payload)?;
            let pidfd = match frame.fds.into_iter().next() {
                Some(fd) => fd,
                // The server has not reaped it, so the pid is still the child's.
                None => sys::pidfd_open(pid)?,
            };
            Ok((pid, pidfd))
        }
        Ok(Some(frame)) if frame.kind == Kind::ServerError => Err(Error::ProcessFailed {
            exitcode: 1,
            message: String::from_utf8_lossy(&frame.payload).into_owned(),
        }),
        other => {
            let why = match other {
                Err(e) => e,
                _ => io::Error::new(io::ErrorKind::UnexpectedEof, "it closed its socket"),
            };
            let message = format!("the fork server died before it started the child ({why})");
            lost(guard.take(), &why);
            Err(Error::ProcessFailed {
                exitcode: 1,
                message,
            })
        }
    }
}

fn start() -> Result<Server> {
    let (mine, theirs) = sys::socketpair()?;
    let value = format!("server:{}", theirs.as_raw_fd());
    let pid = sys::spawn_self(
        "--multiproc-forkserver",
        (crate::entry::ENV, &value),
        theirs.as_fd(),
    )?;
    drop(theirs);
    let pidfd = sys::pidfd_open(pid)?;
    tracing::debug!(pid, "started the fork server");
    Ok(Server {
        owner: sys::getpid(),
        pid,
        ctrl: mine,
        reader: FrameReader::default(),
        pidfd,
    })
}

/// Forgets a server that stopped answering, reaping it if it has exited.
fn lost(old: Option<Server>, why: &io::Error) {
    if let Some(old) = old {
        tracing::warn!(pid = old.pid, error = %why, "lost the fork server; a new one will start");
        let _ = sys::waitid_pidfd(old.pidfd.as_fd(), true);
    }
}

/// Closes the connection, which makes the server exit (at normal program exit).
pub(crate) fn shut_down() {
    if let Some(srv) = server().take() {
        if srv.owner == sys::getpid() {
            drop(srv.ctrl);
            let _ = sys::waitid_pidfd(srv.pidfd.as_fd(), false);
            tracing::debug!(pid = srv.pid, "the fork server exited");
        } else {
            std::mem::forget(srv);
        }
    }
}

/// One child of the server.
struct Kid {
    pidfd: OwnedFd,
    sock: OwnedFd,
    daemon: bool,
    /// The `Status` frame still to send (the socket was full), and how much of it went out.
    pending: Option<([u8; 12], usize)>,
}

/// The server's main loop. Never returns.
pub(crate) fn serve(ctrl: OwnedFd) -> ! {
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
        spinner = Spinner::until(Instant::now() + SERVER_SPIN);
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
                if let Some(sock) = frame.fds.into_iter().next() {
                    if let Some(kid) = fork_child(me, &ctrl, sock, daemon) {
                        kids.push(kid);
                    }
                }
            }
            if reader.eof() {
                shut_down_server(&kids);
            }
        }
        for (i, r) in ready[1..].iter().enumerate() {
            let k = &mut kids[i];
            if r.readable || r.writable {
                if k.pending.is_none() {
                    if let Ok(Some(code)) = sys::waitid_pidfd(k.pidfd.as_fd(), true) {
                        let mut frame = [0u8; 12];
                        frame[..4].copy_from_slice(&4u32.to_le_bytes());
                        frame[4] = Kind::Status as u8;
                        frame[8..].copy_from_slice(&code.to_le_bytes());
                        k.pending = Some((frame, 0));
                    }
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

/// Forks one child and answers the parent on `ctrl`; in the child, never returns.
fn fork_child(server_pid: u32, ctrl: &OwnedFd, sock: OwnedFd, daemon: bool) -> Option<Kid> {
    // SAFETY: the server is single-threaded, so the child inherits no lock held by another
    // thread; the child closes the server's descriptors and never returns into this loop.
    match unsafe { sys::fork() } {
        Ok(sys::Forked::Child) => {
            sys::close_fds_except(sock.as_raw_fd());
            if daemon && (sys::set_parent_death_signal().is_err() || sys::getppid() != server_pid) {
                sys::kill_self();
            }
            child::run_fresh(sock, true)
        }
        Ok(sys::Forked::Parent(pid)) => {
            // Answer first: the parent is waiting for it. The pidfd goes along, so the parent
            // can watch a child it may not reap.
            let pidfd = sys::pidfd_open(pid).ok();
            let attached: Vec<RawFd> = pidfd.iter().map(AsRawFd::as_raw_fd).collect();
            let hello = pid.to_le_bytes();
            let _ = wire::write_frame(ctrl.as_fd(), Kind::Hello, &[&hello], &attached);
            pidfd.map(|pidfd| Kid {
                pidfd,
                sock,
                daemon,
                pending: None,
            })
        }
        Err(e) => {
            let msg = format!("the fork server could not fork: {e}");
            let _ = wire::write_frame(ctrl.as_fd(), Kind::ServerError, &[msg.as_bytes()], &[]);
            None
        }
    }
}

fn shut_down_server(kids: &[Kid]) -> ! {
    for k in kids.iter().filter(|k| k.daemon) {
        let _ = sys::pidfd_send_signal(k.pidfd.as_fd(), sys::SIGKILL);
    }
    sys::exit_now(0)
}
