//! Awaiting a futex word: wake a task's [`Waker`] when a word in memory changes.
//!
//! Every blocking wait of the workspace ends in a futex sleep on some `AtomicU32` (a lock
//! word, an event word, a queue's wake-up sequence). An async task cannot sleep in the
//! kernel, so it hands the word, the value it saw and its waker to a [`WordWatch`]: a small
//! shared *waiter thread* sleeps in one `futex_waitv` call on up to 127 such words at once
//! (plus one word of its own, which new registrations bump), and wakes the wakers whose words
//! changed. Nothing spins: the thread sleeps in the kernel until some word is woken, so the
//! waking side pays exactly what it pays for a blocked thread (one `futex_wake`, only when
//! somebody announced a sleeper).
//!
//! A watch also fires after [`RECHECK`] without news, as a blocked thread's sleep ends after
//! its poll interval: the task then asks again whether its peers are alive (a process killed
//! with `kill -9` wakes nobody) and watches again.
//!
//! The threads are started on first use (one per 127 pending watches, which live as long as
//! the process) and belong to the process that started them: a child made by `fork` starts
//! its own.
//!
//! Works with every executor (tokio, async-std, smol, a hand-written `block_on`): it only
//! needs the `Waker` of the task.
//!
//! ```
//! use multiproc_sync::async_wait::WordWatch;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::task::{Wake, Waker};
//!
//! struct Flag(std::sync::Mutex<bool>, std::sync::Condvar);
//! impl Wake for Flag {
//!     fn wake(self: Arc<Self>) {
//!         *self.0.lock().unwrap() = true;
//!         self.1.notify_all();
//!     }
//! }
//! let flag = Arc::new(Flag(Default::default(), Default::default()));
//! let waker = Waker::from(flag.clone());
//! let word = AtomicU32::new(0);
//! let watch = WordWatch::new(&word, 0, false, &waker);
//! word.store(1, Ordering::Release); // the waiter thread sees the change
//! let mut woken = flag.0.lock().unwrap();
//! while !*woken {
//!     woken = flag.1.wait(woken).unwrap();
//! }
//! drop(watch);
//! ```

use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::sys;

/// How long a watch waits without news before it fires anyway, so that its task re-checks
/// whether its peers are alive (the poll interval of the blocking waits).
pub const RECHECK: Duration = Duration::from_millis(20);

/// Watches per waiter thread: `futex_waitv` takes 128 words, one is the thread's own.
const PER_THREAD: usize = sys::WAITV_MAX - 1;

/// A waker registered to be woken once `*word` differs from the value the task saw (or the
/// word is woken through the futex), or after [`RECHECK`]. Dropping it withdraws it; it fires
/// at most once, so a task that wants to wait again makes a new one.
///
/// `shared`: whether the word lives in memory shared between processes and is woken with the
/// process-shared futex (`false`: the process-private one). It must match the waking side.
#[must_use = "dropping the watch withdraws it"]
pub struct WordWatch<'a> {
    shard: Arc<Shard>,
    id: u64,
    _word: PhantomData<&'a AtomicU32>,
}

impl<'a> WordWatch<'a> {
    /// Wakes `waker` once `*word != expected` (see the type's docs). If the word already
    /// differs, the waker is woken at once.
    pub fn new(word: &'a AtomicU32, expected: u32, shared: bool, waker: &Waker) -> Self {
        let shard = Waiters::get().shard_with_room();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        shard.lock().push(Entry {
            id,
            word: word as *const AtomicU32,
            expected,
            shared,
            waker: waker.clone(),
            since: Instant::now(),
        });
        shard.kick();
        WordWatch {
            shard,
            id,
            _word: PhantomData,
        }
    }

    /// Whether the watch has fired (its waker was woken).
    pub fn fired(&self) -> bool {
        !self.shard.lock().iter().any(|e| e.id == self.id)
    }
}

impl Drop for WordWatch<'_> {
    fn drop(&mut self) {
        let mut entries = self.shard.lock();
        if let Some(at) = entries.iter().position(|e| e.id == self.id) {
            entries.swap_remove(at);
            self.shard.len.fetch_sub(1, Ordering::Relaxed);
        }
        // After this point the waiter thread never reads the word again (it reads words only
        // under this lock, and only those of listed entries), so the borrow may end.
    }
}

impl std::fmt::Debug for WordWatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordWatch").field("id", &self.id).finish()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

struct Entry {
    id: u64,
    /// Valid while the entry is listed: its `WordWatch` borrows the word and unlists the
    /// entry (under the shard's lock) before the borrow ends.
    word: *const AtomicU32,
    expected: u32,
    shared: bool,
    waker: Waker,
    since: Instant,
}

// SAFETY: `word` points to an `AtomicU32` (which is `Sync`), read only under the shard's lock
// while its watch keeps it borrowed; the rest is `Send`.
unsafe impl Send for Entry {}

/// One waiter thread's watches.
struct Shard {
    entries: Mutex<Vec<Entry>>,
    /// Watches listed or being listed (for choosing a shard with room).
    len: AtomicUsize,
    /// The thread's own word: bumped and woken after each new registration, so that the
    /// thread re-reads its list.
    kick: AtomicU32,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        // A panic while the list is locked cannot leave it inconsistent (pushes and removes).
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn kick(&self) {
        self.kick.fetch_add(1, Ordering::Release);
        sys::futex_wake(&self.kick, 1, false);
    }

    /// The waiter thread: fire what is due, sleep on the rest, repeat.
    fn run(&self) {
        let mut waits: Vec<sys::WaitOn> = Vec::with_capacity(sys::WAITV_MAX);
        let mut due: Vec<Waker> = Vec::new();
        let mut supported = true;
        loop {
            let timeout = {
                let mut entries = self.lock();
                let now = Instant::now();
                let mut next = RECHECK;
                entries.retain_mut(|e| {
                    // SAFETY: the entry is listed and we hold the lock, so its watch still
                    // borrows the word (see `Entry::word`).
                    let word = unsafe { &*e.word };
                    let waited = now.saturating_duration_since(e.since);
                    if word.load(Ordering::Acquire) != e.expected || waited >= RECHECK {
                        due.push(e.waker.clone());
                        self.len.fetch_sub(1, Ordering::Relaxed);
                        return false;
                    }
                    next = next.min(RECHECK - waited);
                    true
                });
                waits.clear();
                // Read under the lock: a registration listed after this bumps it afterwards.
                let kick = self.kick.load(Ordering::Acquire);
                waits.push(sys::WaitOn {
                    word: &self.kick,
                    expected: kick,
                    shared: false,
                });
                waits.extend(entries.iter().map(|e| sys::WaitOn {
                    word: e.word,
                    expected: e.expected,
                    shared: e.shared,
                }));
                next
            };
            for waker in due.drain(..) {
                waker.wake();
            }
            if supported && sys::futex_waitv(&waits, timeout).is_err() {
                // A kernel older than 5.16: look every millisecond instead (still no spin).
                tracing::warn!("futex_waitv is missing: async waits poll every millisecond");
                supported = false;
            }
            if !supported {
                std::thread::sleep(Duration::from_millis(1).min(timeout));
            }
        }
    }
}

/// The waiter threads of this process.
struct Waiters {
    shards: Mutex<Vec<Arc<Shard>>>,
}

/// This process's [`Waiters`] (leaked: the threads live as long as the process). A child
/// made by `fork` has none of its parent's threads, so the fork hook forgets the pointer
/// (an atomic store, safe in the child) and the child makes its own on first use.
static WAITERS: AtomicPtr<Waiters> = AtomicPtr::new(std::ptr::null_mut());

unsafe extern "C" fn forget_waiters() {
    WAITERS.store(std::ptr::null_mut(), Ordering::Relaxed);
}

impl Waiters {
    fn get() -> &'static Waiters {
        let p = WAITERS.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: non-null values are leaked boxes, never freed.
            return unsafe { &*p };
        }
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            if let Err(e) = sys::on_fork_child(forget_waiters) {
                tracing::warn!(error = %e, "no fork hook: async waits in forked children may hang");
            }
        });
        let fresh = Box::into_raw(Box::new(Waiters {
            shards: Mutex::new(Vec::new()),
        }));
        match WAITERS.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just leaked; never freed.
            Ok(_) => unsafe { &*fresh },
            Err(other) => {
                // SAFETY: `fresh` was never shared; `other` is a leaked box, never freed.
                unsafe {
                    drop(Box::from_raw(fresh));
                    &*other
                }
            }
        }
    }

    /// A shard with room for one more watch (counted as taken), starting a thread if need be.
    fn shard_with_room(&self) -> Arc<Shard> {
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        for shard in shards.iter() {
            let taken = shard
                .len
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < PER_THREAD).then_some(n + 1)
                });
            if taken.is_ok() {
                return Arc::clone(shard);
            }
        }
        let shard = Arc::new(Shard {
            entries: Mutex::new(Vec::with_capacity(PER_THREAD)),
            len: AtomicUsize::new(1),
            kick: AtomicU32::new(0),
        });
        let runner = Arc::clone(&shard);
        let started = std::thread::Builder::new()
            .name("multiproc-async".into())
            .stack_size(64 * 1024)
            .spawn(move || runner.run());
        if let Err(e) = started {
            // Keep the shard: its watches then fire only when dropped and re-made; a later
            // registration tries to start a thread again.
            tracing::warn!(error = %e, "could not start an async waiter thread");
            return shard;
        }
        shards.push(Arc::clone(&shard));
        shard
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Condvar;
    use std::task::Wake;

    #[derive(Default)]
    struct Count(Mutex<usize>, Condvar);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            *self.0.lock().unwrap() += 1;
            self.1.notify_all();
        }
    }
    impl Count {
        fn wait_for(&self, n: usize) {
            let mut c = self.0.lock().unwrap();
            while *c < n {
                c = self.1.wait(c).unwrap();
            }
        }
    }

    #[test]
    fn fires_on_change_on_wake_and_after_recheck_and_not_after_drop() {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        // Hundreds of watches at once: several waiter threads.
        let words: Vec<AtomicU32> = (0..300).map(|_| AtomicU32::new(0)).collect();
        let watches: Vec<WordWatch<'_>> = words
            .iter()
            .map(|w| WordWatch::new(w, 0, true, &waker))
            .collect();
        for w in &words {
            w.store(1, Ordering::Release);
            sys::futex_wake(w, 1, true);
        }
        count.wait_for(300);
        assert!(watches.iter().all(WordWatch::fired));
        drop(watches);
        // A word that does not change fires after RECHECK.
        let still = AtomicU32::new(5);
        let t = Instant::now();
        let watch = WordWatch::new(&still, 5, false, &waker);
        count.wait_for(301);
        assert!(watch.fired() && t.elapsed() >= RECHECK);
        // A withdrawn watch never fires.
        let withdrawn = WordWatch::new(&still, 5, false, &waker);
        assert!(!withdrawn.fired());
        drop(withdrawn);
        assert_eq!(*count.0.lock().unwrap(), 301);
    }
}
