//! [`SharedBuffer`]: bytes allocated in shared memory, filled in place, and moved to another
//! process through a [`Queue`](crate::Queue) or [`Pipe`](crate::Pipe) by handle, so the
//! hand-off costs the same for 1 KiB and for 1 GiB.
//!
//! # Layout and lifetime
//!
//! A buffer is one segment (an anonymous `memfd`, see `shm::segment`): the holder page, a
//! page with the [`BufState`] below, then the caller's bytes, page aligned. What crosses a
//! queue is the segment's descriptor and a few words, never the bytes. The memory belongs to
//! the kernel file: it is freed when the last descriptor and mapping are gone, in whichever
//! process, `kill -9` included, and nothing appears in `/dev/shm`.
//!
//! # Why `&mut [u8]` is sound across processes: one owner at a time
//!
//! A buffer has exactly one *owner*, named by a token in the shared state (`owner`), and
//! only the owner's `SharedBuffer` value exposes the bytes:
//!
//! - Within a process, `SharedBuffer` is not `Clone`, so Rust's borrow rules make `&mut`
//!   exclusive as for a `Vec<u8>`.
//! - Sending (`Serialize`) hands out a new token for the receiver but changes nothing for
//!   the sender, which stays the owner and may keep reading and writing. Ownership moves only
//!   when the sender's value is dropped: its `Drop` stores "released by token t" (release
//!   order, after its last access), and the receiver, while it decodes, waits for exactly that
//!   word and swaps in its own token (acquire). So no two processes ever access the bytes at
//!   once, and the receiver sees every write of the sender. `queue.put(buf)` takes the buffer
//!   by value and drops it right after the put, so the receiver waits only for that drop.
//! - A second transfer of the same value (possible only through a hand-written `Serialize`
//!   that sends a reference) finds the word already taken: its receiver gets an error, never
//!   a second view. A receiver whose sender still holds its value after
//!   [`CLAIM_PATIENCE`] also gets an error (the sender sent a reference and kept the buffer).
//! - A sender that dies before dropping (killed) cannot access anything any more: the
//!   receiver takes over once `/proc` says the sender is gone.
//! - A fork child inherits a copy of the parent's value (same token, same mapping) that it
//!   must not use: every access checks that the calling process is the one that owns the
//!   value (one cached load) and panics otherwise, and the copy's drop releases nothing.
//!   Send a buffer to a child as a spawn argument or through a queue instead.

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use multiproc_sync::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::holders::{Handle, WireHandle};
use crate::shm::segment::Segment;
use crate::shm::{Kind, OBJECT_OFFSET, SharedState};
use crate::sys;

const PAGE: usize = 4096;
/// The caller's bytes start here, page aligned.
const DATA_OFFSET: usize = OBJECT_OFFSET + PAGE;
/// Set in `owner` by the drop of the owner whose token the other bits are.
const RELEASED: u64 = 1 << 63;
/// How long a receiver waits for a sender that is alive and still holds the value it sent.
const CLAIM_PATIENCE: Duration = Duration::from_secs(10);

/// The state at `OBJECT_OFFSET` of a buffer's segment.
#[repr(C)]
struct BufState {
    /// The caller's bytes (written before the segment is shared).
    len: AtomicU64,
    /// The owner's token, or `RELEASED | token` once that owner's value was dropped.
    owner: AtomicU64,
    /// The last token handed out.
    tokens: AtomicU64,
}

// SAFETY: atomics only; all-zero is valid (no owner yet: `new` sets it before sharing).
unsafe impl SharedState for BufState {
    const KIND: Kind = Kind::Buffer;
}

/// Nothing to wake when a handle goes.
fn no_wake(_: NonNull<u8>) {}

/// A byte buffer in shared memory that moves between processes by handle: fill it in place,
/// `put` it on a [`Queue`](crate::Queue) (or `send` it on a [`Connection`](crate::Connection)),
/// and the receiver gets the same memory, whatever its size, without a copy.
///
/// It derefs to `[u8]` (mutably too), which is sound because at any moment exactly one
/// value in one process owns the bytes:
///
/// - it is not `Clone`, and sending moves it: `Queue::put` and `Connection::send` take it by
///   value, and ownership passes to the receiver when the sender's value is dropped (the
///   receiver's `get` waits for that, a few microseconds at most after the `put`);
/// - a buffer sent twice (through a hand-written `Serialize` that sends a reference) reaches
///   one receiver; the other gets a decoding error, never a second view;
/// - a receiver whose sender is killed before it let go takes over (the dead cannot write);
/// - a fork child's inherited copy is not the owner: using it panics (send a buffer to a
///   child as a spawn argument or through a queue).
///
/// The memory is an anonymous `memfd` (nothing in `/dev/shm`), freed when the last process
/// holding the buffer drops it or dies, `kill -9` included. Moving it costs a descriptor
/// and a mapping, the same for 1 KiB and 1 GiB; the receiver's first touch of each page is a
/// minor page fault, and the sender's drop unmaps the pages it touched.
///
/// # Panics
///
/// Dereferencing in a fork child a buffer inherited from its parent.
///
/// ```
/// use multiproc_ipc::{Queue, SharedBuffer};
/// let mut buf = SharedBuffer::new(1 << 20)?; // 1 MiB, zeroed
/// buf[..5].copy_from_slice(b"hello");
/// let q: Queue<SharedBuffer> = Queue::new()?;
/// q.put(buf)?; // moves a handle, not the megabyte
/// let got = q.get()?; // in another process, typically
/// assert_eq!((&got[..5], got.len()), (&b"hello"[..], 1 << 20));
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct SharedBuffer {
    handle: Handle,
    data: NonNull<u8>,
    len: usize,
    /// This value's token (see `BufState::owner`).
    token: u64,
    /// The process that owns this value (a fork child's copy must not touch the bytes).
    pid: u32,
}

// SAFETY: the value owns its bytes (one owner across processes, see the module docs); moving
// it to another thread moves that ownership, as for a `Vec<u8>`. The handle is Send.
unsafe impl Send for SharedBuffer {}
// SAFETY: `&SharedBuffer` gives only `&[u8]`, and no other process writes while this value
// owns the bytes; mutation needs `&mut SharedBuffer`.
unsafe impl Sync for SharedBuffer {}

/// The most memory a buffer may ask for: RAM plus swap, from `/proc/meminfo` (a larger
/// `fallocate` of a memfd would only wake the OOM killer); `u64::MAX` if unreadable.
fn machine_memory() -> u64 {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return u64::MAX;
    };
    let kib = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_ascii_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    match (kib("MemTotal:"), kib("SwapTotal:")) {
        (Some(mem), swap) => mem.saturating_add(swap.unwrap_or(0)).saturating_mul(1024),
        _ => u64::MAX,
    }
}

impl SharedBuffer {
    /// A zeroed buffer of `len` bytes (at least 1). Its pages are reserved now, so running
    /// out of memory or past `ulimit -f` (`RLIMIT_FSIZE`) is an `Err(Io)` here (`ENOSPC`,
    /// `ENOMEM`, or kind `FileTooLarge`), never a SIGBUS at a later write; a length of 0 or
    /// beyond the machine's memory is `Err(Invalid)` / `Err(Io(OutOfMemory))`.
    ///
    /// ```
    /// let buf = multiproc_ipc::SharedBuffer::new(4096)?;
    /// assert!(buf.iter().all(|&b| b == 0));
    /// assert!(multiproc_ipc::SharedBuffer::new(0).is_err());
    /// assert!(multiproc_ipc::SharedBuffer::new(usize::MAX).is_err());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new(len: usize) -> Result<SharedBuffer> {
        if len == 0 {
            return Err(Error::Invalid(
                "a shared buffer needs a length of at least 1 byte".to_owned(),
            ));
        }
        let total = len
            .checked_add(DATA_OFFSET)
            .and_then(|t| t.checked_next_multiple_of(PAGE))
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or_else(|| {
                Error::Invalid(format!("a shared buffer of {len} bytes is too large"))
            })?;
        let memory = machine_memory();
        if len as u64 > memory {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "a shared buffer of {len} bytes is larger than this machine's memory and \
                     swap ({memory} bytes)"
                ),
            )));
        }
        // `set_len` reserves the pages (`fallocate`), checking RLIMIT_FSIZE first.
        let segment = Segment::create("multiproc-buffer", DATA_OFFSET + len, total)?;
        let handle = Handle::create_in::<BufState>(
            segment,
            0,
            |st, _| {
                st.len.store(len as u64, Ordering::Relaxed);
                st.tokens.store(1, Ordering::Relaxed);
                st.owner.store(1, Ordering::Relaxed);
            },
            no_wake,
        )?;
        Ok(Self::from_handle(handle, len, 1))
    }

    fn from_handle(handle: Handle, len: usize, token: u64) -> SharedBuffer {
        // SAFETY: the mapping is at least DATA_OFFSET + len bytes long (checked by the
        // callers), so the offset stays inside it.
        let data = unsafe { handle.segment().base().add(DATA_OFFSET) };
        SharedBuffer {
            handle,
            data,
            len,
            token,
            pid: sys::pid(),
        }
    }

    fn state(&self) -> &BufState {
        self.handle.state()
    }

    /// The number of bytes.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::SharedBuffer::new(10)?.len(), 10);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a buffer holds at least one byte.
    ///
    /// ```
    /// assert!(!multiproc_ipc::SharedBuffer::new(1)?.is_empty());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Panics in a fork child that inherited this value: its parent still owns the bytes.
    #[inline]
    fn check_owner(&self) {
        if sys::pid() != self.pid {
            not_the_owner(self.pid);
        }
    }
}

#[cold]
#[inline(never)]
fn not_the_owner(pid: u32) -> ! {
    panic!(
        "this SharedBuffer belongs to process {pid} (a fork child's inherited copy): send it \
         as a spawn argument or through a queue instead"
    )
}

impl Deref for SharedBuffer {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.check_owner();
        // SAFETY: `len` bytes from `data` lie in the file (checked when made or received) and
        // stay mapped while `self.handle` lives. No other process writes them: this value's
        // process owns the buffer until the value is dropped (module docs), and in this
        // process writes need `&mut self`.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl DerefMut for SharedBuffer {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        self.check_owner();
        // SAFETY: as in `deref`; `&mut self` makes the access exclusive in this process, and
        // ownership makes it exclusive among processes.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for SharedBuffer {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for SharedBuffer {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl Drop for SharedBuffer {
    fn drop(&mut self) {
        if sys::pid() == self.pid {
            // Hands ownership to whoever was sent a token from us (release: our writes
            // happen before its reads). A no-op if we are not the owner (cannot happen) .
            let _ = self.state().owner.compare_exchange(
                self.token,
                RELEASED | self.token,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
        // The handle drops next: the last handle anywhere frees the memory.
    }
}

impl fmt::Debug for SharedBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBuffer")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// A buffer as it travels: the handle, the sender's token, the receiver's, the sender's pid.
#[derive(Serialize, Deserialize)]
struct WireBuffer {
    handle: WireHandle,
    from: u64,
    to: u64,
    from_pid: u32,
}

impl Serialize for SharedBuffer {
    /// Sends the buffer by handle. Ownership moves to the receiver when this value is
    /// dropped (at once by `Queue::put`, which takes it by value).
    fn serialize<Z: Serializer>(&self, s: Z) -> std::result::Result<Z::Ok, Z::Error> {
        if sys::pid() != self.pid {
            return Err(serde::ser::Error::custom(
                "a SharedBuffer inherited through fork cannot be sent (its parent owns it)",
            ));
        }
        let to = self.state().tokens.fetch_add(1, Ordering::Relaxed) + 1;
        if to & RELEASED != 0 {
            return Err(serde::ser::Error::custom(
                "a SharedBuffer sent too many times",
            ));
        }
        let handle = self.handle.send().map_err(serde::ser::Error::custom)?;
        WireBuffer {
            handle,
            from: self.token,
            to,
            from_pid: self.pid,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedBuffer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let wire = WireBuffer::deserialize(d)?;
        let handle =
            Handle::receive::<BufState>(&wire.handle, no_wake).map_err(D::Error::custom)?;
        let st: &BufState = handle.state();
        let len = usize::try_from(st.len.load(Ordering::Relaxed)).map_err(D::Error::custom)?;
        let file = sys::file_len(handle.segment().fd()).map_err(D::Error::custom)?;
        match len.checked_add(DATA_OFFSET) {
            Some(need) if len > 0 && file >= need && handle.segment().reserve() >= need => {}
            _ => {
                return Err(D::Error::custom(
                    "the shared buffer does not have the size it says",
                ));
            }
        }
        claim(st, &wire).map_err(D::Error::custom)?;
        Ok(SharedBuffer::from_handle(handle, len, wire.to))
    }
}

/// Waits until the sender has released the buffer (or died), then makes `wire.to` its owner.
fn claim(st: &BufState, wire: &WireBuffer) -> std::result::Result<(), String> {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        match st.owner.compare_exchange(
            RELEASED | wire.from,
            wire.to,
            Ordering::Acquire,
            Ordering::Acquire,
        ) {
            Ok(_) => return Ok(()),
            Err(now) if now != wire.from => {
                return Err(
                    "this SharedBuffer was sent more than once and another receiver took it"
                        .to_owned(),
                );
            }
            Err(_) => {}
        }
        // The sender still owns it: normally it is dropping its value right now (a `put`
        // drops its item just after the record is committed), so yield for up to 1 ms
        // before looking at whether it lives and sleeping.
        spins += 1;
        if spins < 100 {
            std::hint::spin_loop();
            continue;
        }
        if start.elapsed() < Duration::from_millis(1) {
            std::thread::yield_now();
            continue;
        }
        if matches!(sys::task(wire.from_pid), sys::Task::Gone) {
            // A dead sender accesses nothing any more (acquire: its last writes are ours).
            if st
                .owner
                .compare_exchange(wire.from, wire.to, Ordering::Acquire, Ordering::Acquire)
                .is_ok()
            {
                return Ok(());
            }
            continue;
        }
        if start.elapsed() > CLAIM_PATIENCE {
            return Err(format!(
                "the sender (process {}) still holds the SharedBuffer it sent after {:?}: \
                 send it by value",
                wire.from_pid, CLAIM_PATIENCE
            ));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}
