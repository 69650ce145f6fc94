//! Python's `queue` module for threads of one process: [`Queue`] (FIFO), [`LifoQueue`],
//! [`PriorityQueue`] (smallest first) and [`SimpleQueue`].
//!
//! [`LifoQueue`] and [`PriorityQueue`] share one core: a [`RawLock`] around the container, an
//! atomic length for lock-free `qsize` and spinning, and three futex "signals" (not-empty,
//! not-full, all-tasks-done) that are only touched when a thread actually sleeps. [`Queue`]
//! keeps the signals but takes no lock: its items live in a lock-free crossbeam channel and
//! its unfinished-task count is atomic. A getter or putter that finds nothing to do spins a
//! few µs before it sleeps.
//!
//! ```
//! use multiproc_sync::queue::Queue;
//! let q = Queue::new(0);
//! q.put(1)?;
//! assert_eq!(q.get()?, 1);
//! q.task_done()?;
//! q.join();
//! # Ok::<(), multiproc_sync::Error>(())
//! ```

use std::cell::UnsafeCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::raw::{RawLock, ThreadFutex, deadline_after, spin_until, std_wait, std_wake};
use crate::{Error, Result};

/// How a queue orders its items.
trait Store<T> {
    fn push(&mut self, item: T);
    fn pop(&mut self) -> Option<T>;
    fn len(&self) -> usize;
}

impl<T> Store<T> for Vec<T> {
    fn push(&mut self, item: T) {
        Vec::push(self, item)
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl<T: Ord> Store<T> for BinaryHeap<Reverse<T>> {
    fn push(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item))
    }
    fn pop(&mut self) -> Option<T> {
        BinaryHeap::pop(self).map(|r| r.0)
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
}

/// A futex "event count": sleepers register (under the queue lock), spin a few µs watching
/// `seq`, and only then park on it; notifiers bump `seq` when someone is registered and make
/// the wake system call only when someone is parked.
#[derive(Default)]
struct Signal {
    seq: AtomicU32,
    sleepers: AtomicU32,
    parked: AtomicU32,
}

impl Signal {
    /// Registers a sleeper (under the queue lock) and returns the sequence to sleep on.
    fn prepare(&self) -> u32 {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        self.seq.load(Ordering::SeqCst)
    }

    fn sleep(&self, seq: u32, deadline: Option<Instant>) {
        if !spin_until(|| self.seq.load(Ordering::Relaxed) != seq) {
            // SeqCst pairs with `notify_slow`: either it sees us parked and wakes us, or the
            // kernel sees the new `seq` and does not let us sleep.
            self.parked.fetch_add(1, Ordering::SeqCst);
            std_wait(&self.seq, seq, deadline, false);
            self.parked.fetch_sub(1, Ordering::Relaxed);
        }
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    /// Undoes `prepare` when the re-check found no need to sleep.
    fn cancel(&self) {
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    #[inline]
    fn notify(&self, all: bool) {
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            self.notify_slow(all);
        }
    }

    #[cold]
    fn notify_slow(&self, all: bool) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) != 0 {
            std_wake(&self.seq, if all { i32::MAX as u32 } else { 1 });
        }
    }
}

struct State<S> {
    items: S,
    unfinished: usize,
}

struct Core<T, S> {
    lock: RawLock<ThreadFutex>,
    state: UnsafeCell<State<S>>,
    len: AtomicUsize,
    shutdown: AtomicBool,
    maxsize: usize,
    not_empty: Signal,
    not_full: Signal,
    all_done: Signal,
    _t: std::marker::PhantomData<T>,
}

// SAFETY: `state` is only touched while `lock` is held (see `Held`), so sharing the core hands
// items from thread to thread, which `T: Send` allows.
unsafe impl<T: Send, S: Send> Sync for Core<T, S> {}
// SAFETY: moving the core moves its items (T: Send).
unsafe impl<T: Send, S: Send> Send for Core<T, S> {}

/// The queue lock, held; gives access to the state.
struct Held<'a, T, S>(&'a Core<T, S>);

impl<T, S> Drop for Held<'_, T, S> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: a `Held` exists only while its thread holds the lock.
        unsafe { self.0.lock.unlock() }
    }
}

impl<T, S> Held<'_, T, S> {
    #[inline]
    fn state(&mut self) -> &mut State<S> {
        // SAFETY: the lock is held and `&mut self` makes this the only reference.
        unsafe { &mut *self.0.state.get() }
    }
}

/// When a blocking call gives up.
#[derive(Clone, Copy)]
enum Wait {
    No,
    Until(Option<Instant>),
}

impl Wait {
    fn timeout(t: Duration) -> Wait {
        Wait::Until(deadline_after(t))
    }

    fn expired(self) -> bool {
        match self {
            Wait::No => true,
            Wait::Until(None) => false,
            Wait::Until(Some(d)) => Instant::now() >= d,
        }
    }

    fn deadline(self) -> Option<Instant> {
        match self {
            Wait::No => Some(Instant::now()),
            Wait::Until(d) => d,
        }
    }
}

impl<T, S: Store<T>> Core<T, S> {
    fn new(items: S, maxsize: usize) -> Self {
        Core {
            lock: RawLock::new(),
            state: UnsafeCell::new(State {
                items,
                unfinished: 0,
            }),
            len: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            maxsize,
            not_empty: Signal::default(),
            not_full: Signal::default(),
            all_done: Signal::default(),
            _t: std::marker::PhantomData,
        }
    }

    #[inline]
    fn hold(&self) -> Held<'_, T, S> {
        self.lock.lock();
        Held(self)
    }

    #[inline]
    fn is_full(&self, len: usize) -> bool {
        self.maxsize > 0 && len >= self.maxsize
    }

    #[inline]
    fn put(&self, item: T, wait: Wait) -> Result<()> {
        let mut spun = false;
        loop {
            let mut held = self.hold();
            if self.shutdown.load(Ordering::Relaxed) {
                return Err(Error::ShutDown);
            }
            let st = held.state();
            let n = st.items.len();
            if !self.is_full(n) {
                st.items.push(item);
                st.unfinished += 1;
                self.len.store(n + 1, Ordering::Relaxed);
                drop(held);
                self.not_empty.notify(false);
                return Ok(());
            }
            if wait.expired() {
                return Err(Error::Full);
            }
            if !spun {
                drop(held);
                spun = true;
                spin_until(|| {
                    !self.is_full(self.len.load(Ordering::Relaxed))
                        || self.shutdown.load(Ordering::Relaxed)
                });
                continue;
            }
            let seq = self.not_full.prepare();
            drop(held);
            self.not_full.sleep(seq, wait.deadline());
        }
    }

    #[inline]
    fn get(&self, wait: Wait) -> Result<T> {
        let mut spun = false;
        loop {
            let mut held = self.hold();
            let st = held.state();
            if let Some(item) = st.items.pop() {
                self.len.store(st.items.len(), Ordering::Relaxed);
                drop(held);
                if self.maxsize > 0 {
                    self.not_full.notify(false);
                }
                return Ok(item);
            }
            if self.shutdown.load(Ordering::Relaxed) {
                return Err(Error::ShutDown);
            }
            if wait.expired() {
                return Err(Error::Empty);
            }
            if !spun {
                drop(held);
                spun = true;
                spin_until(|| {
                    self.len.load(Ordering::Relaxed) > 0 || self.shutdown.load(Ordering::Relaxed)
                });
                continue;
            }
            let seq = self.not_empty.prepare();
            drop(held);
            self.not_empty.sleep(seq, wait.deadline());
        }
    }

    fn task_done(&self) -> Result<()> {
        let mut held = self.hold();
        let st = held.state();
        if st.unfinished == 0 {
            return Err(Error::Invalid("task_done() called too many times".into()));
        }
        st.unfinished -= 1;
        let done = st.unfinished == 0;
        drop(held);
        if done {
            self.all_done.notify(true);
        }
        Ok(())
    }

    fn join(&self) {
        loop {
            let mut held = self.hold();
            if held.state().unfinished == 0 {
                return;
            }
            let seq = self.all_done.prepare();
            drop(held);
            self.all_done.sleep(seq, None);
        }
    }

    /// Returns how many items an immediate shutdown dropped.
    fn shutdown(&self, immediate: bool) -> usize {
        let mut held = self.hold();
        self.shutdown.store(true, Ordering::Relaxed);
        let mut dropped = 0;
        if immediate {
            let st = held.state();
            while st.items.pop().is_some() {
                st.unfinished = st.unfinished.saturating_sub(1);
                dropped += 1;
            }
            self.len.store(0, Ordering::Relaxed);
        }
        drop(held);
        self.all_done.notify(true);
        self.not_empty.notify(true);
        self.not_full.notify(true);
        dropped
    }
}

impl<T, S> Core<T, S> {
    fn qsize(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

/// The FIFO core of [`Queue`]: a lock-free crossbeam channel (both ends held by the queue, used
/// only through `try_send`/`try_recv`) for the items, an atomic unfinished-task count and the
/// same futex [`Signal`]s as the locked core, so a wake-up system call happens only when a
/// thread actually sleeps. Bounds up to [`FIFO_ARRAY_MAX`] use crossbeam's preallocated ring;
/// larger ones an unbounded list plus a slot counter, so a huge `maxsize` allocates nothing.
struct FifoCore<T> {
    tx: crossbeam_channel::Sender<T>,
    rx: crossbeam_channel::Receiver<T>,
    /// Free slots when the bound is enforced by counting (a large `maxsize`), else `None`.
    slots: Option<Padded<AtomicUsize>>,
    unfinished: Padded<AtomicUsize>,
    shutdown: AtomicBool,
    maxsize: usize,
    not_empty: Padded<Signal>,
    not_full: Padded<Signal>,
    all_done: Padded<Signal>,
}

/// Keeps a field that one side writes often off the cache lines the other side reads.
#[derive(Default)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The largest `maxsize` given a preallocated ring.
const FIFO_ARRAY_MAX: usize = 1 << 16;

impl<T> FifoCore<T> {
    fn new(maxsize: usize) -> Self {
        let (tx, rx) = if maxsize > 0 && maxsize <= FIFO_ARRAY_MAX {
            crossbeam_channel::bounded(maxsize)
        } else {
            crossbeam_channel::unbounded()
        };
        FifoCore {
            tx,
            rx,
            slots: (maxsize > FIFO_ARRAY_MAX).then(|| Padded(AtomicUsize::new(maxsize))),
            unfinished: Padded(AtomicUsize::new(0)),
            shutdown: AtomicBool::new(false),
            maxsize,
            not_empty: Padded::default(),
            not_full: Padded::default(),
            all_done: Padded::default(),
        }
    }

    #[inline]
    fn is_full(&self, len: usize) -> bool {
        self.maxsize > 0 && len >= self.maxsize
    }

    fn qsize(&self) -> usize {
        self.rx.len()
    }

    /// Takes one counted slot (large bounds only); false when there is none.
    #[inline]
    fn take_slot(&self) -> bool {
        match &self.slots {
            None => true,
            Some(s) => s
                .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    #[inline]
    fn give_slot(&self) {
        if let Some(s) = &self.slots {
            s.fetch_add(1, Ordering::Release);
        }
    }

    /// One attempt to add `item`; gives it back when the queue is full.
    #[inline]
    fn try_put(&self, item: T) -> std::result::Result<(), T> {
        if !self.take_slot() {
            return Err(item);
        }
        // Count the task before the item is visible, so a getter's `task_done` never
        // finds the count short.
        self.unfinished.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(item) {
            Ok(()) => {
                // No fence needed: crossbeam claims the slot with a SeqCst CAS on the tail and
                // `is_empty`/`len` read head and tail with SeqCst loads, and `notify` reads
                // `sleepers` with a SeqCst load. So either a getter's SeqCst registration
                // (`prepare`) comes first and is seen here, or its re-check sees the item.
                // That leans on crossbeam's internal orderings; on x86-64 the CAS is a locked
                // instruction, a full barrier whatever ordering it asks for, so only other
                // architectures pay for an explicit fence.
                #[cfg(not(target_arch = "x86_64"))]
                std::sync::atomic::fence(Ordering::SeqCst);
                self.not_empty.notify(false);
                Ok(())
            }
            Err(e) => {
                self.give_slot();
                self.task_finished();
                Err(e.into_inner())
            }
        }
    }

    /// One attempt to take an item.
    #[inline]
    fn try_get(&self) -> Option<T> {
        let item = self.rx.try_recv().ok()?;
        self.give_slot();
        if self.maxsize > 0 {
            // No fence, as in `try_put`: the head moved with a SeqCst CAS, and a putter's
            // re-check reads it with SeqCst loads after its SeqCst registration (and, off x86-64,
            // an explicit fence so as not to depend on crossbeam's internals).
            #[cfg(not(target_arch = "x86_64"))]
            std::sync::atomic::fence(Ordering::SeqCst);
            self.not_full.notify(false);
        }
        Some(item)
    }

    /// Lowers the unfinished count (known to be positive) and wakes joiners at zero.
    fn task_finished(&self) {
        if self.unfinished.fetch_sub(1, Ordering::AcqRel) == 1 {
            std::sync::atomic::fence(Ordering::SeqCst);
            self.all_done.notify(true);
        }
    }

    #[inline]
    fn put(&self, mut item: T, wait: Wait) -> Result<()> {
        let mut spun = false;
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return Err(Error::ShutDown);
            }
            match self.try_put(item) {
                Ok(()) => return Ok(()),
                Err(back) => item = back,
            }
            if wait.expired() {
                return Err(Error::Full);
            }
            if !spun {
                spun = true;
                spin_until(|| {
                    !self.is_full(self.rx.len()) || self.shutdown.load(Ordering::Relaxed)
                });
                continue;
            }
            let seq = self.not_full.prepare();
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.shutdown.load(Ordering::Acquire) || !self.is_full(self.rx.len()) {
                self.not_full.cancel();
                continue;
            }
            self.not_full.sleep(seq, wait.deadline());
        }
    }

    #[inline]
    fn get(&self, wait: Wait) -> Result<T> {
        let mut spun = false;
        loop {
            if let Some(item) = self.try_get() {
                return Ok(item);
            }
            if self.shutdown.load(Ordering::Acquire) {
                // A put that raced the shutdown may have landed after our attempt.
                return self.try_get().ok_or(Error::ShutDown);
            }
            if wait.expired() {
                return Err(Error::Empty);
            }
            if !spun {
                spun = true;
                spin_until(|| !self.rx.is_empty() || self.shutdown.load(Ordering::Relaxed));
                continue;
            }
            let seq = self.not_empty.prepare();
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.shutdown.load(Ordering::Acquire) || !self.rx.is_empty() {
                self.not_empty.cancel();
                continue;
            }
            self.not_empty.sleep(seq, wait.deadline());
        }
    }

    fn task_done(&self) -> Result<()> {
        self.unfinished
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1))
            .map_err(|_| Error::Invalid("task_done() called too many times".into()))
            .map(|prev| {
                if prev == 1 {
                    std::sync::atomic::fence(Ordering::SeqCst);
                    self.all_done.notify(true);
                }
            })
    }

    fn join(&self) {
        loop {
            if self.unfinished.load(Ordering::Acquire) == 0 {
                return;
            }
            let seq = self.all_done.prepare();
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.unfinished.load(Ordering::Acquire) == 0 {
                self.all_done.cancel();
                return;
            }
            self.all_done.sleep(seq, None);
        }
    }

    /// Returns how many items an immediate shutdown dropped.
    fn shutdown(&self, immediate: bool) -> usize {
        self.shutdown.store(true, Ordering::SeqCst);
        let mut dropped = 0;
        if immediate {
            while self.rx.try_recv().is_ok() {
                dropped += 1;
                self.give_slot();
                // Saturating, as in CPython: an item whose task_done already came counts 0.
                let _ = self
                    .unfinished
                    .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
            }
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.unfinished.load(Ordering::Acquire) == 0 {
            self.all_done.notify(true);
        }
        self.not_empty.notify(true);
        self.not_full.notify(true);
        dropped
    }
}

macro_rules! queue_type {
    ($(#[$doc:meta])* $name:ident, $core:ty, $new_core:expr, [$($bound:tt)*], $order:literal) => {
        $(#[$doc])*
        pub struct $name<T> {
            core: $core,
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("qsize", &self.core.qsize())
                    .field("maxsize", &self.core.maxsize)
                    .finish()
            }
        }

        impl<T: $($bound)*> $name<T> {
            /// A queue holding at most `maxsize` items (0: no limit).
            ///
            /// ```
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::<u8>::new(2);")]
            /// assert!(q.empty());
            /// ```
            pub fn new(maxsize: usize) -> Self {
                $name { core: ($new_core)(maxsize) }
            }

            /// Adds `item`, waiting while the queue is full. `Err(ShutDown)` after `shutdown`.
            ///
            /// ```
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::new(0);")]
            /// q.put(1)?;
            /// # Ok::<(), multiproc_sync::Error>(())
            /// ```
            #[inline]
            pub fn put(&self, item: T) -> Result<()> {
                self.core.put(item, Wait::Until(None))
            }

            /// Adds `item`, waiting at most `timeout` for room; `Err(Full)` if none came.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::new(1);")]
            /// q.put(1)?;
            /// assert!(matches!(q.put_timeout(2, Duration::from_millis(1)), Err(multiproc_sync::Error::Full)));
            /// # Ok::<(), multiproc_sync::Error>(())
            /// ```
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
                self.core.put(item, Wait::timeout(timeout))
            }

            /// Adds `item` if there is room now; `Err(Full)` otherwise.
            ///
            /// ```
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::new(1);")]
            /// q.put_nowait(1)?;
            /// assert!(q.put_nowait(2).is_err());
            /// # Ok::<(), multiproc_sync::Error>(())
            /// ```
            pub fn put_nowait(&self, item: T) -> Result<()> {
                self.core.put(item, Wait::No)
            }

            #[doc = concat!("Removes and returns the ", $order, " item, waiting for one. `Err(ShutDown)` once shut down and drained.")]
            ///
            /// ```
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::new(0);")]
            /// q.put(3)?;
            /// assert_eq!(q.get()?, 3);
            /// # Ok::<(), multiproc_sync::Error>(())
            /// ```
            #[inline]
            pub fn get(&self) -> Result<T> {
                self.core.get(Wait::Until(None))
            }

            /// Like [`get`](Self::get), waiting at most `timeout`; `Err(Empty)` if nothing came.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::<u8>::new(0);")]
            /// assert!(matches!(q.get_timeout(Duration::from_millis(1)), Err(multiproc_sync::Error::Empty)));
            /// ```
            pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
                self.core.get(Wait::timeout(timeout))
            }

            /// Like [`get`](Self::get) without waiting; `Err(Empty)` if the queue is empty.
            ///
            /// ```
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::<u8>::new(0);")]
            /// assert!(q.get_nowait().is_err());
            /// ```
            pub fn get_nowait(&self) -> Result<T> {
                self.core.get(Wait::No)
            }

            /// The number of items now (a snapshot).
            ///
            /// ```
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::new(0);")]
            /// q.put(1)?;
            /// assert_eq!(q.qsize(), 1);
            /// # Ok::<(), multiproc_sync::Error>(())
            /// ```
            pub fn qsize(&self) -> usize {
                self.core.qsize()
            }

            /// Whether it holds no item now.
            ///
            /// ```
            #[doc = concat!("assert!(multiproc_sync::queue::", stringify!($name), "::<u8>::new(0).empty());")]
            /// ```
            pub fn empty(&self) -> bool {
                self.core.qsize() == 0
            }

            /// Whether it holds `maxsize` items now (never, without a limit).
            ///
            /// ```
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::new(1);")]
            /// q.put(1)?;
            /// assert!(q.full());
            /// # Ok::<(), multiproc_sync::Error>(())
            /// ```
            pub fn full(&self) -> bool {
                self.core.is_full(self.core.qsize())
            }

            /// The item limit given to `new` (0: none).
            ///
            /// ```
            #[doc = concat!("assert_eq!(multiproc_sync::queue::", stringify!($name), "::<u8>::new(4).maxsize(), 4);")]
            /// ```
            pub fn maxsize(&self) -> usize {
                self.core.maxsize
            }

            /// Marks one item taken by `get` as processed; `Err(Invalid)` if called more times
            /// than items were put (Python's `ValueError`).
            ///
            /// ```
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::new(0);")]
            /// q.put(1)?;
            /// q.get()?;
            /// q.task_done()?;
            /// assert!(q.task_done().is_err());
            /// # Ok::<(), multiproc_sync::Error>(())
            /// ```
            pub fn task_done(&self) -> Result<()> {
                self.core.task_done()
            }

            /// Waits until every item put has been marked with `task_done` (or an immediate
            /// shutdown dropped it).
            ///
            /// ```
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::<u8>::new(0);")]
            /// q.join(); // nothing put: returns at once
            /// ```
            pub fn join(&self) {
                self.core.join()
            }

            /// Shuts the queue down: later `put`s get `Err(ShutDown)`, and `get`s too once the
            /// queue is empty; `immediate` empties it at once (counting the dropped items as
            /// done). Blocked callers wake up with `Err(ShutDown)`.
            ///
            /// ```
            /// use multiproc_sync::Error;
            #[doc = concat!("let q = multiproc_sync::queue::", stringify!($name), "::new(0);")]
            /// q.put(1)?;
            /// q.shutdown(false);
            /// assert!(matches!(q.put(2), Err(Error::ShutDown)));
            /// assert_eq!(q.get()?, 1);
            /// assert!(matches!(q.get(), Err(Error::ShutDown)));
            /// # Ok::<(), Error>(())
            /// ```
            pub fn shutdown(&self, immediate: bool) {
                let dropped = self.core.shutdown(immediate);
                tracing::debug!(
                    queue = stringify!($name),
                    immediate,
                    dropped,
                    left = self.qsize(),
                    "queue shut down: puts now fail, gets fail once it is empty"
                );
            }

            /// Whether `shutdown` was called.
            ///
            /// ```
            #[doc = concat!("assert!(!multiproc_sync::queue::", stringify!($name), "::<u8>::new(0).is_shutdown());")]
            /// ```
            pub fn is_shutdown(&self) -> bool {
                self.core.shutdown.load(Ordering::Relaxed)
            }
        }
    };
}

queue_type!(
    /// Python's `queue.Queue`: first in, first out, optionally bounded, with task tracking.
    ///
    /// ```
    /// use multiproc_sync::queue::Queue;
    /// let q = Queue::new(3);
    /// for i in 0..3 { q.put(i)?; }
    /// assert!(q.full());
    /// assert_eq!((q.get()?, q.get()?, q.get()?), (0, 1, 2));
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    Queue, FifoCore<T>, FifoCore::new, [Sized], "oldest"
);

queue_type!(
    /// Python's `queue.LifoQueue`: last in, first out (a stack).
    ///
    /// ```
    /// use multiproc_sync::queue::LifoQueue;
    /// let q = LifoQueue::new(0);
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert_eq!(q.get()?, 2);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    LifoQueue, Core<T, Vec<T>>, |m| Core::new(Vec::new(), m), [Sized], "newest"
);

queue_type!(
    /// Python's `queue.PriorityQueue`: the smallest item comes out first.
    ///
    /// ```
    /// use multiproc_sync::queue::PriorityQueue;
    /// let q = PriorityQueue::new(0);
    /// for x in [3, 1, 2] { q.put(x)?; }
    /// assert_eq!((q.get()?, q.get()?, q.get()?), (1, 2, 3));
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    PriorityQueue, Core<T, BinaryHeap<Reverse<T>>>, |m| Core::new(BinaryHeap::new(), m), [Ord], "smallest"
);

/// Python's `queue.SimpleQueue`: an unbounded FIFO without task tracking (a crossbeam
/// channel whose both ends the queue holds).
///
/// ```
/// use multiproc_sync::queue::SimpleQueue;
/// let q = SimpleQueue::new();
/// q.put("a")?;
/// assert_eq!(q.get()?, "a");
/// assert!(q.empty());
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub struct SimpleQueue<T> {
    tx: crossbeam_channel::Sender<T>,
    rx: crossbeam_channel::Receiver<T>,
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("qsize", &self.rx.len())
            .finish()
    }
}

impl<T> Default for SimpleQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SimpleQueue<T> {
    /// An empty queue.
    ///
    /// ```
    /// assert!(multiproc_sync::queue::SimpleQueue::<u8>::new().empty());
    /// ```
    pub fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        SimpleQueue { tx, rx }
    }

    /// Adds `item` (never waits).
    ///
    /// ```
    /// multiproc_sync::queue::SimpleQueue::new().put(1)?;
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<()> {
        // The queue holds the receiver, so the channel cannot be disconnected.
        self.tx.send(item).map_err(|_| Error::Closed)
    }

    /// Same as [`put`](Self::put) (Python's `put_nowait`).
    ///
    /// ```
    /// multiproc_sync::queue::SimpleQueue::new().put_nowait(1)?;
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<()> {
        self.put(item)
    }

    /// Removes and returns the oldest item, waiting for one.
    ///
    /// ```
    /// let q = multiproc_sync::queue::SimpleQueue::new();
    /// q.put(1)?;
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn get(&self) -> Result<T> {
        self.rx.recv().map_err(|_| Error::Closed)
    }

    /// Like [`get`](Self::get), waiting at most `timeout`; `Err(Empty)` if nothing came.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = multiproc_sync::queue::SimpleQueue::<u8>::new();
    /// assert!(q.get_timeout(Duration::from_millis(1)).is_err());
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.rx.recv_timeout(timeout).map_err(|_| Error::Empty)
    }

    /// Like [`get`](Self::get) without waiting; `Err(Empty)` if empty.
    ///
    /// ```
    /// assert!(multiproc_sync::queue::SimpleQueue::<u8>::new().get_nowait().is_err());
    /// ```
    pub fn get_nowait(&self) -> Result<T> {
        self.rx.try_recv().map_err(|_| Error::Empty)
    }

    /// The number of items now.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::queue::SimpleQueue::<u8>::new().qsize(), 0);
    /// ```
    pub fn qsize(&self) -> usize {
        self.rx.len()
    }

    /// Whether it holds no item now.
    ///
    /// ```
    /// assert!(multiproc_sync::queue::SimpleQueue::<u8>::new().empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.rx.is_empty()
    }
}
