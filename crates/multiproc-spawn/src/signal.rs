//! Python's `signal` module in Rust idiom: handlers that run on a normal thread, `SIG_IGN` and
//! `SIG_DFL`, `getsignal`, `raise_signal`, `alarm`, a `pause`/`sigwait`-like [`wait_for`],
//! `valid_signals` and `strsignal`; [`Process::send_signal`](crate::Process::send_signal) is
//! `os.kill(pid, sig)`.
//!
//! # How a handler runs
//!
//! A signal handler proper may only do async-signal-safe things, which rules out almost all Rust
//! (no allocation, no lock). So, as CPython does, the handler proper only records the signal:
//! signal-hook's registry installs it, and the two actions it runs are signal-hook's own, a
//! flag store ([`signal_hook::flag`]) and a byte written to a socket
//! ([`signal_hook::low_level::pipe`]). One dispatcher thread per process sleeps on that socket
//! and runs the handler the program chose, as ordinary Rust code that may lock, allocate,
//! print or panic (a panic is caught and logged; the dispatcher goes on).
//!
//! Once a signal has had a handler, signal-hook's handler stays installed; setting it back to
//! [`Handler::Default`] then makes the dispatcher *emulate* the default action
//! ([`signal_hook::low_level::emulate_default_handler`]: the process ends by that very signal,
//! so its exit status is the one the kernel would give), and [`Handler::Ignore`] drops it. A
//! signal that never had a handler gets the kernel's `SIG_DFL`/`SIG_IGN` directly.
//!
//! A child started with `Fork` inherits the handlers, as in Python: it re-arms them on a
//! socket and dispatcher of its own before its target runs, so a signal sent to the child runs
//! the child's handler, never the parent's. `Spawn` and `ForkServer` children start with the
//! default dispositions (an ignored signal stays ignored across `exec`, as POSIX has it).
//!
//! ```
//! use multiproc_spawn::signal::{self, Handler, Signal};
//! use std::sync::mpsc;
//!
//! let (tx, rx) = mpsc::channel();
//! let tx = std::sync::Mutex::new(tx);
//! signal::signal(Signal::SIGUSR1, Handler::call(move |sig| {
//!     tx.lock().unwrap().send(sig).unwrap();
//! }))?;
//! signal::raise_signal(Signal::SIGUSR1)?;
//! assert_eq!(rx.recv().unwrap(), Signal::SIGUSR1);
//! signal::signal(Signal::SIGUSR1, Handler::Ignore)?;
//! # Ok::<(), multiproc_sync::Error>(())
//! ```

use crate::sys;
use multiproc_sync::{Error, Result};
use signal_hook::consts::signal as consts;
use signal_hook::low_level;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A signal number, named like Python's `signal.Signals` members (`Signal::SIGTERM`).
///
/// ```
/// use multiproc_spawn::signal::Signal;
/// assert_eq!(Signal::SIGTERM.number(), 15);
/// assert_eq!(Signal::SIGTERM.to_string(), "SIGTERM");
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

macro_rules! signals {
    ($($name:ident),* $(,)?) => {
        impl Signal {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub const $name: Signal = Signal(consts::$name);
            )*
        }
    };
}

signals!(
    SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGUSR1, SIGSEGV,
    SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU,
    SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGSYS,
);

impl Signal {
    /// The signal with this number; `Err(Invalid)` for a number this system does not have
    /// (Python's `ValueError`).
    ///
    /// ```
    /// use multiproc_spawn::signal::Signal;
    /// assert_eq!(Signal::new(15)?, Signal::SIGTERM);
    /// assert!(Signal::new(0).is_err());
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn new(number: i32) -> Result<Signal> {
        if sys::signal_numbers().contains(&number) {
            Ok(Signal(number))
        } else {
            Err(Error::Invalid(format!(
                "signal number {number} out of range"
            )))
        }
    }

    /// The signal's number (`int(sig)`).
    ///
    /// ```
    /// assert_eq!(multiproc_spawn::signal::Signal::SIGINT.number(), 2);
    /// ```
    pub fn number(self) -> i32 {
        self.0
    }

    /// The signal's name, `"SIGTERM"` (`sig.name`); `"SIGRTMIN+3"` style for real-time ones.
    ///
    /// ```
    /// use multiproc_spawn::signal::Signal;
    /// assert_eq!(Signal::new(10)?.name(), "SIGUSR1");
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn name(self) -> String {
        match low_level::signal_name(self.0) {
            Some(n) => n.to_owned(),
            None => format!("SIG{}", self.0),
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

/// What happens when a signal arrives (Python's handler argument of `signal.signal`).
///
/// ```
/// use multiproc_spawn::signal::{self, Handler, Signal};
/// assert!(matches!(signal::getsignal(Signal::SIGWINCH)?, Handler::Default));
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Handler {
    /// The default action (`SIG_DFL`).
    Default,
    /// Nothing (`SIG_IGN`).
    Ignore,
    /// This function, on multiproc's signal dispatcher thread.
    Call(Arc<dyn Fn(Signal) + Send + Sync>),
    /// A handler installed outside multiproc (C code, another library): Python's `None` from
    /// `getsignal`. Passing it to [`signal`] is an error.
    Other,
}

impl Handler {
    /// A [`Handler::Call`] of `f`: it runs on multiproc's signal dispatcher thread, so it may
    /// lock, allocate and print, unlike a C signal handler.
    ///
    /// ```
    /// use multiproc_spawn::signal::{self, Handler, Signal};
    /// use std::sync::{Mutex, mpsc};
    /// let (tx, rx) = mpsc::channel();
    /// let tx = Mutex::new(tx);
    /// signal::signal(Signal::SIGUSR1, Handler::call(move |sig| tx.lock().unwrap().send(sig).unwrap()))?;
    /// signal::raise_signal(Signal::SIGUSR1)?;
    /// assert_eq!(rx.recv().unwrap(), Signal::SIGUSR1);
    /// signal::signal(Signal::SIGUSR1, Handler::Ignore)?;
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn call(f: impl Fn(Signal) + Send + Sync + 'static) -> Handler {
        Handler::Call(Arc::new(f))
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handler::Default => "Handler::Default",
            Handler::Ignore => "Handler::Ignore",
            Handler::Call(_) => "Handler::Call(..)",
            Handler::Other => "Handler::Other",
        })
    }
}

/// Python's `signal.default_int_handler`: ends the process as an uncaught
/// `KeyboardInterrupt` does (since Python 3.8), by the default action of `SIGINT`, so the
/// parent sees "killed by SIGINT".
///
/// ```
/// use multiproc_spawn::signal::{self, Signal};
/// fn interrupted(_: ()) {
///     signal::signal(Signal::SIGINT, signal::default_int_handler()).unwrap();
///     signal::raise_signal(Signal::SIGINT).unwrap();
///     std::thread::sleep(std::time::Duration::from_secs(60)); // never gets this far
/// }
/// let mut p = multiproc_spawn::spawn(interrupted, ())?;
/// assert!(p.wait_timeout(std::time::Duration::from_secs(30)));
/// assert_eq!(p.exitcode(), Some(-2));
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn default_int_handler() -> Handler {
    Handler::call(|sig| {
        let _ = low_level::emulate_default_handler(sig.0);
    })
}

/// One signal as the dispatcher knows it.
struct Hooked {
    ids: [signal_hook::SigId; 2],
    arrived: Arc<AtomicBool>,
    handler: Handler,
    /// How many times it was dispatched (what [`wait_for`] waits on).
    count: u64,
    /// Threads in [`wait_for`] for it: a default action waits until they have seen it.
    waiting: usize,
}

/// The process's signal table.
struct Table {
    /// The process that armed `hooked` (a forked child re-arms them as its own).
    pid: u32,
    hooked: BTreeMap<i32, Hooked>,
    /// The dispatcher's end of the wake-up socket is its thread's; this is the signal side.
    wake: Option<Arc<UnixStream>>,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    pid: 0,
    hooked: BTreeMap::new(),
    wake: None,
});
static DISPATCHED: Condvar = Condvar::new();
/// Set once any signal is hooked: a forked child with none skips the re-arming entirely.
static ANY: AtomicBool = AtomicBool::new(false);

fn table() -> MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

fn io(e: std::io::Error) -> Error {
    Error::Io(e)
}

impl Table {
    /// The wake-up socket, starting the dispatcher thread on first use (and again in a forked
    /// child, whose parent's thread does not exist there).
    fn wake(&mut self) -> Result<Arc<UnixStream>> {
        if self.pid == std::process::id()
            && let Some(w) = &self.wake
        {
            return Ok(Arc::clone(w));
        }
        let (theirs, mine) = UnixStream::pair().map_err(io)?;
        theirs.set_nonblocking(true).map_err(io)?;
        std::thread::Builder::new()
            .name("multiproc-signal".into())
            .stack_size(128 * 1024)
            .spawn(move || dispatch(mine))
            .map_err(io)?;
        let theirs = Arc::new(theirs);
        self.wake = Some(Arc::clone(&theirs));
        self.pid = std::process::id();
        Ok(theirs)
    }

    /// Makes sure signal-hook's handler records `sig` for the dispatcher.
    fn hook(&mut self, sig: Signal) -> Result<&mut Hooked> {
        if !self.hooked.contains_key(&sig.0) {
            let wake = self.wake()?;
            let arrived = Arc::new(AtomicBool::new(false));
            // The flag first, then the byte: actions run in the order they were registered,
            // so the dispatcher woken by the byte always finds the flag set.
            let flag_id = signal_hook::flag::register(sig.0, Arc::clone(&arrived)).map_err(io)?;
            let pipe_id = match low_level::pipe::register_raw(sig.0, raw_fd(&wake)) {
                Ok(id) => id,
                Err(e) => {
                    low_level::unregister(flag_id);
                    return Err(io(e));
                }
            };
            ANY.store(true, Ordering::Release);
            self.hooked.insert(
                sig.0,
                Hooked {
                    ids: [flag_id, pipe_id],
                    arrived,
                    handler: Handler::Default,
                    count: 0,
                    waiting: 0,
                },
            );
        }
        Ok(self.hooked.get_mut(&sig.0).expect("just inserted"))
    }
}

fn raw_fd(s: &UnixStream) -> i32 {
    use std::os::fd::AsRawFd;
    s.as_raw_fd()
}

fn check_catchable(sig: Signal) -> Result<()> {
    if signal_hook::consts::FORBIDDEN.contains(&sig.0) {
        return Err(Error::Invalid(format!(
            "{sig} cannot be caught or ignored by a handler here (Python's OSError/ValueError)"
        )));
    }
    Ok(())
}

/// Python's `signal.signal(sig, handler)`: sets what happens when `sig` arrives and returns what
/// was set before. `SIGKILL` and `SIGSTOP` (and the synchronous faults `SIGSEGV`, `SIGILL`,
/// `SIGFPE`, whose handler would run after the fault returned) give `Err(Invalid)`.
///
/// ```
/// use multiproc_spawn::signal::{self, Handler, Signal};
/// let before = signal::signal(Signal::SIGUSR2, Handler::Ignore)?;
/// assert!(matches!(before, Handler::Default));
/// signal::raise_signal(Signal::SIGUSR2)?; // ignored: still here
/// assert!(matches!(signal::getsignal(Signal::SIGUSR2)?, Handler::Ignore));
/// signal::signal(Signal::SIGUSR2, Handler::Default)?;
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn signal(sig: Signal, handler: Handler) -> Result<Handler> {
    check_catchable(sig)?;
    if matches!(handler, Handler::Other) {
        return Err(Error::Invalid(
            "Handler::Other stands for a foreign handler and cannot be installed".into(),
        ));
    }
    let previous = getsignal(sig)?;
    let mut t = table();
    let armed_here = t.pid == std::process::id() && t.hooked.contains_key(&sig.0);
    match handler {
        Handler::Default | Handler::Ignore if !armed_here => {
            // Never hooked: the kernel does it, and an ignored signal stays ignored in children.
            sys::set_disposition(sig.0, matches!(handler, Handler::Ignore)).map_err(io)?;
        }
        handler => t.hook(sig)?.handler = handler,
    }
    Ok(previous)
}

/// Python's `signal.getsignal(sig)`: what happens now when `sig` arrives.
///
/// ```
/// use multiproc_spawn::signal::{self, Handler, Signal};
/// signal::signal(Signal::SIGHUP, Handler::Ignore)?;
/// assert!(matches!(signal::getsignal(Signal::SIGHUP)?, Handler::Ignore));
/// signal::signal(Signal::SIGHUP, Handler::Default)?;
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn getsignal(sig: Signal) -> Result<Handler> {
    {
        let t = table();
        if t.pid == std::process::id()
            && let Some(h) = t.hooked.get(&sig.0)
        {
            return Ok(h.handler.clone());
        }
    }
    Ok(match sys::disposition(sig.0).map_err(io)? {
        sys::Disposition::Default => Handler::Default,
        sys::Disposition::Ignore => Handler::Ignore,
        sys::Disposition::Handler => Handler::Other,
    })
}

/// Python's `signal.raise_signal(sig)`: sends `sig` to this process.
///
/// ```
/// use multiproc_spawn::signal::{self, Signal};
/// fn terminate_myself(_: ()) {
///     signal::raise_signal(Signal::SIGTERM).unwrap();
/// }
/// let mut p = multiproc_spawn::spawn(terminate_myself, ())?;
/// assert!(p.wait_timeout(std::time::Duration::from_secs(30)));
/// assert_eq!(p.exitcode(), Some(-15));
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn raise_signal(sig: Signal) -> Result<()> {
    low_level::raise(sig.0).map_err(io)
}

/// Python's `os.kill(pid, sig)`: sends `sig` to any process by pid. For a child of ours,
/// [`Process::send_signal`](crate::Process::send_signal) is safer: it goes through the child's
/// pidfd, so it never reaches a stranger that reused the pid.
///
/// Unlike `kill(2)`, it signals one process only: a pid of 0 or above `i32::MAX` (which `kill(2)`
/// would read as a process group, or `u32::MAX` as every process) is `Err(Invalid)`.
///
/// ```
/// use multiproc_spawn::signal::{self, Signal};
/// signal::signal(Signal::SIGURG, signal::Handler::Ignore)?;
/// signal::kill(std::process::id(), Signal::SIGURG)?;
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn kill(pid: u32, sig: Signal) -> Result<()> {
    if !sys::is_process_id(pid) {
        // `kill(2)` would read 0 as our process group, `u32::MAX` (-1) as every process we may
        // signal, and any other id above `i32::MAX` as a process group.
        return Err(Error::Invalid(format!(
            "kill: {pid} is not a process id (1 to {}); 0 and larger ids would signal process \
             groups or every process",
            i32::MAX
        )));
    }
    sys::kill(pid, sig.0).map_err(io)
}

/// Python's `signal.pthread_kill(thread.ident, sig)`: sends `sig` to one thread of this
/// process (see [`Thread::pthread_kill`](multiproc_sync::Thread::pthread_kill)). The handler
/// still runs on the dispatcher thread; the target's blocking system call, if any, returns
/// `EINTR`.
///
/// ```
/// use multiproc_spawn::signal::{self, Handler, Signal};
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// let tx = std::sync::Mutex::new(tx);
/// signal::signal(Signal::SIGUSR1, Handler::call(move |sig| tx.lock().unwrap().send(sig).unwrap()))?;
/// let (stop_tx, stop_rx) = mpsc::channel::<()>();
/// let t = multiproc_sync::Thread::spawn(move || stop_rx.recv())?;
/// signal::pthread_kill(&t, Signal::SIGUSR1)?;
/// assert_eq!(rx.recv().unwrap(), Signal::SIGUSR1);
/// stop_tx.send(()).unwrap();
/// t.join()?.unwrap();
/// signal::signal(Signal::SIGUSR1, Handler::Ignore)?;
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn pthread_kill<R>(thread: &multiproc_sync::Thread<R>, sig: Signal) -> Result<()> {
    thread.pthread_kill(sig.0)
}

/// Python's `signal.alarm(seconds)`: `SIGALRM` after `seconds` (0 cancels the alarm); returns
/// the seconds that were left of the previous one.
///
/// ```
/// assert_eq!(multiproc_spawn::signal::alarm(0), 0);
/// ```
pub fn alarm(seconds: u32) -> u32 {
    sys::alarm(seconds)
}

/// Python's `signal.valid_signals()`: every signal number this system has.
///
/// ```
/// use multiproc_spawn::signal::{self, Signal};
/// assert!(signal::valid_signals().contains(&Signal::SIGTERM));
/// ```
pub fn valid_signals() -> Vec<Signal> {
    sys::signal_numbers().into_iter().map(Signal).collect()
}

/// Python's `signal.strsignal(sig)`: the system's description, `"Terminated"` for `SIGTERM`.
///
/// ```
/// use multiproc_spawn::signal::{self, Signal};
/// assert_eq!(signal::strsignal(Signal::SIGTERM).as_deref(), Some("Terminated"));
/// ```
pub fn strsignal(sig: Signal) -> Option<String> {
    sys::strsignal(sig.0)
}

/// Waits until one of `signals` arrives and returns it: `signal.pause()` narrowed to the signals
/// one cares about, or `signal.sigwait` without blocking them in every thread first. A signal
/// with [`Handler::Default`] that arrives while waited for is taken by the wait instead of
/// ending the process; a [`Handler::Call`] still runs.
///
/// ```
/// use multiproc_spawn::signal::{self, Signal};
/// let t = std::thread::spawn(|| signal::wait_for(&[Signal::SIGWINCH], None));
/// // SIGWINCH is ignored by default, so raising it before the wait is armed does no harm.
/// while !t.is_finished() {
///     signal::raise_signal(Signal::SIGWINCH)?;
///     std::thread::yield_now();
/// }
/// assert_eq!(t.join().unwrap()?, Signal::SIGWINCH);
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn wait_for(signals: &[Signal], timeout: Option<Duration>) -> Result<Signal> {
    for &s in signals {
        check_catchable(s)?;
    }
    // `None` (no limit) also for a timeout past the end of the clock (`Duration::MAX`).
    let deadline = timeout.and_then(multiproc_sync::raw::deadline_after);
    let mut t = table();
    let mut seen = Vec::with_capacity(signals.len());
    for &s in signals {
        let h = t.hook(s)?;
        h.waiting += 1;
        seen.push((s, h.count));
    }
    let result = loop {
        if let Some(&(s, _)) = seen
            .iter()
            .find(|(s, c)| t.hooked.get(&s.0).is_some_and(|h| h.count != *c))
        {
            break Ok(s);
        }
        match deadline {
            None => t = DISPATCHED.wait(t).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break Err(Error::Timeout);
                }
                t = DISPATCHED
                    .wait_timeout(t, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    };
    for &s in signals {
        if let Some(h) = t.hooked.get_mut(&s.0) {
            h.waiting -= 1;
        }
    }
    result
}

/// The dispatcher thread: sleeps on the wake-up socket, then runs what each arrived signal asks.
fn dispatch(mut wake: UnixStream) {
    let mut buf = [0u8; 64];
    loop {
        match wake.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        let arrived: Vec<(Signal, Handler, bool)> = {
            let mut t = table();
            if t.pid != std::process::id() {
                // A copy of the parent's thread cannot exist in a child; defensive only.
                return;
            }
            let mut list = Vec::new();
            for (&n, h) in t.hooked.iter_mut() {
                if h.arrived.swap(false, Ordering::AcqRel) {
                    h.count += 1;
                    list.push((Signal(n), h.handler.clone(), h.waiting > 0));
                }
            }
            list
        };
        if !arrived.is_empty() {
            DISPATCHED.notify_all();
        }
        for (sig, handler, waited_for) in arrived {
            match handler {
                Handler::Call(f) if catch_unwind(AssertUnwindSafe(|| f(sig))).is_err() => {
                    tracing::error!(signal = %sig, "a signal handler panicked");
                }
                Handler::Default if !waited_for => {
                    let _ = low_level::emulate_default_handler(sig.0);
                }
                _ => {}
            }
        }
    }
}

/// In a child just forked by multiproc, before its target runs: the parent's handlers are
/// inherited, but their wake-up socket and dispatcher are the parent's. Re-arms them on this
/// process's own. Costs nothing where no handler was ever set (the check is inlined into the
/// child's path, so that such a child never enters this module's code: see `crate::child`).
#[inline(always)]
pub(crate) fn rearm_after_fork() {
    if ANY.load(Ordering::Acquire) {
        rearm_handlers();
    }
}

#[cold]
#[inline(never)]
fn rearm_handlers() {
    // Another thread of the parent may have held the table at the fork: then it stays as it
    // is rather than deadlock (the child's handlers then do not run; a rare race, logged).
    let Ok(mut t) = TABLE.try_lock() else {
        tracing::warn!("signal handlers not re-armed in a forked child: the table was busy");
        return;
    };
    let old: Vec<(i32, Handler)> = std::mem::take(&mut t.hooked)
        .into_iter()
        .map(|(n, h)| {
            for id in h.ids {
                low_level::unregister(id);
            }
            (n, h.handler)
        })
        .collect();
    // The parent's socket end: left alone (forgotten, never closed), since the code that
    // forked may already have closed descriptors it knew to be the parent's.
    std::mem::forget(t.wake.take());
    t.pid = 0;
    for (n, handler) in old {
        match t.hook(Signal(n)) {
            Ok(h) => h.handler = handler,
            Err(e) => tracing::warn!(signal = n, error = %e, "could not re-arm a signal handler"),
        }
    }
}
