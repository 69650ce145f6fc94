//! The parent's connection to its fork server (the server process itself is `server.rs`): a
//! small single-threaded process, started once from a fresh exec of this binary, that forks
//! every `ForkServer` child. This file holds no global: the connection lives in the
//! process-wide page (`state.rs`), whose callers hand it in.
//!
//! Because the server holds no user memory and no other threads, a child's start cost does not
//! grow with the parent's size, and a fork never copies another thread's held lock.
//!
//! Protocol: the parent sends a `Request` frame (daemon flag) on the control socket with the
//! child's end of a fresh socket pair attached, and the server answers each request, in order,
//! with `Hello` (the child's pid, whether it was born the parent's own child, and for one of
//! the server's own children a pidfd of it attached) or `ServerError`. The parent writes the
//! child's `Bootstrap` frame into its end of the pair; from then on the child talks to the
//! parent directly, just like a Spawn child. Requests and answers happen under the server lock.
//!
//! A non-daemon child is born the parent's own child (`clone3` with `CLONE_PARENT`): the parent
//! reaps it like a Fork child, and its exit wakes the parent directly, with no detour through
//! the server. The server forgets it at once. A daemon child stays the server's, because only
//! the single-threaded server makes `PR_SET_PDEATHSIG` reliable (it fires when the parent
//! *thread* exits): the server keeps its copy of that child's socket to send the `Status` frame
//! once it has reaped it. So does every child where the kernel or a sandbox refuses `clone3`.
//! When the control socket closes (the parent exited or died, `kill -9` included) the server
//! kills its daemon children and exits; its daemon children also carry `PR_SET_PDEATHSIG`, so
//! they die even if the server is killed.
//!
//! Non-daemon children are also started one ahead: after each start the parent asks for a
//! [`Spare`] without waiting for the answer, and the next start hands its arguments to that
//! child, which exists already. A start then costs the program neither a fork nor a round trip
//! to the server (each cross-process wake-up costs 40-100 µs on a small virtual machine): the
//! server forks the next spare while the new child runs. The price is one idle process and one
//! descriptor while ForkServer is in use.

use super::registry::Registry;
use crate::protocol::ENV;
use crate::protocol::frame::{self, FrameReader, Kind};
use crate::sys;
use multiproc_sync::{Error, Result};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

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
    /// A non-daemon child started ahead of need, waiting for its bootstrap (see [`Spare`]).
    spare: Option<Spare>,
    /// Our end of the socket of a spare asked for whose answer is still unread.
    spare_asked: Option<OwnedFd>,
    /// Whether spares are made: the server gave us a child of our own once and never refused.
    spares: bool,
}

/// A fork-server child of our own, started before anyone asked for it, that waits for its
/// `Bootstrap` frame. The next non-daemon start hands it its arguments and asks the server
/// for the next spare: the server then forks while that child runs, so a start costs the
/// program no fork and no round trip to the server, only the wake-up of a child that exists.
/// A spare that is never used reads the end of its socket when the program drops it (or
/// exits), and exits; the orphan reaper reaps it. One case is left: a server killed between
/// forking a spare and answering takes the spare's pid with it, so that spare stays a zombie
/// until the program exits (we cannot tell it from the program's other children).
#[derive(Debug)]
struct Spare {
    pid: u32,
    sock: OwnedFd,
}

/// A child the fork server started for us.
pub(crate) struct Started {
    pub(crate) pid: u32,
    /// Our end of the child's socket, its arguments written.
    pub(crate) sock: OwnedFd,
    /// `Some` for a child of the server's (it reaps it and sends `Status`); `None` for our own
    /// child, which we reap and open a pidfd of when needed.
    pub(crate) server_pidfd: Option<OwnedFd>,
}

/// Has the fork server (starting it on first use, restarting it if it died) start a child,
/// and runs `bootstrap` with our end of the child's socket (to write the child's arguments):
/// into a spare's, or, for a daemon or when no spare is ready, while the server forks.
/// `guard` is the connection (held locked by the caller throughout); a spare of a lost server
/// goes to `registry`'s orphan reaper.
pub(crate) fn start_child(
    guard: &mut Option<Server>,
    registry: &'static Registry,
    daemon: bool,
    bootstrap: impl FnOnce(BorrowedFd<'_>),
) -> Result<Started> {
    if guard.as_ref().is_some_and(|s| s.owner == sys::getpid()) {
        let srv = guard.as_mut().expect("just checked");
        srv.collect_spare();
        if !daemon && let Some(spare) = srv.take_live_spare() {
            bootstrap(spare.sock.as_fd());
            srv.ask_for_spare();
            return Ok(Started {
                pid: spare.pid,
                sock: spare.sock,
                server_pidfd: None,
            });
        }
    }
    let (mine, theirs) = sys::socketpair()?;
    let mut last_error = None;
    for _attempt in 0..2 {
        if guard.as_ref().is_none_or(|s| s.owner != sys::getpid()) {
            *guard = Some(start()?);
        }
        let srv = guard.as_mut().expect("just started");
        match srv.request(daemon, theirs.as_fd()) {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(e) => {
                lost(guard.take(), registry, &e);
                last_error = Some(e);
            }
        }
    }
    if let Some(e) = last_error {
        return Err(Error::Io(e));
    }
    drop(theirs);
    bootstrap(mine.as_fd());
    let srv = guard.as_mut().expect("the request went to it");
    match srv.answer() {
        Ok(Answer::Born { pid, server_pidfd }) => {
            if !daemon {
                // Have the next one ready, if the server gives us our children.
                srv.spares &= server_pidfd.is_none();
                srv.ask_for_spare();
            }
            Ok(Started {
                pid,
                sock: mine,
                server_pidfd,
            })
        }
        Ok(Answer::Refused(message)) => Err(Error::ProcessFailed {
            exitcode: 1,
            message,
        }),
        Err(why) => {
            let message = format!("the fork server died before it started the child ({why})");
            lost(guard.take(), registry, &why);
            Err(Error::ProcessFailed {
                exitcode: 1,
                message,
            })
        }
    }
}

/// The server's answer to one request.
enum Answer {
    /// The child's pid and, for one of the server's own children, a pidfd of it.
    Born {
        pid: u32,
        server_pidfd: Option<OwnedFd>,
    },
    /// The server could not fork: why.
    Refused(String),
}

impl Server {
    /// Asks for a child that talks over `child_end`.
    fn request(&self, daemon: bool, child_end: BorrowedFd<'_>) -> io::Result<()> {
        frame::write_frame(
            self.ctrl.as_fd(),
            Kind::Request,
            &[&[daemon as u8]],
            &[child_end.as_raw_fd()],
        )
    }

    /// Reads the answer to the oldest unanswered request (answers come in request order).
    fn answer(&mut self) -> io::Result<Answer> {
        match self
            .reader
            .read_frame_spinning(self.ctrl.as_fd(), crate::spin::SPIN)
        {
            Ok(Some(frame)) if frame.kind == Kind::Hello => {
                let pid = frame::payload_u32(&frame.payload)?;
                let ours = frame.payload.get(4) == Some(&1);
                let server_pidfd = match (ours, frame.fds.into_iter().next()) {
                    (true, _) => None,
                    (false, Some(fd)) => Some(fd),
                    // The server reaps it only after it has sent Status, so the pid is still
                    // the child's.
                    (false, None) => Some(sys::pidfd_open(pid)?),
                };
                Ok(Answer::Born { pid, server_pidfd })
            }
            Ok(Some(frame)) if frame.kind == Kind::ServerError => Ok(Answer::Refused(
                String::from_utf8_lossy(&frame.payload).into_owned(),
            )),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "it closed its socket",
            )),
            Err(e) => Err(e),
        }
    }

    /// Asks for the next spare, unless one is ready or asked for already. Without waiting: the
    /// answer is read at the next start.
    fn ask_for_spare(&mut self) {
        if !self.spares || self.spare.is_some() || self.spare_asked.is_some() {
            return;
        }
        let Ok((mine, theirs)) = sys::socketpair() else {
            return;
        };
        if self.request(false, theirs.as_fd()).is_ok() {
            self.spare_asked = Some(mine);
        }
    }

    /// The spare, unless it has died (killed by someone) since it was made.
    fn take_live_spare(&mut self) -> Option<Spare> {
        let spare = self.spare.take()?;
        match sys::waitid_pid(spare.pid, true) {
            Ok(None) => Some(spare),
            // Reaped now, or not ours to reap any more: either way of no use.
            _ => None,
        }
    }

    /// Reads the answer to a spare asked for, if any. A server that fails to give us a child
    /// of our own gets asked for no more spares.
    fn collect_spare(&mut self) {
        let Some(sock) = self.spare_asked.take() else {
            return;
        };
        match self.answer() {
            Ok(Answer::Born {
                pid,
                server_pidfd: None,
            }) => self.spare = Some(Spare { pid, sock }),
            // The server's own child (it reaps it once our socket's end makes it exit), or
            // no child, or no server any more (the next request finds that out).
            _ => self.spares = false,
        }
    }
}

fn start() -> Result<Server> {
    let (mine, theirs) = sys::socketpair()?;
    let value = format!("server:{}", theirs.as_raw_fd());
    let pid = sys::spawn_self("--multiproc-forkserver", (ENV, &value), theirs.as_fd())?;
    drop(theirs);
    let pidfd = sys::pidfd_open(pid)?;
    tracing::debug!(pid, "started the fork server");
    Ok(Server {
        owner: sys::getpid(),
        pid,
        ctrl: mine,
        reader: FrameReader::default(),
        pidfd,
        spare: None,
        spare_asked: None,
        spares: true,
    })
}

/// Forgets a server that stopped answering, reaping it if it has exited.
fn lost(old: Option<Server>, registry: &'static Registry, why: &io::Error) {
    if let Some(mut old) = old {
        // A spare already made is our child: the orphan reaper reaps it once it has read the
        // end of its socket and exited.
        old.collect_spare();
        if let Some(spare) = old.spare.take() {
            registry.adopt_spare(spare.pid, spare.sock);
        }
        tracing::warn!(pid = old.pid, error = %why, "lost the fork server; a new one will start");
        let _ = sys::waitid_pidfd(old.pidfd.as_fd(), true);
    }
}

/// Closes the connection in `slot`, which makes the server exit (at normal program exit).
pub(crate) fn shut_down(slot: &mut Option<Server>) {
    if let Some(srv) = slot.take() {
        if srv.owner == sys::getpid() {
            drop(srv.ctrl);
            let _ = sys::waitid_pidfd(srv.pidfd.as_fd(), false);
            tracing::debug!(pid = srv.pid, "the fork server exited");
        } else {
            std::mem::forget(srv);
        }
    }
}
