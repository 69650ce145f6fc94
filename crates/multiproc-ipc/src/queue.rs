//! Process queues: [`Queue`], [`JoinableQueue`] and [`SimpleQueue`], Python's
//! `multiprocessing.Queue` family, on the shared-memory ring (see the crate docs).

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::{Duration, Instant};

use multiproc_sync::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{get_error, put_error};
use crate::ring::codec::{self, Handles};
#[cfg(not(multiproc_loom))]
use crate::ring::ops::take_record_async;
use crate::ring::ops::{new_ring, put_with_handles, receive_ring, take_into, take_owned};
use crate::ring::{JOINABLE, Ring};
use crate::shm::holders::{Handle, WireHandle};
use crate::wait::Wait;
#[cfg(not(multiproc_loom))]
use crate::wait::{ASYNC_SPIN, SignalWatch};
use std::task::Poll;

/// A FIFO queue between processes (and threads), Python's `multiprocessing.Queue`.
///
/// Items are serialized into shared memory inside `put` and decoded inside `get`, so any
/// `Serialize + DeserializeOwned` type travels, of any size. A handle is cheap to clone, and
/// travels to child processes in their spawn arguments (under every start method) and inside
/// items of a queue or pipe to processes that are already running, as do the other handles of
/// this crate (locks, events, values, shared memory, pipe ends; see the example below and
/// "Handles inside items"). A `get` on
/// an empty queue that no other live handle can ever put to answers `Err(Closed)` instead of
/// waiting for ever: every other handle was dropped, its process died, or it is itself waiting
/// in `get` on this queue (so a set of worker processes draining a queue all end once the
/// producers are gone). A `put` on a full queue that nobody can drain answers `Err(Closed)`
/// too. The forms with a timeout keep Python's answers (`Empty`, `Full`) and end at their
/// deadline. Count handles, not threads: give each thread that may put its own clone.
///
/// ```
/// use multiproc_ipc::Queue;
/// let q = Queue::new()?;
/// q.put("hello".to_string())?;
/// q.put("world".to_string())?;
/// assert_eq!(q.qsize(), 2);
/// assert_eq!(q.get()?, "hello");
/// assert_eq!(q.get_nowait()?, "world");
/// assert!(matches!(q.get_nowait(), Err(multiproc_sync::Error::Empty)));
/// drop(q.clone());
/// assert!(matches!(q.get(), Err(multiproc_sync::Error::Closed))); // nobody else can put
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
///
/// A queue sent through a queue (between processes it works the same way: a worker that is
/// already running can be handed a queue to answer on):
///
/// ```
/// use multiproc_ipc::{Lock, Queue};
/// let inbox: Queue<(Queue<String>, Lock)> = Queue::new()?;
/// let answers = Queue::new()?;
/// inbox.put((answers.clone(), Lock::new()?))?;
///
/// let (reply_to, lock) = inbox.get()?; // a new handle to the same queue and lock
/// let _guard = lock.acquire();
/// reply_to.put("done".to_string())?;
/// assert_eq!(answers.get()?, "done");
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
///
/// # Handles inside items
///
/// The descriptors of the handles inside an item travel on a socket beside the queue, in the
/// order of the items (see the crate docs). What that adds to the queue's behaviour:
///
/// - Such an item costs a few system calls to put and to take (and the receiver maps each
///   object it receives); items without handles cost nothing more.
/// - The socket holds the descriptors of some 550 items (more where `net.core.wmem_max`
///   allows) that nobody has taken yet. Past that, a `put` of an item *with handles* waits
///   like a put on a full bounded queue, also on an unbounded queue: `put_timeout` and
///   `put_nowait` answer `Err(Full)` at their deadline, and `put` answers `Err(Closed)` when no
///   other live handle could take an item. Items without handles never wait for it.
/// - Descriptors in flight count against the sender's `ulimit -n`; past it the `put` answers
///   `Err(Codec)`. A failed `put` writes nothing and takes back the handles it counted as sent.
/// - A handle received counts as a holder like any other (for `Closed`). Until it is
///   received, it counts as held by its sender, as long as the sender lives: an item that is
///   never taken (dropped with the queue: the kernel then closes its descriptors) keeps its
///   objects counted as held by the process that put it, until that process exits.
/// - If a process is killed while it takes such an item, after it received the descriptors
///   and before it finished, that item is lost: the next `get` answers `Err(Codec)` for it
///   and the queue goes on. (A killed producer loses nothing that was put.)
pub struct Queue<T> {
    handle: Handle,
    _items: PhantomData<fn(T) -> T>,
}

use multiproc_sync::raw::deadline_after as deadline;

impl<T> Queue<T> {
    /// A queue with no item limit (Python's `Queue()`): `put` never blocks (but for items with
    /// handles, see "Handles inside items").
    pub fn new() -> Result<Self> {
        Self::with_maxsize(0)
    }

    /// A queue of at most `maxsize` items (0: no limit; at most 8,388,607).
    ///
    /// ```
    /// let q = multiproc_ipc::Queue::with_maxsize(1)?;
    /// q.put(1)?;
    /// assert!(q.full());
    /// assert!(matches!(q.put_nowait(2), Err(multiproc_sync::Error::Full)));
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<Self> {
        Ok(Self::from_handle(new_ring(maxsize, 0, 0)?))
    }

    fn from_handle(handle: Handle) -> Self {
        Queue {
            handle,
            _items: PhantomData,
        }
    }

    fn ring(&self) -> &Ring {
        self.handle.state()
    }

    /// Items in the queue now (Python's `qsize()`; exact, but stale as soon as it returns).
    pub fn qsize(&self) -> usize {
        self.ring().len() as usize
    }

    /// Whether the queue holds no item now.
    pub fn empty(&self) -> bool {
        self.ring().len() == 0
    }

    /// Whether the queue is at its `maxsize` now (never, without a limit).
    pub fn full(&self) -> bool {
        let max = self.ring().maxsize();
        max != 0 && self.ring().len() >= max
    }

    /// The item limit (0: none).
    pub fn maxsize(&self) -> usize {
        self.ring().maxsize() as usize
    }

    fn put_raw(
        &self,
        bytes: &[u8],
        handles: Option<&Handles>,
        deadline: Option<Instant>,
    ) -> Result<()> {
        self.handle.touch();
        let alive = || self.handle.others_alive(0);
        match handles {
            None => self
                .ring()
                .put(self.handle.segment(), bytes, None, deadline, alive)
                .map_err(|e| put_error(e, bytes.len())),
            Some(h) => put_with_handles(&self.handle, bytes, h, deadline, alive),
        }
    }

    fn take_bytes(&self, deadline: Option<Instant>) -> Result<Vec<u8>> {
        let ring = &self.handle;
        take_owned(ring, deadline, 0).map_err(get_error)
    }

    /// Puts raw bytes, skipping serialization (the other side takes them with
    /// [`get_bytes`](Self::get_bytes)).
    ///
    /// ```
    /// let q = multiproc_ipc::Queue::<()>::new()?;
    /// q.put_bytes(b"raw")?;
    /// assert_eq!(q.get_bytes()?, b"raw");
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.put_raw(bytes, None, None)
    }

    /// Takes the next item's raw bytes (see [`put_bytes`](Self::put_bytes)).
    pub fn get_bytes(&self) -> Result<Vec<u8>> {
        self.take_bytes(None)
    }

    /// Takes the next item's raw bytes, waiting at most `timeout`.
    pub fn get_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>> {
        self.take_bytes(deadline(timeout))
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Puts `item`, waiting while the queue is full (bounded queues only, and for an item with
    /// handles, while the socket beside the queue is: see "Handles inside items").
    pub fn put(&self, item: T) -> Result<()> {
        codec::with_encoded(&item, |b, h| self.put_raw(b, h, None))
    }

    /// Puts `item`, waiting at most `timeout` for room; `Err(Full)` after that.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
        codec::with_encoded(&item, |b, h| self.put_raw(b, h, deadline(timeout)))
    }

    /// Puts `item` only if there is room now; `Err(Full)` otherwise.
    pub fn put_nowait(&self, item: T) -> Result<()> {
        codec::with_encoded(&item, |b, h| self.put_raw(b, h, Some(Instant::now())))
    }

    #[inline]
    fn get_until(&self, deadline: Option<Instant>) -> Result<T> {
        let ring = &self.handle;
        let mut item = None;
        let mut failed = None;
        take_into(
            ring,
            deadline,
            0,
            &mut |b, at, _| match codec::decode::<T>(ring, b, at) {
                Ok(v) => item = Some(v),
                Err(e) => failed = Some(e),
            },
        )
        .map_err(get_error)?;
        // Not matched as a pair: moving both into a tuple copied the error's 64 bytes (and
        // stalled on them) for every item.
        if let Some(v) = item {
            return Ok(v);
        }
        Err(failed.unwrap_or_else(|| Error::Codec("no item was decoded".to_owned())))
    }

    /// Takes the oldest item, waiting as long as it takes; `Err(Closed)` when the queue is
    /// empty and no other handle is left in any live process.
    pub fn get(&self) -> Result<T> {
        self.get_until(None)
    }

    /// Takes the oldest item, waiting at most `timeout`; `Err(Empty)` after that.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = multiproc_ipc::Queue::<u32>::new()?;
    /// let _producer = q.clone(); // someone could still put
    /// let e = q.get_timeout(Duration::from_millis(10));
    /// assert!(matches!(e, Err(multiproc_sync::Error::Empty)));
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_until(deadline(timeout))
    }

    /// Takes the oldest item if there is one now; `Err(Empty)` otherwise.
    pub fn get_nowait(&self) -> Result<T> {
        self.get_until(Some(Instant::now()))
    }

    /// [`get`](Self::get) for async code: the same answers, without blocking the executor.
    ///
    /// Looks (and spins for at most 20 µs, less than a blocking `get`), then parks the task: a
    /// shared waiter thread sleeps on the queue's futex word and wakes the task when an item
    /// comes (see [`multiproc_sync::async_wait`]), so no core spins while it waits. Works on
    /// any executor; dropping the future takes nothing from the queue.
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
    /// let q = multiproc_ipc::Queue::new()?;
    /// let producer = q.clone();
    /// std::thread::spawn(move || producer.put(7u32));
    /// assert_eq!(block_on(q.get_async())?, 7);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    #[cfg(not(multiproc_loom))]
    pub async fn get_async(&self) -> Result<T> {
        let ring = &self.handle;
        take_record_async(ring, 0, |b, at| codec::decode::<T>(ring, b, at))
            .await
            .map_err(get_error)?
    }

    /// [`put`](Self::put) for async code: waits for room on a full bounded queue without
    /// blocking the executor (see [`get_async`](Self::get_async)); `Err(Closed)` when nobody
    /// alive could ever make room.
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
    /// let q = multiproc_ipc::Queue::<String>::with_maxsize(1)?;
    /// block_on(q.put_async("first".to_string()))?;
    /// let consumer = q.clone();
    /// let t = std::thread::spawn(move || consumer.get());
    /// block_on(q.put_async("second".to_string()))?; // waits until the thread took "first"
    /// assert_eq!(t.join().unwrap()?, "first");
    /// assert_eq!(q.get()?, "second");
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    #[cfg(not(multiproc_loom))]
    pub async fn put_async(&self, item: T) -> Result<()> {
        let ring = self.ring();
        let attempt = |deadline: Instant| {
            codec::with_encoded(&item, |b, h| self.put_raw(b, h, Some(deadline)))
        };
        let mut spin = ASYNC_SPIN;
        let mut watch: Option<SignalWatch<'_>> = None;
        std::future::poll_fn(move |cx| {
            drop(watch.take());
            match attempt(Instant::now() + std::mem::take(&mut spin)) {
                Err(Error::Full) => {}
                done => return Poll::Ready(done),
            }
            let parked = ring.space_signal().watch(cx.waker());
            // Room made before the announcement woke nobody: try again.
            match attempt(Instant::now()) {
                Err(Error::Full) => {}
                done => return Poll::Ready(done),
            }
            if !self.handle.others_alive(0) {
                return Poll::Ready(Err(Error::Closed));
            }
            watch.replace(parked);
            Poll::Pending
        })
        .await
    }
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self::from_handle(self.handle.clone())
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.qsize())
            .field("maxsize", &self.maxsize())
            .finish_non_exhaustive()
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.handle
            .send()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = WireHandle::deserialize(d)?;
        receive_ring(&wire)
            .map(Self::from_handle)
            .map_err(serde::de::Error::custom)
    }
}

/// A [`Queue`] that also counts unfinished tasks, Python's `multiprocessing.JoinableQueue`:
/// every `put` adds one, [`task_done`](Self::task_done) removes one, [`join`](Self::join)
/// waits for zero. Everything else is [`Queue`]'s (through `Deref`).
///
/// ```
/// let q = multiproc_ipc::JoinableQueue::new()?;
/// q.put(5)?;
/// assert_eq!(q.get()?, 5);
/// q.task_done()?;
/// q.join()?; // nothing unfinished: returns at once
/// assert!(q.task_done().is_err()); // more task_done than puts
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> JoinableQueue<T> {
    /// A joinable queue with no item limit.
    pub fn new() -> Result<Self> {
        Self::with_maxsize(0)
    }

    /// A joinable queue of at most `maxsize` items (0: no limit).
    pub fn with_maxsize(maxsize: usize) -> Result<Self> {
        Ok(JoinableQueue {
            queue: Queue::from_handle(new_ring(maxsize, JOINABLE, 0)?),
        })
    }

    /// Marks one item taken earlier as processed; `Err(Invalid)` when called more times than
    /// items were put (Python's `ValueError`).
    pub fn task_done(&self) -> Result<()> {
        if self.queue.ring().task_done() {
            Ok(())
        } else {
            Err(Error::Invalid(
                "task_done() called too many times".to_owned(),
            ))
        }
    }

    /// Waits until every item put has been marked done; `Err(Closed)` if some are unfinished
    /// and no other live handle is left to finish them.
    pub fn join(&self) -> Result<()> {
        match self.queue.ring().join(|| self.queue.handle.others_alive(0)) {
            Wait::Ready | Wait::TimedOut => Ok(()),
            Wait::Closed => Err(Error::Closed),
        }
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("qsize", &self.queue.qsize())
            .finish_non_exhaustive()
    }
}

impl<T> Serialize for JoinableQueue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.queue.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(JoinableQueue {
            queue: Queue::deserialize(d)?,
        })
    }
}

/// An unbounded FIFO queue with the short API of Python's `multiprocessing.SimpleQueue`.
///
/// ```
/// let q = multiproc_ipc::SimpleQueue::new()?;
/// q.put(vec![1, 2])?;
/// assert!(!q.empty());
/// assert_eq!(q.get()?, vec![1, 2]);
/// # Ok::<(), multiproc_sync::Error>(())
/// ```
pub struct SimpleQueue<T> {
    queue: Queue<T>,
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue.
    pub fn new() -> Result<Self> {
        Ok(SimpleQueue {
            queue: Queue::new()?,
        })
    }

    /// Puts `item` (never blocks, but for items with handles: see [`Queue`]).
    pub fn put(&self, item: T) -> Result<()> {
        self.queue.put(item)
    }

    /// Takes the oldest item, waiting as long as it takes; `Err(Closed)` when empty and no
    /// other live handle is left.
    pub fn get(&self) -> Result<T> {
        self.queue.get()
    }

    /// Takes the oldest item, waiting at most `timeout`; `Err(Empty)` after that.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.queue.get_timeout(timeout)
    }

    /// Whether the queue holds no item now.
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("qsize", &self.queue.qsize())
            .finish_non_exhaustive()
    }
}

impl<T> Serialize for SimpleQueue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.queue.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for SimpleQueue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(SimpleQueue {
            queue: Queue::deserialize(d)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Attach, PutError};
    use std::os::fd::{AsFd, OwnedFd};

    fn devnull_fds(n: usize) -> Vec<OwnedFd> {
        let file = std::fs::File::open("/dev/null").unwrap();
        (0..n)
            .map(|_| file.as_fd().try_clone_to_owned().unwrap())
            .collect()
    }

    /// What a producer killed between its datagram and its commit leaves: the datagram (with
    /// `fds`) and no record.
    fn put_orphan(q: &Queue<Queue<u8>>, fds: &[OwnedFd]) {
        let channel = q.handle.channel().unwrap();
        let mut send_then_die = |at: u64| {
            channel.send(at, 0xDEAD, fds, None, &mut || true)?;
            Err(PutError::attach("killed"))
        };
        let attach: Attach<'_> = Some(&mut send_then_die);
        let e = q
            .ring()
            .put(q.handle.segment(), b"x", attach, None, || true);
        assert_eq!(e, Err(PutError::attach("killed")));
    }

    #[test]
    fn a_queue_travels_in_a_queue_and_works() {
        let q: Queue<Queue<u8>> = Queue::new().unwrap();
        let inner = Queue::new().unwrap();
        q.put(inner.clone()).unwrap();
        let got = q.get().unwrap();
        got.put(3).unwrap();
        assert_eq!(inner.get().unwrap(), 3);
        assert_eq!(
            inner.handle.live_holders(0),
            2,
            "in flight moved to the receiver"
        );
    }

    #[test]
    fn an_orphan_datagram_at_the_same_position_is_skipped() {
        let q: Queue<Queue<u8>> = Queue::new().unwrap();
        put_orphan(&q, &devnull_fds(3));
        let inner = Queue::new().unwrap();
        q.put(inner.clone()).unwrap();
        // Had the orphan's descriptors been taken, the handle could not be made.
        q.get().unwrap().put(4).unwrap();
        assert_eq!(inner.get().unwrap(), 4);
    }

    #[test]
    fn a_consumer_killed_after_taking_the_descriptors_loses_only_that_item() {
        let q: Queue<Queue<u8>> = Queue::new().unwrap();
        let (first, second) = (Queue::new().unwrap(), Queue::new().unwrap());
        q.put(first.clone()).unwrap();
        q.put(second.clone()).unwrap();
        // A consumer that dies after it received the descriptors, before its commit.
        let channel = q.handle.channel().unwrap();
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut scratch = Vec::new();
            let ring = q.ring();
            ring.get(
                q.handle.segment(),
                &mut scratch,
                None,
                || true,
                &mut |b: &[u8], at: Option<u64>, _| {
                    let nonce = u64::from_le_bytes(b[..8].try_into().unwrap());
                    channel.take(at.unwrap(), nonce).unwrap();
                    panic!("killed");
                },
            )
        }));
        assert!(killed.is_err());
        assert_eq!(q.qsize(), 2, "not committed");
        match q.get() {
            Err(Error::Codec(m)) => assert!(m.contains("lost"), "{m}"),
            other => panic!("{other:?}"),
        }
        q.get().unwrap().put(5).unwrap();
        assert_eq!(second.get().unwrap(), 5);
        // The lost handle stays counted with its sender (this process) until it exits.
        assert_eq!(first.handle.live_holders(0), 2);
    }

    #[test]
    fn a_failed_put_takes_the_in_flight_counts_back() {
        let inner: Queue<u8> = Queue::new().unwrap();
        let full: Queue<Option<Queue<u8>>> = Queue::with_maxsize(1).unwrap();
        full.put(None).unwrap();
        for _ in 0..3 {
            let e = full.put_nowait(Some(inner.clone()));
            assert!(matches!(e, Err(Error::Full)));
        }
        assert!(matches!(
            full.put_timeout(Some(inner.clone()), Duration::from_millis(1)),
            Err(Error::Full)
        ));
        assert_eq!(inner.handle.live_holders(0), 1);
        // Nobody else can put: Closed, not a wait for an item that never went out.
        assert!(matches!(inner.get(), Err(Error::Closed)));
    }

    #[test]
    fn an_item_never_taken_keeps_its_handles_counted_with_the_sender() {
        let inner: Queue<u8> = Queue::new().unwrap();
        let probe = inner.clone();
        let q: Queue<Queue<u8>> = Queue::new().unwrap();
        q.put(inner).unwrap();
        drop(q);
        // `inner` itself is gone, but the handle in the (dropped) queue's item still counts.
        assert_eq!(probe.handle.live_holders(0), 2);
    }

    #[test]
    fn items_with_hundreds_of_descriptors_travel_in_parts() {
        let q: Queue<Vec<Queue<u16>>> = Queue::new().unwrap();
        let many: Vec<Queue<u16>> = (0..120).map(|_| Queue::new().unwrap()).collect();
        q.put(many.clone()).unwrap(); // 360 descriptors: two datagrams
        let got = q.get().unwrap();
        for (i, (a, b)) in got.iter().zip(&many).enumerate() {
            a.put(i as u16).unwrap();
            assert_eq!(b.get().unwrap(), i as u16);
        }
    }

    #[test]
    fn a_full_channel_holds_up_items_with_handles_only() {
        let q: Queue<Option<Queue<u8>>> = Queue::new().unwrap();
        q.handle.channel().unwrap().shrink_for_test();
        let inner = Queue::new().unwrap();
        let mut put = 0;
        while q.put_nowait(Some(inner.clone())).is_ok() {
            put += 1;
            assert!(put < 10_000, "the socket never filled");
        }
        assert!(put > 0);
        assert!(matches!(
            q.put_timeout(Some(inner.clone()), Duration::from_millis(20)),
            Err(Error::Full)
        ));
        // Items without handles still go in; and nobody else could take: Closed, not a hang.
        q.put(None).unwrap();
        assert!(matches!(q.put(Some(inner.clone())), Err(Error::Closed)));
        // The failed puts took their counts back: ours and the `put` items' are left.
        assert_eq!(inner.handle.live_holders(0), 1 + put);
        for _ in 0..put {
            q.get().unwrap().unwrap().put(1).unwrap();
        }
        assert!(q.get().unwrap().is_none());
        q.put(Some(inner.clone())).unwrap(); // room again
        assert_eq!(inner.qsize(), put as usize);
    }

    #[test]
    fn raw_bytes_that_wrap_around_the_ring_arrive_whole() {
        // 90 KiB items in a 256 KiB ring: every few items wraps around the end of the data
        // area, and `get_bytes` hands over the buffer it was gathered into (`take_owned`).
        // Typed items after them still decode (the scratch buffer is made again).
        let q = Queue::<Vec<u8>>::new().unwrap();
        let item = |i: usize| -> Vec<u8> { (0..90 << 10).map(|j| (i + j / 7) as u8).collect() };
        let mut next = 0;
        for round in 0..4 {
            for i in 0..12 {
                q.put_bytes(&item(round * 12 + i)).unwrap();
                if i % 2 == 1 {
                    assert!(q.get_bytes().unwrap() == item(next), "item {next}");
                    next += 1;
                }
            }
            while next < (round + 1) * 12 {
                assert!(q.get_bytes().unwrap() == item(next), "item {next}");
                next += 1;
            }
            q.put(vec![round as u8; 70 << 10]).unwrap();
            assert_eq!(q.get().unwrap(), vec![round as u8; 70 << 10]);
        }
        assert_eq!(q.qsize(), 0);
    }

    #[test]
    fn raw_bytes_of_an_item_with_handles_drop_the_handles() {
        let q: Queue<(u8, Queue<u8>)> = Queue::new().unwrap();
        let inner = Queue::new().unwrap();
        q.put((9, inner.clone())).unwrap();
        q.put((10, inner.clone())).unwrap();
        let bytes = q.get_bytes().unwrap();
        assert_eq!(bytes[0], 9, "the item's bytes, without the nonce");
        assert_eq!(q.get().unwrap().0, 10, "the next item still has its handle");
    }
}
