//! [`Pipe`] and [`Connection`]: Python's `multiprocessing.Pipe`, as one shared-memory ring per
//! direction.
//!
//! Each direction's ring counts its holders in two roles, writer and reader; a connection end
//! holds the ring it sends on as writer and the ring it receives from as reader. A `recv` that
//! finds its ring empty and no live writer answers `Err(Closed)` (Python's `EOFError`), a
//! `send` with no reader left answers `Err(Closed)` (`BrokenPipeError`).

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use multiproc_sync::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{get_error, put_error};
use crate::ring::codec::{self, Handles};
use crate::ring::ops::{self, new_ring, put_with_handles, receive_ring, take_record};
use crate::ring::{GetError, Ring};
use crate::shm::holders::{Handle, WireHandle};
use crate::wait::Wait;

const WRITER: usize = 0;
const READER: usize = 1;
/// How often (in items left unread) a sender checks that its reader still lives.
const CHECK_READER_EVERY: u64 = 64;

/// Makes connected pairs of [`Connection`]s (Python's `Pipe()`).
#[derive(Debug)]
pub struct Pipe;

impl Pipe {
    /// Two ends that both send and receive (Python's `Pipe()`).
    ///
    /// ```
    /// let (a, b) = multiproc_ipc::Pipe::duplex::<String>()?;
    /// a.send("ping".into())?;
    /// assert_eq!(b.recv()?, "ping");
    /// b.send("pong".into())?;
    /// assert_eq!(a.recv()?, "pong");
    /// drop(b);
    /// assert!(matches!(a.recv(), Err(multiproc_sync::Error::Closed)));
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn duplex<T>() -> Result<(Connection<T>, Connection<T>)> {
        let a_to_b = new_ring(0, 0, WRITER)?;
        let b_to_a = new_ring(0, 0, READER)?;
        let a = Connection::new(
            Some(a_to_b.with_role(WRITER)?),
            Some(b_to_a.with_role(READER)?),
        );
        let b = Connection::new(
            Some(b_to_a.with_role(WRITER)?),
            Some(a_to_b.with_role(READER)?),
        );
        drop((a_to_b, b_to_a));
        Ok((a, b))
    }

    /// A one-way pipe: `(reader, writer)` (Python's `Pipe(duplex=False)`).
    ///
    /// ```
    /// let (rx, tx) = multiproc_ipc::Pipe::simplex::<u64>()?;
    /// tx.send(7)?;
    /// assert_eq!(rx.recv()?, 7);
    /// assert!(rx.send(1).is_err()); // the reader cannot send
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn simplex<T>() -> Result<(Connection<T>, Connection<T>)> {
        let ring = new_ring(0, 0, WRITER)?;
        let rx = Connection::new(None, Some(ring.with_role(READER)?));
        Ok((rx, Connection::new(Some(ring), None)))
    }
}

/// One end of a [`Pipe`]. Messages never merge or split; any size works.
pub struct Connection<T> {
    tx: Option<Handle>,
    rx: Option<Handle>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Connection<T> {
    fn new(tx: Option<Handle>, rx: Option<Handle>) -> Self {
        Connection {
            tx,
            rx,
            _items: PhantomData,
        }
    }

    fn tx(&self) -> Result<&Handle> {
        self.tx
            .as_ref()
            .ok_or_else(|| Error::Invalid("this end of a simplex pipe only receives".to_owned()))
    }

    fn rx(&self) -> Result<&Handle> {
        self.rx
            .as_ref()
            .ok_or_else(|| Error::Invalid("this end of a simplex pipe only sends".to_owned()))
    }

    fn send_raw(&self, bytes: &[u8], handles: Option<&Handles>) -> Result<()> {
        let tx = self.tx()?;
        tx.touch();
        let ring: &Ring = tx.state();
        // Cheap on every send: a dropped reader leaves no count at all. A killed one still
        // has its count, so look at liveness now and then while items pile up unread.
        // The hint only grows until the sender next reloads `head`; look at the true backlog
        // before paying for the `/proc` reads of a liveness check.
        let backlog = ring.backlog_hint();
        let reader_gone = if backlog > 0
            && backlog.is_multiple_of(CHECK_READER_EVERY)
            && ring.len() >= CHECK_READER_EVERY
        {
            !tx.others_alive(READER)
        } else {
            tx.count_any(READER) == 0
        };
        if reader_gone {
            return Err(Error::Closed);
        }
        match handles {
            None => ring
                .put(tx.segment(), bytes, None, None, || tx.others_alive(READER))
                .map_err(|e| put_error(e, bytes.len())),
            Some(h) => put_with_handles(tx, bytes, h, None, || tx.others_alive(READER)),
        }
    }

    /// Receives one message and gives it to `take` with the ring and, when the message
    /// carries descriptors, its position (see [`codec::decode`]).
    #[inline]
    fn recv_until<R>(
        &self,
        deadline: Option<Instant>,
        take: impl FnOnce(&Handle, &[u8], Option<u64>) -> R,
    ) -> Result<R> {
        let rx = self.rx()?;
        let take = |bytes: &[u8], at| take(rx, bytes, at);
        take_record(rx, deadline, WRITER, take).map_err(|e| match e {
            GetError::Empty => Error::Timeout,
            e => get_error(e),
        })
    }

    /// Receives one message's raw bytes as a `Vec` of their own (see [`ops::take_owned`]).
    fn recv_owned(&self, deadline: Option<Instant>) -> Result<Vec<u8>> {
        let rx = self.rx()?;
        ops::take_owned(rx, deadline, WRITER).map_err(|e| match e {
            GetError::Empty => Error::Timeout,
            e => get_error(e),
        })
    }

    /// Sends raw bytes as one message (Python's `send_bytes`).
    pub fn send_bytes(&self, buf: &[u8]) -> Result<()> {
        self.send_raw(buf, None)
    }

    /// Receives one whole message as raw bytes (Python's `recv_bytes`).
    ///
    /// ```
    /// let (a, b) = multiproc_ipc::Pipe::duplex::<()>()?;
    /// a.send_bytes(b"")?;
    /// a.send_bytes(&[1, 2, 3])?;
    /// assert_eq!(b.recv_bytes()?, b"");
    /// assert_eq!(b.recv_bytes()?, [1, 2, 3]);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        self.recv_owned(None)
    }

    /// Receives one message's raw bytes, waiting at most `timeout`; `Err(Timeout)` after that.
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>> {
        self.recv_owned(Instant::now().checked_add(timeout))
    }

    /// Whether a message can be received without waiting, waiting at most `timeout` for one
    /// (`None`: as long as it takes; `Some(Duration::ZERO)`: just look). Like Python, answers
    /// `true` also when the other end is gone (then `recv` answers `Err(Closed)` at once).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = multiproc_ipc::Pipe::duplex::<u8>()?;
    /// assert!(!b.poll(Some(Duration::ZERO))?);
    /// a.send(1)?;
    /// assert!(b.poll(Some(Duration::from_secs(1)))?);
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        let rx = self.rx()?;
        let ring: &Ring = rx.state();
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        Ok(
            match ring.wait_ready(rx.segment(), deadline, || rx.others_alive(WRITER)) {
                Wait::Ready | Wait::Closed => true,
                Wait::TimedOut => false,
            },
        )
    }
}

impl<T: Serialize + DeserializeOwned> Connection<T> {
    /// Sends `item`; `Err(Closed)` when the other end is gone. Never blocks (the pipe grows),
    /// except that an item with handles inside (queues, locks, pipe ends…, which travel as in
    /// a [`Queue`](crate::Queue): see "Handles inside items" there) waits while some 550 such
    /// items lie unread.
    pub fn send(&self, item: T) -> Result<()> {
        codec::with_encoded(&item, |b, h| self.send_raw(b, h))
    }

    /// Receives the next message, waiting as long as it takes; `Err(Closed)` once the other end
    /// is dropped or its process died and nothing is left to read.
    pub fn recv(&self) -> Result<T> {
        self.recv_until(None, codec::decode::<T>)?
    }

    /// [`recv`](Self::recv) for async code: the same answers, without blocking the executor
    /// (the task is parked on the pipe's futex word by a shared waiter thread; see
    /// [`Queue::get_async`](crate::Queue::get_async)).
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
    /// let (a, b) = multiproc_ipc::Pipe::duplex()?;
    /// std::thread::spawn(move || a.send("ping".to_string()));
    /// assert_eq!(block_on(b.recv_async())?, "ping");
    /// assert!(matches!(block_on(b.recv_async()), Err(multiproc_sync::Error::Closed)));
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    #[cfg(not(multiproc_loom))]
    pub async fn recv_async(&self) -> Result<T> {
        let rx = self.rx()?;
        ops::take_record_async(rx, WRITER, |b, at| codec::decode::<T>(rx, b, at))
            .await
            .map_err(get_error)?
    }

    /// Receives the next message, waiting at most `timeout`; `Err(Timeout)` after that.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        self.recv_until(Instant::now().checked_add(timeout), codec::decode::<T>)?
    }
}

impl<T> Clone for Connection<T> {
    fn clone(&self) -> Self {
        Connection::new(self.tx.clone(), self.rx.clone())
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("sends", &self.tx.is_some())
            .field("receives", &self.rx.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct WireConnection {
    tx: Option<WireHandle>,
    rx: Option<WireHandle>,
}

impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let send = |h: &Option<Handle>| h.as_ref().map(Handle::send).transpose();
        WireConnection {
            tx: send(&self.tx).map_err(serde::ser::Error::custom)?,
            rx: send(&self.rx).map_err(serde::ser::Error::custom)?,
        }
        .serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = WireConnection::deserialize(d)?;
        let get = |w: &Option<WireHandle>| w.as_ref().map(receive_ring).transpose();
        Ok(Connection::new(
            get(&wire.tx).map_err(serde::de::Error::custom)?,
            get(&wire.rx).map_err(serde::de::Error::custom)?,
        ))
    }
}
