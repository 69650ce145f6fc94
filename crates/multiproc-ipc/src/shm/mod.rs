//! One shared object: a memfd segment ([`segment`]) whose header page counts who holds it
//! ([`holders`]), the state at [`OBJECT_OFFSET`] ([`object`]), and for rings the socket
//! pair their items' descriptors travel on ([`channel`]). This module owns the types every
//! kind of object shares: [`Kind`], [`SharedState`] and [`OBJECT_OFFSET`].

pub(crate) mod channel;
pub(crate) mod holders;
pub(crate) mod object;
pub(crate) mod segment;

/// Objects start after the header page.
pub(crate) const OBJECT_OFFSET: usize = 4096;

/// What a segment holds (checked when a handle arrives from another process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    /// A `Queue`, `SimpleQueue` or `JoinableQueue` ring.
    Queue = 1,
    /// A process-shared lock or other synchronisation object.
    Sync = 3,
    /// A `Value` or `Array`.
    Value = 4,
    /// A named `SharedMemory` segment (in `/dev/shm`).
    Shm = 5,
    /// A `SharedBuffer` (moved between processes by handle).
    Buffer = 6,
}

impl Kind {
    /// Whether objects of this kind have a descriptor channel beside their segment (rings:
    /// the handles inside their items travel on it, see [`channel`]).
    fn has_channel(self) -> bool {
        self == Kind::Queue
    }
}

/// The state an object keeps at [`OBJECT_OFFSET`] of its segment.
///
/// # Safety
///
/// Implementors are `#[repr(C)]` structs of atomics (and plain fields written only before the
/// segment is shared) for which all-zero bytes are a valid value, so that memory written by
/// any process at any time can be viewed as `&Self`.
pub(crate) unsafe trait SharedState: Sync {
    /// What a segment holding this state is labelled with.
    const KIND: Kind;
}
