//! The fork server: a small single-threaded process, started once from a fresh exec of this
//! binary, that forks every `ForkServer` child.
//!
//! Because the server holds no user memory and no other threads, a child's start cost does not
//! grow with the parent's size, and a fork never copies another thread's held lock.
//!
//! Protocol: the parent sends a `Request` frame (daemon flag) on the control socket with the
//! child's end of a fresh socket pair attached. The server forks; the child says `Hello` (its pid
//! and pidfd) on that socket and from then on talks to the parent directly, just like a Spawn
//! child. The server keeps its copy of the child's socket only to send the `Status` frame once it
//! has reaped the child. When the control socket closes (the parent exited or died, `kill -9`
//! included) the server kills its daemon children and exits; its daemon children also carry
//! `PR_SET_PDEATHSIG`, so they die even if the server is killed.

use crate::child;
use crate::sys;
use crate::wire::{self, FrameReader, Kind};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

/// The parent's connection to its fork server.
#[derive(Debug)]
pub(crate) struct Server {
    /// The process that started the server; a forked copy of the parent must start its own.
    owner: u32,
    ctrl: OwnedFd,
    pidfd: OwnedFd,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

pub(crate) fn server() -> MutexGuard<'static, Option<Server>> {
    SERVER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asks the fork server (starting it on first use, restarting it if it died) to fork a child
/// that talks over `child_end`.
pub(crate) fn request_child(daemon: bool, child_end: &OwnedFd) -> io::Result<()> {
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
            Ok(()) => return Ok(()),
            Err(e) => {
                // The server died: reap it and start another.
                if let Some(old) = guard.take() {
                    let _ = sys::waitid_pidfd(old.pidfd.as_fd(), true);
                }
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("fork server unavailable")))
}

fn start() -> io::Result<Server> {
    let (mine, theirs) = sys::socketpair()?;
    let value = format!("server:{}", theirs.as_raw_fd());
    let pid = sys::spawn_self(
        "--multiproc-forkserver",
        (crate::entry::ENV, &value),
        theirs.as_fd(),
    )?;
    drop(theirs);
    let pidfd = sys::pidfd_open(pid)?;
    Ok(Server {
        owner: sys::getpid(),
        ctrl: mine,
        pidfd,
    })
}

/// Closes the connection, which makes the server exit (at normal program exit).
pub(crate) fn shut_down() {
    if let Some(srv) = server().take() {
        if srv.owner == sys::getpid() {
            drop(srv.ctrl);
            let _ = sys::waitid_pidfd(srv.pidfd.as_fd(), false);
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
    pending: Option<(Vec<u8>, usize)>,
}

/// The server's main loop. Never returns.
pub(crate) fn serve(ctrl: OwnedFd) -> ! {
    sys::ignore_sigpipe();
    let me = sys::getpid();
    let mut kids: Vec<Kid> = Vec::new();
    let mut reader = FrameReader::default();
    loop {
        let mut fds: Vec<(RawFd, bool)> = vec![(ctrl.as_raw_fd(), false)];
        for k in &kids {
            match k.pending {
                Some(_) => fds.push((k.sock.as_raw_fd(), true)),
                None => fds.push((k.pidfd.as_raw_fd(), false)),
            }
        }
        let Ok(ready) = sys::poll(&fds, None) else {
            continue;
        };
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
                    if let Some(kid) = fork_child(me, sock, daemon) {
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
                        let mut frame = Vec::with_capacity(12);
                        frame.extend_from_slice(&4u32.to_le_bytes());
                        frame.extend_from_slice(&[Kind::Status as u8, 0, 0, 0]);
                        frame.extend_from_slice(&code.to_le_bytes());
                        k.pending = Some((frame, 0));
                    }
                }
                if let Some((frame, sent)) = &mut k.pending {
                    match sys::send_with_fds(k.sock.as_fd(), &frame[*sent..], &[], true) {
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

/// Forks one child; in the child, never returns.
fn fork_child(server_pid: u32, sock: OwnedFd, daemon: bool) -> Option<Kid> {
    // SAFETY: the server is single-threaded, so the child inherits no lock held by another
    // thread; the child closes the server's descriptors and never returns into this loop.
    match unsafe { sys::fork() } {
        Ok(sys::Forked::Child) => {
            sys::close_fds_except(&[sock.as_raw_fd()]);
            if daemon && (sys::set_parent_death_signal().is_err() || sys::getppid() != server_pid) {
                sys::kill_self();
            }
            child::run_fresh(sock, true)
        }
        Ok(sys::Forked::Parent(pid)) => match sys::pidfd_open(pid) {
            Ok(pidfd) => Some(Kid {
                pidfd,
                sock,
                daemon,
                pending: None,
            }),
            Err(_) => None,
        },
        Err(e) => {
            let msg = format!("the fork server could not fork: {e}");
            let _ = wire::write_frame(sock.as_fd(), Kind::ServerError, &[msg.as_bytes()], &[]);
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
