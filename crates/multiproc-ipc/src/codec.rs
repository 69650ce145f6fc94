//! Turning items into bytes and back: `postcard` (compact, no schema, `no_std`-grade speed,
//! actively maintained), into a per-thread buffer that is reused, so a `put` allocates nothing
//! once warm.
//!
//! Encoding happens in the caller before anything touches shared memory: an item that cannot
//! be encoded is an error to the caller and nothing half-written is ever visible.

use std::cell::RefCell;

use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Encodes `item` and hands the bytes to `send`.
///
/// A multiproc handle inside an item cannot travel this way yet (its descriptor would need a
/// socket beside the ring): its `Serialize` finds no descriptor transfer under way and fails,
/// which surfaces here as `Err(Codec)` naming the reason, before anything is written.
pub(crate) fn with_encoded<T: Serialize, R>(
    item: &T,
    send: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<R> {
    // Small items (the common case) go through a buffer on the stack: no thread-local lookup
    // and no capacity checks on a hot path measured in tens of nanoseconds.
    let mut small = [0u8; SMALL];
    match postcard::to_slice(item, &mut small) {
        Ok(bytes) => return send(bytes),
        Err(postcard::Error::SerializeBufferFull) => {}
        Err(e) => return Err(codec_error(e)),
    }
    let mut buf = BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    buf.clear();
    let buf = postcard::to_extend(item, buf).map_err(codec_error)?;
    let result = send(&buf);
    // Keep the buffer for the next item unless it grew huge.
    if buf.capacity() <= 1 << 20 {
        BUF.with(|b| *b.borrow_mut() = buf);
    }
    result
}

/// Items that encode to at most this many bytes skip the heap buffer.
const SMALL: usize = 128;

#[cold]
fn codec_error(e: postcard::Error) -> Error {
    Error::Codec(format!(
        "{e} (a multiproc handle inside a queue or pipe item cannot travel: pass handles \
         to a child in its spawn arguments)"
    ))
}

/// Decodes one item.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Codec(e.to_string()))
}
