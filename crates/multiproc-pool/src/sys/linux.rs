//! Linux backend: the process-private futex through `rustix`.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `*word == expected`, at most `timeout` (`None`: no limit). Returns `true` on a
/// wake-up (possibly spurious), a value mismatch or an interruption, `false` when the timeout
/// passed.
#[inline]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let ts = timeout.map(|t| futex::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: t.subsec_nanos().into(),
    });
    !matches!(
        futex::wait(word, futex::Flags::PRIVATE, expected, ts.as_ref()),
        Err(e) if e == rustix::io::Errno::TIMEDOUT
    )
}

/// Wakes every thread sleeping on `word`.
#[inline]
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::PRIVATE, i32::MAX as u32);
}
