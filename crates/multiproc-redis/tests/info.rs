//! `multiproc::redis::info` / `Executor::info` / `worker info`: a worker with a failed task, a
//! task it is running (held until the test lets it go) and tasks waiting behind it, seen
//! through the library call and through the command line (`--json` and lines for people);
//! and the worker's `tracing` span around each task.

mod common;

use multiproc::redis::{Executor, Worker, worker_cli};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

fn boom(msg: String) -> u8 {
    panic!("{msg}")
}

/// A flag with a condition variable: the worker runs in this test process (on a thread), so
/// its task and the test meet here.
struct Flag(Mutex<bool>, Condvar);

impl Flag {
    const fn new() -> Flag {
        Flag(Mutex::new(false), Condvar::new())
    }
    fn set(&self) {
        *self.0.lock().unwrap() = true;
        self.1.notify_all();
    }
    /// Waits until set, at most `within`; whether it was set.
    fn wait(&self, within: Duration) -> bool {
        let guard = self.0.lock().unwrap();
        let (guard, _) = self
            .1
            .wait_timeout_while(guard, within, |set| !*set)
            .unwrap();
        *guard
    }
}

/// Set by `hold` when it starts; set by the test to let `hold` end.
static HOLD_STARTED: Flag = Flag::new();
static HOLD_RELEASED: Flag = Flag::new();

/// Says it started, then runs until the test releases it (at most 60 s), logging once inside
/// its span.
fn hold(_: ()) -> u32 {
    tracing::info!(marker = "hold started", "inside the task");
    HOLD_STARTED.set();
    HOLD_RELEASED.wait(Duration::from_secs(60));
    7
}

fn square(x: u64) -> u64 {
    x * x
}

multiproc::redis::task!(boom, hold, square);

/// The command line, as a user's program runs it: this test binary started again with
/// `MULTIPROC_TEST_INFO_ARGS` (arguments separated by `\x1f`) runs only this "test", which
/// calls `worker_cli` with them.
#[test]
fn cli_entry() {
    let Ok(spec) = std::env::var("MULTIPROC_TEST_INFO_ARGS") else {
        return;
    };
    let args: Vec<String> = spec.split('\x1f').map(str::to_string).collect();
    worker_cli(&args).unwrap();
}

/// Runs `worker <args>` in a child process; answers its standard output.
fn cli(args: &[&str]) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "cli_entry", "--nocapture", "--test-threads=1"])
        .env("MULTIPROC_TEST_INFO_ARGS", args.join("\x1f"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "worker {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A subscriber that records each event with the fields of the span it happened in.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, String>>,
    /// (the event's fields, the innermost entered span's name and fields)
    events: Mutex<Vec<(String, Option<String>)>>,
}

thread_local! {
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

/// The installed subscriber: a handle on the [`Recorder`] the test reads.
struct Installed(Arc<Recorder>);

impl tracing::Subscriber for Installed {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = self.0.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut f = Fields(span.metadata().name().to_string());
        span.record(&mut f);
        self.0.spans.lock().unwrap().insert(id, f.0);
        tracing::span::Id::from_u64(id)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(String::new());
        event.record(&mut f);
        let span = ENTERED
            .with(|s| s.borrow().last().copied())
            .and_then(|id| self.0.spans.lock().unwrap().get(&id).cloned());
        self.0.events.lock().unwrap().push((f.0, span));
    }
    fn enter(&self, span: &tracing::span::Id) {
        ENTERED.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, _: &tracing::span::Id) {
        ENTERED.with(|s| s.borrow_mut().pop());
    }
}

#[test]
fn info_shows_waiting_running_workers_and_failures() {
    if std::env::var("MULTIPROC_TEST_INFO_ARGS").is_ok() {
        return;
    }
    let recorder = Arc::new(Recorder::default());
    tracing::subscriber::set_global_default(Installed(Arc::clone(&recorder))).unwrap();
    let Some(server) = common::own_server(false) else {
        return;
    };
    let url = server.url().to_string();
    let ns = common::unique("info");

    let pool = Executor::builder(&url).namespace(&ns).build().unwrap();
    let empty = pool.info().unwrap();
    assert_eq!((empty.waiting, empty.workers.len()), (0, 0), "{empty:?}");

    // One worker, one task at a time: `boom` fails, `hold` runs until released, the two
    // `square`s wait behind it.
    let failed = pool.submit(boom, "no luck".to_string()).unwrap();
    let mut held = pool.submit(hold, ()).unwrap();
    let waiting = [
        pool.submit(square, 3).unwrap(),
        pool.submit(square, 4).unwrap(),
    ];
    let worker = {
        let (url, ns) = (url.clone(), ns.clone());
        std::thread::spawn(move || {
            Worker::new(&url)
                .namespace(&ns)
                .heartbeat(Duration::from_millis(600))
                .run_in_this_process()
        })
    };

    // The worker takes one task at a time, in order: once `hold` runs, `boom`'s failure is
    // stored.
    assert!(
        HOLD_STARTED.wait(Duration::from_secs(20)),
        "the held task never started"
    );
    let info = multiproc::redis::info(&url, &ns).unwrap();
    assert_eq!(info.namespace, ns);
    assert_eq!(info.waiting, 2, "{info:#?}");
    assert_eq!(info.workers.len(), 1, "{info:#?}");
    let w = &info.workers[0];
    assert!(w.alive, "{info:#?}");
    assert_eq!(w.pid, Some(std::process::id()));
    assert!(w.host.as_deref().is_some_and(|h| !h.is_empty()), "{w:?}");
    assert_eq!(w.heartbeat, Some(Duration::from_millis(600)));
    assert!(
        w.last_heartbeat
            .is_some_and(|d| d <= Duration::from_millis(600)),
        "{w:?}"
    );
    assert_eq!(w.running, 1);
    assert_eq!(info.running.len(), 1, "{info:#?}");
    let r = &info.running[0];
    assert_eq!(r.id, held.id());
    assert!(r.task.ends_with("::hold"), "{r:?}");
    assert_eq!((r.attempt, r.max_attempts), (1, 3));
    assert_eq!(r.worker, w.id);
    assert_eq!(info.failed.len(), 1, "{info:#?}");
    let f = &info.failed[0];
    assert_eq!(
        (f.id.as_str(), f.kind, f.error.as_str()),
        (failed.id(), "panicked", "no luck")
    );
    assert!(
        f.expires_in.is_some_and(|d| d > Duration::from_secs(3600)),
        "{f:?}"
    );
    assert_eq!(info.finished, 0);
    // The executor's own view is the same.
    let via_pool = pool.info().unwrap();
    assert_eq!((via_pool.waiting, via_pool.running.len()), (2, 1));

    // The command line: one JSON object, and lines for people.
    let out = cli(&["info", "--url", &url, "--namespace", &ns, "--json"]);
    // libtest's own lines surround it ("test cli_entry ... " before it on its line).
    let start = out
        .find("{\"namespace\":")
        .unwrap_or_else(|| panic!("no JSON object in {out:?}"));
    let json = out[start..].lines().next().unwrap();
    assert!(json.ends_with("]}"), "{json}");
    for part in [
        format!("\"namespace\":\"{ns}\""),
        "\"waiting\":2".into(),
        format!("\"pid\":{}", std::process::id()),
        "\"alive\":true".into(),
        format!("{{\"id\":\"{}\",\"task\":", held.id()),
        format!("\"worker\":\"{}\"", w.id),
        format!(
            "{{\"id\":\"{}\",\"kind\":\"panicked\",\"error\":\"no luck\"",
            failed.id()
        ),
    ] {
        assert!(json.contains(&part), "{part} not in {json}");
    }
    let human = cli(&["info", "--url", &url, "--namespace", &ns]);
    for part in [
        format!(
            "namespace {ns}: 2 waiting, 1 running, 0 finished unread, 1 failed; workers: 1 alive, 0 dead"
        ),
        format!("{}  alive", w.id),
        format!("pid {}", std::process::id()),
        format!("attempt 1/3  on {}", w.id),
        format!("{}  panicked  \"no luck\"", failed.id()),
    ] {
        assert!(human.contains(&part), "{part:?} not in:\n{human}");
    }
    println!("{human}{json}");
    assert!(
        worker_cli(&["info".into(), "--processes".into(), "2".into()]).is_err(),
        "--processes is not an info option"
    );

    // Let it go: everything completes; once read, nothing is left to show.
    HOLD_RELEASED.set();
    assert_eq!(held.result_timeout(Duration::from_secs(20)).unwrap(), 7);
    let [a, b] = waiting;
    assert_eq!((a.result().unwrap(), b.result().unwrap()), (9, 16));
    assert!(failed.result().is_err());
    let after = pool.info().unwrap();
    assert_eq!(
        (
            after.waiting,
            after.running.len(),
            after.failed.len(),
            after.finished
        ),
        (0, 0, 0, 0),
        "{after:#?}"
    );
    pool.shutdown_workers().unwrap();
    worker.join().unwrap().unwrap();
    assert_eq!(pool.info().unwrap().stop_generation, 1);

    // The worker's span: the task's own event carries the task's name, id, attempt, worker.
    let events = recorder.events.lock().unwrap();
    let (_, span) = events
        .iter()
        .find(|(fields, _)| fields.contains("marker=hold started"))
        .expect("the task's event was recorded");
    let span = span.as_deref().expect("the task's event is inside a span");
    for part in [
        "multiproc_redis_task ".to_string(),
        "::hold".into(),
        format!("id={}", r.id),
        "attempt=1".into(),
        format!("worker={}", w.id),
    ] {
        assert!(span.contains(&part), "{part:?} not in the span {span:?}");
    }
}
