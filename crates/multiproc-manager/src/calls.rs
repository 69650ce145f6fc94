//! The bytes of a proxy call: a method code, an object id, then length-prefixed blobs (each a
//! postcard-encoded value the server keeps as it is, never decoding user types), and the
//! answer: a status byte and the same kind of blobs.
//!
//! Encoded by hand rather than as one serde struct so that a key or value is encoded once, by
//! the client, and stored by the server as the very bytes it received.

use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Method codes.
pub(crate) mod op {
    pub(crate) const CREATE: u8 = 1;
    pub(crate) const SHUTDOWN: u8 = 2;
    pub(crate) const LEN: u8 = 3;
    pub(crate) const CLEAR: u8 = 4;
    pub(crate) const DICT_GET: u8 = 10;
    pub(crate) const DICT_INSERT: u8 = 11;
    pub(crate) const DICT_REMOVE: u8 = 12;
    pub(crate) const DICT_CONTAINS: u8 = 13;
    pub(crate) const DICT_KEYS: u8 = 14;
    pub(crate) const DICT_VALUES: u8 = 15;
    pub(crate) const DICT_ITEMS: u8 = 16;
    pub(crate) const DICT_UPDATE: u8 = 17;
    pub(crate) const DICT_UPDATE_WITH: u8 = 18;
    pub(crate) const LIST_PUSH: u8 = 20;
    pub(crate) const LIST_POP: u8 = 21;
    pub(crate) const LIST_GET: u8 = 22;
    pub(crate) const LIST_SET: u8 = 23;
    pub(crate) const LIST_EXTEND: u8 = 24;
    pub(crate) const LIST_TO_VEC: u8 = 25;
    pub(crate) const LIST_REVERSE: u8 = 26;
    pub(crate) const LIST_INSERT: u8 = 27;
    pub(crate) const VALUE_GET: u8 = 30;
    pub(crate) const VALUE_SET: u8 = 31;
    pub(crate) const USER_CALL: u8 = 40;
    pub(crate) const CLIENTS: u8 = 50;
}

/// Object kinds for `CREATE`.
pub(crate) mod kind {
    pub(crate) const DICT: u8 = 0;
    pub(crate) const LIST: u8 = 1;
    pub(crate) const NAMESPACE: u8 = 2;
    pub(crate) const VALUE: u8 = 3;
    pub(crate) const USER: u8 = 4;
}

/// Answer status bytes.
pub(crate) const OK: u8 = 0;
pub(crate) const ERR: u8 = 1;

pub(crate) fn codec_error(e: postcard::Error) -> Error {
    Error::Codec(e.to_string())
}

/// Appends `v` as a LEB128 varint.
#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends raw bytes with a length prefix.
#[inline]
pub(crate) fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// Appends `v` encoded, with a length prefix.
#[inline]
pub(crate) fn put_value<T: Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) -> Result<()> {
    let start = buf.len();
    // Reserve one prefix byte (most blobs are shorter than 128 bytes), encode, fix up.
    buf.push(0);
    let mut out = std::mem::take(buf);
    out = postcard::to_extend(v, out).map_err(|e| {
        if matches!(e, postcard::Error::SerdeSerCustom) {
            // A `Serialize` refused: almost always a handle that holds descriptors (a
            // shared-memory queue, pipe, lock or value, a proxy of another manager), which a
            // manager cannot keep.
            Error::Codec(
                "this value cannot be stored in a manager object: it holds a handle that \
                 cannot be stored there (a shared-memory Queue, Pipe, Lock, Event or Value, or \
                 a proxy of another manager; pass such handles to processes directly, while \
                 proxies of this manager can be stored), or its own Serialize refused"
                    .to_owned(),
            )
        } else {
            codec_error(e)
        }
    })?;
    *buf = out;
    let len = buf.len() - start - 1;
    if len < 0x80 {
        buf[start] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        buf.splice(start..start + 1, prefix);
    }
    Ok(())
}

/// Reads blobs and varints back from a message.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn short() -> Error {
        Error::Codec("manager message is truncated".to_owned())
    }

    pub(crate) fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.buf.split_first().ok_or_else(Self::short)?;
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::Codec("manager message has a bad varint".to_owned()))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = usize::try_from(self.varint()?).map_err(|_| Self::short())?;
        if n > self.buf.len() {
            return Err(Self::short());
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn value<T: DeserializeOwned>(&mut self) -> Result<T> {
        decode(self.bytes()?)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Decodes one whole postcard value.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    multiproc_spawn::decode::decode_exact(b).map_err(Error::Codec)
}

/// Encodes one postcard value.
#[inline]
pub(crate) fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(codec_error)
}

/// An error as it travels from the server.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum WireError {
    Empty,
    Full,
    Timeout,
    Closed,
    Codec(String),
    Invalid(String),
    TaskFailed(String),
    /// An `Error::Io`: its OS error number (0 when it has none) and its text. Last, so that
    /// the other variants keep their tags.
    Io(i32, String),
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> Self {
        match e {
            Error::Empty => WireError::Empty,
            Error::Full => WireError::Full,
            Error::Timeout => WireError::Timeout,
            Error::Closed => WireError::Closed,
            Error::Codec(m) => WireError::Codec(m.clone()),
            Error::Invalid(m) => WireError::Invalid(m.clone()),
            Error::TaskFailed { message } => WireError::TaskFailed(message.clone()),
            Error::Io(e) => WireError::Io(e.raw_os_error().unwrap_or(0), e.to_string()),
            other => WireError::Invalid(other.to_string()),
        }
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Empty => Error::Empty,
            WireError::Full => Error::Full,
            WireError::Timeout => Error::Timeout,
            WireError::Closed => Error::Closed,
            WireError::Codec(m) => Error::Codec(m),
            WireError::Invalid(m) => Error::Invalid(m),
            WireError::TaskFailed(message) => Error::TaskFailed { message },
            WireError::Io(code, message) => {
                // The OS error number gives the kind (`EMFILE`…); the text says the rest.
                let kind = match code {
                    0 => std::io::ErrorKind::Other,
                    c => std::io::Error::from_raw_os_error(c).kind(),
                };
                Error::Io(std::io::Error::new(kind, message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_short_and_long() {
        let mut buf = Vec::new();
        put_value(&mut buf, &7u64).unwrap();
        let long = "x".repeat(300);
        put_value(&mut buf, &long).unwrap();
        put_varint(&mut buf, u64::MAX);
        let mut r = Reader::new(&buf);
        assert_eq!(r.value::<u64>().unwrap(), 7);
        assert_eq!(r.value::<String>().unwrap(), long);
        assert_eq!(r.varint().unwrap(), u64::MAX);
        assert!(r.is_empty());
        assert!(r.bytes().is_err());
    }

    #[test]
    fn an_io_error_keeps_its_os_error_kind_across_the_wire() {
        let sent = Error::Io(std::io::Error::from_raw_os_error(crate::sys::EMFILE));
        let got =
            Error::from(decode::<WireError>(&encode(&WireError::from(&sent)).unwrap()).unwrap());
        match got {
            Error::Io(e) => {
                assert_eq!(
                    e.kind(),
                    std::io::Error::from_raw_os_error(crate::sys::EMFILE).kind()
                );
                assert!(e.to_string().contains("Too many open files"), "{e}");
            }
            other => panic!("not an i/o error: {other:?}"),
        }
    }
}
