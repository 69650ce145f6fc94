//! Why a ring operation failed: the leaf every ring user imports (the ring, the descriptor
//! channel, queues and pipes), which imports nothing of the crate back, so that the channel
//! below the ring need not reach up into it for its error type (crossbeam-channel's `err.rs`).
//! It also maps them to the caller's [`Error`] ([`put_error`], [`get_error`]).

use multiproc_sync::Error;

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
    #[allow(
        clippy::box_collection,
        reason = "boxed to keep the error one word wide (see the size check below)"
    )]
    Attach(Box<String>),
    /// The ring had to grow for the record and the system refused the memory (a full tmpfs:
    /// `ENOSPC`; `ulimit -f`: `EFBIG`); its kind and message. Nothing was written.
    Io(Box<(std::io::ErrorKind, String)>),
}

// The rare reasons are boxed so that `Result<(), PutError>` comes back in two registers: at
// 32 bytes it was returned through memory on every put, and read back there by the caller.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Result<(), PutError>>() <= 16);

impl PutError {
    /// [`PutError::Attach`] with `why`.
    pub(crate) fn attach(why: impl Into<String>) -> PutError {
        PutError::Attach(Box::new(why.into()))
    }
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

/// The caller's error for a put of `len` bytes that failed with `e`.
pub(crate) fn put_error(e: PutError, len: usize) -> Error {
    match e {
        PutError::Full => Error::Full,
        PutError::Closed => Error::Closed,
        PutError::TooLarge(limit) => Error::Invalid(format!(
            "an item of {len} bytes is larger than this queue or pipe can hold (under {limit} \
             bytes: 4 GiB at most, and the address space it reserved when it was made, which \
             is smaller under RLIMIT_AS, `ulimit -v`)"
        )),
        PutError::Attach(why) => Error::Codec(*why),
        PutError::Io(io) => {
            let (kind, why) = *io;
            Error::Io(std::io::Error::new(
                kind,
                format!("an item of {len} bytes needed a larger ring: {why}"),
            ))
        }
    }
}

/// The caller's error for a get that failed with `e`.
pub(crate) fn get_error(e: GetError) -> Error {
    match e {
        GetError::Empty => Error::Empty,
        GetError::Closed => Error::Closed,
        GetError::Corrupt => Error::Codec(
            "the shared ring held a malformed record (memory written by someone else); \
             its items were dropped"
                .to_owned(),
        ),
    }
}
