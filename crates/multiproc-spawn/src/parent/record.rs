//! The parent's record of one child ([`Child`]): how it is watched, waited for, signalled.
//!
//! A child is watched through its bootstrap socket and its exit, never through `SIGCHLD`:
//! - the socket brings the outcome frame (and, for a child of the fork server's own, a daemon,
//!   the server's `Status` frame with the exit code, since only the server may reap it);
//! - a direct child (Fork, Spawn, or a non-daemon ForkServer child, born ours) is reaped with `waitid(P_PID, WNOHANG)`; a pidfd, which
//!   becomes readable when the child exits, is what a wait sleeps on. It is opened only when
//!   needed (a wait that sleeps, a signal), because most short children are over before that.
//!   A direct child's pid cannot be recycled before we reap it, and reaping and signalling by
//!   pid take the same lock, so a signal never reaches a stranger.
//!
//! Every wait first looks without blocking for a short while ([`SPIN`], yielding the CPU between
//! looks: a child that ends in the meantime, as short ones do, then costs no wake-up at all),
//! then sleeps in one `poll` on the socket and the pidfd, so a child that dies at any point
//! (before it read its arguments, in the middle of writing a 64 MiB result, by `kill -9`) ends
//! every wait: nothing hangs. Reading the socket while sleeping also keeps a child with a large
//! result from blocking.

use super::fork_pool::Ticket;
use super::registry::Registry;
use crate::identity::ProcessInfo;
use crate::protocol::frame::{Frame, FrameReader, Kind, payload_u32};
use crate::protocol::slots::Slot;
use crate::spin::{EXIT_SPIN, SPIN, Spinner};
use crate::sys;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// One started child, shared by its `Process` handle and the registry.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: u32,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    /// Started by the fork server: the server reaps it and reports its status.
    pub(crate) via_server: bool,
    /// Until when a wait looks before it sleeps (see [`SPIN`]).
    spin_until: Instant,
    /// The pidfd: from the server for its children; opened on first need for a direct child.
    pidfd: OnceLock<OwnedFd>,
    /// Whether a direct child has been reaped (its pid may then belong to another process).
    /// Held while reaping, opening the pidfd and signalling by pid.
    reaped: Mutex<bool>,
    pub(crate) state: Mutex<ChildState>,
}

/// What the parent has learnt about a child so far.
#[derive(Debug, Default)]
pub(crate) struct ChildState {
    /// The bootstrap socket; `None` once the handle was dropped (nobody wants the result).
    pub(crate) sock: Option<OwnedFd>,
    /// For a Fork child: its outcome slot, and where the slot goes back to (see
    /// [`ForkPool`](super::fork_pool::ForkPool)).
    slot: Option<&'static Slot>,
    ticket: Option<Ticket>,
    /// A Fork child's end of the socket pair, kept so that the pair can serve the next Fork
    /// child if this one never wrote into it (see the spare of
    /// [`ForkPool`](super::fork_pool::ForkPool)).
    theirs: Option<OwnedFd>,
    /// The outcome came through the slot, so the socket was never written to.
    via_slot: bool,
    reader: FrameReader,
    /// `ResultOk`, `ResultPanic` or `StartFailed`.
    pub(crate) outcome: Option<Frame>,
    /// Python's exit code, once known.
    pub(crate) exit: Option<i32>,
    /// Why `exit` is a guess (the fork server died before reporting it).
    pub(crate) note: Option<String>,
}

impl Child {
    /// A Fork child, reporting through `sock` or its outcome `slot`; `theirs` is our copy of
    /// the child's end of the pair.
    pub(crate) fn forked(
        pid: u32,
        name: String,
        daemon: bool,
        (sock, theirs): (OwnedFd, OwnedFd),
        slot: Option<&'static Slot>,
        ticket: Ticket,
    ) -> Child {
        let state = ChildState {
            sock: Some(sock),
            theirs: Some(theirs),
            ticket: Some(ticket),
            slot,
            ..ChildState::default()
        };
        Child::new(pid, name, daemon, None, state, SPIN)
    }

    /// A fork-server child born our own (see [`super::server_conn`]): reaped here like a Fork
    /// child.
    pub(crate) fn adopted(pid: u32, name: String, daemon: bool, sock: OwnedFd) -> Child {
        let state = ChildState {
            sock: Some(sock),
            ..ChildState::default()
        };
        Child::new(pid, name, daemon, None, state, SPIN)
    }

    /// A Spawn child.
    pub(crate) fn spawned(pid: u32, name: String, daemon: bool, sock: OwnedFd) -> Child {
        let state = ChildState {
            sock: Some(sock),
            ..ChildState::default()
        };
        Child::new(pid, name, daemon, None, state, Duration::ZERO)
    }

    /// A fork-server child, with the pidfd the server sent.
    pub(crate) fn via_server(
        pid: u32,
        name: String,
        daemon: bool,
        pidfd: OwnedFd,
        sock: OwnedFd,
    ) -> Child {
        let state = ChildState {
            sock: Some(sock),
            ..ChildState::default()
        };
        Child::new(pid, name, daemon, Some(pidfd), state, SPIN)
    }

    fn new(
        pid: u32,
        name: String,
        daemon: bool,
        pidfd: Option<OwnedFd>,
        state: ChildState,
        spin: Duration,
    ) -> Child {
        let via_server = pidfd.is_some();
        let cell = OnceLock::new();
        if let Some(fd) = pidfd {
            let _ = cell.set(fd);
        }
        Child {
            pid,
            name,
            daemon,
            via_server,
            spin_until: Instant::now() + spin,
            pidfd: cell,
            reaped: Mutex::new(false),
            state: Mutex::new(state),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ChildState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reaped(&self) -> MutexGuard<'_, bool> {
        self.reaped.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn info(&self) -> ProcessInfo {
        ProcessInfo {
            pid: self.pid,
            name: self.name.clone(),
            daemon: self.daemon,
        }
    }

    /// The child's pidfd, opened now if need be; `Ok(None)` once a direct child was reaped.
    pub(super) fn pidfd(&self) -> io::Result<Option<BorrowedFd<'_>>> {
        if let Some(fd) = self.pidfd.get() {
            return Ok(Some(fd.as_fd()));
        }
        let reaped = self.reaped();
        if *reaped {
            return Ok(None);
        }
        // Not reaped, so the pid is still this child's (we hold the lock that reaping takes).
        let fd = sys::pidfd_open(self.pid)?;
        Ok(Some(self.pidfd.get_or_init(|| fd).as_fd()))
    }

    /// Sends `signal`; a child that has already ended is not an error.
    pub(crate) fn signal(&self, signal: i32) -> io::Result<()> {
        let result = match self.pidfd.get() {
            Some(fd) => sys::pidfd_send_signal(fd.as_fd(), signal),
            None => {
                let reaped = self.reaped();
                if *reaped {
                    return Ok(());
                }
                sys::kill(self.pid, signal)
            }
        };
        match result {
            Err(e) if e.raw_os_error() == Some(sys::ESRCH) => Ok(()),
            other => other,
        }
    }

    /// Makes progress until the child has finished (`Ok(true)`) or `deadline` passes
    /// (`Ok(false)`); `None` waits for ever, a past deadline just looks.
    pub(crate) fn wait(&self, st: &mut ChildState, deadline: Option<Instant>) -> io::Result<bool> {
        let mut spinner: Option<Spinner> = None;
        let mut spun_for_exit = false;
        // While looking, a direct child is only asked whether it has exited (one system call);
        // its outcome is read once it has, or when a sleep is woken by it.
        let mut read = self.via_server;
        // While a join spins on a Fork child that reports through its slot, the slot alone is
        // looked at: the child fills it just before `_exit`, so a `waitid` before that finds
        // nothing. Once it is full, the exit is looked for without blocking (a blocking
        // `waitid` there put the parent to sleep, and its wake-up cost more than the spin:
        // Fork spawn+join went from 1.07-1.19x to 1.19-1.36x a raw fork).
        let mut spinning = deadline.is_none() && st.slot.is_some();
        loop {
            let full = st.slot.is_some_and(Slot::is_full);
            if !spinning || full {
                self.absorb(st, read)?;
                if st.exit.is_some() {
                    return Ok(true);
                }
            }
            let now = Instant::now();
            let timeout = deadline.map(|d| d.saturating_duration_since(now));
            if timeout == Some(Duration::ZERO) {
                return Ok(false);
            }
            let spinner = spinner.get_or_insert_with(|| Spinner::until(self.spin_until));
            let posted = st.outcome.is_some() || st.slot.is_some_and(Slot::is_full);
            if !spun_for_exit && (posted || st.reader.eof()) {
                // The outcome is in (the exit follows at once): progress.
                spun_for_exit = true;
                spinner.progress();
                spinner.extend(now + EXIT_SPIN);
            }
            if spinner.spin() {
                continue;
            }
            if spinning {
                // Spun out: look properly before sleeping.
                spinning = false;
                continue;
            }
            read = true;
            self.sleep(st, timeout)?;
        }
    }

    /// Sleeps until the socket or the exit has news, or `timeout` passes.
    #[cold]
    fn sleep(&self, st: &ChildState, timeout: Option<Duration>) -> io::Result<()> {
        match self.news_fds(st)? {
            Some(fds) => sys::poll(&fds, timeout).map(drop),
            // Reaped already: the next look finds out.
            None => Ok(()),
        }
    }

    /// One step of an async join: takes in whatever has arrived (reading the socket, so that
    /// a child with a large result is never blocked) and answers whether the child has
    /// finished; if not, asks the reaper thread to wake `waker` when the socket or the exit
    /// has news (see [`Registry::await_news`]). An error counts as finished, as in `Process::poll`.
    pub(crate) fn poll_finished(
        self: &Arc<Self>,
        registry: &'static Registry,
        waker: &std::task::Waker,
    ) -> bool {
        let fds = {
            let mut st = self.lock();
            if self.absorb(&mut st, true).is_err() || st.exit.is_some() {
                return true;
            }
            match self.news_fds(&st) {
                Ok(Some(fds)) => fds.into_iter().map(|(fd, _)| fd).collect(),
                Ok(None) => {
                    // Reaped since we looked: the next look finds out.
                    waker.wake_by_ref();
                    return false;
                }
                Err(_) => return true,
            }
        };
        registry.await_news(Arc::clone(self), fds, waker.clone());
        false
    }

    /// The descriptors whose news a sleeping wait wants (each read-ready), or `None` when a
    /// direct child was reaped already (the next look finds out).
    fn news_fds(&self, st: &ChildState) -> io::Result<Option<Vec<(RawFd, bool)>>> {
        let mut fds: Vec<(RawFd, bool)> = Vec::with_capacity(2);
        let listening = st.sock.is_some() && !st.reader.eof();
        if let Some(sock) = &st.sock {
            // A direct child's socket is of no more interest once its outcome is in.
            if listening && (self.via_server || st.outcome.is_none()) {
                fds.push((sock.as_raw_fd(), false));
            }
        }
        if !self.via_server || !listening {
            match self.pidfd()? {
                Some(fd) => fds.push((fd.as_raw_fd(), false)),
                None => return Ok(None),
            }
        }
        Ok(Some(fds))
    }

    /// Takes in whatever has arrived, without blocking; `read`: also read the socket of a
    /// direct child that is still running.
    fn absorb(&self, st: &mut ChildState, read: bool) -> io::Result<()> {
        if st.exit.is_some() {
            // Everything was read when the exit was seen.
            return Ok(());
        }
        self.absorb_running(st, read)?;
        if let Some(code) = st.exit {
            if self.via_server && st.sock.is_none() && st.outcome.is_none() {
                // An orphan of the fork server's: we stopped listening, so its status was never
                // heard (the reaper reports its end).
                return Ok(());
            }
            if code < 0 {
                tracing::debug!(
                    pid = self.pid,
                    name = %self.name,
                    exitcode = code,
                    signal = %sys::signal_name(-code),
                    note = st.note.as_deref(),
                    "child process was killed by a signal"
                );
            } else {
                tracing::debug!(
                    pid = self.pid,
                    name = %self.name,
                    exitcode = code,
                    note = st.note.as_deref(),
                    "child process exited"
                );
            }
        }
        Ok(())
    }

    fn absorb_running(&self, st: &mut ChildState, read: bool) -> io::Result<()> {
        if !self.via_server {
            let code = {
                let mut reaped = self.reaped();
                match sys::waitid_pid(self.pid, true) {
                    Ok(Some(code)) => {
                        *reaped = true;
                        Some(code)
                    }
                    Ok(None) => None,
                    // Reaped elsewhere (the orphan reaper): the status is lost, not the child.
                    Err(e) if e.raw_os_error() == Some(sys::ECHILD) => {
                        *reaped = true;
                        Some(i32::MIN)
                    }
                    Err(e) => return Err(e),
                }
            };
            let slot = if code.is_some() {
                st.slot.and_then(Slot::take)
            } else {
                None
            };
            if let Some((kind, payload)) = slot {
                st.via_slot = true;
                st.outcome = Some(Frame {
                    kind,
                    payload,
                    fds: Vec::new(),
                });
            } else if read || code.is_some() {
                // After the exit, everything the child wrote is in the socket.
                if let Err(e) = self.read_frames(st) {
                    if code.is_none() {
                        return Err(e);
                    }
                    // The child is reaped now: its status and the reason its outcome was lost
                    // must not go with the error (a later look would find only ECHILD).
                    st.note = Some(format!("its outcome could not be read: {e}"));
                }
            }
            if let Some(code) = code {
                st.exit = Some(if code == i32::MIN {
                    guess_exit(st)
                } else {
                    code
                });
            }
            return Ok(());
        }
        self.read_frames(st)?;
        if st.exit.is_none() && (st.sock.is_none() || st.reader.eof()) {
            // The server is gone (or we stopped listening): the pidfd still tells when it ends.
            let Some(fd) = self.pidfd()? else {
                return Ok(());
            };
            let ready = sys::poll(&[(fd.as_raw_fd(), false)], Some(Duration::ZERO))?;
            if ready[0].readable {
                st.exit = Some(guess_exit(st));
                if st.sock.is_some() {
                    tracing::warn!(
                        pid = self.pid,
                        "the fork server died before reporting a child's exit status"
                    );
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
        loop {
            st.reader.fill_available(sock.as_fd())?;
            let mut took = false;
            while let Some(frame) = st.reader.next_frame()? {
                took = true;
                match frame.kind {
                    Kind::Status => st.exit = Some(payload_u32(&frame.payload)? as i32),
                    Kind::ResultOk | Kind::ResultPanic | Kind::StartFailed => {
                        st.outcome = Some(frame)
                    }
                    Kind::Hello | Kind::Bootstrap | Kind::Request | Kind::ServerError => {}
                }
            }
            // Go on only if the reader stopped for lack of room.
            if !took || st.reader.eof() || st.reader.is_drained() {
                return Ok(());
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        // A finished Fork child's slot is free again, and so is its socket pair if the child
        // never wrote into it: a fresh pair, then closing both ends, costs the next child's
        // start ~10-30 µs. (A record is dropped only once its child is known to have ended.)
        // A child whose outcome came through the slot never wrote into its socket (`finish`
        // fills the slot and exits), and no other process writes into a Fork child's pair
        // (see the spare of `ForkPool`): so the pair is as good as new without a `poll` to
        // check it.
        if let Some(ticket) = st.ticket.take() {
            let clean = match (st.via_slot, st.sock.take(), st.theirs.take()) {
                (true, Some(mine), Some(theirs)) => Some((mine, theirs)),
                _ => None,
            };
            ticket.give_back(clean);
        }
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

impl Child {
    /// Whether the child has finished, looking without blocking (and reaping a direct child).
    pub(super) fn finished_now(&self) -> bool {
        let mut st = self.lock();
        // An error means it cannot be watched any more: count it as ended rather than keep it.
        self.wait(&mut st, Some(Instant::now())).unwrap_or(true)
    }
}
