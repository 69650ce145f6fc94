//! Linux backend: futex through `rustix` (no raw syscall numbers), thread ids, exit and fork
//! hooks through `libc`.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `*word == expected`, at most `timeout` (`None`: no limit). Returns `Ok(())` on a
/// wake-up (possibly spurious) or a value mismatch, `Err(TimedOut)` when the timeout passed.
#[inline]
pub(crate) fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    timeout: Option<Duration>,
    shared: bool,
) -> io::Result<()> {
    let flags = if shared {
        futex::Flags::empty()
    } else {
        futex::Flags::PRIVATE
    };
    let ts = timeout.map(|t| futex::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: t.subsec_nanos().into(),
    });
    match futex::wait(word, flags, expected, ts.as_ref()) {
        Ok(()) => Ok(()),
        // EAGAIN: the value had already changed; EINTR: a signal. Both are plain wake-ups.
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => Ok(()),
        Err(e) if e == rustix::io::Errno::TIMEDOUT => Err(io::ErrorKind::TimedOut.into()),
        Err(e) => Err(e.into()),
    }
}

/// Wakes up to `n` threads sleeping on `word`; returns how many were woken.
#[inline]
pub(crate) fn futex_wake(word: &AtomicU32, n: u32, shared: bool) -> usize {
    let flags = if shared {
        futex::Flags::empty()
    } else {
        futex::Flags::PRIVATE
    };
    futex::wake(word, flags, n.min(i32::MAX as u32)).unwrap_or(0)
}

/// One word of a [`futex_waitv`] call: sleep while `*word == expected`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WaitOn {
    pub(crate) word: *const AtomicU32,
    pub(crate) expected: u32,
    pub(crate) shared: bool,
}

/// The most words one [`futex_waitv`] call takes (the kernel's `FUTEX_WAITV_MAX`).
pub(crate) const WAITV_MAX: usize = 128;

/// Sleeps until any of `words` changes from its expected value or is woken, or `timeout`
/// passes (Linux 5.16's `futex_waitv`). Every outcome (a wake-up, a value that had already
/// changed, a timeout, a signal, a word no longer mapped) is a plain return: the caller looks
/// at its words again. `Err` only when the kernel lacks the call (`ENOSYS`).
///
/// The kernel only reads the words; a pointer whose mapping went away in the meantime makes
/// it answer `EFAULT`, which is memory-safe for this process.
pub(crate) fn futex_waitv(words: &[WaitOn], timeout: Duration) -> io::Result<()> {
    use rustix::time::{ClockId, clock_gettime};
    let waits: Vec<futex::Wait> = words
        .iter()
        .map(|w| {
            let mut wait = futex::Wait::new();
            wait.val = u64::from(w.expected);
            wait.uaddr = futex::WaitPtr::new(w.word.cast_mut().cast());
            wait.flags = if w.shared {
                futex::WaitFlags::SIZE_U32
            } else {
                futex::WaitFlags::SIZE_U32 | futex::WaitFlags::PRIVATE
            };
            wait
        })
        .collect();
    // The timeout is absolute, on the monotonic clock.
    let now = clock_gettime(ClockId::Monotonic);
    let nanos = now.tv_nsec as u64 + u64::from(timeout.subsec_nanos());
    let until = futex::Timespec {
        tv_sec: now.tv_sec
            + timeout.as_secs().min(i32::MAX as u64) as i64
            + (nanos / 1_000_000_000) as i64,
        tv_nsec: (nanos % 1_000_000_000) as _,
    };
    match futex::waitv(
        &waits,
        futex::WaitvFlags::empty(),
        Some(&until),
        ClockId::Monotonic,
    ) {
        Err(e) if e == rustix::io::Errno::NOSYS => Err(e.into()),
        _ => Ok(()),
    }
}

/// The kernel thread id of the calling thread (not cached: see `raw::current_tid`).
pub(crate) fn gettid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// Sends signal `signo` to the thread behind `handle` (`pthread_kill`); `signo` 0 only checks
/// that the thread can be signalled.
pub(crate) fn pthread_kill<R>(handle: &std::thread::JoinHandle<R>, signo: i32) -> io::Result<()> {
    use std::os::unix::thread::JoinHandleExt;
    // glibc answers 0 for any number once the thread has exited, so check the number here:
    // 0, the classic signals and the real-time range; not the C library's reserved ones.
    let valid = (0..32).contains(&signo) || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signo);
    if !valid {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: a `JoinHandle` that is not joined or dropped keeps its thread joinable, so the
    // `pthread_t` names that thread (finished or not) and nothing else; `signo` was checked
    // above, and the call touches no memory of ours.
    let rc = unsafe { libc::pthread_kill(handle.as_pthread_t(), signo) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Whether the calling thread is the process's initial (main) thread.
pub(crate) fn is_main_thread() -> bool {
    gettid() == std::process::id()
}

/// Runs `f` when the program exits normally. Call at most a few times (atexit has ≥ 32 slots).
pub(crate) fn on_exit(f: extern "C" fn()) -> io::Result<()> {
    // SAFETY: `f` is a plain `extern "C" fn()` with 'static lifetime, as atexit requires.
    let rc = unsafe { libc::atexit(f) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::other("atexit failed"))
    }
}

/// Runs `f` in the child process after every `fork`.
#[cfg_attr(multiproc_loom, allow(dead_code))]
pub(crate) fn on_fork_child(f: unsafe extern "C" fn()) -> io::Result<()> {
    // SAFETY: `f` is 'static and async-signal-safe by contract of the caller (it only writes
    // a thread-local cell); the other handlers are absent.
    let rc = unsafe { libc::pthread_atfork(None, None, Some(f)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}
