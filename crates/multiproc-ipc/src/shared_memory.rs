//! Named shared memory that unrelated processes open by name (Python's
//! `multiprocessing.shared_memory`), which never outlives its last user.
//!
//! ```
//! use multiproc_ipc::shared_memory::SharedMemory;
//! let a = SharedMemory::create(None, 4096)?; // a generated name
//! let b = SharedMemory::open(a.name())?;     // as another process would
//! a.write_at(0, b"hello")?;
//! let mut buf = [0; 5];
//! b.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hello");
//! a.unlink()?;
//! assert!(b.unlink().is_err()); // already unlinked
//! # Ok::<(), multiproc_ipc::Error>(())
//! ```
//!
//! # Lifetime of a named segment
//!
//! A segment is a file `/dev/shm/<name>`. Its name stays until [`SharedMemory::unlink`], or
//! until no handle to it is left in any live process, whichever comes first; its memory
//! stays until the last mapping goes. That is how it differs from Python, whose resource
//! tracker unlinks a segment when its *creator* exits, even while others still use it, and
//! whose segments leak when the tracker itself is killed.
//!
//! - **Holders.** Page 0 of the file is the holder table that every multiproc segment has
//!   (one slot per process: its pid and handle count, updated by one compare-and-swap).
//!   Page 1 holds the state below; the caller's bytes start at page 2 (page aligned).
//! - **Last one out.** Dropping a handle takes the segment's robust lock and, if no live
//!   process holds a handle any more and it is not unlinked yet, unlinks the name. `open`
//!   registers under the same lock and gives up (retrying the name) if it finds the segment
//!   unlinked, so an `open` racing with the last drop either keeps the segment alive or
//!   sees it gone, never a name that points at a segment nobody will remove.
//! - **Across pid namespaces.** The holder table's pids mean something only in the pid
//!   namespace of whoever reads them (a container sharing `/dev/shm`, `--ipc=host`, sees
//!   other pids). So every descriptor that a process opens on the file (by `create` or
//!   `open`) also keeps a shared open-file-description lock on it (`F_OFD_SETLK`) while it is
//!   open; handles sent to another process carry the same description, so they keep it too,
//!   and the kernel drops it when the last such descriptor closes, `kill -9` included. The
//!   state records the creator's pid namespace, and a holder from another one marks the
//!   segment `MIXED`. In a mixed segment (and for a sweeper from another namespace) the
//!   lock decides: a drop unlinks only if its own lock is the only one (it converts it to an
//!   exclusive lock for a moment); otherwise the pids decide, as before (a fork child's
//!   inherited descriptor that it never used keeps the lock, not the segment).
//! - **`kill -9`.** A process killed holding the last handles runs no code, so `create` and
//!   `open` first sweep `/dev/shm`: files of this user (mode 0600) that carry this header,
//!   are not being set up, and that nobody holds (the exclusive lock is free, or, in an
//!   unmixed segment of the sweeper's own namespace, every holder pid is dead) are unlinked.
//!   A sweep costs one `statx` per entry of `/dev/shm` and more for this user's segments,
//!   so where it saw more than 256 entries, `create` and `open` skip the next ones for
//!   250 µs per entry, some fifty times its cost (20,000 entries take some 0.1 s; the next
//!   sweep waits 5 s).
//!   [`sweep`] runs the pass on demand. Until some multiproc process runs again, such a file
//!   stays: nothing else can remove it.
//! - **Failed creation.** The file's pages are reserved when it is made (`fallocate`), so a
//!   full `/dev/shm` is `Err(Io)` with `ENOSPC` from `create`, and a size past `RLIMIT_FSIZE`
//!   (`ulimit -f`) is `Err(Io)` of kind `FileTooLarge` (`EFBIG`), never a SIGBUS at the first
//!   write or a SIGXFSZ; the half-made file is unlinked before `create` returns.
//! - **Other users.** `open` refuses (`Err(Io(PermissionDenied))`) a file that is not owned
//!   by the caller's effective uid, that other users may read or write, or that is a
//!   symbolic link (checked on the opened descriptor: nothing can be swapped in between).
//!   Its length is checked against the size the segment records before it is used, so a
//!   short file cannot fault the opener; a file shortened afterwards faults its users, but
//!   only its owner, the same user, can do that.
//! - **Name reuse.** The state records the file's device and inode; unlinking checks that
//!   the name still refers to this file, so a stale handle never removes a successor.
//!
//! Limits: a dead holder's pid reused by an unrelated process keeps an unmixed segment alive
//! until that process exits (pids cycle through `pid_max` first); in a mixed segment, a fork
//! child's inherited descriptor (never used) keeps it until the child exits or execs
//! (descriptors are close-on-exec), and a handle received from another namespace marks the
//! segment mixed just after it registers. Files of other users are never touched. Python's
//! `SharedMemory` cannot open these segments meaningfully (its view would start at the
//! header page).
//!
//! # Shared state (page 1)
//!
//! | word | meaning |
//! | --- | --- |
//! | `lock` | robust lock: registration by `open` against the last drop's unlink |
//! | `flags` | bit 0: the name was unlinked (never set back); bit 1: `MIXED` (a holder from another pid namespace than the creator's) |
//! | `size` | the caller's bytes (written before the name is usable) |
//! | `dev`, `ino` | the file's identity, to recognise it by name |
//! | `name_len`, `name` | the name, for the last holder to unlink |
//! | `pidns` | the creator's pid namespace (see `sys::pid_namespace`) |

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use multiproc_sync::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::holders::{self, Handle, WireHandle};
use crate::shm::segment::Segment;
use crate::shm::{Kind, OBJECT_OFFSET, SharedState};
use crate::sys;
use crate::wait::robust::RobustLock;
use crate::wait::robust::lock_forever;

const PAGE: usize = 4096;
/// The caller's bytes start here, page aligned.
const DATA_OFFSET: usize = OBJECT_OFFSET + PAGE;
const NAME_MAX: usize = 250;
const UNLINKED: u32 = 1;
const MIXED: u32 = 2;

#[repr(C)]
struct ShmState {
    lock: RobustLock,
    flags: AtomicU32,
    size: AtomicU64,
    dev: AtomicU64,
    ino: AtomicU64,
    name_len: AtomicU32,
    name: [AtomicU8; 256],
    pidns: AtomicU64,
}

const _: () = assert!(OBJECT_OFFSET + std::mem::size_of::<ShmState>() <= DATA_OFFSET);

// SAFETY: atomics only; all-zero is an unlocked, unnamed state (filled before the name is
// usable: `create` holds the lock until it has registered).
unsafe impl SharedState for ShmState {
    const KIND: Kind = Kind::Shm;
}

impl ShmState {
    fn name(&self) -> String {
        let len = (self.name_len.load(Ordering::Relaxed) as usize).min(self.name.len());
        let bytes: Vec<u8> = self.name[..len]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn unlinked(&self) -> bool {
        self.flags.load(Ordering::Acquire) & UNLINKED != 0
    }

    /// Whether the holder table's pids are enough to tell who holds the segment, as seen from
    /// this process: every holder is in the creator's pid namespace, and so are we.
    fn pids_suffice(&self) -> bool {
        let ns = self.pidns.load(Ordering::Relaxed);
        self.flags.load(Ordering::Acquire) & MIXED == 0 && ns != 0 && ns == sys::pid_namespace()
    }

    /// Marks the segment mixed if this process (about to hold it, or holding it) is in
    /// another pid namespace than its creator.
    fn note_namespace(&self) {
        let ns = self.pidns.load(Ordering::Relaxed);
        if ns == 0 || ns != sys::pid_namespace() {
            self.flags.fetch_or(MIXED, Ordering::AcqRel);
        }
    }

    /// Whether `/dev/shm/<name>` still names this file.
    fn named_here(&self, name: &str) -> bool {
        sys::shm_id(name).is_ok_and(|(dev, ino, _)| {
            dev == self.dev.load(Ordering::Relaxed) && ino == self.ino.load(Ordering::Relaxed)
        })
    }

    /// Under the lock: unlinks the name if it still names this file; marks it unlinked.
    /// `Ok(false)` when the name was gone already (or names another file now).
    fn remove_name(&self) -> io::Result<bool> {
        let name = self.name();
        let removed = if self.named_here(&name) {
            sys::shm_unlink(&name)?;
            true
        } else {
            false
        };
        self.flags.fetch_or(UNLINKED, Ordering::Release);
        Ok(removed)
    }
}

/// Releases a state's lock when dropped.
struct Held<'a>(&'a ShmState);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SAFETY: a `Held` exists only while its thread holds the lock.
        unsafe { self.0.lock.unlock() }
    }
}

fn hold(st: &ShmState) -> Held<'_> {
    lock_forever(&st.lock);
    Held(st)
}

/// Called after every handle drop: the last holder anywhere unlinks the name.
fn release_named(base: NonNull<u8>) {
    // SAFETY: every `SharedMemory` handle maps a segment with a `ShmState` at OBJECT_OFFSET,
    // still mapped while `on_release` runs.
    let st = unsafe { base.add(OBJECT_OFFSET).cast::<ShmState>().as_ref() };
    if st.unlinked() {
        return;
    }
    let _held = hold(st);
    // SAFETY: as above: the header page is mapped.
    let pids_say_none = !st.unlinked() && !unsafe { holders::anyone_alive_at(base) };
    if pids_say_none && (st.pids_suffice() || nobody_else_holds(st)) {
        let _ = st.remove_name();
    }
}

/// Whether no open file description but ours holds the file (see the module docs): the
/// holder table's pids cannot see holders in another pid namespace, this can. Converts our
/// shared lock to an exclusive one, which succeeds only when no other description holds a
/// lock, then back. Without a mapping of ours to ask (not expected), the holder table decides.
fn nobody_else_holds(st: &ShmState) -> bool {
    let (dev, ino) = (
        st.dev.load(Ordering::Relaxed),
        st.ino.load(Ordering::Relaxed),
    );
    holders::with_mapped_fd(dev, ino, |fd| {
        match sys::ofd_lock(fd, sys::OfdLock::Write, false) {
            Ok(true) => {
                // A downgrade never conflicts.
                let _ = sys::ofd_lock(fd, sys::OfdLock::Read, false);
                true
            }
            _ => false,
        }
    })
    .unwrap_or(true)
}

/// A named shared-memory segment (Python's `SharedMemory`): `size` bytes that any process of
/// this user can open by name, zeroed at creation.
///
/// The bytes are plain shared memory: every process may write them at any time, so the safe
/// views copy ([`read_at`](Self::read_at), [`write_at`](Self::write_at)) or use atomics
/// ([`as_atomic_bytes`](Self::as_atomic_bytes)); the slice views are `unsafe`. Coordinate
/// with a process-shared [`Lock`](crate::Lock) or [`Event`](crate::Event) as in Python.
/// See the [module docs](self) for when the name goes away.
///
/// ```
/// use multiproc_ipc::shared_memory::SharedMemory;
/// let shm = SharedMemory::create(None, 16)?;
/// shm.as_atomic_bytes()[3].store(7, std::sync::atomic::Ordering::Relaxed);
/// let mut b = [0u8; 4];
/// shm.read_at(0, &mut b)?;
/// assert_eq!(b, [0, 0, 0, 7]);
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct SharedMemory {
    handle: Handle,
    name: String,
    size: usize,
}

fn name_error(name: &str) -> Error {
    Error::Invalid(format!(
        "shared memory name {name:?} must be 1-{NAME_MAX} bytes without '/' or NUL"
    ))
}

fn check_name(name: &str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.len() > NAME_MAX || bare.contains(['/', '\0']) {
        return Err(name_error(name));
    }
    Ok(bare.to_owned())
}

/// A fresh name: `mpshm_` and 16 hex digits from a per-process random key.
fn generated_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(sys::pid());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("mpshm_{:016x}", h.finish())
}

impl SharedMemory {
    /// Creates a segment of `size` bytes (at least 1), named `name` or, with `None`, a fresh
    /// generated name. `Err(Io(AlreadyExists))` if the name is taken.
    ///
    /// ```
    /// use multiproc_ipc::shared_memory::SharedMemory;
    /// let name = format!("doc_create_{}", std::process::id());
    /// let shm = SharedMemory::create(Some(&name), 100)?;
    /// assert_eq!((shm.name(), shm.size()), (name.as_str(), 100));
    /// assert!(SharedMemory::create(Some(&name), 100).is_err()); // taken
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn create(name: Option<&str>, size: usize) -> Result<SharedMemory> {
        if size == 0 {
            return Err(Error::Invalid(
                "a shared memory segment needs a size of at least 1 byte".to_owned(),
            ));
        }
        let len = size
            .checked_add(DATA_OFFSET)
            .filter(|&l| l <= isize::MAX as usize)
            .ok_or_else(|| Error::Invalid(format!("{size} bytes is too large")))?;
        sweep_now_and_then();
        let (name, fd) = match name {
            Some(n) => {
                let n = check_name(n)?;
                let fd = sys::shm_open(&n, true)?;
                (n, fd)
            }
            None => {
                let mut tries = 0;
                loop {
                    let n = generated_name();
                    match sys::shm_open(&n, true) {
                        Ok(fd) => break (n, fd),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => {
                            tries += 1
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        };
        Self::set_up(&name, fd, size, len).map_err(|e| {
            let _ = sys::shm_unlink(&name);
            Error::from(e)
        })
    }

    fn set_up(name: &str, fd: std::os::fd::OwnedFd, size: usize, len: usize) -> io::Result<Self> {
        use std::os::fd::AsFd;
        // Held from before the file has a length: a sweeper never takes it for abandoned.
        sys::ofd_lock(fd.as_fd(), sys::OfdLock::Read, true)?;
        sys::set_len(fd.as_fd(), len)?;
        let (dev, ino, _) = sys::fd_id(fd.as_fd())?;
        let segment = Segment::attach(fd, len, len)?;
        let handle = Handle::create_in::<ShmState>(
            segment,
            0,
            |st: &ShmState, _| {
                // Held until we have registered: a sweeper that sees the header waits.
                let _ = st.lock.try_lock();
                st.size.store(size as u64, Ordering::Relaxed);
                st.dev.store(dev, Ordering::Relaxed);
                st.ino.store(ino, Ordering::Relaxed);
                for (cell, b) in st.name.iter().zip(name.bytes()) {
                    cell.store(b, Ordering::Relaxed);
                }
                st.name_len.store(name.len() as u32, Ordering::Relaxed);
                st.pidns.store(sys::pid_namespace(), Ordering::Relaxed);
            },
            release_named,
        )?;
        // SAFETY: `init` above took the lock of the fresh state on this thread.
        unsafe { handle.state::<ShmState>().lock.unlock() };
        Ok(SharedMemory {
            handle,
            name: name.to_owned(),
            size,
        })
    }

    /// Opens the segment named `name` (created by any process of this user).
    /// `Err(Io(NotFound))` if there is none (or it was unlinked); `Err(Io(PermissionDenied))`
    /// if the file is another user's, readable or writable by other users, or a symbolic link.
    ///
    /// ```
    /// use multiproc_ipc::shared_memory::SharedMemory;
    /// let err = SharedMemory::open("no_such_segment_here").unwrap_err();
    /// assert!(matches!(err, multiproc_ipc::Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<SharedMemory> {
        let name = check_name(name)?;
        sweep_now_and_then();
        let give_up = Instant::now() + Duration::from_millis(500);
        loop {
            match Self::try_open(&name) {
                Ok(Some(shm)) => return Ok(shm),
                // Being set up by its creator, or unlinked while we looked: look again.
                Ok(None) if Instant::now() < give_up => std::thread::yield_now(),
                Ok(None) => {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("/dev/shm/{name} is not a multiproc shared memory segment"),
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn try_open(name: &str) -> io::Result<Option<SharedMemory>> {
        use std::os::fd::AsFd;
        let fd = sys::shm_open(name, false)?;
        // On the descriptor, not the path: what we checked is what we map.
        sys::check_private(fd.as_fd(), name)?;
        // Held before we look: a sweeper that finds no holder from now on sees us.
        sys::ofd_lock(fd.as_fd(), sys::OfdLock::Read, true)?;
        let len = sys::file_len(fd.as_fd())?;
        if len < DATA_OFFSET {
            return Ok(None);
        }
        let segment = Segment::attach(fd, len, DATA_OFFSET)?;
        if !holders::holds::<ShmState>(&segment) {
            if holders::foreign(&segment) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("/dev/shm/{name} is not a multiproc shared memory segment"),
                ));
            }
            return Ok(None);
        }
        // SAFETY: `holds` checked the header: an `ShmState` lies in the file. The reference
        // is used only while `segment` (moved into the handle below, same mapping) lives.
        let st: &ShmState = unsafe { holders::object_in(&segment) };
        let size = st.size.load(Ordering::Relaxed) as usize;
        lock_forever(&st.lock);
        if st.unlinked() || size.checked_add(DATA_OFFSET) != Some(len) {
            // SAFETY: we took the lock just above.
            unsafe { st.lock.unlock() };
            return Ok(None);
        }
        // Before we register, under the lock that a last drop takes to decide.
        st.note_namespace();
        match Handle::open_in::<ShmState>(segment, 0, release_named) {
            Ok(handle) => {
                // SAFETY: we took the lock above; the mapping lives on in `handle`.
                unsafe { handle.state::<ShmState>().lock.unlock() };
                Ok(Some(SharedMemory {
                    handle,
                    name: name.to_owned(),
                    size,
                }))
            }
            Err((e, segment)) => {
                // SAFETY: we took the lock above; `segment` still maps the state.
                unsafe { holders::object_in::<ShmState>(&segment).lock.unlock() };
                Err(e)
            }
        }
    }

    fn state(&self) -> &ShmState {
        self.handle.state()
    }

    /// The segment's name (without a leading `/`).
    ///
    /// ```
    /// let shm = multiproc_ipc::shared_memory::SharedMemory::create(None, 1)?;
    /// assert!(shm.name().starts_with("mpshm_"));
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of bytes the caller asked for.
    ///
    /// ```
    /// let shm = multiproc_ipc::shared_memory::SharedMemory::create(None, 10)?;
    /// assert_eq!(shm.size(), 10);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// Removes the name now (handles already open keep working; later `open`s fail).
    /// `Err(Io(NotFound))` if it was unlinked already, by any process.
    ///
    /// ```
    /// let shm = multiproc_ipc::shared_memory::SharedMemory::create(None, 1)?;
    /// shm.unlink()?;
    /// assert!(shm.unlink().is_err());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn unlink(&self) -> Result<()> {
        let st = self.state();
        let _held = hold(st);
        let gone = || {
            Error::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!("shared memory {:?} was already unlinked", self.name),
            ))
        };
        if st.unlinked() {
            return Err(gone());
        }
        if st.remove_name()? {
            Ok(())
        } else {
            Err(gone())
        }
    }

    /// The first byte (page aligned). Other processes may write the bytes at any time.
    ///
    /// ```
    /// let shm = multiproc_ipc::shared_memory::SharedMemory::create(None, 8)?;
    /// assert_eq!(shm.as_ptr() as usize % 4096, 0);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *mut u8 {
        // A fork child's inherited handle counts as a holder from its first use on.
        self.handle.touch();
        // SAFETY: the mapping is DATA_OFFSET + size bytes long.
        unsafe { self.handle.segment().base().as_ptr().add(DATA_OFFSET) }
    }

    /// The bytes as atomics: a safe view that other processes may write concurrently.
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let shm = multiproc_ipc::shared_memory::SharedMemory::create(None, 2)?;
    /// shm.as_atomic_bytes()[1].fetch_add(3, Ordering::Relaxed);
    /// assert_eq!(shm.as_atomic_bytes()[1].load(Ordering::Relaxed), 3);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn as_atomic_bytes(&self) -> &[AtomicU8] {
        // SAFETY: `size` bytes from `as_ptr` are mapped as long as `self` lives; `AtomicU8`
        // has the layout of `u8` and is valid for any bits and for concurrent access.
        unsafe { std::slice::from_raw_parts(self.as_ptr().cast::<AtomicU8>(), self.size) }
    }

    fn range(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Error::Invalid(format!(
                "bytes {offset}..{offset}+{len} are outside a segment of {} bytes",
                self.size
            ))),
        }
    }

    /// Copies bytes out, from `offset` on (word by word with atomic loads: sound even while
    /// another process writes; a concurrent write may show up partly).
    ///
    /// ```
    /// let shm = multiproc_ipc::shared_memory::SharedMemory::create(None, 4)?;
    /// let mut b = [9u8; 4];
    /// shm.read_at(0, &mut b)?;
    /// assert_eq!(b, [0; 4]);
    /// assert!(shm.read_at(1, &mut b).is_err()); // past the end
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.range(offset, buf.len())?;
        copy_words(
            self.as_ptr().wrapping_add(offset),
            buf.as_mut_ptr(),
            buf.len(),
            false,
        );
        Ok(())
    }

    /// Copies `data` in at `offset` (atomic stores; see [`read_at`](Self::read_at)).
    ///
    /// ```
    /// let shm = multiproc_ipc::shared_memory::SharedMemory::create(None, 4)?;
    /// shm.write_at(2, &[1, 2])?;
    /// assert!(shm.write_at(3, &[1, 2]).is_err());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.range(offset, data.len())?;
        copy_words(
            self.as_ptr().wrapping_add(offset),
            data.as_ptr().cast_mut(),
            data.len(),
            true,
        );
        Ok(())
    }

    /// The bytes as a plain slice.
    ///
    /// # Safety
    ///
    /// No thread of any process may write the bytes while the slice lives (coordinate with
    /// a process-shared lock or event).
    ///
    /// ```
    /// let shm = multiproc_ipc::shared_memory::SharedMemory::create(None, 3)?;
    /// // SAFETY: nobody else has this segment.
    /// assert_eq!(unsafe { shm.as_slice() }, &[0, 0, 0]);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: mapped for `size` bytes while `self` lives; no writer, per the contract.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.size) }
    }

    /// The bytes as a mutable slice.
    ///
    /// # Safety
    ///
    /// No other thread of any process may read or write the bytes while the slice lives, and
    /// no other slice from this segment may be alive in this process.
    ///
    /// ```
    /// let shm = multiproc_ipc::shared_memory::SharedMemory::create(None, 3)?;
    /// // SAFETY: nobody else has this segment, and no other view of it is alive.
    /// unsafe { shm.as_mut_slice() }.copy_from_slice(b"abc");
    /// let mut b = [0; 3];
    /// shm.read_at(0, &mut b)?;
    /// assert_eq!(&b, b"abc");
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: mapped for `size` bytes while `self` lives; exclusive, per the contract.
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr(), self.size) }
    }
}

/// Copies `len` bytes between shared memory at `shared` and private memory at `private`
/// (into shared when `to_shared`), with atomic accesses on the shared side: 8-byte words
/// where `shared` is aligned, single bytes at the edges.
fn copy_words(shared: *mut u8, private: *mut u8, len: usize, to_shared: bool) {
    let mut i = 0;
    let byte = |i: usize| {
        // SAFETY: callers checked that `shared..shared+len` lies in a live mapping, where
        // bytes may be accessed atomically; `private..private+len` is the caller's buffer.
        unsafe {
            let cell = &*shared.add(i).cast::<AtomicU8>();
            let mine = private.add(i);
            if to_shared {
                cell.store(mine.read(), Ordering::Relaxed);
            } else {
                mine.write(cell.load(Ordering::Relaxed));
            }
        }
    };
    while i < len && !(shared as usize + i).is_multiple_of(8) {
        byte(i);
        i += 1;
    }
    while i + 8 <= len {
        // SAFETY: as above; `shared + i` is 8-aligned here, and the private side is read or
        // written unaligned.
        unsafe {
            let cell = &*shared.add(i).cast::<AtomicU64>();
            let mine = private.add(i).cast::<u64>();
            if to_shared {
                cell.store(mine.read_unaligned(), Ordering::Relaxed);
            } else {
                mine.write_unaligned(cell.load(Ordering::Relaxed));
            }
        }
        i += 8;
    }
    while i < len {
        byte(i);
        i += 1;
    }
}

/// Unlinks every named segment of this user that multiproc made and that no process holds
/// any more (all its holders were killed before they could unlink: see the
/// [module docs](self)); returns how many. `create` and `open` run it first (unless the last
/// run was recent); call it to clean up at a moment of your choosing.
///
/// ```
/// let removed = multiproc_ipc::shared_memory::sweep();
/// # let _ = removed;
/// ```
pub fn sweep() -> usize {
    sweep_counting().0
}

/// [`sweep`]: how many segments it removed, and how many entries `/dev/shm` had.
fn sweep_counting() -> (usize, usize) {
    let (names, entries) = sys::shm_names(DATA_OFFSET);
    let removed = names
        .iter()
        .filter(|name| sweep_one(name).unwrap_or(false))
        .count();
    (removed, entries)
}

/// Up to this many entries in `/dev/shm`, every `create` and `open` sweeps.
const SWEEP_ALWAYS_UP_TO: usize = 256;
/// Past that, the automatic sweep pauses this long per entry it saw: some fifty times what an
/// entry costs (a `statx`, about 5 µs), so it takes at most some 2% of a process that does
/// nothing but create segments (20,000 entries: 0.1 s of sweeping, then 5 s without).
const SWEEP_PAUSE_PER_ENTRY: Duration = Duration::from_micros(250);

/// The sweep of `create` and `open`, bounded in cost: see [`SWEEP_PAUSE_PER_ENTRY`]. Counted
/// in entries, not measured in time, so that a small `/dev/shm` is swept every time however
/// busy the machine is (a segment left by a killed process goes at the next `create`).
fn sweep_now_and_then() {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    // Microseconds since EPOCH before which no automatic sweep runs.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let epoch = *EPOCH.get_or_init(Instant::now);
    let micros = |t: Instant| t.duration_since(epoch).as_micros() as u64;
    if micros(Instant::now()) < NEXT.load(Ordering::Relaxed) {
        return;
    }
    let (_, entries) = sweep_counting();
    if entries > SWEEP_ALWAYS_UP_TO {
        let pause = SWEEP_PAUSE_PER_ENTRY.saturating_mul(entries.min(u32::MAX as usize) as u32);
        NEXT.store(micros(Instant::now() + pause), Ordering::Relaxed);
    }
}

fn sweep_one(name: &str) -> io::Result<bool> {
    use std::os::fd::AsFd;
    let fd = sys::shm_open(name, false)?;
    // `shm_names` looked at the path; this is the file we have.
    sys::check_private(fd.as_fd(), name)?;
    if sys::file_len(fd.as_fd())? < DATA_OFFSET {
        return Ok(false);
    }
    // Every descriptor that any process (in any pid namespace) opened on the file holds a
    // shared lock until it is closed: if the exclusive one is free, nobody holds the file.
    // We keep it (in `fd`, then in `segment`) until the name is gone, so that an `open`
    // racing with us waits for it, then finds the segment marked unlinked.
    let unheld = sys::ofd_lock(fd.as_fd(), sys::OfdLock::Write, false)?;
    let segment = Segment::attach(fd, DATA_OFFSET, DATA_OFFSET)?;
    if !holders::holds::<ShmState>(&segment) {
        return Ok(false);
    }
    // SAFETY: `holds` checked that an `ShmState` lies in the mapped part of the file; the
    // reference does not outlive `segment`.
    let st: &ShmState = unsafe { holders::object_in(&segment) };
    // Held: only pids can tell a dead holder's inherited descriptor (in a live fork child)
    // from a live holder, and only where they mean what they say.
    let dead = || unheld || st.pids_suffice() && !holders::anyone_alive(&segment);
    if st.unlinked() || st.name() != name || !dead() {
        return Ok(false);
    }
    // Its creator holds the lock while it sets up: wait a little, then leave it.
    if st
        .lock
        .lock_until(Some(Instant::now() + Duration::from_millis(100)))
        .is_none()
    {
        return Ok(false);
    }
    let _held = Held(st);
    if st.unlinked() || !dead() {
        return Ok(false);
    }
    st.remove_name()
}

impl Clone for SharedMemory {
    /// Another handle to the same segment (keeps it alive as the original does).
    fn clone(&self) -> Self {
        SharedMemory {
            handle: self.handle.clone(),
            name: self.name.clone(),
            size: self.size,
        }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.handle
            .send()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = WireHandle::deserialize(d)?;
        let handle =
            Handle::receive::<ShmState>(&wire, release_named).map_err(serde::de::Error::custom)?;
        let st: &ShmState = handle.state();
        st.note_namespace();
        let size = st.size.load(Ordering::Relaxed) as usize;
        let len = sys::file_len(handle.segment().fd()).map_err(serde::de::Error::custom)?;
        if size.checked_add(DATA_OFFSET) != Some(len) || handle.segment().reserve() < len {
            return Err(serde::de::Error::custom(
                "the shared memory segment does not have the size it says",
            ));
        }
        Ok(SharedMemory {
            name: st.name(),
            size,
            handle,
        })
    }
}
