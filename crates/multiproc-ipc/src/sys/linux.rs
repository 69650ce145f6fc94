//! Linux backend: `memfd_create`, `mmap`, `/proc/<id>/stat` liveness and `pthread_atfork`
//! through `libc`; the process-shared futex and the descriptor channel's `AF_UNIX` datagram
//! sockets (`SCM_RIGHTS`) through `rustix`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// An anonymous shared-memory file of length 0, close-on-exec. `name` only labels it in
/// `/proc/<pid>/fd` (as `/memfd:<name>`); it is never visible in `/dev/shm`.
pub(crate) fn memfd(name: &str) -> io::Result<OwnedFd> {
    let cname = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `cname` is a valid NUL-terminated string; the flags are valid.
    let fd = cvt(unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets the file's length. Growing reserves the new pages at once (`fallocate`), so a full
/// tmpfs (a small `/dev/shm` in a container) is `Err(ENOSPC)` here rather than a SIGBUS at the
/// first write, and a length past `RLIMIT_FSIZE` is `Err(EFBIG)` rather than a SIGXFSZ (the
/// kernel signals before it fails the call, so the limit is checked first). Shrinking frees
/// the pages past the new length in every process that maps them.
pub(crate) fn set_len(fd: BorrowedFd<'_>, len: usize) -> io::Result<()> {
    let new = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
    let old = libc::off_t::try_from(file_len(fd)?).map_err(|_| io::ErrorKind::InvalidData)?;
    if new > old {
        check_file_size_limit(len)?;
        // SAFETY: `fd` is a valid open descriptor for the duration of the call; the call
        // takes no pointers. Mode 0 allocates `old..new` and extends the length on success
        // only (tmpfs gives back what it allocated when it runs out).
        match retry_eintr(|| unsafe { libc::fallocate(fd.as_raw_fd(), 0, old, new - old) }) {
            Ok(()) => return Ok(()),
            // A file system without `fallocate`: extend the length alone.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
            Err(e) => return Err(e),
        }
    }
    // SAFETY: `fd` is a valid open descriptor for the duration of the call.
    retry_eintr(|| unsafe { libc::ftruncate(fd.as_raw_fd(), new) })
}

/// `Err(EFBIG)`, naming the limit, where a file of `len` bytes would pass `RLIMIT_FSIZE`.
fn check_file_size_limit(len: usize) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a writable rlimit; RLIMIT_FSIZE is a valid resource.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) })?;
    if lim.rlim_cur != libc::RLIM_INFINITY && len as u64 > lim.rlim_cur {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "a shared-memory file of {len} bytes passes RLIMIT_FSIZE ({} bytes, `ulimit -f`) \
                 (os error {})",
                lim.rlim_cur,
                libc::EFBIG
            ),
        ));
    }
    Ok(())
}

/// Runs a C call that returns -1 and sets `errno`, again while it is interrupted.
fn retry_eintr(mut call: impl FnMut() -> libc::c_int) -> io::Result<()> {
    loop {
        match cvt(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(drop),
        }
    }
}

/// Frees the pages of `len` bytes at `offset` of the file without changing its length: they
/// read as zeros afterwards, in every process that maps them, and cost no memory until
/// written again.
pub(crate) fn punch_hole(fd: BorrowedFd<'_>, offset: usize, len: usize) -> io::Result<()> {
    let off = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let len = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
    loop {
        // SAFETY: `fd` is a valid open descriptor for the duration of the call; the call
        // takes no pointers.
        match cvt(unsafe {
            libc::fallocate(
                fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                len,
            )
        }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(drop),
        }
    }
}

/// Milliseconds on the system's monotonic clock: the same clock in every process, so a
/// timestamp one process stores in shared memory means the same to all.
pub(crate) fn monotonic_ms() -> u64 {
    // SAFETY: an all-zero `timespec` is a valid value of this plain C struct.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// The file's current length.
pub(crate) fn file_len(fd: BorrowedFd<'_>) -> io::Result<usize> {
    usize::try_from(stat(fd)?.st_size).map_err(|_| io::ErrorKind::InvalidData.into())
}

/// The memory the file holds now, in bytes (less than its length where it has holes).
#[cfg(test)]
pub(crate) fn file_memory(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(u64::try_from(stat(fd)?.st_blocks).unwrap_or(0) * 512)
}

fn stat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is valid and `st` is a writable stat buffer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// Maps `len` bytes of `fd` shared and read-write. The range past the file's length is
/// reserved address space only: touching it faults (SIGBUS), so callers keep every access
/// below the length they set.
pub(crate) fn map_shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: a fresh mapping chosen by the kernel (addr NULL) aliases no Rust object; `fd` is
    // valid for the call (the mapping keeps its own reference to the file).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_NORESERVE,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOMEM) {
            return Err(address_space_error(len));
        }
        return Err(e);
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"))
}

/// The user address space of a 64-bit Linux process that `mmap` hands out without a hint
/// (47 bits on x86-64 and on arm64 with 4 KiB pages and 48-bit addresses).
const USER_SPACE: usize = 1 << 47;

/// `RLIMIT_AS` (soft), or `None` when unlimited.
fn address_space_limit() -> io::Result<Option<usize>> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a writable rlimit; RLIMIT_AS is a valid resource.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) })?;
    Ok((lim.rlim_cur != libc::RLIM_INFINITY).then(|| lim.rlim_cur.min(usize::MAX as u64) as usize))
}

/// The address space this process has mapped now (`VmSize`), from `/proc/self/statm`; 0
/// where `/proc` is not mounted (then only the limit itself bounds the estimate).
fn address_space_used() -> usize {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: usize = statm
        .split_ascii_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    pages.saturating_mul(page)
}

/// How much more address space this process may map: `RLIMIT_AS` (or the user address space
/// where unlimited) less what is mapped now. An estimate (other threads map and unmap too):
/// callers take a fraction of it, and `mmap` still has the last word.
pub(crate) fn address_space_left() -> io::Result<usize> {
    let total = address_space_limit()?.map_or(USER_SPACE, |l| l.min(USER_SPACE));
    Ok(total.saturating_sub(address_space_used()))
}

/// The error for a mapping of `len` bytes that `mmap` refused (`ENOMEM`) or that would not
/// fit: names what ran out, `RLIMIT_AS`, the address space or `vm.max_map_count`.
pub(crate) fn address_space_error(len: usize) -> io::Error {
    let used = address_space_used();
    let maps = std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count());
    let max_maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|m| m.trim().parse::<usize>().ok());
    let limit = match address_space_limit() {
        Ok(Some(l)) => format!("RLIMIT_AS (`ulimit -v`) is {l} bytes"),
        _ => format!("RLIMIT_AS is unlimited, the user address space is {USER_SPACE} bytes"),
    };
    let maps = match max_maps {
        Some(m) => format!("{maps} of vm.max_map_count {m} mappings in use"),
        None => format!("{maps} mappings in use"),
    };
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "cannot map {len} bytes of shared memory: out of address space or mappings \
             ({limit}, {used} bytes mapped, {maps})"
        ),
    )
}

/// Unmaps a mapping made by [`map_shared`].
///
/// # Safety
/// `ptr`/`len` must be exactly a live mapping from `map_shared`, and nothing may use it after.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: per the contract, this is one whole mapping that nobody uses any more.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}

/// Sleeps while `*word == expected` (process-shared futex), at most `timeout`. Spurious
/// returns are allowed; callers re-check.
/// Through the workspace's one futex wrapper (`multiproc_sync::raw::futex_wait`).
#[inline]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<std::time::Duration>) {
    // Every outcome (woken, value changed, interrupted, timed out) means "look again".
    let _ = multiproc_sync::raw::futex_wait(word, expected, timeout, true);
}

/// Wakes every sleeper on `word` (process-shared futex).
#[inline]
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    multiproc_sync::raw::futex_wake(word, i32::MAX as u32, true);
}

static PID: AtomicU32 = AtomicU32::new(0);

/// This process's id, cached (glibc no longer caches `getpid`); refreshed in a fork child by
/// the crate's fork hook, which calls [`refresh_pid`].
#[inline]
pub(crate) fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => refresh_pid(),
        p => p,
    }
}

/// Re-reads the process id (async-signal-safe: one syscall and a store).
pub(crate) fn refresh_pid() -> u32 {
    // SAFETY: getpid has no preconditions.
    let p = unsafe { libc::getpid() } as u32;
    PID.store(p, Ordering::Relaxed);
    p
}

/// What `/proc/<id>/stat` says of process or thread `id` (a few microseconds: slow paths
/// only). The workspace's one reader of that file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Running (or stopped, sleeping…), started at `start_time` (clock ticks since boot, field
    /// 22: with the id it names one task even if the id is reused).
    Alive {
        /// Field 22 of `/proc/<id>/stat`.
        start_time: u64,
    },
    /// No such task, or a zombie / dead one (a killed child stays a zombie until its parent
    /// reaps it, and must already count as dead).
    Gone,
    /// `/proc` could not be read for another reason (this process at its `RLIMIT_NOFILE`, out
    /// of memory, `/proc` mounted with `hidepid`), yet `kill(id, 0)` finds the task: it exists,
    /// its start time is unknown. Taking it for gone would end a live peer's queue.
    Unread,
}

/// Reads `/proc/<id>/stat` (see [`Task`]).
pub fn task(id: u32) -> Task {
    if id == 0 {
        return Task::Gone;
    }
    let stat = match std::fs::read(format!("/proc/{id}/stat")) {
        Ok(stat) => stat,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Task::Gone,
        Err(_) if no_such_task(id) => return Task::Gone,
        Err(_) => return Task::Unread,
    };
    // "pid (comm) S ...": the comm may hold spaces and parentheses, so look after the last ')'.
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return Task::Gone;
    };
    let rest = String::from_utf8_lossy(&stat[close + 1..]);
    let mut fields = rest.split_ascii_whitespace();
    match fields.next() {
        None | Some("Z" | "X" | "x") => Task::Gone,
        // `state` was field 3; the start time is field 22.
        Some(_) => match fields.nth(18).and_then(|f| f.parse().ok()) {
            Some(start_time) => Task::Alive { start_time },
            None => Task::Gone,
        },
    }
}

/// Whether process or thread `id` is gone (see [`Task`]): only a read that proves it.
pub(crate) fn is_dead(id: u32) -> bool {
    task(id) == Task::Gone
}

/// Whether `kill(id, 0)` says there is no such process or thread (`ESRCH`). A zombie still
/// exists for it: [`is_dead`] asks `/proc` first for that reason.
fn no_such_task(id: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(id) else {
        return true;
    };
    // SAFETY: signal 0 sends nothing; it only checks that the target exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

fn shm_path(name: &str) -> io::Result<CString> {
    let name = name.strip_prefix('/').unwrap_or(name);
    if name.is_empty() || name.len() > 250 || name.contains('/') || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("shared memory name {name:?} must be 1-250 characters without '/'"),
        ));
    }
    CString::new(format!("/{name}")).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// Opens (or with `create`, exclusively creates) the named POSIX shared-memory object
/// `/dev/shm/<name>`, close-on-exec, mode 0600. Never follows a symbolic link (`ELOOP`): a
/// link planted under an expected name must not lead us to another file.
pub(crate) fn shm_open(name: &str, create: bool) -> io::Result<OwnedFd> {
    let path = shm_path(name)?;
    let flags = libc::O_RDWR
        | libc::O_CLOEXEC
        | libc::O_NOFOLLOW
        | if create {
            libc::O_CREAT | libc::O_EXCL
        } else {
            0
        };
    // SAFETY: `path` is a valid NUL-terminated string; flags and mode are valid.
    let fd = cvt(unsafe { libc::shm_open(path.as_ptr(), flags, 0o600) }).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{SHM_DIR}/{name} is a symbolic link, not a segment"),
            )
        } else {
            e
        }
    })?;
    // SAFETY: `fd` was just returned by shm_open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `Ok` if the file behind `fd` is a regular file owned by this process's effective user
/// that no other user may read or write (mode `0600` or narrower); otherwise
/// `Err(PermissionDenied)`. Checked on the open descriptor, not the path, so the file cannot
/// be swapped between the check and its use.
pub(crate) fn check_private(fd: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let st = stat(fd)?;
    let me = euid();
    let why = if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        "is not a regular file".to_owned()
    } else if st.st_uid != me {
        format!(
            "is owned by uid {}, not by this process's uid {me}",
            st.st_uid
        )
    } else if st.st_mode & 0o077 != 0 {
        format!(
            "has mode {:04o}: other users may read or write it (a multiproc segment is 0600)",
            st.st_mode & 0o7777
        )
    } else {
        return Ok(());
    };
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("/dev/shm/{name} {why}"),
    ))
}

/// An open file description lock (`F_OFD_SETLK`) on the whole file: owned by the open file
/// description, not by a process, so it means the same in every pid namespace, conflicts
/// between two descriptions even within one process, and goes away when the last descriptor
/// of the description is closed (also by the kernel when its holder is killed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OfdLock {
    /// Shared: "I hold this file".
    Read,
    /// Exclusive: "nobody else holds this file".
    Write,
}

/// Takes (or converts this description's lock to) `kind` on the whole file; with `wait`, waits
/// for conflicting locks to go. `Ok(false)` when another description holds a conflicting
/// lock and `wait` is false; a failed conversion leaves the lock this description had.
pub(crate) fn ofd_lock(fd: BorrowedFd<'_>, kind: OfdLock, wait: bool) -> io::Result<bool> {
    // SAFETY: an all-zero `flock` is a valid value of this plain C struct; l_start = l_len = 0
    // with SEEK_SET is the whole file, and OFD locks need l_pid = 0.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = match kind {
        OfdLock::Read => libc::F_RDLCK,
        OfdLock::Write => libc::F_WRLCK,
    } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    // SAFETY: `fd` is a valid open descriptor and `fl` a valid, writable flock for the call.
    match retry_eintr(|| unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut fl) }) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the name `/dev/shm/<name>` (the memory lives on while mapped or open).
pub(crate) fn shm_unlink(name: &str) -> io::Result<()> {
    let path = shm_path(name)?;
    // SAFETY: `path` is a valid NUL-terminated string.
    cvt(unsafe { libc::shm_unlink(path.as_ptr()) }).map(drop)
}

/// Where named shared-memory objects live.
const SHM_DIR: &str = "/dev/shm";

/// The names in `/dev/shm` of regular files owned by this process's effective user, private
/// to it (mode `0600` or narrower) and at least `min_len` bytes long, and how many entries
/// the directory had: one `statx` per entry (its type comes free with the directory
/// listing), so that files of other users, links and short files cost no `open`. Nothing if
/// the directory cannot be read.
pub(crate) fn shm_names(min_len: usize) -> (Vec<String>, usize) {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return (Vec::new(), 0);
    };
    let me = euid();
    let mut entries = 0;
    let names = dir
        .filter_map(Result::ok)
        .inspect(|_| entries += 1)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| {
            std::fs::symlink_metadata(e.path()).is_ok_and(|md| {
                md.uid() == me && md.mode() & 0o077 == 0 && md.size() >= min_len as u64
            })
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    (names, entries)
}

/// A file's identity: (device, inode, owner uid).
pub(crate) type FileId = (u64, u64, u32);

/// The identity of the file behind `fd`.
pub(crate) fn fd_id(fd: BorrowedFd<'_>) -> io::Result<FileId> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is valid and `st` is a writable stat buffer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok((st.st_dev, st.st_ino, st.st_uid))
}

/// The identity of the file that `/dev/shm/<name>` names now (without following links).
pub(crate) fn shm_id(name: &str) -> io::Result<FileId> {
    let path = shm_path(name)?;
    let full = format!("{SHM_DIR}{}", path.to_string_lossy());
    let md = std::fs::symlink_metadata(full)?;
    use std::os::unix::fs::MetadataExt;
    Ok((md.dev(), md.ino(), md.uid()))
}

/// An identity of this process's pid namespace (the inode of `/proc/self/ns/pid`, unique
/// on the system while the namespace exists); 0 when it cannot be read (no `/proc`).
/// Read each time: a process may be moved (`setns`) or be the first child of an `unshare`.
pub(crate) fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |md| md.ino())
}

/// This process's effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The most descriptors one `SCM_RIGHTS` message carries (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS_PER_DATAGRAM: usize = 253;

/// The send buffer asked for a descriptor channel: the kernel caps it at `net.core.wmem_max`
/// (212,992 bytes by default, then doubled), which holds some 550 small datagrams.
const CHANNEL_SNDBUF: usize = 4 << 20;

/// Control-message room for [`MAX_FDS_PER_DATAGRAM`] descriptors.
const CMSG_ROOM: usize = rustix::cmsg_space!(ScmRights(MAX_FDS_PER_DATAGRAM));

/// A connected pair of `AF_UNIX` datagram sockets, both close-on-exec: what is sent on the
/// first arrives at the second. The first gets as large a send buffer as the system allows
/// an unprivileged process (it holds the datagrams not yet received).
pub(crate) fn dgram_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair, sockopt};
    let (tx, rx) = socketpair(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    // Best effort: the default buffer works too, it just fills sooner.
    let _ = sockopt::set_socket_send_buffer_size(&tx, CHANNEL_SNDBUF);
    Ok((tx, rx))
}

/// Sets a socket's send buffer (tests: a small buffer fills after a few datagrams).
#[cfg(test)]
pub(crate) fn set_send_buffer(sock: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_send_buffer_size(
        sock, bytes,
    )?)
}

/// Whether `fd` is an `AF_UNIX` datagram socket.
pub(crate) fn is_unix_dgram(fd: BorrowedFd<'_>) -> bool {
    use rustix::net::{AddressFamily, SocketType, sockopt};
    sockopt::socket_type(fd) == Ok(SocketType::DGRAM)
        && sockopt::socket_domain(fd) == Ok(AddressFamily::UNIX)
}

/// Retries a socket call while it fails with `EINTR`.
fn retry_net<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::TOOMANYREFS) => {
                return Err(io::Error::other(
                    "more descriptors are in flight between processes than `ulimit -n` allows",
                ));
            }
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Sends `data` as one datagram with `fds` attached (at most [`MAX_FDS_PER_DATAGRAM`]),
/// without waiting: `Err(WouldBlock)` when the socket's buffer is full. Never raises
/// `SIGPIPE`.
pub(crate) fn send_dgram(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    use std::mem::MaybeUninit;
    let mut room = [MaybeUninit::<u8>::uninit(); CMSG_ROOM];
    let mut control = SendAncillaryBuffer::new(&mut room);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("more than {MAX_FDS_PER_DATAGRAM} descriptors in one datagram"),
        ));
    }
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let sent = retry_net(|| sendmsg(sock, &[io::IoSlice::new(data)], &mut control, flags))?;
    if sent != data.len() {
        return Err(io::Error::other("a datagram went out short"));
    }
    Ok(())
}

/// Copies the first bytes of the oldest datagram into `buf` without taking it (nor the
/// descriptors it carries); its length, or `Err(WouldBlock)` when there is none.
pub(crate) fn peek_dgram(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    use rustix::net::{RecvAncillaryBuffer, RecvFlags, recvmsg};
    // No control buffer: the kernel installs none of the descriptors of a peeked datagram.
    let mut control = RecvAncillaryBuffer::default();
    let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT | RecvFlags::TRUNC;
    let got = retry_net(|| recvmsg(sock, &mut [io::IoSliceMut::new(buf)], &mut control, flags))?;
    Ok(got.bytes)
}

/// Takes the oldest datagram: its first bytes into `buf`, its descriptors (close-on-exec)
/// appended to `fds`. Returns its length and whether every descriptor arrived (`false` when
/// this process has no room for them: `ulimit -n`; the kernel closes those that did not
/// fit). `Err(WouldBlock)` when there is none.
pub(crate) fn recv_dgram(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<(usize, bool)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, recvmsg};
    use std::mem::MaybeUninit;
    let mut room = [MaybeUninit::<u8>::uninit(); CMSG_ROOM];
    let mut control = RecvAncillaryBuffer::new(&mut room);
    let flags = RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC | RecvFlags::TRUNC;
    let got = retry_net(|| recvmsg(sock, &mut [io::IoSliceMut::new(buf)], &mut control, flags))?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    Ok((got.bytes, !got.flags.contains(ReturnFlags::CTRUNC)))
}

/// Sleeps until `sock` may take another datagram, at most `timeout`. Spurious returns are
/// allowed; callers try again.
pub(crate) fn wait_writable(sock: BorrowedFd<'_>, timeout: std::time::Duration) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let ts = Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: timeout.subsec_nanos().into(),
    };
    // Every outcome (ready, timed out, interrupted) means "try again".
    let _ = poll(&mut [PollFd::new(&sock, PollFlags::OUT)], Some(&ts));
}
