//! Seed 002, "join() 方法, 等待线程终止": the same two threads, joined before the main thread
//! prints 父进程退出. Sleeps of 1 s / 5 s are scaled down to 10 ms / 50 ms.
//!
//! Expected output:
//! ```text
//! [{*}] 听音乐 trouble is a friend
//! [{*}] 听音乐 trouble is a friend
//! [{*}] 看电影 变形金刚
//! [{*}] 看电影 变形金刚
//! 父进程退出
//! ```

use multiproc::threading::{Barrier, Thread};
use std::sync::Arc;
use std::time::Duration;

fn music(music_name: &str, started: &Barrier) {
    for i in 0..2 {
        println!("[{}] 听音乐 {}", &now()[..19], music_name);
        if i == 0 {
            let _ = started.wait();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn movie(movie_name: &str, started: &Barrier) {
    for i in 0..2 {
        println!("[{}] 看电影 {}", &now()[..19], movie_name);
        if i == 0 {
            let _ = started.wait();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() -> multiproc::Result<()> {
    let started = Arc::new(Barrier::new(3));
    let (s1, s2) = (started.clone(), started.clone());
    let daemon = false;
    let tid_list = [
        Thread::builder()
            .daemon(daemon)
            .spawn(move || music("trouble is a friend", &s1))?,
        Thread::builder()
            .daemon(daemon)
            .spawn(move || movie("变形金刚", &s2))?,
    ];
    started.wait()?;
    for tid in tid_list {
        tid.join()?;
    }
    println!("父进程退出");
    Ok(())
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
