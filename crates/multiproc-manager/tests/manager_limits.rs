//! The manager server at its descriptor limit: a server started under a low `RLIMIT_NOFILE`
//! answers the clients it has no room for with an error (never a hang) and keeps accepting,
//! so clients are served again once others have gone (Python's accepter carries on after an
//! `OSError` too).

use std::time::Duration;

use multiproc_ipc::{Event, Queue};
use multiproc_manager::{DictProxy, Manager, Result};
use multiproc_spawn::{Process, StartMethod};

/// The soft descriptor limit of the process that starts the manager (its server inherits it):
/// room for the server's own descriptors and a handful of connections (6 each).
const LOW_NOFILE: u64 = 64;
/// Clients connected at once: more than fit under [`LOW_NOFILE`].
const CLIENTS: usize = 16;

/// Runs in a child: starts a manager under a low descriptor limit, hands a dict of it to the
/// test, and keeps it alive until `stop`.
fn host((out, stop): (Queue<DictProxy<u32, u32>>, Event)) {
    multiproc_testkit::set_soft_nofile(Some(LOW_NOFILE));
    let manager = Manager::builder()
        .start_method(StartMethod::Fork)
        .build()
        .unwrap();
    out.put(manager.dict().unwrap()).unwrap();
    stop.wait();
    manager.shutdown().unwrap();
}

/// A client: one call (its first, which connects), the outcome reported, and, when it was
/// served, its connection held open until `hold` is set.
fn client((d, results, hold): (DictProxy<u32, u32>, Queue<Result<(), String>>, Event)) {
    let r = d.insert(std::process::id(), 1).map(drop);
    let served = r.is_ok();
    results.put(r.map_err(|e| e.to_string())).unwrap();
    if served {
        hold.wait();
    }
}

/// Sets its events when dropped: a failed assertion releases the children waiting on them,
/// so the test fails at once instead of waiting at exit for children that wait for ever.
struct ReleaseOnDrop(Vec<Event>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        for e in &self.0 {
            e.set();
        }
    }
}

#[test]
fn a_manager_out_of_descriptors_refuses_extra_clients_and_keeps_serving() {
    let dicts = Queue::new().unwrap();
    let stop = Event::new().unwrap();
    let hold = Event::new().unwrap();
    let _release = ReleaseOnDrop(vec![hold.clone(), stop.clone()]);
    let host = multiproc_spawn::spawn(host, (dicts.clone(), stop.clone())).unwrap();
    let d: DictProxy<u32, u32> = dicts.get_timeout(Duration::from_secs(20)).unwrap();

    let results = Queue::new().unwrap();
    let spawn_client = || {
        Process::builder()
            .start_method(StartMethod::Spawn)
            .spawn(client, (d.clone(), results.clone(), hold.clone()))
            .unwrap()
    };
    let clients: Vec<_> = (0..CLIENTS).map(|_| spawn_client()).collect();
    let mut served = 0;
    let mut refused = Vec::new();
    for _ in 0..CLIENTS {
        // A client the server lost would wait for ever: a bounded get turns that into a
        // failure here.
        match results.get_timeout(Duration::from_secs(20)) {
            Ok(Ok(())) => served += 1,
            Ok(Err(e)) => refused.push(e),
            Err(e) => panic!("a client neither was served nor refused: {e}"),
        }
    }
    eprintln!("served {served}, refused {}: {refused:?}", refused.len());
    assert!(served > 0, "no client was served: {refused:?}");
    assert!(!refused.is_empty(), "every client fit: raise CLIENTS");
    for e in &refused {
        assert!(
            e.contains("too many open files") && e.contains("RLIMIT_NOFILE"),
            "the refusal does not say what ran out: {e}"
        );
    }

    // The served clients leave; the server has room again and serves a new client. Their
    // connections close as they exit, but the server notices on its own thread: retry a
    // refused call a bounded number of times (each try is a fresh client process, which is
    // what paces the retries; no timing is assumed).
    hold.set();
    for c in clients {
        c.join().unwrap();
    }
    let mut again = None;
    for _ in 0..200 {
        let late = spawn_client();
        let r = results.get_timeout(Duration::from_secs(20)).unwrap();
        late.join().unwrap();
        if r.is_ok() {
            again = Some(r);
            break;
        }
    }
    assert!(
        again.is_some(),
        "the server never served a client again after refusing some"
    );
    assert_eq!(d.len().unwrap_or(usize::MAX), served + 1);

    stop.set();
    host.join().unwrap();
}

/// A client at its own descriptor limit: room to make its connection's pipe (6 descriptors)
/// and a few more, but not for the copies that travel to the server. Reports its first call's
/// error.
fn cramped_client(d: DictProxy<u32, u32>) -> String {
    let mut spare = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        spare.push(f);
    }
    spare.truncate(spare.len().saturating_sub(6 + 3));
    match d.len() {
        Ok(n) => format!("served ({n})"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_client_out_of_descriptors_is_told_so() {
    let manager = Manager::new().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let child = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(cramped_client, d)
        .unwrap();
    let message = child.join().unwrap();
    assert!(
        message.contains("Too many open files"),
        "the error hides its cause: {message}"
    );
    manager.shutdown().unwrap();
}
