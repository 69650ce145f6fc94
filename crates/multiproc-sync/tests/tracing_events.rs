//! The `DEBUG` events a user debugging a stuck program relies on (thread start and finish, queue
//! shutdown, barrier abort) reach an installed `tracing` subscriber.

use std::sync::Mutex;

use multiproc_sync::queue::Queue;
use multiproc_sync::{Barrier, Thread};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records the message of every event, from every thread.
struct Recorder;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
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
        let mut m = Message(String::new());
        event.record(&mut m);
        SEEN.lock().unwrap().push(m.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn saw(prefix: &str) -> bool {
    SEEN.lock().unwrap().iter().any(|m| m.starts_with(prefix))
}

#[test]
fn stuck_program_events_reach_a_subscriber() {
    tracing::subscriber::set_global_default(Recorder).unwrap();

    Thread::builder()
        .name("traced")
        .spawn(|| ())
        .unwrap()
        .join()
        .unwrap();
    assert!(saw("thread started"));
    assert!(saw("thread finished"));

    let q = Queue::new(0);
    q.put(1).unwrap();
    q.shutdown(true);
    assert!(saw("queue shut down"));

    Barrier::new(2).abort();
    assert!(saw("barrier aborted"));
}
