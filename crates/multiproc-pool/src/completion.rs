//! The typed ends of process tasks: decode a result into a [`Core`], into one slot of a
//! `map`, or onto the channel of an `imap_unordered`.

use crate::call;
use crate::core::Core;
use crate::engine::Completion;
use crossbeam_channel::Sender;
use multiproc_sync::{Error, Result};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A copy of an error for the items of a failed chunk (`Error` is not `Clone`: it may hold an
/// `io::Error`).
pub(crate) fn dup(e: &Error) -> Error {
    match e {
        Error::TaskFailed { message } => Error::TaskFailed {
            message: message.clone(),
        },
        Error::WorkerDied { exitcode } => Error::WorkerDied {
            exitcode: *exitcode,
        },
        Error::MemoryLimit { limit } => Error::MemoryLimit { limit: *limit },
        Error::Cancelled => Error::Cancelled,
        Error::PoolClosed => Error::PoolClosed,
        Error::Timeout => Error::Timeout,
        Error::Codec(m) => Error::Codec(m.clone()),
        Error::ProcessFailed { exitcode, message } => Error::ProcessFailed {
            exitcode: *exitcode,
            message: message.clone(),
        },
        Error::Io(io) => Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => Error::Invalid(other.to_string()),
    }
}

/// One task whose result is one `R` in a [`Core`] (apply_async, submit, one imap chunk).
pub(crate) struct Single<R> {
    core: Arc<Core<R>>,
    claimed: bool,
    finished: bool,
}

impl<R> Single<R> {
    pub(crate) fn new(core: Arc<Core<R>>) -> Self {
        Single {
            core,
            claimed: false,
            finished: false,
        }
    }
}

impl<R: DeserializeOwned + Send> Completion for Single<R> {
    fn claim(&mut self) -> bool {
        self.claimed = self.claimed || self.core.claim();
        self.claimed
    }

    fn finish(mut self: Box<Self>, outcome: Result<&[u8]>) {
        if self.claim() {
            self.finished = true;
            self.core.complete(outcome.and_then(call::decode));
        }
    }

    fn cancel(self: Box<Self>) {
        // `Drop` does it: cancels an unstarted cell, fails a started one.
        drop(self);
    }

    fn cancel_running(mut self: Box<Self>) {
        if self.claim() {
            self.finished = true;
            self.core.cancel_claimed();
        }
    }
}

impl<R> Drop for Single<R> {
    /// A task dropped unfinished (its pool went away) still resolves its cell: nothing waits
    /// for ever.
    fn drop(&mut self) {
        if !self.finished {
            if self.claimed {
                self.core.complete(Err(Error::Cancelled));
            } else {
                self.core.cancel();
            }
        }
    }
}

/// The collector of a `map_async`: one slot per chunk; the first failure fails the whole map.
pub(crate) struct MapState<R> {
    pub(crate) core: Arc<Core<Vec<R>>>,
    parts: Mutex<Vec<Option<Vec<R>>>>,
    left: AtomicUsize,
    over: AtomicBool,
}

impl<R: Send> MapState<R> {
    /// A collector of `chunks` parts; an empty map is complete at once.
    pub(crate) fn new(chunks: usize) -> Arc<MapState<R>> {
        let core = Core::new();
        assert!(core.claim(), "a fresh cell is pending");
        let state = Arc::new(MapState {
            core,
            parts: Mutex::new((0..chunks).map(|_| None).collect()),
            left: AtomicUsize::new(chunks),
            over: AtomicBool::new(false),
        });
        if chunks == 0 {
            state.over.store(true, Ordering::Relaxed);
            state.core.complete(Ok(Vec::new()));
        }
        state
    }
}

/// One chunk of a `map_async`.
pub(crate) struct MapPart<R> {
    pub(crate) state: Arc<MapState<R>>,
    pub(crate) index: usize,
    pub(crate) finished: bool,
}

impl<R> Drop for MapPart<R> {
    fn drop(&mut self) {
        if !self.finished && !self.state.over.swap(true, Ordering::AcqRel) {
            self.state.core.complete(Err(Error::Cancelled));
        }
    }
}

impl<R: DeserializeOwned + Send> Completion for MapPart<R> {
    fn claim(&mut self) -> bool {
        // Once the map has failed, its remaining chunks are not run (Python stops there too).
        !self.state.over.load(Ordering::Acquire)
    }

    fn finish(mut self: Box<Self>, outcome: Result<&[u8]>) {
        self.finished = true;
        let st = &self.state;
        match outcome.and_then(call::decode::<Vec<R>>) {
            Ok(v) => {
                st.parts.lock().unwrap_or_else(|e| e.into_inner())[self.index] = Some(v);
                if st.left.fetch_sub(1, Ordering::AcqRel) == 1
                    && !st.over.swap(true, Ordering::AcqRel)
                {
                    let parts =
                        std::mem::take(&mut *st.parts.lock().unwrap_or_else(|e| e.into_inner()));
                    let total = parts.iter().flatten().map(Vec::len).sum();
                    let mut all = Vec::with_capacity(total);
                    for part in parts.into_iter().flatten() {
                        all.extend(part);
                    }
                    st.core.complete(Ok(all));
                }
            }
            Err(e) => {
                if !st.over.swap(true, Ordering::AcqRel) {
                    st.core.complete(Err(e));
                }
            }
        }
    }
}

/// One chunk of an `imap_unordered`: its items go onto the iterator's channel.
pub(crate) struct Unordered<R> {
    pub(crate) tx: Sender<(usize, Result<Vec<R>>)>,
    pub(crate) len: usize,
    pub(crate) finished: bool,
}

impl<R: DeserializeOwned + Send> Completion for Unordered<R> {
    fn claim(&mut self) -> bool {
        true
    }

    fn finish(mut self: Box<Self>, outcome: Result<&[u8]>) {
        self.finished = true;
        let _ = self.tx.send((self.len, outcome.and_then(call::decode)));
    }
}

impl<R> Drop for Unordered<R> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.tx.send((self.len, Err(Error::Cancelled)));
        }
    }
}
