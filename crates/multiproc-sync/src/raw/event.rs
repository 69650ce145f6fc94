//! `RawEvent`: Python's `Event` in one word: a flag, a waiters bit and a generation count.

use std::marker::PhantomData;
use std::time::Instant;

use super::{Futex, spin_until};
use crate::loom::{AtomicU32, Ordering};

const SET: u32 = 1;
const WAITING: u32 = 2;
/// Each `set` that finds the flag clear adds one generation (bits 2..32), so a waiter woken by
/// a `set` returns `true` even if a `clear` came before it ran, exactly as Python's `wait`.
const GEN: u32 = 4;

/// A one-word event: `wait` sleeps until `set`.
///
/// Word: bit 0 set, bit 1 someone sleeps, bits 2.. generation.
///
/// ```
/// use multiproc_sync::raw::{RawEvent, ThreadFutex};
/// use std::time::{Duration, Instant};
/// let e = RawEvent::<ThreadFutex>::new();
/// assert!(!e.wait_until(Some(Instant::now() + Duration::from_millis(1))));
/// e.set();
/// assert!(e.is_set() && e.wait_until(None));
/// ```
#[repr(C)]
pub struct RawEvent<F> {
    pub(super) state: AtomicU32,
    _futex: PhantomData<fn() -> F>,
}

impl<F> std::fmt::Debug for RawEvent<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEvent")
            .field("set", &(self.state.load(Ordering::Relaxed) & SET != 0))
            .finish()
    }
}

impl<F: Futex> Default for RawEvent<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Futex> RawEvent<F> {
    /// A clear event.
    pub fn new() -> Self {
        RawEvent {
            state: AtomicU32::new(0),
            _futex: PhantomData,
        }
    }

    /// Whether the flag is set.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Sets the flag and wakes every waiter.
    #[inline]
    pub fn set(&self) {
        // A read-modify-write instead of a plain load: it fetches the word's cache line in
        // exclusive state, so the compare-and-swap below hits locally instead of paying a
        // second cross-core transfer (a waiter in another process holds the line shared).
        let mut s = self.state.fetch_or(0, Ordering::Relaxed);
        loop {
            if s & SET != 0 {
                // Already set: still a release point for what came before (an RMW, so a
                // waiter's acquire load of any later value synchronises with it).
                self.state.fetch_or(0, Ordering::Release);
                return;
            }
            let new = (s & !WAITING).wrapping_add(GEN) | SET;
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if s & WAITING != 0 {
            F::wake_all(&self.state);
        }
    }

    /// Clears the flag.
    #[inline]
    pub fn clear(&self) {
        self.state.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Waits until the flag is set or `deadline` passes; returns whether it was set.
    #[inline]
    pub fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let s = self.state.load(Ordering::Acquire);
        s & SET != 0 || self.wait_slow(s, deadline)
    }

    /// The event word now, as a starting point for [`woken_since`](Self::woken_since) and
    /// [`wait_from`](Self::wait_from): for a wrapper that spins its own way before it sleeps
    /// (a process-shared event spins about as long as a cross-process wake-up costs).
    ///
    /// ```
    /// use multiproc_sync::raw::{RawEvent, ThreadFutex};
    /// let e = RawEvent::<ThreadFutex>::new();
    /// let start = e.snapshot();
    /// assert!(!e.woken_since(start));
    /// e.set();
    /// e.clear();
    /// assert!(e.woken_since(start)); // a set came, even if cleared since
    /// assert!(e.wait_from(start, None));
    /// ```
    #[inline]
    pub fn snapshot(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    /// Whether the flag is set now, or a `set` came after `start` was taken.
    #[inline]
    pub fn woken_since(&self, start: u32) -> bool {
        let s = self.state.load(Ordering::Acquire);
        s & SET != 0 || s & !(SET | WAITING) != start & !(SET | WAITING)
    }

    /// Like [`wait_until`](Self::wait_until), counting every `set` since `start` was taken.
    #[inline]
    pub fn wait_from(&self, start: u32, deadline: Option<Instant>) -> bool {
        start & SET != 0 || self.wait_slow(start, deadline)
    }

    /// One step of an async wait that counts every `set` since `start` (see
    /// [`snapshot`](Self::snapshot)): ready when woken, else watches the word (`watch`, see
    /// [`crate::async_wait`]) after marking it waited for, so that `set` wakes the watch.
    ///
    /// ```
    /// use multiproc_sync::raw::{RawEvent, ThreadFutex};
    /// use std::task::{Context, Waker};
    /// let e = RawEvent::<ThreadFutex>::new();
    /// let start = e.snapshot();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let mut watch = None;
    /// assert!(e.poll_wait_from(start, &mut cx, &mut watch).is_pending());
    /// e.set();
    /// assert!(e.poll_wait_from(start, &mut cx, &mut watch).is_ready());
    /// ```
    #[cfg(not(multiproc_loom))]
    pub fn poll_wait_from<'a>(
        &'a self,
        start: u32,
        cx: &mut std::task::Context<'_>,
        watch: &mut Option<crate::async_wait::WordWatch<'a>>,
    ) -> std::task::Poll<()> {
        *watch = None;
        if start & SET != 0 {
            return std::task::Poll::Ready(());
        }
        let gen0 = start & !(SET | WAITING);
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & SET != 0 || s & !(SET | WAITING) != gen0 {
                return std::task::Poll::Ready(());
            }
            if s & WAITING == 0
                && self
                    .state
                    .compare_exchange(s, s | WAITING, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            *watch = Some(crate::async_wait::WordWatch::new(
                &self.state,
                s | WAITING,
                F::SHARED,
                cx.waker(),
            ));
            return std::task::Poll::Pending;
        }
    }

    #[cold]
    fn wait_slow(&self, start: u32, deadline: Option<Instant>) -> bool {
        let gen0 = start & !(SET | WAITING);
        let woken = |s: u32| s & SET != 0 || s & !(SET | WAITING) != gen0;
        if spin_until(|| woken(self.state.load(Ordering::Acquire))) {
            return true;
        }
        loop {
            let s = self.state.load(Ordering::Acquire);
            if woken(s) {
                return true;
            }
            if s & WAITING == 0
                && self
                    .state
                    .compare_exchange(s, s | WAITING, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            if !F::wait(&self.state, s | WAITING, deadline) {
                return woken(self.state.load(Ordering::Acquire));
            }
        }
    }
}
