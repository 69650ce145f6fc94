//! `Process<R>` and its builder: start a function in another process under one of the three
//! start methods, then watch, signal and join it.

use crate::child::{self, Trampoline};
use crate::decode::decode_exact;
use crate::fnref::offset_of;
use crate::handoff;
use crate::identity::{Identity, ProcessInfo};
use crate::parent::record::Child;
use crate::parent::server_conn;
use crate::protocol::frame::{self, Kind};
use crate::protocol::outcome::{Outcome, Report};
use crate::protocol::{ENV, Header};
use crate::start_method::StartMethod;
use crate::state::{self, get_start_method};
use crate::sys;
use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// Starts `f(args)` in a new process with the default settings, like Python's
/// `Process(target=f, args=(args,)).start()`.
///
/// `f` is a plain `fn` (non-capturing closures coerce); `args` and the return value travel
/// with serde. Under `Fork`, `args` is moved into the child without being encoded.
///
/// ```
/// let p = multiproc_spawn::spawn(|x: u64| x * 2, 21).unwrap();
/// assert_eq!(p.join().unwrap(), 42);
/// ```
pub fn spawn<A, R>(f: fn(A) -> R, args: A) -> Result<Process<R>>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + 'static,
{
    Process::builder().spawn(f, args)
}

/// A started child process whose target returns `R`.
///
/// Dropping the handle never leaves a zombie or a descriptor: a finished child is already
/// reaped, and a running one is reaped (and its descriptors closed) in the background when it
/// ends. The child is not killed.
///
/// ```
/// fn add((a, b): (i32, i32)) -> i32 {
///     a + b
/// }
/// let p: multiproc_spawn::Process<i32> = multiproc_spawn::spawn(add, (2, 3))?;
/// assert_ne!(p.pid(), std::process::id());
/// assert_eq!(p.join()?, 5);
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
#[must_use = "a dropped Process is not joined; call join() to get its result"]
pub struct Process<R> {
    child: Arc<Child>,
    _result: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.child.pid)
            .field("name", &self.child.name)
            .field("daemon", &self.child.daemon)
            .finish()
    }
}

/// Settings for a new process: name, daemon flag, start method.
///
/// ```
/// use multiproc_spawn::{Process, StartMethod};
/// let p = Process::builder()
///     .name("worker")
///     .start_method(StartMethod::Spawn)
///     .spawn(|s: String| s.len(), "hello".to_string())
///     .unwrap();
/// assert_eq!(p.name(), "worker");
/// assert_eq!(p.join().unwrap(), 5);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until spawn() is called"]
pub struct ProcessBuilder {
    name: Option<String>,
    daemon: bool,
    start_method: Option<StartMethod>,
}

impl Process<()> {
    /// A builder for a process with a name, daemon flag or start method of its own.
    ///
    /// ```
    /// let p = multiproc_spawn::Process::builder().name("sq").spawn(|x: u64| x * x, 9)?;
    /// assert_eq!((p.name().to_owned(), p.join()?), ("sq".to_owned(), 81));
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder::default()
    }
}

impl ProcessBuilder {
    /// The process's name (default `Process-N`, N counting from 1 in each parent).
    ///
    /// ```
    /// use multiproc_spawn::{Process, current_process};
    /// let p = Process::builder().name("fetcher").spawn(|_: ()| current_process().name, ())?;
    /// assert_eq!(p.join()?, "fetcher");
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A daemon child is killed when its parent dies (`kill -9` included) and is terminated,
    /// not joined, at the parent's normal exit. Default `false`.
    ///
    /// ```
    /// let p = multiproc_spawn::Process::builder()
    ///     .daemon(true)
    ///     .spawn(|_: ()| multiproc_spawn::current_process().daemon, ())
    ///     .unwrap();
    /// assert!(p.is_daemon());
    /// assert!(p.join().unwrap(), "the child knows it is a daemon");
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// The start method for this child (default: [`get_start_method`]).
    ///
    /// ```
    /// use multiproc_spawn::{Process, StartMethod};
    /// for method in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
    ///     let p = Process::builder().start_method(method).spawn(|x: u8| x + 1, 1)?;
    ///     assert_eq!(p.join()?, 2);
    /// }
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Starts `f(args)` in the new process. `f` is a plain function (or a closure that
    /// captures nothing); `args` and the value it returns travel encoded with serde, and
    /// multiproc handles inside them (queues, locks…) reach the child as working handles.
    ///
    /// ```
    /// use multiproc_spawn::Process;
    /// fn words(text: String) -> Vec<String> {
    ///     text.split_whitespace().map(str::to_owned).collect()
    /// }
    /// let p = Process::builder().spawn(words, "to be or not".to_string())?;
    /// assert_eq!(p.join()?.len(), 4);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn spawn<A, R>(self, f: fn(A) -> R, args: A) -> Result<Process<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let method = self.start_method.unwrap_or_else(get_start_method);
        // Handles inside the arguments count as held by us until the child registers; if
        // the child never starts (or the arguments cannot be encoded), `undo` takes that back.
        let (encoded, fds, undo) = handoff::collect_transfer(|| postcard::to_allocvec(&args));
        let encoded = encoded.map_err(|e| handoff::encode_error("the arguments", e))?;
        let started = if method == StartMethod::Fork {
            // The arguments travel encoded under Fork too: a handle inside them (a queue, a
            // pipe end) is then handed over explicitly, and the child counts as its holder
            // from its first instruction, exactly as under the other start methods. Other
            // handles the child inherits with its parent's memory count for nothing.
            drop(args);
            self.fork(move || {
                // Without handles, the arguments need no descriptor table (whose thread-local
                // code is one more page for the child to fault in).
                let args = if fds.is_empty() {
                    decode_exact::<A>(&encoded)
                } else {
                    handoff::with_received_fds(fds, || decode_exact::<A>(&encoded))
                }
                .unwrap_or_else(|e| panic!("could not decode the arguments: {e}"));
                f(args)
            })
        } else {
            let tramp = child::trampoline::<A, R> as Trampoline as usize;
            self.start_fresh(method, tramp, f as usize, &encoded, &fds)
        };
        if started.is_ok() {
            undo.delivered();
        }
        started
    }

    /// Starts a closure in a forked child (the `Fork` start method only: a closure cannot be
    /// sent to a fresh process). Its result travels back with serde.
    ///
    /// ```
    /// use multiproc_spawn::{Process, StartMethod};
    /// let base = vec![1, 2, 3];
    /// let p = Process::builder()
    ///     .start_method(StartMethod::Fork)
    ///     .spawn_closure(move || base.iter().sum::<i32>())
    ///     .unwrap();
    /// assert_eq!(p.join().unwrap(), 6);
    /// ```
    pub fn spawn_closure<R, F>(self, f: F) -> Result<Process<R>>
    where
        F: FnOnce() -> R,
        R: Serialize + DeserializeOwned + 'static,
    {
        let method = self.start_method.unwrap_or_else(get_start_method);
        if method != StartMethod::Fork {
            return Err(Error::Invalid(format!(
                "spawn_closure needs the Fork start method (this one is {method:?}): a closure \
                 cannot be sent to a fresh process; use spawn(fn, args) or \
                 .start_method(StartMethod::Fork)"
            )));
        }
        self.fork(f)
    }

    fn fork<R, F>(self, f: F) -> Result<Process<R>>
    where
        F: FnOnce() -> R,
        R: Serialize + DeserializeOwned + 'static,
    {
        check_hook()?;
        let name = self.name.clone().unwrap_or_else(state::next_child_name);
        // Everything the child needs is made here, before the fork: after it, every page the
        // child writes is a copy-on-write fault, and every one it allocates on is such a page.
        let me = Identity::child(name.clone(), self.daemon, state::current_process());
        // Hold every lock whose state the child must find consistent: the child's copy of a
        // lock held by another thread would stay locked for ever. (Standard output's last: code
        // that holds one of ours may print, a tracing subscriber say, never the other way.)
        let mut ident = state::identity();
        let mut children = state::registry().lock();
        let mut pool = state::fork_pool();
        let kit = pool.take(state::fork_pool_lock())?;
        let mut server = state::server();
        let mut parked = state::parked_report();
        let stdout = child::prepare_fork();
        // SAFETY: the locks above are held across the fork, and the child below touches no
        // other lock of ours before it runs the target; it never returns into the caller.
        let forked = unsafe { sys::fork() }?;
        match forked {
            sys::Forked::Child => {
                // Our parent's children, outcome slots, fork server and report channel are not
                // ours. (Each only when there is something to drop: a forked child pays a page
                // fault for every page it writes, and moving a value out is a write.)
                state::registry().forget_parents(&mut children);
                pool.forget_parents();
                if server.is_some() {
                    drop(server.take());
                }
                if parked.is_some() {
                    drop(parked.take());
                }
                child::take_identity(&mut ident, me, true);
                crate::signal::rearm_after_fork();
                // One by one, each in a small function of its own: the compiler made the drop
                // glue of the tuple (and of each guard, called from many places here) a function
                // placed apart from this code, one more code page for the child to fault in
                // (see `crate::child`).
                child::release_stdout(stdout);
                child::release(ident);
                child::release(children);
                child::release(pool);
                child::release(server);
                child::release(parked);
                let report = Report {
                    sock: kit.theirs,
                    parents_end: Some(kit.mine),
                    slot: kit.slot,
                };
                child::run_target(report, || child::encode_value(&f()))
            }
            sys::Forked::Parent(pid) => {
                drop((stdout, ident, children, pool, server, parked));
                let pair = (kit.mine, kit.theirs);
                let child = Child::forked(pid, name, self.daemon, pair, kit.slot, kit.ticket);
                Ok(register(child, StartMethod::Fork))
            }
        }
    }

    fn start_fresh<R>(
        self,
        method: StartMethod,
        trampoline: usize,
        target: usize,
        args: &[u8],
        fds: &[OwnedFd],
    ) -> Result<Process<R>> {
        check_hook()?;
        if state::hook_is_disabled() {
            return Err(Error::Invalid(format!(
                "{method:?} is unavailable in a program started with elevated rights (setuid, \
                 setgid or file capabilities: AT_SECURE), whose children ignore multiproc's \
                 start-up variable and would run main() again; use StartMethod::Fork"
            )));
        }
        let name = self.name.clone().unwrap_or_else(state::next_child_name);
        let header = Header {
            trampoline: offset_of(trampoline),
            target: offset_of(target),
            fingerprint: child::fingerprint(),
            name: name.clone(),
            daemon: self.daemon,
            parent: state::current_process(),
            start_method: get_start_method().to_u8(),
        };
        let header = postcard::to_allocvec(&header).map_err(|e| Error::Codec(e.to_string()))?;
        let len = (header.len() as u32).to_le_bytes();
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        // A child that died before reading its arguments is reported by join, with its status;
        // so a failed write is not an error here.
        let bootstrap = |sock: BorrowedFd<'_>| {
            let _ = frame::write_frame(sock, Kind::Bootstrap, &[&len, &header, args], &raw);
        };
        let child = if method == StartMethod::Spawn {
            let (mine, theirs) = sys::socketpair()?;
            let value = format!("child:{}", theirs.as_raw_fd());
            let pid = sys::spawn_self("--multiproc-child", (ENV, &value), theirs.as_fd())?;
            drop(theirs);
            bootstrap(mine.as_fd());
            Child::spawned(pid, name, self.daemon, mine)
        } else {
            // The arguments go into a spare child's socket, or out while the server forks: the
            // child reads them as soon as it exists.
            let started = server_conn::start_child(
                &mut state::server(),
                state::registry(),
                self.daemon,
                bootstrap,
            )?;
            match started.server_pidfd {
                None => Child::adopted(started.pid, name, self.daemon, started.sock),
                Some(pidfd) => {
                    Child::via_server(started.pid, name, self.daemon, pidfd, started.sock)
                }
            }
        };
        Ok(register(child, method))
    }
}

/// Records a started child and hands out its handle.
fn register<R>(child: Child, method: StartMethod) -> Process<R> {
    tracing::debug!(
        pid = child.pid,
        name = %child.name,
        daemon = child.daemon,
        start_method = ?method,
        "started a child process"
    );
    let child = Arc::new(child);
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| sys::register_atexit(at_exit));
    state::registry().register(Arc::clone(&child));
    Process {
        child,
        _result: PhantomData,
    }
}

/// At normal exit: Python's rule for live children (terminate the daemons, join them all),
/// then close the connection to the fork server, which makes it exit.
extern "C" fn at_exit() {
    state::registry().join_all_children();
    server_conn::shut_down(&mut state::server());
}

fn check_hook() -> Result<()> {
    if state::hook_is_linked() {
        Ok(())
    } else {
        Err(Error::Invalid(
            "multiproc's start-up hook did not run in this binary, so a child would run main() \
             again; link multiproc into the executable itself"
                .into(),
        ))
    }
}

impl<R> Process<R> {
    /// The child's process id.
    ///
    /// ```
    /// let p = multiproc_spawn::spawn(|_: ()| std::process::id(), ())?;
    /// let pid = p.pid();
    /// assert_eq!(p.join()?, pid);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.child.pid
    }

    /// The child's name (`Process-N` unless the builder named it).
    ///
    /// ```
    /// let p = multiproc_spawn::spawn(|_: ()| (), ())?;
    /// assert!(p.name().starts_with("Process-"), "{}", p.name());
    /// p.join()?;
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.child.name
    }

    /// Whether the child is a daemon.
    ///
    /// ```
    /// let p = multiproc_spawn::spawn(|_: ()| (), ())?;
    /// assert!(!p.is_daemon());
    /// p.join()?;
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn is_daemon(&self) -> bool {
        self.child.daemon
    }

    /// Whether the child is still running (it is reaped as soon as it is seen to have ended).
    ///
    /// ```
    /// use std::time::Duration;
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms))
    /// }
    /// let mut p = multiproc_spawn::spawn(nap, 60_000).unwrap();
    /// assert!(p.is_alive());
    /// assert!(!p.wait_timeout(Duration::from_millis(10)), "still napping");
    /// p.terminate().unwrap();
    /// assert!(p.wait_timeout(Duration::from_secs(30)));
    /// assert!(!p.is_alive());
    /// assert_eq!(p.exitcode(), Some(-15)); // killed by SIGTERM
    /// ```
    pub fn is_alive(&mut self) -> bool {
        !self.poll(Some(Instant::now()))
    }

    /// `None` while running; then 0 for a value, 1 for a panic, `n` for `exit(n)`, `-s` for death
    /// by signal `s`.
    ///
    /// ```
    /// let mut p = multiproc_spawn::spawn(|code: i32| -> () { std::process::exit(code) }, 3).unwrap();
    /// assert!(p.wait_timeout(std::time::Duration::from_secs(30)));
    /// assert_eq!(p.exitcode(), Some(3));
    /// ```
    pub fn exitcode(&mut self) -> Option<i32> {
        if self.poll(Some(Instant::now())) {
            self.child.lock().exit
        } else {
            None
        }
    }

    /// Waits up to `timeout` for the child to end; `true` once it has.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut p = multiproc_spawn::spawn(|x: u32| x, 7)?;
    /// assert!(p.wait_timeout(Duration::from_secs(30)));
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        // `None` (no limit) for a timeout past the end of the clock (`Duration::MAX`).
        self.poll(multiproc_sync::raw::deadline_after(timeout))
    }

    /// Sends `SIGTERM` (Python's `terminate`). A child that has already ended is not an error.
    pub fn terminate(&self) -> Result<()> {
        self.signal(sys::SIGTERM)
    }

    /// Sends `SIGKILL` (Python's `kill`). A child that has already ended is not an error.
    ///
    /// ```
    /// use std::time::Duration;
    /// fn forever(_: ()) {
    ///     loop {
    ///         std::thread::sleep(Duration::from_secs(1));
    ///     }
    /// }
    /// let mut p = multiproc_spawn::spawn(forever, ())?;
    /// p.kill()?;
    /// assert!(p.wait_timeout(Duration::from_secs(30)));
    /// assert_eq!(p.exitcode(), Some(-9));
    /// p.kill()?; // already ended: still fine
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn kill(&self) -> Result<()> {
        self.signal(sys::SIGKILL)
    }

    /// Sends `sig` to the child (Python's `os.kill(p.pid, sig)`); a child that has already
    /// ended is not an error. Through its pidfd, so it never reaches a stranger that reused the
    /// pid.
    ///
    /// ```
    /// use multiproc_spawn::signal::Signal;
    /// fn nap(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    /// }
    /// let mut p = multiproc_spawn::spawn(nap, 60_000)?;
    /// p.send_signal(Signal::SIGTERM)?;
    /// p.wait_timeout(std::time::Duration::from_secs(30));
    /// assert_eq!(p.exitcode(), Some(-15));
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn send_signal(&self, sig: crate::signal::Signal) -> Result<()> {
        self.signal(sig.number())
    }

    fn signal(&self, signal: i32) -> Result<()> {
        self.child.signal(signal).map_err(Error::Io)
    }

    fn poll(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.child.lock();
        // An error from poll or waitid means the child cannot be watched any more: count it as
        // ended rather than hang; join reports what is known.
        self.child.wait(&mut st, deadline).unwrap_or(true)
    }
}

impl<R: DeserializeOwned> Process<R> {
    /// Waits for the child to end and returns its target's value, or
    /// `Err(ProcessFailed { exitcode, message })`: 1 and the panic text after a panic, `n` after
    /// `exit(n)`, `-s` after death by signal `s`, or the reason it could not start.
    ///
    /// ```
    /// let p = multiproc_spawn::spawn(|_: ()| -> u8 { panic!("boom") }, ()).unwrap();
    /// match p.join() {
    ///     Err(multiproc_sync::Error::ProcessFailed { exitcode, message }) => {
    ///         assert_eq!((exitcode, message.as_str()), (1, "boom"));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn join(self) -> Result<R> {
        let (exit, outcome, note) = {
            let mut st = self.child.lock();
            let finished = self.child.wait(&mut st, None);
            if let Err(e) = finished {
                return Err(Error::Io(e));
            }
            (
                st.exit.unwrap_or(-sys::SIGKILL),
                st.outcome.take(),
                st.note.take(),
            )
        };
        state::registry().unregister(&self.child);
        let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
        match outcome {
            Some(frame) if frame.kind == Kind::ResultOk && exit == 0 => {
                handoff::with_received_fds(frame.fds, || decode_exact(&frame.payload))
                    .map_err(|e| Error::Codec(format!("could not decode the result: {e}")))
            }
            Some(frame) if frame.kind != Kind::ResultOk => Err(Error::ProcessFailed {
                exitcode: exit,
                message: format!("{}{note}", String::from_utf8_lossy(&frame.payload)),
            }),
            _ if exit < 0 => Err(Error::ProcessFailed {
                exitcode: exit,
                message: format!(
                    "killed by signal {} ({}){note}",
                    -exit,
                    sys::signal_name(-exit)
                ),
            }),
            _ => Err(Error::ProcessFailed {
                exitcode: exit,
                message: format!("exited with code {exit} without returning a value{note}"),
            }),
        }
    }
}

impl<R: DeserializeOwned> Process<R> {
    /// [`join`](Self::join) for async code: the same answer, without blocking the executor.
    ///
    /// While the child runs, the task is parked: the process's reaper thread (the one that
    /// watches dropped children) sleeps in `poll` on the child's socket and pidfd and wakes
    /// the task when either has news, so no core spins and any number of awaited children
    /// cost that one thread. Works on any executor.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #         std::thread::yield_now();
    /// #     }
    /// # }
    /// let p = multiproc_spawn::spawn(|x: u64| x * 2, 21)?;
    /// assert_eq!(block_on(p.join_async())?, 42);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub async fn join_async(self) -> Result<R> {
        std::future::poll_fn(|cx| {
            if self.child.poll_finished(state::registry(), cx.waker()) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        self.join()
    }
}

impl<R> Drop for Process<R> {
    fn drop(&mut self) {
        let finished = {
            let mut st = self.child.lock();
            self.child
                .wait(&mut st, Some(Instant::now()))
                .unwrap_or(true)
        };
        if finished {
            state::registry().unregister(&self.child);
        } else {
            state::registry().adopt_orphan(Arc::clone(&self.child));
        }
    }
}

/// Python's `active_children()`: the live children of this process (finished ones are reaped).
///
/// ```
/// assert!(multiproc_spawn::active_children().is_empty());
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    state::registry().active_children()
}

// A Process is used from one thread at a time (`&mut self`), but may move between threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Process<u8>>();
    let _ = Outcome::Failed(String::new());
};
