//! A typed handle to one shared object: the counted [`Handle`] plus a cached pointer to the
//! object's state, so that a lock's fast path is one load away from its word.
//!
//! Every process-shared lock, event, value… is an `Object<S>` with its own `S: SharedState`
//! in its own segment; `Clone`, `Serialize` and `Deserialize` (handles travelling to children
//! under every start method) come from here.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ptr::NonNull;

use multiproc_sync::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::holders::{Handle, WireHandle};
use super::segment::Segment;
use super::{OBJECT_OFFSET, SharedState};

/// A counted handle to a segment holding an `S`, with the state's address cached.
pub(crate) struct Object<S: SharedState> {
    handle: Handle,
    state: NonNull<S>,
    _state: PhantomData<S>,
}

// SAFETY: the state is atomics (`SharedState`), valid for access from any thread of any
// process; the handle is Send.
unsafe impl<S: SharedState> Send for Object<S> {}
// SAFETY: as above: `&Object` only reads through `&S`, whose fields are atomics.
unsafe impl<S: SharedState> Sync for Object<S> {}

/// Nothing to wake when a handle goes: waiters of these objects check liveness themselves.
fn no_wake(_: NonNull<u8>) {}

impl<S: SharedState> Object<S> {
    /// A new object of `len` bytes in all (at least the state), zeroed, then `init`.
    pub(crate) fn create(len: usize, init: impl FnOnce(&S, &Segment)) -> Result<Self> {
        let len = len.max(OBJECT_OFFSET + std::mem::size_of::<S>());
        let reserve = len.next_multiple_of(4096);
        let handle = Handle::create::<S>(len, reserve, 0, init, no_wake)?;
        Ok(Self::from_handle(handle))
    }

    fn from_handle(handle: Handle) -> Self {
        let state = NonNull::from(handle.state::<S>());
        Object {
            handle,
            state,
            _state: PhantomData,
        }
    }

    /// The shared state.
    #[inline(always)]
    pub(crate) fn state(&self) -> &S {
        // SAFETY: `state` points into the mapping that `handle` keeps alive for as long as
        // `self` lives; `S` is atomics, valid to share.
        unsafe { self.state.as_ref() }
    }

    /// The segment (for objects whose data follows the state).
    pub(crate) fn segment(&self) -> &Segment {
        self.handle.segment()
    }

    /// Checks, after a handle arrived from elsewhere, that the file is at least `len` long
    /// (so that data past the state never faults).
    pub(crate) fn check_len(&self, len: usize) -> io::Result<()> {
        let have = crate::sys::file_len(self.segment().fd())?;
        if have < len || self.segment().reserve() < len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("shared object is {have} bytes, expected {len}"),
            ));
        }
        Ok(())
    }
}

impl<S: SharedState> Clone for Object<S> {
    fn clone(&self) -> Self {
        Self::from_handle(self.handle.clone())
    }
}

impl<S: SharedState> fmt::Debug for Object<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}

impl<S: SharedState> Serialize for Object<S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> std::result::Result<Z::Ok, Z::Error> {
        self.handle
            .send()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de, S: SharedState> Deserialize<'de> for Object<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = WireHandle::deserialize(d)?;
        Handle::receive::<S>(&wire, no_wake)
            .map(Self::from_handle)
            .map_err(serde::de::Error::custom)
    }
}

/// `Error::Invalid` for a value that cannot be used (a size out of range…).
pub(crate) fn invalid(what: impl Into<String>) -> Error {
    Error::Invalid(what.into())
}
