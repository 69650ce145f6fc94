//! The handle-level ring calls that [`Queue`](crate::Queue) and [`Pipe`](crate::Pipe) share:
//! making and receiving a ring ([`new_ring`], [`receive_ring`]), putting an item that
//! carries handles ([`put_with_handles`]), and taking a record, blocking or async
//! ([`take_record`], [`take_record_async`], with the consumer's [`Blocked`] mark).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Instant;

use multiproc_sync::{Error, Result};

use super::codec::{self, Handles};
use super::{GetError, Ring, Scratch, Take};
use crate::error::put_error;
use crate::shm::OBJECT_OFFSET;
use crate::shm::holders::{Handle, WireHandle};
#[cfg(not(multiproc_loom))]
use crate::wait::{ASYNC_SPIN, SignalWatch};

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// This thread's [`SCRATCH`], borrowed only while a wrapped record is gathered and taken.
struct ThreadScratch;

impl Scratch for ThreadScratch {
    fn with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        SCRATCH.with(|s| f(&mut s.borrow_mut()))
    }
}

fn wake_ring(base: NonNull<u8>) {
    // SAFETY: every queue segment holds a `Ring` at OBJECT_OFFSET (checked at creation and on
    // arrival), which stays mapped while the handle that calls this exists.
    let ring = unsafe { base.add(OBJECT_OFFSET).cast::<Ring>().as_ref() };
    ring.wake_everyone();
}

pub(crate) fn new_ring(maxsize: usize, flags: u64, role: usize) -> Result<Handle> {
    if maxsize as u64 > super::MAX_ITEMS {
        return Err(Error::Invalid(format!(
            "maxsize {maxsize} is above the limit of {}",
            super::MAX_ITEMS
        )));
    }
    Ok(Handle::create::<Ring>(
        super::DATA_OFFSET + super::BASE_CAP as usize,
        super::reserve()?,
        role,
        |r: &Ring, _| r.init(maxsize as u64, flags),
        wake_ring,
    )?)
}

pub(crate) fn receive_ring(wire: &WireHandle) -> std::result::Result<Handle, String> {
    Handle::receive::<Ring>(wire, wake_ring)
}

/// Appends a record with `bytes` to `handle`'s ring whose item carries the descriptors of
/// `handles`: they are sent on the ring's channel from the ring's attach hook, so that they
/// lie in the channel in record order (see [`crate::shm::channel`]). `alive()`: whether another
/// live holder could still make room. (Items without handles call [`Ring::put`] directly:
/// even an untaken branch here cost the `u64` round trip a few nanoseconds.)
#[cold]
pub(crate) fn put_with_handles(
    handle: &Handle,
    bytes: &[u8],
    handles: &Handles,
    deadline: Option<Instant>,
    alive: impl Fn() -> bool,
) -> Result<()> {
    let ring: &Ring = handle.state();
    let channel = handle
        .channel()
        .ok_or_else(|| Error::Codec("this ring has no descriptor channel".to_owned()))?;
    let mut send = |at: u64| channel.send(at, handles.nonce, &handles.fds, deadline, &mut &alive);
    ring.put(handle.segment(), bytes, Some(&mut send), deadline, &alive)
        .map_err(|e| put_error(e, bytes.len()))
}

/// Takes the oldest record of `handle`'s ring and gives its bytes to `take`, with the
/// record's position when its item carries descriptors (`take` runs under the get lock and
/// takes them from the channel).
#[inline]
pub(crate) fn take_record<R>(
    handle: &Handle,
    deadline: Option<Instant>,
    writer_role: usize,
    take: impl FnOnce(&[u8], Option<u64>) -> R,
) -> std::result::Result<R, GetError> {
    let mut take = Some(take);
    let mut out = None;
    take_into(handle, deadline, writer_role, &mut |b, at, _| {
        out = take.take().map(|t| t(b, at));
    })?;
    // `Ring::get` calls `take` exactly once when it answers `Ok`.
    out.ok_or(GetError::Corrupt)
}

/// Takes the oldest record's bytes as a `Vec` of their own (`get_bytes`, `recv_bytes`; see
/// [`codec::raw`]). A record that wrapped around the end of the data area was already
/// gathered into this thread's scratch buffer: that buffer is handed over rather than copied a
/// second time (a 1 MiB stream through a 4 MiB ring wraps one item in four).
pub(crate) fn take_owned(
    handle: &Handle,
    deadline: Option<Instant>,
    writer_role: usize,
) -> std::result::Result<Vec<u8>, GetError> {
    let mut out = None;
    let mut keep_scratch = false;
    take_into(handle, deadline, writer_role, &mut |b, at, gathered| {
        if gathered && at.is_none() {
            keep_scratch = true;
        } else {
            out = Some(codec::raw(handle, b, at));
        }
    })?;
    if keep_scratch {
        return Ok(SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut())));
    }
    out.ok_or(GetError::Corrupt)
}

/// [`take_record`] with the record's bytes handed to `take` by reference, which stores what
/// it makes where the caller reads it: the hot path of a typed `get`, which keeps its item
/// and its error apart so that neither is copied through the layers below (see
/// [`Ring::get`]). Inlined into each caller: its own frame cost a get ~1 ns.
#[inline(always)]
pub(crate) fn take_into(
    handle: &Handle,
    deadline: Option<Instant>,
    writer_role: usize,
    take: &mut Take<'_>,
) -> std::result::Result<(), GetError> {
    let ring: &Ring = handle.state();
    // A queue consumer that has to sleep marks itself blocked (see `Handle::set_blocked`);
    // a pipe reader only asks whether a writer is left.
    let blocked = std::cell::Cell::new(false);
    let alive = || {
        if writer_role != handle.role() {
            return handle.others_alive(writer_role);
        }
        if !blocked.replace(true) {
            handle.set_blocked(true);
        }
        handle.putters_alive()
    };
    let got = ring.get(handle.segment(), &mut ThreadScratch, deadline, alive, take);
    if blocked.get() {
        handle.set_blocked(false);
    }
    if matches!(got, Err(GetError::Closed)) {
        tracing::debug!(
            target: "multiproc::queue",
            pid = std::process::id(),
            "get answers Closed: the queue is empty and no live handle can put"
        );
    }
    got
}

/// [`take_record`] for async code: the first poll spins for [`ASYNC_SPIN`] at most, then
/// the task is parked on the ring's data signal (see [`SignalWatch`]) and woken by the next
/// put, or after the recheck interval to ask whether a writer is still alive, with the answers
/// of the blocking form (`Closed` when none is and nothing is left).
#[cfg(not(multiproc_loom))]
pub(crate) async fn take_record_async<R>(
    handle: &Handle,
    writer_role: usize,
    take: impl FnOnce(&[u8], Option<u64>) -> R,
) -> std::result::Result<R, GetError> {
    let ring: &Ring = handle.state();
    let blocked = Blocked {
        handle,
        on: AtomicBool::new(false),
    };
    let alive = || {
        if writer_role != handle.role() {
            return handle.others_alive(writer_role);
        }
        // An atomic only so that the future stays `Send`: one task touches it.
        if !blocked.on.swap(true, Ordering::Relaxed) {
            handle.set_blocked(true);
        }
        handle.putters_alive()
    };
    let mut take = Some(take);
    let mut attempt = |deadline: Instant| {
        take_record(handle, Some(deadline), writer_role, |b, at| {
            (take.take().expect("a record is taken once"))(b, at)
        })
    };
    let mut spin = ASYNC_SPIN;
    let mut watch: Option<SignalWatch<'_>> = None;
    std::future::poll_fn(move |cx| {
        drop(watch.take());
        loop {
            match attempt(Instant::now() + std::mem::take(&mut spin)) {
                Err(GetError::Empty) => {}
                done => return Poll::Ready(done),
            }
            let parked = ring.data_signal().watch(cx.waker());
            // A put published before the announcement woke nobody: look again.
            if ring.is_ready(handle.segment()) {
                continue;
            }
            if !alive() {
                drop(parked);
                return Poll::Ready(match attempt(Instant::now()) {
                    Err(GetError::Empty) => Err(GetError::Closed),
                    done => done,
                });
            }
            watch.replace(parked);
            return Poll::Pending;
        }
    })
    .await
}

/// A consumer's "blocked in `get`" mark (see `Handle::set_blocked`), taken back when the
/// async get ends or is dropped.
#[cfg(not(multiproc_loom))]
struct Blocked<'a> {
    handle: &'a Handle,
    on: AtomicBool,
}

#[cfg(not(multiproc_loom))]
impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        if self.on.load(Ordering::Relaxed) {
            self.handle.set_blocked(false);
        }
    }
}
