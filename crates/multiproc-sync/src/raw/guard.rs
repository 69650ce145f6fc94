//! The Python-style lock behaviour, written once for threads and processes: how `Lock`,
//! `RLock` and `Condition` take their lock word, what their guards hold, how a condition waits
//! and takes its lock back. Generic over the lock word ([`LockWord`]), as `lock_api`'s one
//! `Mutex<R, T>` is generic over its `RawMutex`.
//!
//! Two words exist: the thread toolbox's plain [`RawLock<ThreadFutex>`] (its owner cannot die
//! while another thread of the process runs, so `owner_died` is always `false`), and
//! multiproc-ipc's robust process-shared word, which takes a dead owner's lock over and says
//! so. The public types (`multiproc_sync::Lock`, `multiproc_ipc::Lock` …) are thin: they say
//! where the words live (inline for threads, in a shared segment for processes) and delegate
//! every operation to the guards here.
//!
//! ```
//! use multiproc_sync::raw::{LevelGuard, RawLock, RawRLock, ThreadFutex, WordGuard};
//! let lock = RawLock::<ThreadFutex>::new();
//! let g = WordGuard::acquire(&lock);
//! assert!(lock.is_locked() && !g.previous_owner_died());
//! assert!(WordGuard::try_acquire(&lock).is_none());
//! drop(g);
//! let r = RawRLock::<ThreadFutex>::new();
//! type Level<'a> = LevelGuard<'a, RawLock<ThreadFutex>>;
//! let (a, b) = (Level::acquire(&r), Level::acquire(&r));
//! assert_eq!(r.depth(), 2);
//! drop((a, b));
//! assert!(!r.is_locked());
//! ```

use std::marker::PhantomData;
use std::time::Instant;

use super::{Futex, RawCondition, RawLock, RawRLock, ThreadFutex};

/// Keeps a guard on the thread that took the lock (the lock word names that thread).
type NotSend = PhantomData<*const ()>;

/// How a Python-style lock takes its word: `Some(owner_died)` on success, where `owner_died`
/// says the previous owner died holding it and the lock was taken over.
///
/// # Safety
///
/// `raw` must return the word that `try_take`/`take_until` lock, and a successful take must
/// leave the calling thread owning it (the guards unlock it through `raw`); `from_raw` must
/// return a view of the same word.
pub unsafe trait LockWord: Sync + 'static {
    /// How the word sleeps.
    type Futex: Futex;

    /// The plain lock word.
    fn raw(&self) -> &RawLock<Self::Futex>;

    /// This view of a plain word (one embedded in a re-entrant lock).
    fn from_raw(raw: &RawLock<Self::Futex>) -> &Self;

    /// Takes the word if it is free (or its owner is dead); never waits.
    fn try_take(&self) -> Option<bool>;

    /// Takes the word, waiting until `deadline` at most (`None`: no limit).
    fn take_until(&self, deadline: Option<Instant>) -> Option<bool>;

    /// Takes the word, however long it takes.
    #[inline]
    fn take(&self) -> bool {
        loop {
            if let Some(died) = self.take_until(None) {
                return died;
            }
        }
    }
}

// SAFETY: the word is itself; a take locks it.
unsafe impl LockWord for RawLock<ThreadFutex> {
    type Futex = ThreadFutex;

    #[inline(always)]
    fn raw(&self) -> &RawLock<ThreadFutex> {
        self
    }

    #[inline(always)]
    fn from_raw(raw: &RawLock<ThreadFutex>) -> &Self {
        raw
    }

    #[inline]
    fn try_take(&self) -> Option<bool> {
        self.try_lock().then_some(false)
    }

    #[inline]
    fn take_until(&self, deadline: Option<Instant>) -> Option<bool> {
        self.lock_until(deadline).then_some(false)
    }

    #[inline]
    fn take(&self) -> bool {
        self.lock();
        false
    }
}

/// Holds a lock word (a `Lock`'s guard); dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct WordGuard<'a, W: LockWord> {
    word: &'a W,
    died: bool,
    _not_send: NotSend,
}

impl<'a, W: LockWord> WordGuard<'a, W> {
    #[inline(always)]
    fn new(word: &'a W, died: bool) -> Self {
        WordGuard {
            word,
            died,
            _not_send: PhantomData,
        }
    }

    /// Waits for the lock and takes it.
    #[inline]
    pub fn acquire(word: &'a W) -> Self {
        Self::new(word, word.take())
    }

    /// Takes the lock if it is free (or its owner is dead).
    #[inline]
    pub fn try_acquire(word: &'a W) -> Option<Self> {
        word.try_take().map(|died| Self::new(word, died))
    }

    /// Takes the lock, waiting until `deadline` at most.
    #[inline]
    pub fn acquire_until(word: &'a W, deadline: Option<Instant>) -> Option<Self> {
        word.take_until(deadline).map(|died| Self::new(word, died))
    }

    /// A guard for a lock the calling thread has just taken some other way (an async take).
    ///
    /// # Safety
    ///
    /// The calling thread holds `word`, and nothing else will release it.
    #[inline]
    pub unsafe fn from_taken(word: &'a W, died: bool) -> Self {
        Self::new(word, died)
    }

    /// Whether the previous owner died holding the lock, which was then taken over.
    #[inline]
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }
}

impl<W: LockWord> Drop for WordGuard<'_, W> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard exists only while its thread holds the word (`LockWord`'s contract).
        unsafe { self.word.raw().unlock() }
    }
}

/// Holds one level of a re-entrant lock (an `RLock`'s guard); dropping it releases that level.
#[must_use = "the level is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LevelGuard<'a, W: LockWord> {
    lock: &'a RawRLock<W::Futex>,
    died: bool,
    _not_send: NotSend,
}

impl<'a, W: LockWord> LevelGuard<'a, W> {
    /// Takes one level: re-enters if the calling thread owns it, otherwise takes the word
    /// with `how` (through the [`LockWord`] view, so a dead owner's word is taken over).
    #[inline]
    fn take(lock: &'a RawRLock<W::Futex>, how: impl FnOnce(&W) -> Option<bool>) -> Option<Self> {
        let mut died = false;
        let took = lock.lock_with(|l| match how(W::from_raw(l)) {
            Some(d) => {
                died = d;
                true
            }
            None => false,
        });
        // `then`, not `then_some`: a guard built eagerly would release a level on drop.
        took.then(|| LevelGuard {
            lock,
            died,
            _not_send: PhantomData,
        })
    }

    /// Takes one level, waiting while another thread holds it.
    ///
    /// # Panics
    ///
    /// If one thread nests it more than `u32::MAX` times (a fatal bug in the caller).
    #[inline]
    pub fn acquire(lock: &'a RawRLock<W::Futex>) -> Self {
        loop {
            if let Some(g) = Self::acquire_until(lock, None) {
                return g;
            }
            assert!(
                !lock.is_owned_by_current_thread(),
                "RLock acquired more than u32::MAX times by one thread"
            );
        }
    }

    /// Takes one level if it is free, already ours, or its owner is dead.
    #[inline]
    pub fn try_acquire(lock: &'a RawRLock<W::Futex>) -> Option<Self> {
        Self::take(lock, W::try_take)
    }

    /// Takes one level, waiting until `deadline` at most.
    #[inline]
    pub fn acquire_until(lock: &'a RawRLock<W::Futex>, deadline: Option<Instant>) -> Option<Self> {
        Self::take(lock, |w| w.take_until(deadline))
    }

    /// How many levels the calling thread holds of `lock` (0 if it does not own it).
    #[inline]
    pub fn depth(lock: &RawRLock<W::Futex>) -> u32 {
        if lock.is_owned_by_current_thread() {
            lock.depth()
        } else {
            0
        }
    }

    /// Whether the previous owner died holding the lock, which was then taken over.
    #[inline]
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }
}

impl<W: LockWord> Drop for LevelGuard<'_, W> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds one level, on the owning thread.
        unsafe { self.lock.unlock() }
    }
}

/// Holds a condition's lock (a `Condition`'s guard): wait, notify; dropping it releases the
/// lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct CondGuard<'a, W: LockWord> {
    lock: WordGuard<'a, W>,
    cond: &'a RawCondition<W::Futex>,
}

impl<'a, W: LockWord> CondGuard<'a, W> {
    /// Waits for the condition's lock and takes it.
    #[inline]
    pub fn acquire(lock: &'a W, cond: &'a RawCondition<W::Futex>) -> Self {
        CondGuard {
            lock: WordGuard::acquire(lock),
            cond,
        }
    }

    /// Takes the condition's lock if it is free (or its owner is dead).
    #[inline]
    pub fn try_acquire(lock: &'a W, cond: &'a RawCondition<W::Futex>) -> Option<Self> {
        WordGuard::try_acquire(lock).map(|lock| CondGuard { lock, cond })
    }

    /// Takes the condition's lock, waiting until `deadline` at most.
    #[inline]
    pub fn acquire_until(
        lock: &'a W,
        cond: &'a RawCondition<W::Futex>,
        deadline: Option<Instant>,
    ) -> Option<Self> {
        WordGuard::acquire_until(lock, deadline).map(|lock| CondGuard { lock, cond })
    }

    /// Releases the lock, waits for a notify or `deadline`, takes the lock back (over from a
    /// dead owner, if need be: [`previous_owner_died`](Self::previous_owner_died) then says
    /// so). Returns whether it was notified.
    pub fn wait_until(&mut self, deadline: Option<Instant>) -> bool {
        let word = self.lock.word;
        let mut died = false;
        // SAFETY: this guard holds the condition's lock, the only lock used with it, and the
        // relock closure returns only holding it again.
        let notified = unsafe {
            self.cond
                .wait_until_with(word.raw(), deadline, || died |= word.take())
        };
        self.lock.died |= died;
        notified
    }

    /// Waits until `pred()` holds (checked first, then after each wake-up) or `deadline`
    /// passes; returns the last value of `pred()`.
    pub fn wait_for_until(
        &mut self,
        mut pred: impl FnMut() -> bool,
        deadline: Option<Instant>,
    ) -> bool {
        loop {
            if pred() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            self.wait_until(deadline);
        }
    }

    /// Wakes up to `n` waiters.
    #[inline]
    pub fn notify(&self, n: usize) {
        // SAFETY: this guard holds the condition's lock.
        unsafe { self.cond.notify(n.min(u32::MAX as usize) as u32) };
    }

    /// Wakes every waiter.
    #[inline]
    pub fn notify_all(&self) {
        // SAFETY: this guard holds the condition's lock.
        unsafe { self.cond.notify_all() };
    }

    /// How many threads wait on the condition.
    #[inline]
    pub fn waiters(&self) -> usize {
        self.cond.waiters() as usize
    }

    /// Whether a previous owner of the lock died holding it (at the take or after a wait).
    #[inline]
    pub fn previous_owner_died(&self) -> bool {
        self.lock.died
    }
}
