//! An anonymous shared-memory segment: a `memfd` mapped with a fixed address-space reserve.
//!
//! Every shared object of this crate (a queue's ring, a pipe direction, a lock, a value) lives
//! in one segment. The memory belongs to the kernel file, not to a name: it is freed when the
//! last descriptor and the last mapping are gone, so a `kill -9` of every holder leaks nothing
//! and nothing ever appears in `/dev/shm`. The mapping is `reserve` bytes long from the start,
//! while the file is only as long as the object needs ([`Segment::set_len`]); growing the file
//! later needs no remapping in any process, and shrinking it gives the pages back.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use crate::sys;

/// One mapping of a shared-memory file.
#[derive(Debug)]
pub(crate) struct Segment {
    base: NonNull<u8>,
    reserve: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory that every access goes through atomics or
// through the lock-protected protocols of the objects built on it; moving the handle between
// threads changes nothing about that.
unsafe impl Send for Segment {}
// SAFETY: as above: `&Segment` only hands out the base address; synchronisation is the job of
// the objects that interpret the memory.
unsafe impl Sync for Segment {}

impl Segment {
    /// A new segment of `len` bytes (zero-filled) inside a reserve of `reserve` bytes.
    pub(crate) fn create(label: &str, len: usize, reserve: usize) -> io::Result<Segment> {
        if len > reserve {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let fd = sys::memfd(label)?;
        sys::set_len(fd.as_fd(), len)?;
        let base = sys::map_shared(fd.as_fd(), reserve)?;
        Ok(Segment { base, reserve, fd })
    }

    /// Maps a segment received from another process. Checks that the file holds at least
    /// `min_len` bytes, so reading a header can never fault.
    pub(crate) fn attach(fd: OwnedFd, reserve: usize, min_len: usize) -> io::Result<Segment> {
        let len = sys::file_len(fd.as_fd())?;
        if len < min_len || min_len > reserve {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a multiproc segment: {len} bytes, expected at least {min_len}"),
            ));
        }
        let base = sys::map_shared(fd.as_fd(), reserve)?;
        Ok(Segment { base, reserve, fd })
    }

    /// Sets the file's length (the bytes an object may touch); at most the reserve.
    pub(crate) fn set_len(&self, len: usize) -> io::Result<()> {
        if len > self.reserve {
            // Say which limit: a bare ENOMEM reads as "the machine is out of memory".
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "{len} bytes do not fit the {} bytes of address space reserved for this                      shared object",
                    self.reserve
                ),
            ));
        }
        sys::set_len(self.fd.as_fd(), len)
    }

    /// Makes the file at least `len` bytes long (never shorter): memory that some process may
    /// still address with a stale length must not go away under it (a read past the end of
    /// the file faults), so objects that shrink [`discard`](Self::discard) instead.
    pub(crate) fn grow_to(&self, len: usize) -> io::Result<()> {
        if sys::file_len(self.fd.as_fd())? >= len {
            return Ok(());
        }
        self.set_len(len)
    }

    /// Gives the memory of `len` bytes at `offset` back to the system; the range stays
    /// addressable and reads as zeros.
    pub(crate) fn discard(&self, offset: usize, len: usize) -> io::Result<()> {
        sys::punch_hole(self.fd.as_fd(), offset, len)
    }

    /// The first byte of the mapping (page aligned).
    #[inline]
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The length of the mapping (address space, not memory).
    #[inline]
    pub(crate) fn reserve(&self) -> usize {
        self.reserve
    }

    /// The file behind the mapping (to hand to another process).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: `base`/`reserve` are exactly the mapping made in `create`/`attach`, and the
        // segment is being dropped, so no reference into it outlives this call (every user
        // borrows from a live `Segment`).
        unsafe { sys::unmap(self.base, self.reserve) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_shrinks_without_remapping() {
        let seg = Segment::create("t", 4096, 1 << 30).unwrap();
        let p = seg.base().as_ptr();
        // SAFETY: the first 4096 bytes are inside the file.
        unsafe { p.write(7) };
        seg.set_len(1 << 20).unwrap();
        // SAFETY: now 1 MiB is inside the file.
        unsafe { p.add((1 << 20) - 1).write(9) };
        seg.set_len(4096).unwrap();
        // SAFETY: still inside the file.
        assert_eq!(unsafe { p.read() }, 7);
        assert!(seg.set_len(2 << 30).is_err());
    }

    #[test]
    fn attach_checks_the_length() {
        let seg = Segment::create("t", 100, 4096).unwrap();
        let fd = seg.fd().try_clone_to_owned().unwrap();
        assert!(Segment::attach(fd, 4096, 4096).is_err());
        let fd = seg.fd().try_clone_to_owned().unwrap();
        assert!(Segment::attach(fd, 4096, 64).is_ok());
    }
}
