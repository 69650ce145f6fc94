//! What a child reports to its parent: the outcome of its target ([`Outcome`], its encoded
//! value kept off the heap when small, [`Encoded`]) and the channel it reports through
//! ([`Report`]: its socket, or a Fork child's outcome slot).

use super::slots::Slot;
use std::os::fd::OwnedFd;

/// What running the target gave, short of a panic.
pub(crate) enum Outcome {
    /// The encoded return value and the descriptors of handles inside it.
    Value(Encoded, Vec<OwnedFd>),
    /// The arguments could not be decoded or the result encoded.
    Failed(String),
}

/// How many bytes of an encoded result stay inline, off the heap: room for numbers, small
/// tuples and short strings, while an [`Outcome`] stays small enough to move without a call to
/// `memcpy` (in a forked child, the first call to a C library routine can cost a page fault).
const INLINE: usize = 32;

/// A postcard output that keeps a small value inline and moves to the heap only when it grows
/// past [`INLINE`] bytes. A freshly forked child shares every heap page with its parent
/// copy-on-write, so each page that `malloc` writes costs it a page fault (about a microsecond
/// on a virtual machine); a small result then costs none.
pub(crate) struct Encoded {
    inline: [u8; INLINE],
    len: usize,
    heap: Option<Vec<u8>>,
}

impl Default for Encoded {
    fn default() -> Self {
        Encoded {
            inline: [0; INLINE],
            len: 0,
            heap: None,
        }
    }
}

impl Encoded {
    /// The encoded bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match &self.heap {
            Some(v) => v,
            None => &self.inline[..self.len],
        }
    }
}

impl postcard::ser_flavors::Flavor for Encoded {
    type Output = Encoded;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if let Some(v) = &mut self.heap {
            v.extend_from_slice(data);
        } else if let Some(room) = self.inline.get_mut(self.len..self.len + data.len()) {
            room.copy_from_slice(data);
            self.len += data.len();
        } else {
            let mut v = Vec::with_capacity((self.len + data.len()).max(2 * INLINE));
            v.extend_from_slice(&self.inline[..self.len]);
            v.extend_from_slice(data);
            self.heap = Some(v);
        }
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(self) -> postcard::Result<Encoded> {
        Ok(self)
    }
}

/// How a child reports its outcome to its parent.
#[derive(Debug)]
pub(crate) struct Report {
    /// Our end of the socket pair.
    pub(crate) sock: OwnedFd,
    /// A Fork child's copy of the parent's end, closed only when the child writes to the socket
    /// (so that a parent that stopped listening makes that write fail rather than block). A
    /// child that reports through its slot never pays for closing it.
    pub(crate) parents_end: Option<OwnedFd>,
    /// A Fork child's outcome slot, in a page shared with its parent (see [`super::slots`]).
    pub(crate) slot: Option<&'static Slot>,
}
