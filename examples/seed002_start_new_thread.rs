//! Seed 002, "start_new_thread() 函数来产生新线程": two bare threads print the time five times,
//! every 2 s and 4 s in the tutorial (20 ms and 40 ms here). `_thread` threads do not keep the
//! program alive, so they are daemon threads; instead of the tutorial's `while True: pass` the
//! main thread joins them.
//!
//! Expected output:
//! ```text
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-1: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! Thread-2: {*}
//! ```

use multiproc::threading::Thread;
use std::time::Duration;

/// 为线程定义一个函数
fn print_time(thread_name: &str, delay: Duration) {
    let mut count = 0;
    while count < 5 {
        std::thread::sleep(delay);
        count += 1;
        println!("{}: {}", thread_name, now());
    }
}

fn start_new_thread(name: &'static str, delay: Duration) -> multiproc::Result<Thread<()>> {
    Thread::builder()
        .daemon(true)
        .spawn(move || print_time(name, delay))
}

fn main() {
    let threads = [
        start_new_thread("Thread-1", Duration::from_millis(20)),
        start_new_thread("Thread-2", Duration::from_millis(40)),
    ];
    for t in threads {
        match t {
            Ok(t) => drop(t.join()),
            Err(be) => println!("Error: 无法启动线程 ---> {be}"),
        }
    }
}

/// `datetime.now()` as `YYYY-MM-DD HH:MM:SS.ffffff` (UTC; std has no time-zone data).
fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (d.as_secs() as i64, d.subsec_micros());
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
