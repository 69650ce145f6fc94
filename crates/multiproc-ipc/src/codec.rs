//! Turning items into bytes and back: `postcard` (compact, no schema, `no_std`-grade speed,
//! actively maintained), into a per-thread buffer that is reused, so a `put` allocates nothing
//! once warm.
//!
//! Encoding happens in the caller before anything touches shared memory: an item that cannot
//! be encoded is an error to the caller and nothing half-written is ever visible.

use std::cell::RefCell;

use multiproc_spawn::handoff;
use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Encodes `item` and hands the bytes to `send`.
pub(crate) fn with_encoded<T: Serialize, R>(
    item: &T,
    send: impl FnOnce(&[u8]) -> Result<R>,
) -> Result<R> {
    let mut buf = BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    buf.clear();
    let (encoded, fds) = handoff::collect_fds(|| postcard::to_extend(item, buf));
    let buf = encoded.map_err(|e| Error::Codec(e.to_string()))?;
    let result = if fds.is_empty() {
        send(&buf)
    } else {
        Err(Error::Codec(
            "multiproc handles cannot travel inside queue or pipe items yet: pass them to the \
             child in its spawn arguments"
                .to_owned(),
        ))
    };
    // Keep the buffer for the next item unless it grew huge.
    if buf.capacity() <= 1 << 20 {
        BUF.with(|b| *b.borrow_mut() = buf);
    }
    result
}

/// Decodes one item (no descriptors travel with it).
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    handoff::with_received_fds(Vec::new(), || postcard::from_bytes(bytes))
        .map_err(|e| Error::Codec(e.to_string()))
}
