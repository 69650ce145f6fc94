//! `multiproc_spawn::signal` with real signals to real processes, under every start method:
//! a child's handler runs on its own dispatcher and decides its own exit code, a Fork child
//! runs its inherited handler in itself (never in the parent), `SIG_IGN`/`SIG_DFL`, `wait_for`.

mod common;
use common::{METHODS, Reporter, hear};

use multiproc_spawn::signal::{self, Handler, Signal};
use multiproc_spawn::{Process, StartMethod};
use multiproc_sync::Error;
use std::time::Duration;

/// Asserts that a child ended with `code` (negative: killed by that signal).
fn assert_exit_code<R: std::fmt::Debug>(joined: multiproc_sync::Result<R>, code: i32, ctx: String) {
    match joined {
        Err(Error::ProcessFailed { exitcode, .. }) => assert_eq!(exitcode, code, "{ctx}"),
        other => panic!("{ctx}: {other:?}"),
    }
}

/// Parks for ever (until a signal ends the process).
fn park() -> ! {
    loop {
        std::thread::park();
    }
}

/// Installs a SIGTERM handler that exits with code 7, says so, and waits to be signalled.
fn exits_7_on_sigterm(rep: Reporter) {
    signal::signal(Signal::SIGTERM, Handler::call(|_| std::process::exit(7))).unwrap();
    rep.say(1);
    park()
}

#[test]
fn a_childs_sigterm_handler_runs_and_its_exit_code_is_its_own() {
    for m in METHODS {
        let (mut r, rep) = Reporter::pair();
        let p = Process::builder()
            .start_method(m)
            .spawn(exits_7_on_sigterm, rep)
            .unwrap();
        assert_eq!(hear(&mut r), Some(1), "{m:?}: the child never got ready");
        p.send_signal(Signal::SIGTERM).unwrap();
        assert_exit_code(p.join(), 7, format!("{m:?}"));
    }
}

fn ready_then_park(rep: Reporter) {
    rep.say(1);
    park()
}

#[test]
fn default_disposition_kills_with_the_signal_under_every_method() {
    for m in METHODS {
        let (mut r, rep) = Reporter::pair();
        let p = Process::builder()
            .start_method(m)
            .spawn(ready_then_park, rep)
            .unwrap();
        assert_eq!(hear(&mut r), Some(1));
        p.send_signal(Signal::SIGUSR1).unwrap();
        assert_exit_code(p.join(), -10, format!("{m:?}"));
    }
}

// A Fork child inherits the handler (as in Python) and runs it itself: the handler here would
// end *this* test process with 42 if the parent's dispatcher ever saw the child's signal.
#[test]
fn a_fork_child_runs_its_inherited_handler_itself() {
    signal::signal(Signal::SIGUSR2, Handler::call(|_| std::process::exit(42))).unwrap();
    let (mut r, rep) = Reporter::pair();
    let p = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(ready_then_park, rep)
        .unwrap();
    assert_eq!(hear(&mut r), Some(1));
    p.send_signal(Signal::SIGUSR2).unwrap();
    assert_exit_code(p.join(), 42, String::new());
    // Fresh starts do not inherit handlers: the default action ends them.
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        let (mut r, rep) = Reporter::pair();
        let p = Process::builder()
            .start_method(m)
            .spawn(ready_then_park, rep)
            .unwrap();
        assert_eq!(hear(&mut r), Some(1));
        p.send_signal(Signal::SIGUSR2).unwrap();
        assert_exit_code(p.join(), -12, format!("{m:?}"));
    }
}

/// Ignores SIGHUP, handles SIGUSR1 (so an early one cannot end it), says so, then waits for
/// SIGUSR1 with `wait_for` (with no limit, or one past the end of the clock, which is none
/// either) and returns which came.
fn ignore_hup_then_wait((rep, limit): (Reporter, Option<Duration>)) -> i32 {
    signal::signal(Signal::SIGHUP, Handler::Ignore).unwrap();
    signal::signal(Signal::SIGUSR1, Handler::call(|_| {})).unwrap();
    rep.say(1);
    signal::wait_for(&[Signal::SIGUSR1], limit)
        .unwrap()
        .number()
}

#[test]
fn ignored_signals_are_ignored_and_wait_for_returns_the_signal() {
    for (i, m) in METHODS.into_iter().enumerate() {
        let (mut r, rep) = Reporter::pair();
        let limit = (i % 2 == 1).then_some(Duration::MAX);
        let mut p = Process::builder()
            .start_method(m)
            .spawn(ignore_hup_then_wait, (rep, limit))
            .unwrap();
        assert_eq!(hear(&mut r), Some(1));
        p.send_signal(Signal::SIGHUP).unwrap();
        // A signal that lands before the wait is armed is handled, not waited for (as with
        // Python's pause()): send until the wait has seen one.
        for _ in 0..400 {
            p.send_signal(Signal::SIGUSR1).unwrap();
            if p.wait_timeout(Duration::from_millis(50)) {
                break;
            }
        }
        // Ended: answers at once, and a limit past the end of the clock does not overflow it.
        assert!(p.wait_timeout(Duration::MAX), "{m:?}");
        assert_eq!(p.join().unwrap(), Signal::SIGUSR1.number(), "{m:?}");
    }
}

#[test]
fn getsignal_signal_and_bad_input() {
    assert!(matches!(
        signal::getsignal(Signal::SIGALRM).unwrap(),
        Handler::Default
    ));
    assert!(matches!(
        signal::signal(Signal::SIGKILL, Handler::Ignore),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        signal::signal(Signal::SIGALRM, Handler::Other),
        Err(Error::Invalid(_))
    ));
    assert!(Signal::new(0).is_err() && Signal::new(100_000).is_err());
    assert_eq!(Signal::SIGINT.name(), "SIGINT");
    assert_eq!(Signal::new(2).unwrap(), Signal::SIGINT);
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let before = signal::signal(
        Signal::SIGALRM,
        Handler::call(move |s| tx.lock().unwrap().send(s).unwrap()),
    )
    .unwrap();
    assert!(matches!(before, Handler::Default));
    assert!(matches!(
        signal::getsignal(Signal::SIGALRM).unwrap(),
        Handler::Call(_)
    ));
    assert_eq!(signal::alarm(1), 0);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20)).unwrap(),
        Signal::SIGALRM
    );
    // A handler that panics is logged; the dispatcher goes on.
    signal::signal(Signal::SIGUSR1, Handler::call(|_| panic!("handler boom"))).unwrap();
    signal::raise_signal(Signal::SIGUSR1).unwrap();
    signal::raise_signal(Signal::SIGALRM).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20)).unwrap(),
        Signal::SIGALRM
    );
    assert!(matches!(
        signal::wait_for(&[Signal::SIGUSR2], Some(Duration::from_millis(1))),
        Err(Error::Timeout)
    ));
}

/// Starts a parked thread, says so, and sends that thread (only) `SIGTERM`, whose default
/// action ends the whole process.
fn sigterm_to_one_thread(rep: Reporter) {
    let t = multiproc_sync::Thread::spawn(|| park()).unwrap();
    rep.say(1);
    signal::pthread_kill(&t, Signal::SIGTERM).unwrap();
    park()
}

#[test]
fn pthread_kill_delivers_to_a_thread_and_the_default_action_ends_the_process() {
    for m in METHODS {
        let (mut r, rep) = Reporter::pair();
        let p = Process::builder()
            .start_method(m)
            .spawn(sigterm_to_one_thread, rep)
            .unwrap();
        assert_eq!(hear(&mut r), Some(1), "{m:?}");
        assert_exit_code(p.join(), -15, format!("{m:?}"));
    }
}

#[test]
fn pthread_kill_runs_the_handler_and_rejects_a_bad_number() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    signal::signal(
        Signal::SIGWINCH,
        Handler::call(move |sig| tx.lock().unwrap().send(sig).unwrap()),
    )
    .unwrap();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let t = multiproc_sync::Thread::spawn(move || stop_rx.recv()).unwrap();
    signal::pthread_kill(&t, Signal::SIGWINCH).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Signal::SIGWINCH
    );
    assert!(matches!(t.pthread_kill(-1), Err(Error::Io(_))));
    stop_tx.send(()).unwrap();
    t.join().unwrap().unwrap();
    signal::signal(Signal::SIGWINCH, Handler::Default).unwrap();
}
