//! Why a ring operation failed: the leaf every ring user imports (the ring, the descriptor
//! channel, queues and pipes), which imports nothing of the crate back, so that the channel
//! below the ring need not reach up into it for its error type (crossbeam-channel's `err.rs`).

/// Why a put failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PutError {
    /// No room before the deadline.
    Full,
    /// No room, and no live holder could ever make some.
    Closed,
    /// The record can never fit: larger than the ring's data area can ever be (the bytes
    /// given), or than a u32 length.
    TooLarge(u64),
    /// The `attach` hook failed (its reason); nothing was written.
    Attach(String),
    /// The ring had to grow for the record and the system refused the memory (a full tmpfs:
    /// `ENOSPC`; `ulimit -f`: `EFBIG`); its kind and message. Nothing was written.
    Io(std::io::ErrorKind, String),
}

/// Work done beside a record, under the put lock, just before the record is written: called
/// with the record's position (a 40-bit stream offset, unique among the records in the
/// ring), it may send something that must travel in the same order as the records (the
/// descriptors of handles inside an item). A record put with a hook is flagged, and
/// [`Ring::get`](crate::ring::Ring::get) hands its position to the consumer.
pub(crate) type Attach<'a> = Option<&'a mut dyn FnMut(u64) -> Result<(), PutError>>;

/// Why a get failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GetError {
    /// No item before the deadline.
    Empty,
    /// No item, and no live holder could ever put one.
    Closed,
    /// The ring held a record that makes no sense (memory written by someone else); the
    /// ring was emptied to stay usable.
    Corrupt,
}
