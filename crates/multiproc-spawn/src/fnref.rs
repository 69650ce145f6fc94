//! Function addresses that travel to a child process running the same executable.
//!
//! This is the mechanism `spawn(f, args)` uses under `Spawn` and `ForkServer`: address-space
//! layout randomisation moves the whole binary between processes, so an address travels as its
//! offset from a fixed function. A child started by multiproc has checked at start-up that it
//! runs the identical executable, so an offset taken in the parent names the same function in
//! the child. Pools use it to send many calls to long-lived workers.
//!
//! ```
//! use multiproc_spawn::fnref::FnRef;
//! fn double(x: u32) -> u32 { x * 2 }
//! let r = FnRef::new(double as fn(u32) -> u32 as usize);
//! // SAFETY: `r` was made from a `fn(u32) -> u32` in this same executable.
//! let f = unsafe { std::mem::transmute::<usize, fn(u32) -> u32>(r.address()) };
//! assert_eq!(f(21), 42);
//! ```

use serde::{Deserialize, Serialize};

/// A function address as an offset from a fixed point of the executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FnRef(isize);

impl FnRef {
    /// The reference to the function at `address` (`f as usize`).
    pub fn new(address: usize) -> FnRef {
        FnRef(offset_of(address))
    }

    /// The function's address in this process. Only meaningful in this executable: in the
    /// process that made the reference or in a child multiproc started from it.
    pub fn address(self) -> usize {
        address_at(self.0)
    }

    /// The offset itself, to write into a message.
    pub fn offset(self) -> isize {
        self.0
    }

    /// A reference from an offset read back from a message.
    pub fn from_offset(offset: isize) -> FnRef {
        FnRef(offset)
    }
}

/// A fixed point in this executable; function addresses travel as offsets from it, because
/// address-space layout randomisation moves the whole binary between processes.
#[inline(never)]
pub(crate) fn anchor() {}

/// The address of `f` relative to [`anchor`].
pub(crate) fn offset_of(f: usize) -> isize {
    f.wrapping_sub(anchor as fn() as usize) as isize
}

/// The address at `offset` from [`anchor`] in this process.
pub(crate) fn address_at(offset: isize) -> usize {
    (anchor as fn() as usize).wrapping_add(offset as usize)
}
