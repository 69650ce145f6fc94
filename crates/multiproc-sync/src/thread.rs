//! `Thread` (Python's `threading.Thread`), its builder, and the registry behind
//! `current_thread`, `main_thread`, `enumerate` and `active_count`.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;

use crate::raw::{RawEvent, ThreadFutex};
use crate::{Error, Result};

/// What Python's `threading.Thread` object tells about a thread, as a plain value.
///
/// ```
/// let me = multiproc_sync::current_thread();
/// assert!(me.ident != 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The name: given, `"Thread-N"` by default, `"MainThread"` for the main thread.
    pub name: String,
    /// The kernel thread id (Python's `native_id`; also used as `ident`).
    pub ident: u64,
    /// Whether the program exits without waiting for it.
    pub daemon: bool,
}

struct Inner {
    name: String,
    daemon: bool,
    tid: AtomicU32,
    started: RawEvent<ThreadFutex>,
    alive: AtomicBool,
}

impl Inner {
    fn ident(&self) -> u64 {
        self.started.wait_until(None);
        self.tid.load(Ordering::Acquire) as u64
    }

    fn info(&self) -> ThreadInfo {
        ThreadInfo {
            name: self.name.clone(),
            ident: self.ident(),
            daemon: self.daemon,
        }
    }
}

/// Threads started through [`Builder::spawn`] that have not finished yet.
static REGISTRY: Mutex<Vec<Arc<Inner>>> = Mutex::new(Vec::new());
/// The N of the next default name `Thread-N`.
static NAME_COUNTER: AtomicUsize = AtomicUsize::new(1);
/// Non-daemon threads still running; the exit hook sleeps on it until it is 0.
static NON_DAEMON: AtomicU32 = AtomicU32::new(0);
static EXIT_HOOK: Once = Once::new();

std::thread_local! {
    static CURRENT: RefCell<Option<Arc<Inner>>> = const { RefCell::new(None) };
}

fn registry() -> std::sync::MutexGuard<'static, Vec<Arc<Inner>>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs at normal program exit: waits for every non-daemon thread, as Python's interpreter
/// does before it exits.
extern "C" fn join_non_daemon_threads() {
    // A non-daemon thread that calls `exit` itself must not wait for itself.
    let me = CURRENT
        .try_with(|c| c.borrow().as_ref().is_some_and(|i| !i.daemon))
        .unwrap_or(false) as u32;
    if NON_DAEMON.load(Ordering::Acquire) > me && tracing::enabled!(tracing::Level::DEBUG) {
        let waiting: Vec<String> = registry()
            .iter()
            .filter(|i| !i.daemon)
            .map(|i| i.name.clone())
            .collect();
        tracing::debug!(
            ?waiting,
            "program exit waits for non-daemon threads (make them daemon or let them finish)"
        );
    }
    loop {
        let n = NON_DAEMON.load(Ordering::Acquire);
        if n <= me {
            return;
        }
        let _ = crate::sys::futex_wait(&NON_DAEMON, n, None, false);
    }
}

/// Python's `threading.Thread`, built with [`Thread::builder`]; `join` returns the closure's
/// value, or `Err(TaskFailed)` with the panic text.
///
/// ```
/// use multiproc_sync::{Error, Thread};
/// let t = Thread::builder().name("LoopThread").spawn(|| 6 * 7)?;
/// assert_eq!(t.name(), "LoopThread");
/// assert_eq!(t.join()?, 42);
/// let bad = Thread::builder().spawn(|| -> u8 { panic!("boom") })?;
/// assert!(matches!(bad.join(), Err(Error::TaskFailed { message }) if message == "boom"));
/// # Ok::<(), Error>(())
/// ```
pub struct Thread<R> {
    inner: Arc<Inner>,
    handle: JoinHandle<R>,
}

impl<R> fmt::Debug for Thread<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("name", &self.inner.name)
            .field("daemon", &self.inner.daemon)
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// Configures a [`Thread`] before it starts: name and daemon flag.
///
/// ```
/// let t = multiproc_sync::Thread::builder().name("worker").daemon(true).spawn(|| ())?;
/// assert!(t.is_daemon());
/// t.join()?;
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    daemon: Option<bool>,
}

impl Builder {
    /// The thread's name (default `Thread-N`).
    ///
    /// ```
    /// let b = multiproc_sync::Thread::builder().name("a");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the program may exit while it runs (default: the creating thread's flag, so
    /// `false` from the main thread).
    ///
    /// ```
    /// let b = multiproc_sync::Thread::builder().daemon(true);
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// Starts the thread running `f`.
    ///
    /// ```
    /// let t = multiproc_sync::Thread::builder().spawn(|| 1)?;
    /// assert_eq!(t.join()?, 1);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn spawn<R, F>(self, f: F) -> Result<Thread<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let daemon = self.daemon.unwrap_or_else(|| {
            CURRENT
                .try_with(|c| c.borrow().as_ref().is_some_and(|i| i.daemon))
                .unwrap_or(false)
        });
        let name = self
            .name
            .unwrap_or_else(|| format!("Thread-{}", NAME_COUNTER.fetch_add(1, Ordering::Relaxed)));
        let inner = Arc::new(Inner {
            name,
            daemon,
            tid: AtomicU32::new(0),
            started: RawEvent::new(),
            alive: AtomicBool::new(true),
        });
        if !daemon {
            EXIT_HOOK.call_once(|| {
                let _ = crate::sys::on_exit(join_non_daemon_threads);
            });
            NON_DAEMON.fetch_add(1, Ordering::AcqRel);
        }
        registry().push(inner.clone());
        let child = inner.clone();
        // The name is the caller's, whatever it holds (Python takes any string); the OS
        // thread's copy cannot hold a NUL byte (std panics on one), so it gets a stand-in there.
        let spawned = std::thread::Builder::new()
            .name(inner.name.replace('\0', "\u{FFFD}"))
            .spawn(move || {
                let tid = crate::raw::current_tid();
                child.tid.store(tid, Ordering::Release);
                child.started.set();
                tracing::debug!(name = %child.name, ident = tid, daemon = child.daemon, "thread started");
                let exit = Finished(child.clone());
                CURRENT.with(|c| *c.borrow_mut() = Some(child));
                let r = f();
                drop(exit);
                r
            });
        match spawned {
            Ok(handle) => Ok(Thread { inner, handle }),
            Err(e) => {
                finish(&inner);
                Err(Error::Io(e))
            }
        }
    }
}

/// Marks its thread finished when dropped, also when the closure panics.
struct Finished(Arc<Inner>);

impl Drop for Finished {
    fn drop(&mut self) {
        tracing::debug!(
            name = %self.0.name,
            ident = self.0.tid.load(Ordering::Relaxed),
            panicked = std::thread::panicking(),
            "thread finished"
        );
        finish(&self.0);
    }
}

fn finish(inner: &Arc<Inner>) {
    inner.alive.store(false, Ordering::Release);
    registry().retain(|i| !Arc::ptr_eq(i, inner));
    if !inner.daemon && NON_DAEMON.fetch_sub(1, Ordering::AcqRel) == 1 {
        crate::sys::futex_wake(&NON_DAEMON, i32::MAX as u32, false);
    }
}

impl Thread<()> {
    /// A [`Builder`] with the defaults.
    ///
    /// ```
    /// let t = multiproc_sync::Thread::builder().spawn(|| ())?;
    /// # t.join()?; Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl<R: Send + 'static> Thread<R> {
    /// Starts `f` on a new thread with the default name and daemon flag.
    ///
    /// ```
    /// let t = multiproc_sync::Thread::spawn(|| "done")?;
    /// assert_eq!(t.join()?, "done");
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn spawn(f: impl FnOnce() -> R + Send + 'static) -> Result<Thread<R>> {
        Builder::default().spawn(f)
    }
}

impl<R> Thread<R> {
    /// The thread's name.
    ///
    /// ```
    /// let t = multiproc_sync::Thread::builder().name("x").spawn(|| ())?;
    /// assert_eq!(t.name(), "x");
    /// # t.join()?; Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The kernel thread id (non-zero; waits the few µs until the thread has started).
    ///
    /// ```
    /// let t = multiproc_sync::Thread::spawn(|| multiproc_sync::current_thread().ident)?;
    /// let id = t.ident();
    /// assert_eq!(t.join()?, id);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn ident(&self) -> u64 {
        self.inner.ident()
    }

    /// Whether it is still running.
    ///
    /// ```
    /// let t = multiproc_sync::Thread::spawn(|| ())?;
    /// let _ = t.is_alive();
    /// # t.join()?; Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        self.inner.alive.load(Ordering::Acquire)
    }

    /// Whether it is a daemon thread.
    ///
    /// ```
    /// let t = multiproc_sync::Thread::spawn(|| ())?;
    /// assert!(!t.is_daemon());
    /// # t.join()?; Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn is_daemon(&self) -> bool {
        self.inner.daemon
    }

    /// This thread's [`ThreadInfo`].
    ///
    /// ```
    /// let t = multiproc_sync::Thread::builder().name("i").spawn(|| ())?;
    /// assert_eq!(t.info().name, "i");
    /// # t.join()?; Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn info(&self) -> ThreadInfo {
        self.inner.info()
    }

    /// Waits for it to finish and returns its value; a panic becomes `Err(TaskFailed)` with the
    /// panic text.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Thread::spawn(|| 5)?.join()?, 5);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn join(self) -> Result<R> {
        self.handle.join().map_err(|payload| Error::TaskFailed {
            message: panic_message(payload.as_ref()),
        })
    }

    /// Python's `signal.pthread_kill(t.ident, signo)`: sends signal number `signo` to this
    /// thread alone (0 sends nothing and only checks). A handler runs as the signal's
    /// disposition says (with `multiproc::signal`, on its dispatcher thread); what the target
    /// thread itself sees is a blocking system call interrupted with `EINTR`, and a default
    /// action that ends the process ends it whichever thread received it. `Err(Io)` for a
    /// number that is no signal. Typed: `multiproc::signal::pthread_kill(&t, Signal::SIGUSR1)`.
    ///
    /// ```
    /// let t = multiproc_sync::Thread::spawn(|| ())?;
    /// t.pthread_kill(0)?; // a joinable thread can be signalled, finished or not
    /// assert!(t.pthread_kill(-1).is_err());
    /// t.join()?;
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn pthread_kill(&self, signo: i32) -> Result<()> {
        crate::sys::pthread_kill(&self.handle, signo).map_err(Error::Io)
    }
}

/// The text of a panic payload (`&str` or `String`), else a generic phrase.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "thread panicked".to_owned()
    }
}

/// The calling thread: `"MainThread"` on the main thread, the given name or `"Thread-N"` on a
/// [`Thread`], the std name (or `"Dummy-N"`) on threads started elsewhere.
///
/// ```
/// let t = multiproc_sync::Thread::builder().name("LoopThread")
///     .spawn(|| multiproc_sync::current_thread().name)?;
/// assert_eq!(t.join()?, "LoopThread");
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub fn current_thread() -> ThreadInfo {
    if let Some(info) = CURRENT
        .try_with(|c| c.borrow().as_ref().map(|i| i.info()))
        .ok()
        .flatten()
    {
        return info;
    }
    if crate::sys::is_main_thread() {
        return main_thread();
    }
    static DUMMY: AtomicUsize = AtomicUsize::new(1);
    let name = std::thread::current()
        .name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Dummy-{}", DUMMY.fetch_add(1, Ordering::Relaxed)));
    let inner = Arc::new(Inner {
        name,
        daemon: true,
        tid: AtomicU32::new(crate::raw::current_tid()),
        started: RawEvent::new(),
        alive: AtomicBool::new(true),
    });
    inner.started.set();
    let info = inner.info();
    let _ = CURRENT.try_with(|c| *c.borrow_mut() = Some(inner));
    info
}

/// The main thread (the one that ran `main`).
///
/// ```
/// assert_eq!(multiproc_sync::main_thread().name, "MainThread");
/// ```
pub fn main_thread() -> ThreadInfo {
    ThreadInfo {
        name: "MainThread".to_owned(),
        ident: std::process::id() as u64,
        daemon: false,
    }
}

/// The main thread and every [`Thread`] still running, oldest first.
///
/// ```
/// assert_eq!(multiproc_sync::enumerate()[0].name, "MainThread");
/// ```
pub fn enumerate() -> Vec<ThreadInfo> {
    let live: Vec<Arc<Inner>> = registry().clone();
    std::iter::once(main_thread())
        .chain(live.iter().map(|i| i.info()))
        .collect()
}

/// How many threads [`enumerate`] would list.
///
/// ```
/// assert!(multiproc_sync::active_count() >= 1);
/// ```
pub fn active_count() -> usize {
    1 + registry().len()
}
