//! The crate's `tracing` events: child start and exit (with pid, name, start method, exit code
//! or signal) and the reaping of a child whose handle was dropped, seen by a subscriber.

mod common;

use common::{Reporter, hear, park_forever};
use multiproc_spawn::{Process, StartMethod};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records every event as one line: `message key=value …`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Recorder {
    fn lines_with(&self, needle: &str) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

fn park(r: Reporter) {
    r.say(std::process::id());
    park_forever()
}

#[test]
fn starts_exits_and_orphan_reaping_are_traced() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(recorder.clone()).unwrap();

    for (m, name) in [
        (StartMethod::Fork, "Process-1"),
        (StartMethod::ForkServer, "Process-2"),
    ] {
        let p = Process::builder()
            .start_method(m)
            .spawn(exit_with, 3)
            .unwrap();
        let pid = p.pid();
        assert!(p.join().is_err());
        let started = recorder.lines_with(&format!("started a child process pid={pid} "));
        assert_eq!(started.len(), 1, "{m:?}: {started:?}");
        assert!(
            started[0].contains(&format!("name={name}"))
                && started[0].contains(&format!("start_method={m:?}")),
            "{}",
            started[0]
        );
        let exited = recorder.lines_with(&format!("child process exited pid={pid} "));
        assert_eq!(exited.len(), 1, "{m:?}: {exited:?}");
        assert!(exited[0].contains("exitcode=3"), "{}", exited[0]);
    }
    assert_eq!(recorder.lines_with("started the fork server").len(), 1);

    // A child killed by a signal, whose handle was dropped while it ran: the reaper reaps it.
    let (mut rx, tx) = Reporter::pair();
    let p = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(park, tx)
        .unwrap();
    let pid = p.pid();
    assert_eq!(hear(&mut rx), Some(pid));
    drop(p);
    // SAFETY: signalling our own child, which is parked.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while recorder
        .lines_with(&format!("reaped an orphaned child pid={pid} "))
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no reaping event");
        std::thread::yield_now();
    }
    let killed = recorder.lines_with(&format!("killed by a signal pid={pid} "));
    assert_eq!(killed.len(), 1, "{killed:?}");
    assert!(
        killed[0].contains("exitcode=-9") && killed[0].contains("signal=SIGKILL"),
        "{}",
        killed[0]
    );
}
