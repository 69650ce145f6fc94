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
//! again inside [`handoff::collect_fds`], where each handle hands its descriptors over as it
//! is serialized. Such an item is stored as a nonce followed by its bytes, and its
//! descriptors travel on the ring's descriptor channel (see [`crate::channel`]), sent from
//! the ring's attach hook. Each handle serialized counts as held by the sender until the
//! receiver registers (see [`crate::holders`]); if the item is not delivered (the put fails),
//! those counts are taken back here.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use multiproc_spawn::handoff;
use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::channel::Channel;
use crate::holders::{Handle, Sent};
use crate::sys;

/// Bytes in front of an item that carries descriptors: the nonce that pairs the record with
/// its datagrams.
const NONCE: usize = 8;

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// While an item with handles is being encoded: the handles serialized in it (see
    /// [`note_sent`]).
    static SENT: RefCell<Option<Vec<Sent>>> = const { RefCell::new(None) };
}

/// The descriptors of the handles inside an encoded item, and the nonce written in front of
/// its bytes.
#[derive(Debug)]
pub(crate) struct Handles {
    pub(crate) nonce: u64,
    pub(crate) fds: Vec<OwnedFd>,
}

/// Called by a handle's `Serialize` once it counts as sent: if an item is being encoded on
/// this thread, remembers the handle so that its count can be taken back if the item is not
/// delivered (otherwise the handle travels in spawn arguments, and `sent` comes straight back).
pub(crate) fn note_sent(sent: Sent) -> Option<Sent> {
    SENT.with(|s| match s.borrow_mut().as_mut() {
        Some(list) => {
            list.push(sent);
            None
        }
        None => Some(sent),
    })
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
    let mut small = [0u8; SMALL];
    match postcard::to_slice(item, &mut small) {
        Ok(bytes) => return send(bytes, None),
        Err(postcard::Error::SerializeBufferFull) => {}
        // Most likely a handle inside the item (see above).
        Err(_) => return encode_with_handles(item, send),
    }
    let mut buf = BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    buf.clear();
    let Ok(buf) = postcard::to_extend(item, buf) else {
        return encode_with_handles(item, send);
    };
    let result = send(&buf, None);
    // Keep the buffer for the next item unless it grew huge.
    if buf.capacity() <= 1 << 20 {
        BUF.with(|b| *b.borrow_mut() = buf);
    }
    result
}

/// Items that encode to at most this many bytes skip the heap buffer.
const SMALL: usize = 128;

/// [`with_encoded`] for an item whose first encoding failed: most likely it holds handles,
/// so it is encoded again inside [`handoff::collect_fds`], behind room for a nonce.
#[cold]
fn encode_with_handles<T: Serialize, R>(
    item: &T,
    send: impl FnOnce(&[u8], Option<&Handles>) -> Result<R>,
) -> Result<R> {
    let outer = SENT.with(|s| s.borrow_mut().replace(Vec::new()));
    let (encoded, fds) = handoff::collect_fds(|| postcard::to_extend(item, vec![0; NONCE]));
    let sent = SENT.with(|s| std::mem::replace(&mut *s.borrow_mut(), outer));
    let result = match encoded {
        Err(e) => Err(Error::Codec(e.to_string())),
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
    if result.is_err() {
        sent.into_iter().flatten().for_each(Sent::take_back);
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
        None => postcard::from_bytes(bytes).map_err(|e| Error::Codec(e.to_string())),
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
    handoff::with_received_fds(fds, || postcard::from_bytes(bytes))
        .map_err(|e| Error::Codec(e.to_string()))
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
