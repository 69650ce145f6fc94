//! The parent's record of each child, and the process-wide list of live children.
//!
//! A child is watched through two descriptors and never through `SIGCHLD`:
//! - its bootstrap socket, which brings the outcome frame (and, for a fork-server child, the
//!   server's `Status` frame with the exit code, since only the server may reap it);
//! - its pidfd, which becomes readable when it exits, and which `waitid(P_PIDFD)` reaps for a
//!   direct (Fork or Spawn) child.
//!
//! Every wait is one `poll` on those two, so a child that dies at any point (before it read its
//! arguments, in the middle of writing a 64 MiB result, by `kill -9`) ends every wait: nothing
//! hangs. Reading the socket while waiting also keeps a child with a large result from blocking.

use crate::identity::ProcessInfo;
use crate::sys;
use crate::wire::{self, Frame, FrameReader, Kind};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

/// How long a wait looks (yielding the CPU between looks) before it sleeps in `poll`.
pub(crate) const SPIN: Duration = Duration::from_micros(100);

/// One started child, shared by its `Process` handle and the registry.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    /// Started by the fork server: the server reaps it and reports its status.
    pub(crate) via_server: bool,
    pub(crate) pidfd: OwnedFd,
    pub(crate) state: Mutex<ChildState>,
}

/// What the parent has learnt about a child so far.
#[derive(Debug, Default)]
pub(crate) struct ChildState {
    /// The bootstrap socket; `None` once the handle was dropped (nobody wants the result).
    pub(crate) sock: Option<OwnedFd>,
    reader: FrameReader,
    /// `ResultOk`, `ResultPanic`, `StartFailed` or `ServerError`.
    pub(crate) outcome: Option<Frame>,
    /// Python's exit code, once known.
    pub(crate) exit: Option<i32>,
    /// Why `exit` is a guess (the fork server died before reporting it).
    pub(crate) note: Option<String>,
}

impl Child {
    /// `reader` holds whatever was already read from `sock` (a fork-server child's `Hello`
    /// may arrive together with its first frames).
    pub(crate) fn new(
        pid: u32,
        name: String,
        daemon: bool,
        via_server: bool,
        pidfd: OwnedFd,
        sock: OwnedFd,
        reader: FrameReader,
    ) -> Child {
        Child {
            pid,
            name,
            daemon,
            via_server,
            pidfd,
            state: Mutex::new(ChildState {
                sock: Some(sock),
                reader,
                ..ChildState::default()
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ChildState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn info(&self) -> ProcessInfo {
        ProcessInfo {
            pid: self.pid,
            name: self.name.clone(),
            daemon: self.daemon,
        }
    }

    /// Makes progress until the child has finished (`Ok(true)`) or `deadline` passes
    /// (`Ok(false)`); `None` waits for ever, a past deadline just looks.
    pub(crate) fn wait(&self, st: &mut ChildState, deadline: Option<Instant>) -> io::Result<bool> {
        let spin_until = Instant::now() + SPIN;
        loop {
            self.absorb(st)?;
            if st.exit.is_some() {
                return Ok(true);
            }
            let now = Instant::now();
            let timeout = deadline.map(|d| d.saturating_duration_since(now));
            if timeout == Some(Duration::ZERO) {
                return Ok(false);
            }
            // A short-lived child ends within tens of microseconds, while waking a sleeping
            // thread on another core costs about as much again: look a while before sleeping.
            if now < spin_until {
                std::thread::yield_now();
                continue;
            }
            let mut fds: Vec<(RawFd, bool)> = Vec::with_capacity(2);
            if let Some(sock) = &st.sock {
                if !st.reader.eof() {
                    fds.push((sock.as_raw_fd(), false));
                }
            }
            if !self.via_server || st.sock.is_none() || st.reader.eof() {
                fds.push((self.pidfd.as_raw_fd(), false));
            }
            sys::poll(&fds, timeout)?;
        }
    }

    /// Takes in whatever has arrived, without blocking.
    fn absorb(&self, st: &mut ChildState) -> io::Result<()> {
        self.read_frames(st)?;
        if st.exit.is_some() {
            return Ok(());
        }
        if !self.via_server {
            match sys::waitid_pidfd(self.pidfd.as_fd(), true) {
                Ok(Some(code)) => {
                    st.exit = Some(code);
                    // Everything it wrote before exiting is in the socket now.
                    self.read_frames(st)?;
                }
                Ok(None) => {}
                // Reaped elsewhere (the orphan reaper): the status is lost, not the child.
                Err(e) if e.raw_os_error() == Some(sys::ECHILD) => {
                    st.exit = Some(guess_exit(st));
                }
                Err(e) => return Err(e),
            }
        } else if st.sock.is_none() || st.reader.eof() {
            // The server is gone (or we stopped listening): the pidfd still tells when it ends.
            let ready = sys::poll(&[(self.pidfd.as_raw_fd(), false)], Some(Duration::ZERO))?;
            if ready[0].readable {
                st.exit = Some(guess_exit(st));
                if st.sock.is_some() {
                    st.note = Some("the fork server died before reporting the exit status".into());
                }
            }
        }
        Ok(())
    }

    fn read_frames(&self, st: &mut ChildState) -> io::Result<()> {
        let Some(sock) = &st.sock else {
            return Ok(());
        };
        while !st.reader.eof() && st.reader.fill(sock.as_fd(), true)? {}
        while let Some(frame) = st.reader.next_frame()? {
            match frame.kind {
                Kind::Status => st.exit = Some(wire::payload_u32(&frame.payload)? as i32),
                Kind::ResultOk | Kind::ResultPanic | Kind::StartFailed => st.outcome = Some(frame),
                Kind::ServerError => {
                    st.outcome = Some(frame);
                    st.exit = Some(1);
                }
                Kind::Hello | Kind::Bootstrap | Kind::Request => {}
            }
        }
        Ok(())
    }
}

/// The exit code implied by the outcome, when the real status could not be had.
fn guess_exit(st: &ChildState) -> i32 {
    match st.outcome.as_ref().map(|f| f.kind) {
        Some(Kind::ResultOk) => 0,
        Some(_) => 1,
        None => -sys::SIGKILL,
    }
}

/// Every child this process started that has not been seen to finish.
static CHILDREN: Mutex<Vec<Arc<Child>>> = Mutex::new(Vec::new());

pub(crate) fn children() -> MutexGuard<'static, Vec<Arc<Child>>> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a new child, and makes sure live children are joined at normal exit.
pub(crate) fn register(child: Arc<Child>) {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| sys::register_atexit(at_exit));
    children().push(child);
}

/// Forgets a child that has finished.
pub(crate) fn unregister(child: &Arc<Child>) {
    children().retain(|c| !Arc::ptr_eq(c, child));
}

/// Python's `active_children()`: the live children, after reaping the finished ones.
pub(crate) fn active_children() -> Vec<ProcessInfo> {
    let list: Vec<Arc<Child>> = children().clone();
    let mut live = Vec::new();
    for child in list {
        let finished = {
            let mut st = child.lock();
            child.wait(&mut st, Some(Instant::now())).unwrap_or(true)
        };
        if finished {
            unregister(&child);
        } else {
            live.push(child.info());
        }
    }
    live
}

/// Hands a still-running child whose handle was dropped to a small reaper thread, so that it
/// never lingers as a zombie (fork-server children are reaped by the server).
pub(crate) fn adopt_orphan(child: Arc<Child>) {
    child.lock().sock = None;
    if child.via_server {
        return;
    }
    let reaper = Arc::clone(&child);
    let spawned = std::thread::Builder::new()
        .name("multiproc-reaper".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = sys::poll(&[(reaper.pidfd.as_raw_fd(), false)], None);
            let done = {
                let mut st = reaper.lock();
                reaper.wait(&mut st, None).unwrap_or(true)
            };
            if done {
                unregister(&reaper);
            }
        });
    // Without a thread the child stays registered and is reaped by `active_children` or exit.
    drop(spawned);
}

/// Python's exit rule: terminate live daemon children, then join every live child.
pub(crate) fn join_all_children() {
    let list: Vec<Arc<Child>> = std::mem::take(&mut *children());
    for child in list.iter().filter(|c| c.daemon) {
        let _ = sys::pidfd_send_signal(child.pidfd.as_fd(), sys::SIGTERM);
    }
    for child in &list {
        let mut st = child.lock();
        let _ = child.wait(&mut st, None);
    }
}

extern "C" fn at_exit() {
    join_all_children();
    crate::forkserver::shut_down();
}
