//! Linux backend: sockets with fd passing, fork, posix_spawn of `/proc/self/exe`, pidfds.
//!
//! Every function returns `io::Result` (or cannot fail); `cvt` turns the C convention of
//! "-1 and errno" into an `io::Error` in one place.

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// The most descriptors one message may carry (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS_PER_MESSAGE: usize = 253;

fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retries `f` while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A connected pair of `AF_UNIX` stream sockets, both close-on-exec.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } as libc::c_long)?;
    // SAFETY: on success both descriptors are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Control-message buffer big enough for `MAX_FDS_PER_MESSAGE` descriptors, aligned for cmsghdr.
#[repr(C, align(8))]
struct CmsgBuf([u8; 1024 + 64]);

/// Control-message buffer for a few descriptors (up to twelve), aligned for cmsghdr.
#[repr(C, align(8))]
struct SmallCmsgBuf([u8; 64]);

/// Sends `data` (one or more slices, gathered by the kernel: no copy here; at least one byte in
/// all) with `fds` attached, and returns how many bytes went out. Never raises `SIGPIPE`: a
/// closed peer is `Err(BrokenPipe)`.
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    data: &[IoSlice<'_>],
    fds: &[RawFd],
    nonblocking: bool,
) -> io::Result<usize> {
    assert!(
        fds.len() <= MAX_FDS_PER_MESSAGE,
        "too many fds in one message (callers split them: see frame::write_frame)"
    );
    // A small control buffer lives on the stack, a large one on the heap; none is made for a
    // message without descriptors (zeroing a kilobyte costs a forked child a `memset` call).
    let mut small = SmallCmsgBuf([0; 64]);
    let mut large: Option<Box<CmsgBuf>> = None;
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with `struct iovec`; sendmsg only reads through it.
    msg.msg_iov = data.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = data.len();
    if !fds.is_empty() {
        let bytes = std::mem::size_of_val(fds);
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(bytes as u32) } as usize;
        msg.msg_control = if space <= small.0.len() {
            small.0.as_mut_ptr().cast()
        } else {
            large
                .insert(Box::new(CmsgBuf([0; 1024 + 64])))
                .0
                .as_mut_ptr()
                .cast()
        };
        msg.msg_controllen = space;
        // SAFETY: msg_control points at at least `space` bytes of an aligned buffer (space ≤
        // 1088 because fds.len() ≤ MAX_FDS_PER_MESSAGE), so the first header and its data fit.
        unsafe {
            let hdr = libc::CMSG_FIRSTHDR(&msg);
            (*hdr).cmsg_level = libc::SOL_SOCKET;
            (*hdr).cmsg_type = libc::SCM_RIGHTS;
            (*hdr).cmsg_len = libc::CMSG_LEN(bytes as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(hdr).cast(), fds.len());
        }
    }
    let flags = libc::MSG_NOSIGNAL | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: msg points at live buffers (the caller's slices, our control buffer) for the
    // duration of the call.
    retry(|| cvt(unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, flags) } as libc::c_long))
        .map(|n| n as usize)
}

/// Receives into `buf`, appending any descriptors that came along to `fds` (close-on-exec).
/// Returns the byte count (0 means the peer closed) and whether every descriptor arrived
/// (`false`: this process had no room for them, see [`fds_dropped_error`]; the bytes still
/// count, so that a stream stays in step). `nonblocking`: `Err(WouldBlock)` if empty.
pub(crate) fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
) -> io::Result<(usize, bool)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Left uninitialised: the kernel writes the headers it reports, and only those are read
    // (zeroing a kilobyte here cost a forked child a call to `memset`).
    let mut cmsg = MaybeUninit::<CmsgBuf>::uninit();
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of::<CmsgBuf>();
    let flags = libc::MSG_CMSG_CLOEXEC | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: msg points at live, writable buffers of the sizes it states.
    let n =
        retry(|| cvt(unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags) } as libc::c_long))?;
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of well-formed headers;
    // CMSG_FIRSTHDR/CMSG_NXTHDR stay inside them, and each SCM_RIGHTS payload is an array of
    // descriptors that now belong to this process (we take ownership exactly once).
    unsafe {
        let mut hdr = libc::CMSG_FIRSTHDR(&msg);
        while !hdr.is_null() {
            if (*hdr).cmsg_level == libc::SOL_SOCKET && (*hdr).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(hdr);
                let len = (*hdr).cmsg_len - (data as usize - hdr as usize);
                let count = len / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            hdr = libc::CMSG_NXTHDR(&msg, hdr);
        }
    }
    // The control buffer holds the most one message can carry, so a truncation means the
    // kernel dropped descriptors because this process had no room for them (it closes those).
    Ok((n as usize, msg.msg_flags & libc::MSG_CTRUNC == 0))
}

/// The error for a message whose descriptors the kernel dropped on receipt (`MSG_CTRUNC`):
/// names the cause and the limit to raise.
pub(crate) fn fds_dropped_error() -> io::Error {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the kernel to fill.
    let limit = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } {
        0 => lim.rlim_cur.to_string(),
        _ => "unknown".to_owned(),
    };
    io::Error::other(format!(
        "out of descriptors (EMFILE): this process had no room for the descriptors of the \
         handles in a message it received (MSG_CTRUNC; the kernel dropped them); its limit \
         (`ulimit -n`, RLIMIT_NOFILE) is {limit}"
    ))
}

/// Readiness of one descriptor in [`poll`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ready {
    /// Data (or end of file, or an error) is there to read.
    pub(crate) readable: bool,
    /// There is room to write.
    pub(crate) writable: bool,
}

/// Waits until one of `fds` (descriptor, want-write) is ready, or `timeout` passes
/// (`None`: for ever). Returns each one's readiness, in order.
pub(crate) fn poll(fds: &[(RawFd, bool)], timeout: Option<Duration>) -> io::Result<Vec<Ready>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, write)| libc::pollfd {
            fd,
            events: if write { libc::POLLOUT } else { libc::POLLIN },
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        // Round up so a wait never returns before its deadline.
        Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
    };
    // SAFETY: pfds is a valid array of pollfd of the stated length.
    let r = cvt(
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) } as libc::c_long,
    );
    match r {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(vec![Ready::default(); fds.len()]),
        Err(e) => Err(e),
        Ok(_) => Ok(pfds
            .iter()
            .map(|p| Ready {
                readable: p.revents
                    & (libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL)
                    != 0,
                writable: p.revents
                    & (libc::POLLOUT | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL)
                    != 0,
            })
            .collect()),
    }
}

/// This process's id.
pub(crate) fn getpid() -> u32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// The parent's process id (1 or a subreaper's once the parent has died).
pub(crate) fn getppid() -> u32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() as u32 }
}

/// A descriptor that refers to process `pid` (pidfd): pollable for its exit, and a race-free
/// target for signals.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = pid_t(pid)?;
    // SAFETY: a plain system call with integer arguments.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: pidfd_open returns a fresh close-on-exec descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A non-blocking, close-on-exec eventfd: one descriptor that a thread sleeping in [`poll`]
/// can be woken by.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: a plain system call with integer arguments.
    let fd =
        cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) } as libc::c_long)?;
    // SAFETY: eventfd returns a fresh descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Makes an [`eventfd`] readable (adds one to its counter).
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one = 1u64.to_ne_bytes();
    // It fails only when the counter would overflow (it is then readable anyway) or on a bad
    // descriptor, which is not ours to handle.
    let _ = retry(|| {
        // SAFETY: writes 8 bytes from a live local buffer.
        let n = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        cvt(n as libc::c_long)
    });
}

/// Resets an [`eventfd`]'s counter to zero (it is then no longer readable).
pub(crate) fn eventfd_drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 8];
    // Non-blocking, so an empty counter answers `EAGAIN`, which is fine.
    let _ = retry(|| {
        // SAFETY: reads at most 8 bytes into a live local buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        cvt(n as libc::c_long)
    });
}

/// Sends `signal` to the process behind `pidfd` (never to a recycled pid).
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: a plain system call; a null siginfo means "as kill(2) would".
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// The two ways a child's life ends, as Python's `exitcode` encodes them: `n` for `exit(n)`,
/// `-s` for death by signal `s`.
pub(crate) type ExitCode = i32;

/// Reaps the child behind `pidfd`: `Ok(Some(code))` once it has exited, `Ok(None)` while it
/// runs (only with `nohang`). `Err` with `ECHILD` if it was already reaped.
pub(crate) fn waitid_pidfd(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<ExitCode>> {
    waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, nohang)
}

fn waitid(idtype: libc::idtype_t, id: libc::id_t, nohang: bool) -> io::Result<Option<ExitCode>> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    let options = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
    retry(|| {
        // SAFETY: info is writable memory for one siginfo_t.
        cvt(unsafe { libc::waitid(idtype, id, info.as_mut_ptr(), options) } as libc::c_long)
    })?;
    // SAFETY: zero-initialised and possibly filled by the kernel: valid either way.
    let info = unsafe { info.assume_init() };
    // SAFETY: si_pid is valid for SIGCHLD-style infos; 0 means "nothing has exited yet".
    if unsafe { info.si_pid() } == 0 {
        return Ok(None);
    }
    // SAFETY: for a reaped child, si_status holds the exit status or the signal number.
    let status = unsafe { info.si_status() };
    Ok(Some(if info.si_code == libc::CLD_EXITED {
        status
    } else {
        -status
    }))
}

/// Reaps our child `pid`, like [`waitid_pidfd`]. The caller must know that `pid` is still an
/// unreaped child of this process (else the pid may name another process by now).
pub(crate) fn waitid_pid(pid: u32, nohang: bool) -> io::Result<Option<ExitCode>> {
    waitid(libc::P_PID, pid_t(pid)? as libc::id_t, nohang)
}

/// Sends `signal` to process `pid`. Race-free only for an unreaped child of ours.
pub(crate) fn kill(pid: u32, signal: i32) -> io::Result<()> {
    let pid = pid_t(pid)?;
    // SAFETY: a plain system call with integer arguments.
    cvt(unsafe { libc::kill(pid, signal) } as libc::c_long).map(drop)
}

/// What `fork` returned in this process.
#[derive(Debug)]
pub(crate) enum Forked {
    /// We are the new child.
    Child,
    /// We are the parent of `pid`.
    Parent(u32),
}

/// Forks the calling process.
///
/// # Safety
/// In a multi-threaded parent, the child has only the calling thread; locks that other threads
/// held stay locked for ever in the child. The caller must ensure the child touches no such lock
/// (multiproc holds its own locks across the fork) before it execs or exits.
///
/// Inlined, so that a forked child resumes in its caller's code: each page of code a child
/// first runs costs it a page fault.
#[inline(always)]
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller upholds the contract above.
    let pid = cvt(unsafe { libc::fork() } as libc::c_long)?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid as u32)
    })
}

/// What [`fork_for_parent`] returned in this process.
#[derive(Debug)]
pub(crate) enum Adopted {
    /// We are the new process.
    Child,
    /// The new process, born a child of our own parent: its pid.
    Sibling(u32),
}

/// `struct clone_args` of `clone3(2)`, the first version's fields (64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Forks the calling process into a child of *our parent's* (`clone3` with `CLONE_PARENT`):
/// the fork server's way of starting a child that the
/// program itself reaps, so the exit status reaches the program without a detour through the
/// server. `Ok(None)`: this kernel or sandbox refuses it (before Linux 5.3, a seccomp filter
/// that refuses `clone3`, or we are a namespace's init); fork instead.
///
/// # Safety
/// As for [`fork`]. Moreover the raw system call skips what glibc's `fork` does around it: it
/// runs no `pthread_atfork` handlers, leaves the child's cached thread id (used only by
/// recursive, robust and priority-inheriting pthread mutexes, and consistently within the
/// child) at the caller's, and registers no robust-mutex list in the child. The caller must be
/// a single-threaded process that needs none of these (the fork server).
#[inline(always)]
pub(crate) unsafe fn fork_for_parent() -> io::Result<Option<Adopted>> {
    let args = CloneArgs {
        flags: libc::CLONE_PARENT as u64,
        // Must be 0 with CLONE_PARENT: the child inherits our own exit signal (SIGCHLD, as we
        // were started by posix_spawn), so our parent is told of its end as of ours.
        exit_signal: 0,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid `clone_args` of the size passed. Without a new stack or CLONE_VM the child runs on its own copy of this stack, as after fork; the
    // caller upholds the rest (see above).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match cvt(ret) {
        Ok(0) => Ok(Some(Adopted::Child)),
        Ok(pid) => Ok(Some(Adopted::Sibling(pid as u32))),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EINVAL)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Starts a fresh exec of this very executable (`/proc/self/exe`, the same file even if the
/// path was replaced), with the environment plus `extra_env`, keeping `inherit` open (its
/// close-on-exec flag is cleared in the child only). Returns the new pid.
pub(crate) fn spawn_self(
    argv1: &str,
    extra_env: (&str, &str),
    inherit: BorrowedFd<'_>,
) -> io::Result<u32> {
    let exe = c"/proc/self/exe";
    let argv0: OsString = std::env::args_os()
        .next()
        .unwrap_or_else(|| "multiproc-child".into());
    let argv0 = cstring(&argv0)?;
    let argv1 = cstring(OsStr::new(argv1))?;
    let argv = [argv0.as_ptr(), argv1.as_ptr(), std::ptr::null()];
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != extra_env.0)
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstring(&kv)
        })
        .collect::<io::Result<_>>()?;
    env.push(cstring(OsStr::new(&format!(
        "{}={}",
        extra_env.0, extra_env.1
    )))?);
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|c| c.as_ptr()).collect();
    envp.push(std::ptr::null());

    let mut actions = MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
    // SAFETY: init on uninitialised storage, as the API expects.
    let r = unsafe { libc::posix_spawn_file_actions_init(actions.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // dup2(fd, fd) in a spawn file action clears close-on-exec in the child (glibc ≥ 2.29,
    // POSIX 2024), so exactly this one descriptor crosses the exec.
    let fd = inherit.as_raw_fd();
    // SAFETY: actions was initialised above.
    let r = unsafe { libc::posix_spawn_file_actions_adddup2(actions.as_mut_ptr(), fd, fd) };
    let mut pid: libc::pid_t = 0;
    let r = if r != 0 {
        r
    } else {
        // SAFETY: every pointer is valid and NUL-terminated for the duration of the call;
        // argv and envp end with a null pointer.
        unsafe {
            libc::posix_spawn(
                &mut pid,
                exe.as_ptr(),
                actions.as_ptr(),
                std::ptr::null(),
                argv.as_ptr() as *const *mut libc::c_char,
                envp.as_ptr() as *const *mut libc::c_char,
            )
        }
    };
    // SAFETY: actions was initialised and is destroyed exactly once.
    unsafe { libc::posix_spawn_file_actions_destroy(actions.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(pid as u32)
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte in string"))
}

/// Takes ownership of a descriptor inherited under a known number (the bootstrap socket).
///
/// # Safety
/// `fd` must be an open descriptor that nothing else in this process owns.
pub(crate) unsafe fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller guarantees sole ownership of an open descriptor.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Sets close-on-exec on `fd` (the bootstrap socket, once a fresh child has it).
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we borrow; F_SETFD only changes its flag.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } as libc::c_long)
        .map(drop)
}

/// Maps `len` bytes of zeroed memory shared with every child this process forks from now on
/// (`MAP_SHARED | MAP_ANONYMOUS`). It is never unmapped.
pub(crate) fn map_shared(len: usize) -> io::Result<std::ptr::NonNull<u8>> {
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing; it aliases no
    // Rust object.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    std::ptr::NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))
}

/// The size of a memory page.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf only reads a value.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// Ends the calling process at once with `code`: no atexit handlers, no destructors.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Kills this process with `SIGKILL` (used when a daemon child sees its parent die).
pub(crate) fn kill_self() -> ! {
    // SAFETY: signalling ourselves; SIGKILL cannot be caught, so we never return.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
        libc::_exit(137)
    }
}

/// Asks the kernel to send `SIGKILL` to this process when the thread that forked it ends
/// (the fork server is single-threaded, so: when the server dies).
pub(crate) fn set_parent_death_signal() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
    cvt(unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    } as libc::c_long)
    .map(drop)
}

/// Closes every descriptor from 3 up, except `keep`. (Without allocating: in a freshly forked
/// child every heap page written is a copy-on-write fault.)
pub(crate) fn close_fds_except(keep: RawFd) {
    let mut first: u32 = 3;
    if keep >= 3 {
        let keep = keep as u32;
        if keep > first {
            // SAFETY: closing descriptors this process owns; nothing else uses them after fork.
            unsafe { libc::close_range(first, keep - 1, 0) };
        }
        first = keep + 1;
    }
    // SAFETY: as above.
    unsafe { libc::close_range(first, u32::MAX, 0) };
}

/// Ignores `SIGPIPE`, as Rust's own start-up does before `main` (a child started by multiproc
/// runs before `main`, so it does this itself).
pub(crate) fn ignore_sigpipe() {
    // SAFETY: installing SIG_IGN for SIGPIPE is always sound.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Registers `f` to run at normal process exit (`exit(3)`, a return from `main`).
pub(crate) fn register_atexit(f: extern "C" fn()) {
    // SAFETY: f is a plain function that lives for the whole program.
    unsafe { libc::atexit(f) };
}

/// `ECHILD`: the child was already reaped.
pub(crate) const ECHILD: i32 = libc::ECHILD;
/// `ESRCH`: no such process.
pub(crate) const ESRCH: i32 = libc::ESRCH;
/// `SIGTERM`, for `terminate`.
pub(crate) const SIGTERM: i32 = libc::SIGTERM;
/// `SIGKILL`, for `kill`.
pub(crate) const SIGKILL: i32 = libc::SIGKILL;

/// The conventional name of a signal, for error messages ("SIGKILL").
pub(crate) fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        _ => return format!("signal {signal}"),
    };
    name.to_owned()
}

/// How many descriptors this process has open (for leak tests).
pub(crate) fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count().saturating_sub(1))
        .unwrap_or(0)
}

// ---- signal dispositions (the `signal` module) ----

/// What the kernel does with a signal that no handler of ours catches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disposition {
    Default,
    Ignore,
    /// A handler function installed by someone (signal-hook, another library, C code).
    Handler,
}

/// The signal's current disposition.
pub(crate) fn disposition(signal: i32) -> io::Result<Disposition> {
    // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action only queries.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `old` is a valid, writable sigaction; the new action is null (query only).
    if unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match old.sa_sigaction {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        _ => Disposition::Handler,
    })
}

/// Sets the signal's disposition to the default action or to ignoring it.
pub(crate) fn set_disposition(signal: i32, ignore: bool) -> io::Result<()> {
    // SAFETY: a zeroed sigaction with SIG_DFL or SIG_IGN and an empty mask is a valid action;
    // neither runs any code of ours in signal context.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: `action` is fully initialised (see above); the old action is not wanted.
    if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `alarm(2)`: SIGALRM in `seconds` (0 cancels); the seconds left of the previous alarm.
pub(crate) fn alarm(seconds: u32) -> u32 {
    // SAFETY: alarm takes a number and touches no memory.
    unsafe { libc::alarm(seconds) }
}

/// The system's description of a signal ("Terminated"), if it has one.
pub(crate) fn strsignal(signal: i32) -> Option<String> {
    // SAFETY: glibc's strsignal returns a pointer to a static string or to a thread-local
    // buffer, valid until this thread's next call; it is copied out at once.
    let p = unsafe { libc::strsignal(signal) };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null: a NUL-terminated string (see above).
    let s = unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned();
    (!s.starts_with("Unknown signal")).then_some(s)
}

/// The signal numbers this system has: 1 to 31 and the real-time ones the C library leaves to
/// programs (`SIGRTMIN` to `SIGRTMAX`).
pub(crate) fn signal_numbers() -> Vec<i32> {
    (1..=31)
        .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
        .collect()
}

/// Whether `pid` names one process: 1 to `i32::MAX`. The kernel reads 0 as our process group,
/// -1 (`u32::MAX` cast) as every process we may signal, and any other negative `pid_t` (a
/// `u32` above `i32::MAX`) as a process group.
pub(crate) fn is_process_id(pid: u32) -> bool {
    libc::pid_t::try_from(pid).is_ok_and(|p| p > 0)
}

/// `pid` as a `pid_t`, or `Err(InvalidInput)` where the kernel would read it as a group or as
/// every process (see [`is_process_id`]). Every call here that takes a pid goes through it.
fn pid_t(pid: u32) -> io::Result<libc::pid_t> {
    if is_process_id(pid) {
        Ok(pid as libc::pid_t)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{pid} is not a process id (0 and ids above i32::MAX name process groups or every process)"
            ),
        ))
    }
}

/// Whether this process was started with elevated rights (setuid, setgid, file capabilities,
/// or an LSM's say): the kernel's `AT_SECURE`, the flag glibc uses to ignore `LD_PRELOAD` and
/// friends. Such a process must not take orders from its environment.
pub(crate) fn secure_exec() -> bool {
    // SAFETY: getauxval reads the auxiliary vector the kernel gave this process; it touches no
    // memory of ours and returns 0 for an absent entry.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// This process's effective user id.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Who made the other end of a Unix socket: as the kernel recorded it when the pair was made
/// (`socketpair`) or connected, so a later exec or exit of that process does not change it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    /// The process id, in our pid namespace; 0 if that process is outside it.
    pub(crate) pid: u32,
    /// The effective user id, in our user namespace.
    pub(crate) uid: u32,
}

/// The [`Peer`] of descriptor `fd`, which need not be open or a socket at all (then
/// `Err(EBADF)`, `Err(ENOTSOCK)`, or `Err(InvalidInput)` for a socket of another family):
/// only `getsockopt` touches it, so a descriptor we do not own stays as it was.
pub(crate) fn unix_peer(fd: RawFd) -> io::Result<Peer> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `domain` and `len` are valid for writes of the sizes given; the kernel checks
    // `fd` itself and changes nothing about it.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut libc::c_int).cast(),
            &mut len,
        )
    } as libc::c_long)?;
    if domain != libc::AF_UNIX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a socket, but not a Unix one",
        ));
    }
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: as above, with `cred` sized for SO_PEERCRED's answer.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    } as libc::c_long)?;
    Ok(Peer {
        pid: u32::try_from(cred.pid).unwrap_or(0),
        uid: cred.uid,
    })
}
