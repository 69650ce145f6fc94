//! The fork server: a small single-threaded process, started once from a fresh exec of this
//! binary, that forks every `ForkServer` child.
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
//!
//! After any activity the server keeps looking for more (without blocking, yielding the CPU)
//! for [`SERVER_SPIN`] before it sleeps: a request or a child's exit that comes soon after
//! another, as they do when a program starts short children one after another, then costs no
//! wake-up of a sleeping server (60-80 µs on a small virtual machine).

use crate::frame::{self, FrameReader, Kind};
use crate::spin::Spinner;
use crate::state::STATE;
use crate::{child, entry, registry, sys};
use multiproc_sync::{Error, Result};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
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

pub(crate) fn server() -> MutexGuard<'static, Option<Server>> {
    STATE.0.server.lock().unwrap_or_else(|e| e.into_inner())
}

/// Has the fork server (starting it on first use, restarting it if it died) start a child,
/// and runs `bootstrap` with our end of the child's socket (to write the child's arguments):
/// into a spare's, or, for a daemon or when no spare is ready, while the server forks.
pub(crate) fn start_child(daemon: bool, bootstrap: impl FnOnce(BorrowedFd<'_>)) -> Result<Started> {
    let mut guard = server();
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
                lost(guard.take(), &e);
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
            lost(guard.take(), &why);
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
            .read_frame_spinning(self.ctrl.as_fd(), registry::SPIN)
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
        spare: None,
        spare_asked: None,
        spares: true,
    })
}

/// Forgets a server that stopped answering, reaping it if it has exited.
fn lost(old: Option<Server>, why: &io::Error) {
    if let Some(mut old) = old {
        // A spare already made is our child: the orphan reaper reaps it once it has read the
        // end of its socket and exited.
        old.collect_spare();
        if let Some(spare) = old.spare.take() {
            registry::adopt_spare(spare.pid, spare.sock);
        }
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
                if entry::authenticate(sock.as_raw_fd(), owner).is_err() {
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
            if entry::authenticate(sock.as_raw_fd(), owner).is_err() {
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
