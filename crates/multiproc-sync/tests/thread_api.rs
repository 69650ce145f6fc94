//! `Thread`, `current_thread`, `enumerate`, `Timer` and `Local`: CPython's `test_threading`
//! behaviours, ported.

use multiproc_sync::{
    Error, Event, Local, Thread, Timer, active_count, current_thread, enumerate, main_thread,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// test_threading.ThreadTests.test_various_ops: names, idents, is_alive, join value.
#[test]
fn names_idents_and_join_value() {
    let go = Arc::new(Event::new());
    let g2 = go.clone();
    let t = Thread::builder()
        .name("LoopThread")
        .spawn(move || {
            g2.wait();
            current_thread()
        })
        .unwrap();
    assert_eq!(t.name(), "LoopThread");
    assert!(t.is_alive());
    assert!(!t.is_daemon());
    let id = t.ident();
    assert!(id != 0);
    assert!(
        enumerate()
            .iter()
            .any(|i| i.name == "LoopThread" && i.ident == id)
    );
    assert!(active_count() >= 2);
    go.set();
    let info = t.join().unwrap();
    assert_eq!(info.name, "LoopThread");
    assert_eq!(info.ident, id);
    // Default names follow Python's "Thread-N", and the thread sees its own name.
    let t = Thread::spawn(|| current_thread().name).unwrap();
    let name = t.name().to_owned();
    assert!(name.starts_with("Thread-"));
    assert_eq!(t.join().unwrap(), name);
}

/// Any string names a thread, as in Python, a NUL byte included (std's own thread name
/// cannot hold one, and spawning panicked inside the library).
#[test]
fn a_name_with_a_nul_byte_is_the_threads_name() {
    let t = Thread::builder()
        .name("a\0b")
        .spawn(|| current_thread().name)
        .unwrap();
    assert_eq!(t.name(), "a\0b");
    assert_eq!(t.join().unwrap(), "a\0b");
}

/// test_threading.ThreadTests: main_thread is "MainThread".
#[test]
fn main_thread_info() {
    assert_eq!(main_thread().name, "MainThread");
    assert_eq!(enumerate()[0], main_thread());
}

/// test_threading.ThreadTests.test_daemon_param: the daemon flag, inherited by default.
#[test]
fn daemon_flag_is_inherited() {
    let t = Thread::builder()
        .daemon(true)
        .spawn(|| Thread::spawn(|| ()).unwrap().is_daemon())
        .unwrap();
    assert!(t.is_daemon());
    assert!(t.join().unwrap());
}

/// A panic becomes Err(TaskFailed) carrying the text.
#[test]
fn panic_becomes_task_failed() {
    let t = Thread::spawn(|| -> () { panic!("boom {}", 7) }).unwrap();
    match t.join() {
        Err(Error::TaskFailed { message }) => assert_eq!(message, "boom 7"),
        other => panic!("unexpected {other:?}"),
    }
}

/// test_threading.TimerTests.test_cancel: a cancelled timer never runs its function.
#[test]
fn timer_cancel_and_fire() {
    let ran = Arc::new(AtomicBool::new(false));
    let r2 = ran.clone();
    let t = Timer::new(Duration::from_secs(30), move || {
        r2.store(true, Ordering::SeqCst)
    })
    .start();
    t.cancel();
    t.join().unwrap();
    assert!(!ran.load(Ordering::SeqCst));
    let r2 = ran.clone();
    let t = Timer::new(Duration::from_millis(5), move || {
        r2.store(true, Ordering::SeqCst)
    })
    .start();
    t.join().unwrap();
    assert!(ran.load(Ordering::SeqCst));
}

/// test_threading_local.BaseLocalTest: values are isolated across threads.
#[test]
fn local_isolation() {
    let l = Arc::new(Local::new());
    l.set(1);
    let hs: Vec<_> = (0..4)
        .map(|i| {
            let l = l.clone();
            Thread::spawn(move || {
                assert_eq!(l.get(), None);
                l.set(10 + i);
                std::thread::yield_now();
                l.get()
            })
            .unwrap()
        })
        .collect();
    for (i, h) in hs.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), Some(10 + i as i32));
    }
    assert_eq!(l.get(), Some(1));
    assert_eq!(l.get_or(|| 5), 1);
}

/// test_threading.ThreadTests.test_daemon_threads / test_join_nondaemon_on_shutdown: at normal
/// exit the program waits for non-daemon threads, not for daemon ones. The test re-runs this
/// test binary as a child that exits while both kinds still run.
#[test]
fn exit_joins_non_daemon_threads_only() {
    if std::env::var_os("MULTIPROC_EXIT_CHILD").is_some() {
        let _d = Thread::builder()
            .daemon(true)
            .spawn(|| {
                std::thread::sleep(Duration::from_secs(20));
                println!("daemon done");
            })
            .unwrap();
        let _n = Thread::builder()
            .spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                println!("non-daemon done");
            })
            .unwrap();
        std::process::exit(0);
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "exit_joins_non_daemon_threads_only",
            "--nocapture",
        ])
        .env("MULTIPROC_EXIT_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("non-daemon done"), "{text}");
    assert!(!text.contains("daemon done\n") || text.matches("daemon done").count() == 1);
}
