//! Queues and pipes between real processes, under every start method: delivery, `Closed`
//! instead of hangs when peers drop or die, large items, and no leaked descriptors (queues
//! inside items included).

mod common;
use common::{METHODS, start};
use multiproc_testkit::open_fds;

use std::time::{Duration, Instant};

use multiproc_ipc::{Connection, Error, JoinableQueue, Pipe, Queue, SimpleQueue};
use multiproc_spawn::StartMethod;

fn produce((q, from, n): (Queue<u64>, u64, u64)) {
    for i in from..from + n {
        q.put(i).unwrap();
    }
}

#[test]
fn items_cross_every_start_method_then_the_queue_reports_closed() {
    for m in METHODS {
        let q = Queue::new().unwrap();
        let p = start(m, produce, (q.clone(), 0, 1000));
        for i in 0..1000 {
            assert_eq!(q.get().unwrap(), i, "{m:?}");
        }
        p.join().unwrap();
        // The child's handle went with it: nobody can put any more.
        assert!(matches!(q.get(), Err(Error::Closed)), "{m:?}");
    }
}

fn work_and_mark_done((q, results): (JoinableQueue<u32>, SimpleQueue<u32>)) {
    while let Ok(x) = q.get() {
        results.put(x * 2).unwrap();
        q.task_done().unwrap();
    }
}

/// Takes items until `get` fails: what it took, then the error.
fn get_until_error(q: Queue<u64>) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        match q.get() {
            Ok(v) => got.push(v.to_string()),
            Err(e) => {
                got.push(format!("{e:?}"));
                return got;
            }
        }
    }
}

/// More clones of one queue in a process than its holder slot counts (16,383 a role; a task
/// per connection, each with its clone, gets there): cloning does not panic, every clone
/// works, sending one more to a child is a clear error, and once all are dropped a child
/// blocked in `get` learns that nobody can put (a count left behind would keep it waiting
/// for ever).
#[test]
fn twenty_thousand_clones_of_a_queue_work_and_dropping_them_closes_it() {
    for m in METHODS {
        let q: Queue<u64> = Queue::new().unwrap();
        let child = start(m, get_until_error, q.clone());
        let clones: Vec<Queue<u64>> = (0..20_000).map(|_| q.clone()).collect();
        clones[19_999].put(7).unwrap();
        clones[0].put(8).unwrap();
        let refused = multiproc_spawn::Process::builder()
            .start_method(m)
            .spawn(get_until_error, q.clone());
        match refused {
            Err(Error::Io(e)) => assert!(e.to_string().contains("drop some"), "{m:?}: {e}"),
            other => panic!("{m:?}: {:?}", other.map(|p| p.pid())),
        }
        drop(clones);
        drop(q);
        assert_eq!(child.join().unwrap(), ["7", "8", "Closed"], "{m:?}");
    }
}

#[test]
fn joinable_queue_join_waits_for_task_done_in_a_child() {
    for m in METHODS {
        let q = JoinableQueue::new().unwrap();
        let results = SimpleQueue::new().unwrap();
        let p = start(m, work_and_mark_done, (q.clone(), results.clone()));
        for i in 0..50 {
            q.put(i).unwrap();
        }
        q.join().unwrap();
        let mut got: Vec<u32> = (0..50).map(|_| results.get().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        assert!(q.task_done().is_err(), "more task_done calls than items");
        drop(q);
        p.join().unwrap(); // its get saw Closed once we dropped ours
    }
}

fn echo(c: Connection<u64>) -> u64 {
    let mut n = 0;
    while let Ok(v) = c.recv() {
        c.send(v + 1).unwrap();
        n += 1;
    }
    n
}

#[test]
fn pipe_ping_pong_under_every_start_method() {
    for m in METHODS {
        let (a, b) = Pipe::duplex().unwrap();
        let p = start(m, echo, b);
        for i in 0..2000 {
            a.send(i).unwrap();
            assert_eq!(a.recv().unwrap(), i + 1);
        }
        drop(a);
        assert_eq!(p.join().unwrap(), 2000, "{m:?}");
    }
}

fn put_then_park((q, ready): (Queue<u64>, Queue<u64>)) {
    q.put(1).unwrap();
    ready.put(0).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_killed_producer_gives_closed_not_a_hang() {
    for m in [StartMethod::Fork, StartMethod::ForkServer] {
        let q = Queue::new().unwrap();
        let ready = Queue::new().unwrap();
        let p = start(m, put_then_park, (q.clone(), ready.clone()));
        ready.get().unwrap();
        assert_eq!(q.get().unwrap(), 1);
        p.kill().unwrap();
        let t = Instant::now();
        assert!(matches!(q.get(), Err(Error::Closed)), "{m:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
        // A bounded queue that is full and has no live consumer left: put is Closed too.
        let b = Queue::with_maxsize(1).unwrap();
        b.put(1).unwrap();
        assert!(matches!(b.put(2), Err(Error::Closed)));
        drop(p);
    }
}

fn recv_one_then_park((c, ready): (Connection<u64>, Queue<u64>)) {
    ready.put(c.recv().unwrap()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_killed_pipe_peer_gives_closed_both_ways() {
    let (a, b) = Pipe::duplex().unwrap();
    let ready = Queue::new().unwrap();
    let p = start(StartMethod::Spawn, recv_one_then_park, (b, ready.clone()));
    a.send(5).unwrap();
    assert_eq!(ready.get().unwrap(), 5);
    p.kill().unwrap();
    assert!(matches!(a.recv(), Err(Error::Closed)));
    assert!(
        a.poll(None).unwrap(),
        "poll answers at once when the peer is gone"
    );
    // Sends are checked cheaply; within a bounded number of unread items they see it too.
    let mut closed = false;
    for i in 0..1000 {
        if matches!(a.send(i), Err(Error::Closed)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "send to a dead reader must end in Closed");
    drop(p);
}

fn checksum((q, n): (Queue<Vec<u8>>, usize)) -> usize {
    let v = q.get().unwrap();
    assert_eq!(v.len(), n);
    v.iter().map(|&b| b as usize).sum()
}

fn echo_bytes(c: Connection<()>) {
    while let Ok(b) = c.recv_bytes() {
        c.send_bytes(&b).unwrap();
    }
}

#[test]
fn sixteen_and_sixty_four_mib_items() {
    let q = Queue::new().unwrap();
    let n = 16 << 20;
    let item: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let want: usize = item.iter().map(|&b| b as usize).sum();
    let p = start(StartMethod::ForkServer, checksum, (q.clone(), n));
    q.put(item).unwrap();
    assert_eq!(p.join().unwrap(), want);

    let (a, b) = Pipe::duplex::<()>().unwrap();
    let p = start(StartMethod::Spawn, echo_bytes, b);
    let big: Vec<u8> = (0..64 << 20).map(|i: usize| (i % 253) as u8).collect();
    a.send_bytes(&big).unwrap();
    a.send_bytes(b"").unwrap();
    assert_eq!(a.recv_bytes().unwrap(), big);
    assert_eq!(a.recv_bytes().unwrap(), b"");
    drop(a);
    p.join().unwrap();
}

/// Takes a queue from `inbox` (sent after this process started) and puts into it.
fn answer_on_queue_from_inbox(inbox: Queue<Queue<u64>>) {
    inbox.get().unwrap().put(1).unwrap();
}

#[test]
fn nothing_leaks_after_queues_pipes_and_children() {
    // Warm up whatever the first spawn opens for good (the fork server's socket, the socket
    // pair a finished Fork child leaves for the next one).
    let q = Queue::new().unwrap();
    for m in [StartMethod::ForkServer, StartMethod::Fork] {
        start(m, produce, (q.clone(), 0, 1)).join().unwrap();
    }
    drop(q);
    let before = open_fds();
    for m in METHODS {
        let q = Queue::new().unwrap();
        let (a, b) = Pipe::duplex().unwrap();
        let p = start(m, produce, (q.clone(), 0, 3));
        let e = start(m, echo, b);
        let inbox = Queue::new().unwrap();
        let r = start(m, answer_on_queue_from_inbox, inbox.clone());
        a.send(1).unwrap();
        assert_eq!(a.recv().unwrap(), 2);
        let answers = Queue::new().unwrap();
        inbox.put(answers.clone()).unwrap();
        assert_eq!(answers.get().unwrap(), 1);
        drop(a);
        p.join().unwrap();
        e.join().unwrap();
        r.join().unwrap();
        assert_eq!(q.qsize(), 3);
    }
    assert_eq!(open_fds(), before, "descriptors leaked");
    let shm: Vec<_> = std::fs::read_dir("/dev/shm")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !shm.iter()
            .any(|n| n.to_string_lossy().contains("multiproc")),
        "{shm:?}"
    );
}

/// Serializes as an error: spawn arguments that fail half-way, after a handle in them.
#[derive(serde::Deserialize)]
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value does not encode"))
    }
}

fn never_runs(_: (Queue<u64>, Unencodable)) {}

#[test]
fn a_child_that_never_starts_does_not_keep_its_handles_counted() {
    for m in METHODS {
        let q: Queue<u64> = Queue::new().unwrap();
        let failed = multiproc_spawn::Process::builder()
            .start_method(m)
            .spawn(never_runs, (q.clone(), Unencodable));
        assert!(matches!(failed, Err(Error::Codec(_))), "{m:?}");
        // The queue was serialized (and counted as in flight to the child) before the
        // arguments failed: that count must be gone, or this `get` would wait for ever for
        // a child that does not exist.
        assert!(matches!(q.get(), Err(Error::Closed)), "{m:?}");
    }
}
