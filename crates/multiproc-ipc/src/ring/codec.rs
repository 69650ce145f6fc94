//! Turning items into bytes and back: `postcard` (compact, no schema, `no_std`-grade speed,
//! actively maintained), into a per-thread buffer that is reused, so a `put` allocates nothing
//! once warm.
//!
//! Encoding happens in the caller before anything touches shared memory: an item that cannot
//! be encoded is an error to the caller and nothing half-written is ever visible.
//!
//! Handles inside an item (a queue, a lock, a pipe end…) are descriptors that must travel
//! beside the bytes. An item is first encoded as if it held none; a handle inside it finds no
//! descriptor transfer under way and fails that encoding at once, and the item is encoded
//! again inside [`handoff::collect_transfer`], where each handle hands its descriptors over
//! as it is serialized. Such an item is stored as a nonce followed by its bytes, and its
//! descriptors travel on the ring's descriptor channel (see [`crate::shm::channel`]), sent from
//! the ring's attach hook. Each handle serialized counts as held by the sender until the
//! receiver registers (see [`crate::shm::holders`]); the item is encoded inside
//! [`handoff::collect_transfer`], so if it is not delivered (the put fails), the undo that
//! each handle registered takes those counts back.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use multiproc_spawn::decode::decode_exact;
use multiproc_spawn::handoff;
use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::shm::channel::Channel;
use crate::shm::holders::Handle;
use crate::sys;

/// Bytes in front of an item that carries descriptors: the nonce that pairs the record with
/// its datagrams.
const NONCE: usize = 8;

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The descriptors of the handles inside an encoded item, and the nonce written in front of
/// its bytes.
#[derive(Debug)]
pub(crate) struct Handles {
    pub(crate) nonce: u64,
    pub(crate) fds: Vec<OwnedFd>,
}

/// A number that no other item put now carries: this process's id and a counter that starts
/// at a random point.
fn nonce() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    let n = seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) & ((1 << 40) - 1);
    (u64::from(sys::pid()) << 40) | n
}

/// Encodes `item` and hands the bytes to `send`, with the descriptors of the handles inside
/// it when there are any. When `send` fails, the handles' in-flight counts are taken back.
///
/// An item is first encoded as if it held no handle, exactly as it would be without this
/// feature: a handle inside it then finds no descriptor transfer under way and fails the
/// encoding at once, before it has counted itself as sent, and the item is encoded again
/// (`encode_with_handles`), collecting descriptors. So an item without handles takes the
/// path it took before handles could travel in items: no descriptor collection, no system
/// call, no atomic.
#[inline]
pub(crate) fn with_encoded<T: Serialize, R>(
    item: &T,
    send: impl FnOnce(&[u8], Option<&Handles>) -> Result<R>,
) -> Result<R> {
    // Small items (the common case) go through a buffer on the stack: no thread-local lookup
    // and no capacity checks on a hot path measured in tens of nanoseconds.
    let mut small = [MaybeUninit::<u8>::uninit(); SMALL];
    match postcard::serialize_with_flavor(item, StackBuf::new(&mut small)) {
        Ok(len) => return send(StackBuf::written(&small, len), None),
        Err(postcard::Error::SerializeBufferFull) => {}
        // Most likely a handle inside the item (see above).
        Err(_) => return encode_with_handles(item, send),
    }
    let mut buf = BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    buf.clear();
    let mut out = HeapBuf { buf, short: None };
    let encoded = postcard::serialize_with_flavor(item, &mut out);
    if let Some(bytes) = out.short {
        return Err(out_of_memory(bytes));
    }
    let (Ok(()), buf) = (encoded, out.buf) else {
        return encode_with_handles(item, send);
    };
    let result = send(&buf, None);
    // Keep the buffer for the next item unless it grew huge.
    if buf.capacity() <= 1 << 20 {
        BUF.with(|b| *b.borrow_mut() = buf);
    }
    result
}

/// `Err` for an item whose encoding needed `bytes` more bytes than could be allocated
/// (Python's `MemoryError`), instead of the abort of an infallible `Vec` growth.
#[cold]
fn out_of_memory(bytes: usize) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::OutOfMemory,
        format!("out of memory: cannot allocate {bytes} more bytes to encode an item"),
    ))
}

/// A postcard output into a heap buffer that grows with `try_reserve`: an item too large to
/// allocate fails the encoding with its size in `short` instead of aborting the process.
struct HeapBuf {
    buf: Vec<u8>,
    /// The bytes that could not be allocated, once that happened.
    short: Option<usize>,
}

impl HeapBuf {
    #[inline]
    fn room(&mut self, more: usize) -> postcard::Result<()> {
        if self.buf.capacity() - self.buf.len() >= more {
            return Ok(());
        }
        // Amortised doubling, as `Vec` itself grows, but fallibly.
        let want = more.max(self.buf.len());
        if self.buf.try_reserve(want).is_err() && self.buf.try_reserve_exact(more).is_err() {
            self.short = Some(more);
            return Err(postcard::Error::SerializeBufferFull);
        }
        Ok(())
    }
}

impl postcard::ser_flavors::Flavor for &mut HeapBuf {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.room(1)?;
        self.buf.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.room(bytes.len())?;
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Items that encode to at most this many bytes skip the heap buffer.
const SMALL: usize = 128;

/// A postcard output into a buffer on the stack, for [`with_encoded`]'s small items; its
/// output is the encoded length. Unlike postcard's own slice output, it copies a few bytes
/// (a varint) one by one instead of calling `memmove`, whose call was a tenth of a
/// same-thread pipe send+recv of a u64 (perf, on the 2-vCPU VM; 71 -> 65 ns without it). A
/// wider inline copy is no better: it reads the varint's bytes back just after they were
/// stored one at a time, which stalls store forwarding.
///
/// The buffer starts uninitialised: zeroing its 128 bytes was the first store of every put,
/// and it waited there for the stores of the put before (a fifth of a `u64` put between
/// processes, by `perf`).
struct StackBuf<'a> {
    buf: &'a mut [MaybeUninit<u8>; SMALL],
    len: usize,
}

impl<'a> StackBuf<'a> {
    #[inline(always)]
    fn new(buf: &'a mut [MaybeUninit<u8>; SMALL]) -> Self {
        Self { buf, len: 0 }
    }

    /// The first `len` bytes of `buf`, which a `StackBuf` over it wrote (its output).
    #[inline(always)]
    fn written(buf: &[MaybeUninit<u8>; SMALL], len: usize) -> &[u8] {
        let bytes = &buf[..len.min(SMALL)];
        // SAFETY: a `StackBuf` writes its bytes in order from the start and counts them, so
        // the first `len` (its output) are initialised; `MaybeUninit<u8>` has the layout of
        // `u8`.
        unsafe { &*(bytes as *const [MaybeUninit<u8>] as *const [u8]) }
    }
}

impl postcard::ser_flavors::Flavor for StackBuf<'_> {
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        let slot = self
            .buf
            .get_mut(self.len)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        slot.write(byte);
        self.len += 1;
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        let end = self.len + bytes.len();
        let to = self
            .buf
            .get_mut(self.len..end)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        // SAFETY: `to` is `bytes.len()` bytes of our own stack buffer, apart from `bytes`
        // (`MaybeUninit<u8>` has the layout of `u8`, and writing makes them initialised).
        unsafe { super::copy::copy_small_inline(bytes, to.as_mut_ptr().cast()) };
        self.len = end;
        Ok(())
    }

    #[inline(always)]
    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.len)
    }
}

/// [`with_encoded`] for an item whose first encoding failed: most likely it holds handles,
/// so it is encoded again inside [`handoff::collect_transfer`], behind room for a nonce. The
/// handles in it register their undo there (see `Handle::send`); it runs if `send` fails.
#[cold]
fn encode_with_handles<T: Serialize, R>(
    item: &T,
    send: impl FnOnce(&[u8], Option<&Handles>) -> Result<R>,
) -> Result<R> {
    let (encoded, fds, undo) =
        handoff::collect_transfer(|| postcard::to_extend(item, vec![0; NONCE]));
    let result = match encoded {
        // A descriptor that could not be duplicated (EMFILE) is reported as the io error it is.
        Err(e) => Err(handoff::encode_error("an item", e)),
        Ok(bytes) if fds.is_empty() => send(&bytes[NONCE..], None),
        Ok(mut bytes) => {
            let handles = Handles {
                nonce: nonce(),
                fds,
            };
            bytes[..NONCE].copy_from_slice(&handles.nonce.to_le_bytes());
            send(&bytes, Some(&handles))
        }
    };
    // Not delivered: dropping `undo` takes the handles' in-flight counts back.
    if result.is_ok() {
        undo.delivered();
    }
    result
}

/// Decodes one item of `ring`'s; `at`: the record's position when it was put with
/// descriptors (which then come from the ring's channel).
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(
    ring: &Handle,
    bytes: &[u8],
    at: Option<u64>,
) -> Result<T> {
    match at {
        None => decode_exact(bytes).map_err(Error::Codec),
        // Only here is the channel looked up: looking it up on the plain path made the
        // compiled `u64` round trip measurably slower.
        Some(at) => decode_with_handles(ring.channel(), bytes, at),
    }
}

#[cold]
fn decode_with_handles<T: DeserializeOwned>(
    channel: Option<&Channel>,
    bytes: &[u8],
    at: u64,
) -> Result<T> {
    let (nonce, bytes) = split_nonce(bytes)?;
    let channel = channel.ok_or_else(|| Error::Codec("no descriptor channel".to_owned()))?;
    let fds = channel.take(at, nonce).map_err(Error::Codec)?;
    handoff::with_received_fds(fds, || decode_exact(bytes)).map_err(Error::Codec)
}

/// An item's bytes as they were put (for `get_bytes`/`recv_bytes`): for one put with
/// descriptors, its bytes without the nonce; its descriptors are closed (the handles in it
/// are dropped unopened).
#[inline]
pub(crate) fn raw(ring: &Handle, bytes: &[u8], at: Option<u64>) -> Vec<u8> {
    match at {
        None => bytes.to_vec(),
        Some(at) => raw_with_handles(ring.channel(), bytes, at),
    }
}

#[cold]
fn raw_with_handles(channel: Option<&Channel>, bytes: &[u8], at: u64) -> Vec<u8> {
    match split_nonce(bytes) {
        Ok((nonce, rest)) => {
            if let Some(c) = channel {
                // Only the bytes are wanted: the descriptors (or their loss) do not matter.
                drop(c.take(at, nonce));
            }
            rest.to_vec()
        }
        Err(_) => bytes.to_vec(),
    }
}

fn split_nonce(bytes: &[u8]) -> Result<(u64, &[u8])> {
    match bytes.split_first_chunk::<NONCE>() {
        Some((nonce, rest)) => Ok((u64::from_le_bytes(*nonce), rest)),
        None => Err(Error::Codec(
            "a record that carries descriptors is too short".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `with_encoded` hands over, encoded through the stack buffer or the heap one.
    fn encoded<T: Serialize>(item: &T) -> Vec<u8> {
        with_encoded(item, |bytes, handles| {
            assert!(handles.is_none());
            Ok(bytes.to_vec())
        })
        .unwrap()
    }

    #[test]
    fn stack_buffer_encodes_as_postcard_does_on_both_sides_of_its_size() {
        // Strings around the 16-byte inline-copy cut and the 128-byte stack buffer's end
        // (a length varint of 1 or 2 bytes in front), and varints of every width.
        for len in (0..=40).chain(100..=140).chain([1000, 100_000]) {
            let s: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            assert_eq!(encoded(&s), postcard::to_allocvec(&s).unwrap(), "len {len}");
        }
        for shift in 0..64 {
            let v = (1u64 << shift) | 1;
            assert_eq!(encoded(&v), postcard::to_allocvec(&v).unwrap());
        }
        let nested = (7u8, vec![1u32 << 20; 30], "tail", Some(-5i64));
        assert_eq!(encoded(&nested), postcard::to_allocvec(&nested).unwrap());
    }
}
