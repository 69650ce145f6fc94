//! The parent's record of each child, and the list of live children ([`Registry`]).
//!
//! Nothing here reaches a global: the process-wide registry and fork pool live in the
//! process-wide page (`state.rs`), whose accessors hand them to the upper modules, which call
//! their methods (the registry's take `&'static self`, for the reaper thread they may start).
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

use crate::identity::ProcessInfo;
use crate::protocol::frame::{Frame, FrameReader, Kind, payload_u32};
use crate::protocol::slots::{self, Slot};
use crate::spin::Spinner;
use crate::sys;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long after a forked child's start a wait looks (yielding the CPU between looks) before it
/// sleeps in `poll`. A no-op child, forked onto an idle CPU, takes about 100-150 µs on a small
/// virtual machine to start there, run and exit, while waking a sleeping thread on another core
/// costs 60-80 µs: looking for a little longer than that keeps the parent's CPU awake for the
/// child's exit. Past this, the child is a long one and waits sleep at once. A Spawn child
/// (an exec, over a millisecond) is never looked for before its outcome arrives.
pub(crate) const SPIN: Duration = Duration::from_micros(300);

/// How long a wait keeps looking once the outcome has arrived: the child writes it just before
/// `_exit`, so its exit follows within microseconds, and a second sleep would cost a second
/// wake-up.
const EXIT_SPIN: Duration = Duration::from_micros(500);

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
    /// For a Fork child: its outcome slot, and where the slot goes back to (see [`ForkPool`]).
    slot: Option<&'static Slot>,
    ticket: Option<Ticket>,
    /// A Fork child's end of the socket pair, kept so that the pair can serve the next Fork
    /// child if this one never wrote into it (see [`ForkPool::spare`]).
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
    fn pidfd(&self) -> io::Result<Option<BorrowedFd<'_>>> {
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
        loop {
            self.absorb(st, read)?;
            if st.exit.is_some() {
                return Ok(true);
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
        if let Some(ticket) = st.ticket.take() {
            let clean = match (st.via_slot, st.sock.take(), st.theirs.take()) {
                (true, Some(mine), Some(theirs)) if nothing_to_read(&mine) => Some((mine, theirs)),
                _ => None,
            };
            lock(ticket.home).give_back(&ticket, clean);
        }
    }
}

/// Whether `sock` holds no unread byte: a pair that carried nothing is as good as new.
fn nothing_to_read(sock: &OwnedFd) -> bool {
    let ready = sys::poll(&[(sock.as_raw_fd(), false)], Some(Duration::ZERO));
    matches!(ready.as_deref(), Ok([r]) if !r.readable)
}

/// The exit code implied by the outcome, when the real status could not be had.
fn guess_exit(st: &ChildState) -> i32 {
    match st.outcome.as_ref().map(|f| f.kind) {
        Some(Kind::ResultOk) => 0,
        Some(_) => 1,
        None => -sys::SIGKILL,
    }
}

/// The children this process started that have not been seen to finish, and the orphan
/// reaper's state.
#[derive(Debug, Default)]
pub(crate) struct Children {
    /// Every child not seen to finish (`active_children`, and the joins at exit).
    live: Vec<Arc<Child>>,
    /// Those of them whose handle was dropped while they ran: the reaper watches them.
    orphans: Vec<Arc<Child>>,
    /// The reaper thread's wake-up eventfd, while that thread runs (it ends when no orphan is
    /// left, and the eventfd closes with it).
    reaper: Option<Arc<OwnedFd>>,
    /// Async joins waiting for news of a child: the reaper watches their descriptors too.
    awaited: Vec<Awaited>,
}

/// An async join parked until one of `fds` (the child's socket or pidfd) has news.
#[derive(Debug)]
struct Awaited {
    /// Keeps the descriptors open while they are watched.
    child: Arc<Child>,
    fds: Vec<RawFd>,
    waker: std::task::Waker,
}

impl Children {
    /// Nothing yet (a `const`, for the process-wide state).
    pub(crate) const EMPTY: Children = Children {
        live: Vec::new(),
        orphans: Vec::new(),
        reaper: None,
        awaited: Vec::new(),
    };

    /// In a forked child: our parent's children are not ours, and its reaper thread does not
    /// exist here. Forgotten, not dropped, and touched only where there is something to forget:
    /// a forked child pays a page fault for every page it writes.
    pub(crate) fn forget_parents(&mut self) {
        if self.live.capacity() != 0
            || self.orphans.capacity() != 0
            || self.awaited.capacity() != 0
            || self.reaper.is_some()
        {
            std::mem::forget(std::mem::take(self));
        }
    }

    /// Forgets `child` (it has finished).
    fn remove(&mut self, child: &Arc<Child>) {
        self.live.retain(|c| !Arc::ptr_eq(c, child));
        if !self.orphans.is_empty() {
            self.orphans.retain(|c| !Arc::ptr_eq(c, child));
        }
    }

    /// The reaper's eventfd if it must be started now: there are orphans and no reaper thread.
    fn reaper_to_start(&mut self) -> Option<Arc<OwnedFd>> {
        if (self.orphans.is_empty() && self.awaited.is_empty()) || self.reaper.is_some() {
            return None;
        }
        match sys::eventfd() {
            Ok(fd) => {
                let fd = Arc::new(fd);
                self.reaper = Some(Arc::clone(&fd));
                Some(fd)
            }
            Err(e) => {
                // The orphans stay listed: the next spawn or `active_children` tries again.
                tracing::warn!(error = %e, "could not make the orphan reaper's eventfd");
                None
            }
        }
    }
}

/// Locks `m` (a poisoned lock is still usable: every update leaves its data consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every child this process started that has not been seen to finish, and the orphan reaper
/// that watches those whose handle was dropped. One per process, in the process-wide page.
#[derive(Debug)]
pub(crate) struct Registry(Mutex<Children>);

/// What Fork children report through: a socket pair each, and this process's page of outcome
/// slots (see [`crate::protocol::slots`]), handed out one slot per live child.
///
/// (Socket pairs are not kept for reuse, though that would save a few microseconds a spawn:
/// idle descriptors would outlive the children, which programs and tests that count their
/// descriptors rightly take for a leak.)
#[derive(Debug)]
pub(crate) struct ForkPool {
    /// Bumped in each forked child, so that a slot of the parent's (a `Process` handle the
    /// child inherited and drops) is never given out again by the child.
    generation: u64,
    /// This process's page of outcome slots, mapped on first use.
    slots: Option<&'static [Slot]>,
    /// Which slots are free (bit i: slot i).
    free_slots: u64,
    /// A socket pair (ours, the child's) that served a finished Fork child which reported
    /// through its slot, so nothing was ever written into it, or a fresh one where that child's
    /// pair was used and closed (see [`ForkPool::give_back`]). Every Fork child inherits it,
    /// like every other descriptor of ours, and never uses it: only the child it is handed to
    /// writes into it, and only the parent reads. One cost, as with the pairs of siblings a
    /// Fork child inherits anyway: a child whose large result goes through a reused pair, and
    /// whose handle was dropped unjoined, gets no EPIPE (and so does not exit) until the older
    /// Fork children that still hold a copy of our end have ended.
    spare: Option<(OwnedFd, OwnedFd)>,
}

/// What one Fork child gets from the [`ForkPool`].
#[derive(Debug)]
pub(crate) struct ForkKit {
    /// Our end of a fresh socket pair (close-on-exec, like the other).
    pub(crate) mine: OwnedFd,
    /// The child's end.
    pub(crate) theirs: OwnedFd,
    pub(crate) slot: Option<&'static Slot>,
    /// Where the slot goes back to.
    pub(crate) ticket: Ticket,
}

/// How a finished Fork child's slot finds its way back to the [`ForkPool`].
#[derive(Debug)]
pub(crate) struct Ticket {
    /// The pool the slot came from (the process-wide one).
    home: &'static Mutex<ForkPool>,
    generation: u64,
    slot: Option<usize>,
}

impl ForkPool {
    /// No page yet.
    pub(crate) const EMPTY: ForkPool = ForkPool {
        generation: 0,
        slots: None,
        free_slots: 0,
        spare: None,
    };

    /// A socket pair and, if one is free, an empty slot for a new Fork child; `home` is the
    /// lock this pool sits in (the process-wide one), where the child's record gives it back.
    pub(crate) fn take(&mut self, home: &'static Mutex<ForkPool>) -> io::Result<ForkKit> {
        let (mine, theirs) = match self.spare.take() {
            Some(pair) => pair,
            None => sys::socketpair()?,
        };
        if self.slots.is_none() {
            self.slots = slots::map_page();
            self.free_slots = match self.slots {
                Some(page) if page.len() < 64 => (1u64 << page.len()) - 1,
                Some(_) => u64::MAX,
                None => 0,
            };
        }
        let (slot, index) = match self.slots {
            Some(page) if self.free_slots != 0 => {
                let i = self.free_slots.trailing_zeros() as usize;
                self.free_slots &= !(1 << i);
                page[i].reset();
                (Some(&page[i]), Some(i))
            }
            _ => (None, None),
        };
        Ok(ForkKit {
            mine,
            theirs,
            slot,
            ticket: Ticket {
                home,
                generation: self.generation,
                slot: index,
            },
        })
    }

    /// In a forked child: the parent's slots are not ours (the page stays mapped, since the
    /// child reports through it), and what the parent's children hold must never come back.
    pub(crate) fn forget_parents(&mut self) {
        self.slots = None;
        self.free_slots = 0;
        self.generation += 1;
        if let Some(pair) = self.spare.take() {
            // The parent's pair: never ours to hand out. Left open, since closing costs two
            // system calls on the way to the target; it goes with the process.
            std::mem::forget(pair);
        }
    }

    fn give_back(&mut self, ticket: &Ticket, pair: Option<(OwnedFd, OwnedFd)>) {
        if self.generation != ticket.generation {
            // A record this process inherited from its parent (see `forget_parents`).
            return;
        }
        if let Some(i) = ticket.slot {
            self.free_slots |= 1 << i;
        }
        if self.spare.is_none() {
            // A pair written into (or of a child killed half-way) is closed, and a fresh one
            // takes its place: once its Fork children have ended, a process holds exactly one
            // spare pair, whatever they did (the descriptor counts of the leak tests rely on
            // it). If even that fails (out of descriptors), the next start makes its own.
            self.spare = pair.or_else(|| sys::socketpair().ok());
        }
    }
}

impl Child {
    /// Whether the child has finished, looking without blocking (and reaping a direct child).
    fn finished_now(&self) -> bool {
        let mut st = self.lock();
        // An error means it cannot be watched any more: count it as ended rather than keep it.
        self.wait(&mut st, Some(Instant::now())).unwrap_or(true)
    }
}

/// An awaited child with the descriptors that announce its news, copied out of the table.
type AwaitedFds = (Arc<Child>, Vec<RawFd>);

impl Registry {
    /// No child yet (a `const fn`, for the process-wide page).
    pub(crate) const fn new() -> Registry {
        Registry(Mutex::new(Children::EMPTY))
    }

    /// The list itself, locked (a poisoned lock is still usable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Children> {
        lock(&self.0)
    }

    /// Records a new child (the caller makes sure live children are joined at normal exit).
    pub(crate) fn register(&'static self, child: Arc<Child>) {
        let start = {
            let mut children = self.lock();
            children.live.push(child);
            // Orphans but no reaper: its thread could not be started last time.
            children.reaper_to_start()
        };
        if let Some(wake) = start {
            self.start_reaper(wake);
        }
    }

    /// Forgets a child that has finished.
    pub(crate) fn unregister(&self, child: &Arc<Child>) {
        self.lock().remove(child);
    }

    /// Python's `active_children()`: the live children, after reaping the finished ones.
    pub(crate) fn active_children(&'static self) -> Vec<ProcessInfo> {
        let (list, start) = {
            let mut children = self.lock();
            (children.live.clone(), children.reaper_to_start())
        };
        if let Some(wake) = start {
            self.start_reaper(wake);
        }
        let mut live = Vec::new();
        for child in list {
            if child.finished_now() {
                self.unregister(&child);
            } else {
                live.push(child.info());
            }
        }
        live
    }

    /// Takes a still-running child whose handle was dropped: nobody wants its result (its socket
    /// closes now), and the orphan reaper forgets it, closing its descriptors, as soon as it ends,
    /// reaping it first if it is our own (a fork-server child is reaped by the server).
    ///
    /// One reaper thread watches every orphan of this process, sleeping in one `poll` on their
    /// pidfds and its own eventfd, so orphans cost no more than their pidfds while they run and
    /// nothing once they end, however many there are; the thread ends when the last one has.
    pub(crate) fn adopt_orphan(&'static self, child: Arc<Child>) {
        child.lock().sock = None;
        tracing::debug!(
            pid = child.pid,
            name = %child.name,
            "a running child's handle was dropped; the reaper will reap it"
        );
        self.hand_to_reaper(|children| children.orphans.push(child));
    }

    /// Takes a fork-server spare that will never be used (see [`super::server_conn`]): it exits
    /// once its socket closes, here, and the orphan reaper reaps it.
    pub(crate) fn adopt_spare(&'static self, pid: u32, sock: OwnedFd) {
        let spare = Child::adopted(pid, "multiproc-spare".to_owned(), false, sock);
        self.adopt_orphan(Arc::new(spare));
    }

    /// Parks an async join: the reaper thread wakes `waker` (once) when one of `fds`, descriptors
    /// of `child`, has news. The same thread as the orphans', so that awaiting any number of
    /// children costs one thread, and nothing while none is awaited.
    fn await_news(&'static self, child: Arc<Child>, fds: Vec<RawFd>, waker: std::task::Waker) {
        self.hand_to_reaper(|children| {
            // A re-poll replaces the task's earlier request for the same child.
            children
                .awaited
                .retain(|a| !(Arc::ptr_eq(&a.child, &child) && a.waker.will_wake(&waker)));
            children.awaited.push(Awaited { child, fds, waker });
        });
    }

    /// Lists work for the reaper thread with `add`, then wakes the thread or starts it.
    fn hand_to_reaper(&'static self, add: impl FnOnce(&mut Children)) {
        let start = {
            let mut children = self.lock();
            add(&mut children);
            match &children.reaper {
                Some(wake) => {
                    sys::eventfd_signal(wake.as_fd());
                    None
                }
                None => children.reaper_to_start(),
            }
        };
        if let Some(wake) = start {
            self.start_reaper(wake);
        }
    }

    /// Starts the reaper thread, which owns `wake` (see [`Registry::adopt_orphan`]).
    fn start_reaper(&'static self, wake: Arc<OwnedFd>) {
        let spawned = std::thread::Builder::new()
            .name("multiproc-reaper".into())
            .stack_size(64 * 1024)
            .spawn(move || self.reap_orphans(wake));
        if let Err(e) = spawned {
            // The orphans stay listed: the next spawn or `active_children` tries again.
            tracing::warn!(error = %e, "could not start the orphan reaper thread");
            self.lock().reaper = None;
        }
    }

    /// The reaper thread: forgets each orphan as soon as it has ended and wakes each awaited join
    /// whose child has news; returns when neither is left.
    fn reap_orphans(&self, wake: Arc<OwnedFd>) {
        loop {
            let (orphans, awaited): (Vec<Arc<Child>>, Vec<AwaitedFds>) = {
                let mut children = self.lock();
                if children.orphans.is_empty() && children.awaited.is_empty() {
                    // Under the lock: an orphan adopted from now on starts a new reaper.
                    children.reaper = None;
                    return;
                }
                let awaited = children
                    .awaited
                    .iter()
                    .map(|a| (Arc::clone(&a.child), a.fds.clone()))
                    .collect();
                (children.orphans.clone(), awaited)
            };
            let mut ended = Vec::new();
            let mut fds = vec![(wake.as_raw_fd(), false)];
            let mut blind = false;
            for child in &orphans {
                if child.finished_now() {
                    ended.push(child);
                    continue;
                }
                match child.pidfd() {
                    // Stays open while `orphans` holds the child.
                    Ok(Some(fd)) => fds.push((fd.as_raw_fd(), false)),
                    // Reaped since: the next look finds it ended.
                    Ok(None) => blind = true,
                    Err(e) => {
                        // Out of descriptors, say: look again in a while.
                        tracing::debug!(pid = child.pid, error = %e, "could not watch an orphan");
                        blind = true;
                    }
                }
            }
            if !ended.is_empty() {
                let mut children = self.lock();
                for child in ended {
                    tracing::debug!(pid = child.pid, name = %child.name, "reaped an orphaned child");
                    children.remove(child);
                }
                continue;
            }
            let first_awaited = fds.len();
            for (_, child_fds) in &awaited {
                // Open while `awaited` holds the child (a socket closed since makes a spurious
                // wake-up at worst: the join looks again).
                fds.extend(child_fds.iter().map(|&fd| (fd, false)));
            }
            let timeout = blind.then_some(Duration::from_millis(50));
            match sys::poll(&fds, timeout) {
                Ok(ready) => self.wake_awaited(&awaited, &ready[first_awaited..]),
                // An error (`ENOMEM`) is treated like a timeout: look again.
                Err(_) => std::thread::yield_now(),
            }
            sys::eventfd_drain(wake.as_fd());
        }
    }

    /// Wakes (and unlists) each awaited join one of whose descriptors is `ready` (in the order of
    /// `awaited`'s descriptors).
    fn wake_awaited(&self, awaited: &[(Arc<Child>, Vec<RawFd>)], mut ready: &[sys::Ready]) {
        let mut news: Vec<&Arc<Child>> = Vec::new();
        for (child, fds) in awaited {
            let (mine, rest) = ready.split_at(fds.len().min(ready.len()));
            ready = rest;
            if mine.iter().any(|r| r.readable) {
                news.push(child);
            }
        }
        if news.is_empty() {
            return;
        }
        let wakers: Vec<std::task::Waker> = {
            let mut children = self.lock();
            let (woken, kept) = std::mem::take(&mut children.awaited)
                .into_iter()
                .partition(|a| news.iter().any(|c| Arc::ptr_eq(c, &a.child)));
            children.awaited = kept;
            woken.into_iter().map(|a: Awaited| a.waker).collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Python's exit rule: terminate live daemon children, then join every live child.
    pub(crate) fn join_all_children(&self) {
        let list: Vec<Arc<Child>> = {
            let mut children = self.lock();
            if children.live.is_empty() {
                return;
            }
            std::mem::take(&mut children.live)
        };
        for child in list.iter().filter(|c| c.daemon) {
            let _ = child.signal(sys::SIGTERM);
        }
        for child in &list {
            let mut st = child.lock();
            let _ = child.wait(&mut st, None);
        }
    }
}
