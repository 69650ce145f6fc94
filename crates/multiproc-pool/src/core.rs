//! The completion cell behind every [`Future`](crate::Future) and
//! [`AsyncResult`](crate::AsyncResult): a state word, the result slot and (only when someone
//! asks for them) callbacks, an async waker and `wait`/`as_completed` listeners. A process task's
//! cell is an allocation of its own; a thread-pool task embeds it beside its closure, so a submit
//! allocates once (see [`AsCore`]).
//!
//! # State word
//!
//! | bits | meaning |
//! | --- | --- |
//! | 0..3 | `PENDING` → `RUNNING` → `DONE_OK` / `DONE_ERR`, or `PENDING` → `CANCELLED` |
//! | 3 (`WAITERS`) | a thread may sleep on the word: the completer must wake it |
//! | 4 (`TAKEN`) | the owner took the result out |
//!
//! Only the party that moved the cell from `PENDING` to `RUNNING` ([`Core::claim`]) may write the
//! result, once, before it publishes `DONE_*` with a release store; the owner reads it after an
//! acquire load has seen `DONE_*`. Waiting spins briefly, then sleeps on the state word (a
//! private futex, through this crate's `sys` module: the words are plain `std` atomics, also
//! under `--cfg multiproc_loom`, where `multiproc_sync::raw::ThreadFutex` takes loom ones).

use multiproc_sync::{Error, Result};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Instant;

pub(crate) const PENDING: u32 = 0;
pub(crate) const RUNNING: u32 = 1;
pub(crate) const DONE_OK: u32 = 2;
pub(crate) const DONE_ERR: u32 = 3;
pub(crate) const CANCELLED: u32 = 4;
const STATE: u32 = 0b111;
const WAITERS: u32 = 0b1000;
const TAKEN: u32 = 0b1_0000;

/// A completion callback (it runs once, in the completing thread or at once when registered on
/// a cell already done).
pub(crate) type Callback = Box<dyn FnOnce() + Send>;

/// Whatever holds a [`Core`]: the bare cell (process tasks) or a thread-pool task that carries
/// its closure and its cell in one allocation. A [`Future`](crate::Future) keeps an
/// `Arc<dyn AsCore<R>>`, so it does not care which.
pub(crate) trait AsCore<R>: Send + Sync {
    /// The completion cell inside.
    fn core(&self) -> &Core<R>;
}

impl<R: Send> AsCore<R> for Core<R> {
    #[inline]
    fn core(&self) -> &Core<R> {
        self
    }
}

/// The shared completion state of one task.
pub(crate) struct Core<R> {
    state: AtomicU32,
    /// Set (SeqCst) once anything was put in `extras`; the completer looks only then.
    has_extras: AtomicBool,
    /// The error boxed: the slot stays as small as `R` (the `Error` enum is 64 bytes), which
    /// keeps a thread-pool task small: its memory is touched once per submit.
    result: UnsafeCell<Option<std::result::Result<R, Box<Error>>>>,
    /// A `Box` allocated on the first registration only (most futures never take any); null
    /// until then. One word: a thread-pool task with a small closure and result fits 64 bytes.
    extras: AtomicPtr<Mutex<Extras>>,
}

impl<R> Drop for Core<R> {
    fn drop(&mut self) {
        let p = *self.extras.get_mut();
        if !p.is_null() {
            // SAFETY: a non-null `extras` came from `Box::into_raw` in `extras()` and is freed
            // only here, once, when the cell goes (`&mut self`: no reference to it remains).
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

#[derive(Default)]
struct Extras {
    waker: Option<Waker>,
    callbacks: Vec<Callback>,
    listeners: Vec<(Arc<Listener>, usize)>,
}

// SAFETY: the result slot is written by the one claimant before the release store of `DONE_*`
// and taken by the one owner after observing it, so `R` only moves between threads (`R: Send`);
// everything else is atomics and a mutex.
unsafe impl<R: Send> Send for Core<R> {}
// SAFETY: as above; shared references never hand out `&R`.
unsafe impl<R: Send> Sync for Core<R> {}

impl<R> Core<R> {
    /// A pending cell in an `Arc` of its own.
    pub(crate) fn new() -> Arc<Core<R>> {
        Arc::new(Core::pending())
    }

    /// A pending cell, to embed in a larger allocation (a thread-pool task).
    pub(crate) const fn pending() -> Core<R> {
        Core {
            state: AtomicU32::new(PENDING),
            has_extras: AtomicBool::new(false),
            result: UnsafeCell::new(None),
            extras: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The state without flag bits.
    #[inline]
    pub(crate) fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire) & STATE
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.state() >= DONE_OK
    }

    /// `PENDING` → `RUNNING` (Python's `set_running_or_notify_cancel`): `true` if the caller
    /// now owns the right to complete the cell, `false` if it was cancelled (or already taken
    /// by another claimant).
    #[inline]
    pub(crate) fn claim(&self) -> bool {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            if cur & STATE != PENDING {
                return false;
            }
            match self.state.compare_exchange_weak(
                cur,
                (cur & !STATE) | RUNNING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Stores the result and wakes everyone. Only the claimant calls this, once.
    pub(crate) fn complete(&self, value: Result<R>) {
        let done = if value.is_ok() { DONE_OK } else { DONE_ERR };
        // SAFETY: the caller claimed the cell (`RUNNING`), so no one else writes the slot, and
        // the owner reads it only after the release store below.
        unsafe { *self.result.get() = Some(value.map_err(Box::new)) };
        self.finish(done);
    }

    /// Python's `cancel()`: `PENDING` → `CANCELLED`. `true` if the cell is cancelled now.
    pub(crate) fn cancel(&self) -> bool {
        if self.claim() {
            self.finish(CANCELLED);
            true
        } else {
            self.state() == CANCELLED
        }
    }

    /// `RUNNING` → `CANCELLED`: the claimant stopped the task while it ran (`cancel_running`).
    pub(crate) fn cancel_claimed(&self) {
        self.finish(CANCELLED);
    }

    fn finish(&self, done: u32) {
        let old = self.state.swap(done, Ordering::SeqCst);
        if old & WAITERS != 0 {
            futex_wake_all(&self.state);
        }
        if self.has_extras.load(Ordering::SeqCst) {
            let (waker, callbacks, listeners) = {
                let mut ex = self.lock_extras();
                (
                    ex.waker.take(),
                    std::mem::take(&mut ex.callbacks),
                    std::mem::take(&mut ex.listeners),
                )
            };
            for (l, index) in listeners {
                l.notify(index);
            }
            if let Some(w) = waker {
                w.wake();
            }
            for cb in callbacks {
                // A panicking callback must not take the completer (a worker) down.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(cb));
            }
        }
    }

    fn lock_extras(&self) -> std::sync::MutexGuard<'_, Extras> {
        self.extras().lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The extras, allocated on first use (a racing registrant's spare box is freed).
    fn extras(&self) -> &Mutex<Extras> {
        let mut p = self.extras.load(Ordering::Acquire);
        if p.is_null() {
            let new = Box::into_raw(Box::<Mutex<Extras>>::default());
            match self.extras.compare_exchange(
                ptr::null_mut(),
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => p = new,
                Err(won) => {
                    // SAFETY: `new` came from `Box::into_raw` just above and was never shared.
                    drop(unsafe { Box::from_raw(new) });
                    p = won;
                }
            }
        }
        // SAFETY: `p` is non-null, from `Box::into_raw`, published with release and read with
        // acquire; it is freed only in `drop`, which cannot run while `&self` is alive.
        unsafe { &*p }
    }

    /// Runs `edit` on the extras unless the cell is already done; `false` then.
    fn register(&self, edit: impl FnOnce(&mut Extras)) -> bool {
        let mut ex = self.lock_extras();
        self.has_extras.store(true, Ordering::SeqCst);
        // SeqCst against `finish`'s swap-then-load: either it sees `has_extras` or this sees done.
        if self.state.load(Ordering::SeqCst) & STATE >= DONE_OK {
            return false;
        }
        edit(&mut ex);
        true
    }

    /// Calls `cb` when the cell is done (at once, in this thread, if it already is).
    pub(crate) fn add_callback(&self, cb: Callback) {
        let mut slot = Some(cb);
        if !self.register(|ex| ex.callbacks.push(slot.take().expect("once")))
            && let Some(cb) = slot
        {
            cb();
        }
    }

    /// Pushes `index` into `listener` when the cell is done (at once if it already is).
    pub(crate) fn add_listener(&self, listener: &Arc<Listener>, index: usize) {
        if !self.register(|ex| ex.listeners.push((Arc::clone(listener), index))) {
            listener.notify(index);
        }
    }

    /// Remembers `waker` for an async poll; `false` if the cell is already done.
    pub(crate) fn set_waker(&self, waker: &Waker) -> bool {
        self.register(|ex| match &mut ex.waker {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        })
    }

    /// Waits until the cell is done or `deadline` passes; `true` once done.
    #[inline]
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        self.is_done() || self.wait_slow(deadline)
    }

    #[cold]
    fn wait_slow(&self, deadline: Option<Instant>) -> bool {
        // A task that ends within microseconds costs no sleep and no wake-up system call.
        for i in 0..200u32 {
            if self.is_done() {
                return true;
            }
            if i < 100 {
                for _ in 0..32 {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        loop {
            let cur = self.state.load(Ordering::Acquire);
            if cur & STATE >= DONE_OK {
                return true;
            }
            if cur & WAITERS == 0
                && self
                    .state
                    .compare_exchange(cur, cur | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            if !futex_wait(&self.state, cur | WAITERS, deadline) {
                return self.is_done();
            }
        }
    }

    /// Moves the result out. The caller must be the cell's one owner and have seen it done.
    pub(crate) fn take(&self) -> Result<R> {
        let old = self.state.fetch_or(TAKEN, Ordering::Acquire);
        match old & STATE {
            CANCELLED => return Err(Error::Cancelled),
            DONE_OK | DONE_ERR => {}
            _ => return Err(Error::Invalid("the result is not ready".into())),
        }
        if old & TAKEN != 0 {
            return Err(Error::Invalid("the result was already taken".into()));
        }
        // SAFETY: the state is `DONE_*` (acquire), so the claimant's write is visible and no
        // one writes again; the `TAKEN` bit we just set makes this the only take.
        unsafe { (*self.result.get()).take() }
            .map(|r| r.map_err(|e| *e))
            .unwrap_or_else(|| Err(Error::Invalid("the result was already taken".into())))
    }
}

/// Sleeps while `*word == expected`, until woken (perhaps spuriously) or `deadline` passes;
/// `false` only once the deadline has passed. The timeout is recomputed from the deadline on
/// every call, so spurious wake-ups never stretch a wait.
fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> bool {
    let timeout = match deadline {
        None => None,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            Some(left)
        }
    };
    crate::sys::futex_wait(word, expected, timeout) || deadline.is_none_or(|d| Instant::now() < d)
}

/// Wakes every thread sleeping on `word`.
#[inline]
fn futex_wake_all(word: &AtomicU32) {
    crate::sys::futex_wake_all(word);
}

/// Collects the indices of cells as they complete, for `wait` and `as_completed`.
#[derive(Debug, Default)]
pub(crate) struct Listener {
    seq: AtomicU32,
    done: Mutex<Vec<usize>>,
}

impl Listener {
    fn notify(&self, index: usize) {
        self.done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(index);
        self.seq.fetch_add(1, Ordering::Release);
        futex_wake_all(&self.seq);
    }

    /// Takes the indices completed so far, waiting until there is one or `deadline` passes.
    pub(crate) fn take(&self, deadline: Option<Instant>) -> Vec<usize> {
        loop {
            let seen = self.seq.load(Ordering::Acquire);
            {
                let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
                if !done.is_empty() {
                    return std::mem::take(&mut *done);
                }
            }
            if !futex_wait(&self.seq, seen, deadline) {
                return std::mem::take(&mut *self.done.lock().unwrap_or_else(|e| e.into_inner()));
            }
        }
    }
}

#[cfg(test)]
mod tests;
