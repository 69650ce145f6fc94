//! Handles inside queue items and pipe messages, between processes that are already running,
//! under every start method: a queue sent through a queue and used both ways, a lock, event,
//! value and named shared memory inside a pipe message, many producers and consumers
//! exchanging items that carry handles, `kill -9` of a producer right after such a put and of
//! processes at random points, no leaked descriptors or `/dev/shm` names, and `Closed`
//! counting a handle that arrived in an item as a holder.

mod common;
use common::{METHODS, kill_rounds, start};
use multiproc_testkit::{open_fds, shm_exists};

use std::time::Duration;

use multiproc_ipc::shared_memory::SharedMemory;
use multiproc_ipc::{Connection, Error, Event, Lock, Pipe, Queue, Value};
use multiproc_spawn::StartMethod;

fn park() -> ! {
    loop {
        std::thread::park();
    }
}

/// A request queue and a reply queue, made after the child started.
type Mailboxes = (Queue<u64>, Queue<u64>);

/// Waits for its mailboxes, answers every request doubled, and returns how many it answered
/// once the requests queue is closed.
fn serve(inbox: Queue<Mailboxes>) -> u64 {
    let (requests, replies) = inbox.get().unwrap();
    let mut n = 0;
    while let Ok(x) = requests.get() {
        replies.put(x * 2).unwrap();
        n += 1;
    }
    n
}

#[test]
fn a_queue_inside_an_item_reaches_a_running_child_and_works_both_ways() {
    for m in METHODS {
        let inbox = Queue::new().unwrap();
        let p = start(m, serve, inbox.clone());
        // Made now: these queues were not in the child's arguments.
        let requests = Queue::new().unwrap();
        let replies = Queue::new().unwrap();
        inbox.put((requests.clone(), replies.clone())).unwrap();
        for i in 0..100 {
            requests.put(i).unwrap();
            assert_eq!(replies.get().unwrap(), 2 * i, "{m:?}");
        }
        drop(requests);
        assert_eq!(p.join().unwrap(), 100, "{m:?}");
        // The child's reply handle went with it.
        assert!(matches!(replies.get(), Err(Error::Closed)), "{m:?}");
    }
}

/// The objects that travel in a pipe message, and a word.
type Kit = (Lock, Event, Value<u64>, SharedMemory, String);

/// Receives a kit: reports whether its lock was held elsewhere (in the value) and sets the
/// event; then adds 10 under the lock, and answers in the shared memory. Sends back a kit
/// of its own making.
fn use_kit(conn: Connection<Kit>) {
    let (lock, ready, value, shm, word) = conn.recv().unwrap();
    assert_eq!(word, "x");
    let mut asked = [0u8; 4];
    shm.read_at(0, &mut asked).unwrap();
    assert_eq!(&asked, b"ping");
    shm.write_at(4, b"pong").unwrap();
    value.set(u64::from(lock.try_acquire().is_none()));
    ready.set();
    let guard = lock.acquire();
    assert!(!guard.previous_owner_died());
    *value.lock() += 10;
    drop(guard);
    let lock2 = Lock::new().unwrap();
    let event2 = Event::new().unwrap();
    event2.set();
    let shm2 = SharedMemory::create(None, 16).unwrap();
    shm2.write_at(0, b"mine").unwrap();
    let held = lock2.acquire();
    let kit = (
        lock2.clone(),
        event2,
        Value::new(42).unwrap(),
        shm2,
        "back".into(),
    );
    conn.send(kit).unwrap();
    // The parent sees our lock held until we let go; then we are done.
    assert_eq!(conn.recv().unwrap().4, "release");
    drop(held);
}

#[test]
fn a_lock_an_event_and_a_value_inside_a_pipe_message() {
    for m in METHODS {
        let (a, b) = Pipe::duplex::<Kit>().unwrap();
        let p = start(m, use_kit, b);
        let lock = Lock::new().unwrap();
        let ready = Event::new().unwrap();
        let value = Value::new(0u64).unwrap();
        let shm = SharedMemory::create(None, 8).unwrap();
        shm.write_at(0, b"ping").unwrap();
        let guard = lock.acquire();
        let kit = (
            lock.clone(),
            ready.clone(),
            value.clone(),
            shm.clone(),
            "x".into(),
        );
        a.send(kit).unwrap();
        assert!(ready.wait_timeout(Duration::from_secs(60)), "{m:?}");
        assert_eq!(value.get(), 1, "{m:?}: the child saw our lock held");
        drop(guard);
        // The child's own objects, sent back while it runs.
        let (lock2, event2, value2, shm2, word) = a.recv().unwrap();
        assert_eq!(word, "back");
        assert!(event2.is_set());
        assert_eq!(value2.get(), 42);
        let mut theirs = [0u8; 4];
        shm2.read_at(0, &mut theirs).unwrap();
        assert_eq!(&theirs, b"mine");
        assert!(lock2.try_acquire().is_none(), "{m:?}: held by the child");
        let name2 = shm2.name().to_owned();
        a.send((lock2.clone(), event2, value2, shm2, "release".into()))
            .unwrap();
        p.join().unwrap();
        assert_eq!(value.get(), 11, "{m:?}");
        let mut answer = [0u8; 4];
        shm.read_at(4, &mut answer).unwrap();
        assert_eq!(&answer, b"pong", "{m:?}");
        drop(lock2.acquire()); // released by the child
        // The child's segment went with the last holder, the child itself.
        assert!(!shm_exists(&name2), "{m:?}");
    }
}

const PRODUCERS: u64 = 3;
const CONSUMERS: u64 = 3;
const PER_PRODUCER: u64 = 150;

/// Every third item carries no handle: records with and without descriptors interleave.
type Tagged = (u64, u64, Option<Value<u64>>);

fn produce_tagged((q, id, counter): (Queue<Tagged>, u64, Value<u64>)) {
    for seq in 0..PER_PRODUCER {
        let handle = (seq % 3 != 2).then(|| counter.clone());
        q.put((id, seq, handle)).unwrap();
    }
}

/// Counts one per item into the item's counter; returns (items, items with a handle).
fn consume_tagged(q: Queue<Tagged>) -> (u64, u64) {
    let (mut items, mut with_handle) = (0, 0);
    loop {
        match q.get() {
            Ok((_, _, Some(counter))) => {
                *counter.lock() += 1;
                items += 1;
                with_handle += 1;
            }
            Ok((_, _, None)) => items += 1,
            Err(Error::Closed) => return (items, with_handle),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn many_producers_and_consumers_exchange_items_that_carry_handles() {
    let q = Queue::with_maxsize(16).unwrap();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|i| start(METHODS[i as usize % 3], consume_tagged, q.clone()))
        .collect();
    let counters: Vec<Value<u64>> = (0..PRODUCERS).map(|_| Value::new(0).unwrap()).collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let args = (q.clone(), id, counters[id as usize].clone());
            start(METHODS[(id as usize + 1) % 3], produce_tagged, args)
        })
        .collect();
    drop(q);
    for p in producers {
        p.join().unwrap();
    }
    let (mut items, mut with_handle) = (0, 0);
    for c in consumers {
        let (i, w) = c.join().unwrap();
        items += i;
        with_handle += w;
    }
    let per_producer_with_handle = (0..PER_PRODUCER).filter(|s| s % 3 != 2).count() as u64;
    assert_eq!(items, PRODUCERS * PER_PRODUCER, "items lost or duplicated");
    assert_eq!(with_handle, PRODUCERS * per_producer_with_handle);
    for c in &counters {
        assert_eq!(c.get(), per_producer_with_handle, "every handle worked");
    }
}

/// What a producer about to be killed makes and hands over.
type Own = (Queue<u64>, Event, SharedMemory);

/// Makes a queue, an event and a named segment of its own, puts a value in the queue and
/// bytes in the segment, puts the three handles in `outer`, says so, and waits to be killed.
fn put_own_handles_and_park((outer, ready): (Queue<Own>, Event)) {
    let mine = Queue::new().unwrap();
    mine.put(7).unwrap();
    let event = Event::new().unwrap();
    event.set();
    let shm = SharedMemory::create(None, 8).unwrap();
    shm.write_at(0, b"alive").unwrap();
    outer.put((mine, event, shm)).unwrap();
    ready.set();
    park();
}

#[test]
fn a_producer_killed_right_after_a_put_with_handles_leaves_them_usable() {
    // Counted in a fresh process of its own: other tests of this binary may run in threads.
    let (before, after) = start(StartMethod::Spawn, kill_producers, ())
        .join()
        .unwrap();
    assert_eq!(before, after, "descriptors leaked");
}

fn kill_producers(_: ()) -> (usize, usize) {
    // Warm up what the first child of each method opens for good (the fork server, the socket
    // pair a finished Fork child leaves for the next one).
    for m in METHODS {
        start(m, |()| (), ()).join().unwrap();
    }
    let before = open_fds();
    for m in METHODS {
        let outer = Queue::new().unwrap();
        let ready = Event::new().unwrap();
        let p = start(m, put_own_handles_and_park, (outer.clone(), ready.clone()));
        assert!(ready.wait_timeout(Duration::from_secs(60)), "{m:?}");
        p.kill().unwrap();
        let mut p = p;
        assert!(p.wait_timeout(Duration::from_secs(60)));
        drop(p);
        // The only holder of these objects is dead; their descriptors were in the socket.
        let (theirs, event, shm) = outer.get().unwrap();
        assert!(event.is_set(), "{m:?}");
        assert_eq!(theirs.get().unwrap(), 7, "{m:?}");
        theirs.put(8).unwrap();
        assert_eq!(theirs.get().unwrap(), 8);
        assert!(matches!(theirs.get(), Err(Error::Closed)), "{m:?}");
        let mut bytes = [0u8; 5];
        shm.read_at(0, &mut bytes).unwrap();
        assert_eq!(&bytes, b"alive", "{m:?}");
        let name = shm.name().to_owned();
        drop(shm);
        assert!(!shm_exists(&name), "{m:?}: {name} left in /dev/shm");
    }
    (before, open_fds())
}

/// Receives a queue, reports, and waits for `go` before it puts into it and returns.
fn hold_then_put((inbox, ready, go): (Queue<Queue<u64>>, Event, Event)) -> bool {
    let q = inbox.get().unwrap();
    ready.set();
    go.wait();
    q.put(5).unwrap();
    // The parent dropped its own handle to `lonely` before we got it: ours is the only one.
    let lonely = inbox.get().unwrap();
    matches!(lonely.get(), Err(Error::Closed))
}

#[test]
fn a_handle_that_arrived_inside_an_item_counts_as_a_holder() {
    for m in METHODS {
        let inbox = Queue::new().unwrap();
        let (ready, go) = (Event::new().unwrap(), Event::new().unwrap());
        let p = start(m, hold_then_put, (inbox.clone(), ready.clone(), go.clone()));
        let q = Queue::new().unwrap();
        inbox.put(q.clone()).unwrap();
        assert!(ready.wait_timeout(Duration::from_secs(60)));
        // Only the child can put now: our get waits for it instead of answering Closed.
        go.set();
        assert_eq!(q.get().unwrap(), 5, "{m:?}");
        let lonely = Queue::<u64>::new().unwrap();
        inbox.put(lonely).unwrap(); // our handle goes with the item
        assert!(p.join().unwrap(), "{m:?}: the child's get saw nobody else");
        // The child's handle went with it.
        assert!(matches!(q.get(), Err(Error::Closed)), "{m:?}");
    }
}

/// Fills its descriptor table, then takes an item with handles: there is no room for their
/// descriptors. `None` if the table never filled (a huge `ulimit -n`).
fn take_without_room(q: Queue<Queue<u8>>) -> Option<(String, u8)> {
    let mut files = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(_) => break,
        }
        if files.len() > 1 << 17 {
            return None;
        }
    }
    let lost = match q.get() {
        Err(Error::Codec(m)) => m,
        other => panic!("expected a codec error, got {other:?}"),
    };
    drop(files);
    // The next item is whole, and its handle works.
    let next = q.get().unwrap();
    Some((lost, next.get().unwrap()))
}

#[test]
fn a_receiver_without_room_for_descriptors_loses_that_item_only() {
    let q = Queue::new().unwrap();
    let (first, second) = (Queue::new().unwrap(), Queue::new().unwrap());
    first.put(1).unwrap();
    second.put(2).unwrap();
    q.put(first).unwrap();
    q.put(second).unwrap();
    // A fresh process: filling the descriptor table would disturb this one's other tests.
    match start(StartMethod::Spawn, take_without_room, q)
        .join()
        .unwrap()
    {
        Some((lost, next)) => {
            assert!(lost.contains("ulimit"), "{lost}");
            assert_eq!(next, 2);
        }
        None => eprintln!("skipped: the descriptor table never filled"),
    }
}

// ---- kill -9 at random points, with a handle in every item ----

/// A sequence number and a value that holds it: the handle proves it arrived working.
type Item = (u64, Value<u64>);

fn check(it: &Item) {
    assert_eq!(it.1.get(), it.0, "item {} arrived with another value", it.0);
}

fn produce_forever((q, _seed): (Queue<Item>, u64)) {
    for seq in 0.. {
        q.put((seq, Value::new(seq).unwrap())).unwrap();
    }
}

#[test]
fn kill_dash_nine_producers_and_consumers_of_items_with_handles() {
    // Datagrams left by a killed producer, or taken by a killed consumer, must not break the
    // queue; a consumer killed after it took an item's descriptors costs that item alone,
    // reported as lost.
    kill_rounds(
        40,
        16,
        produce_forever,
        |seq, _| Value::new(seq).unwrap(),
        check,
        |e| match e {
            Error::Codec(m) => {
                assert!(m.contains("lost"), "{m}");
                true
            }
            _ => false,
        },
    );
}

/// An item that holds its own queue and a pipe end: every descriptor is in the queue's own
/// socket when the last handle goes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Node(Queue<Node>, Option<Connection<u8>>);

#[test]
fn items_never_taken_leak_no_descriptor() {
    // Counted in a fresh process of its own, as above.
    let (before, after) = start(StartMethod::Spawn, never_taken, ()).join().unwrap();
    assert_eq!(before, after, "descriptors leaked");
}

fn never_taken(_: ()) -> (usize, usize) {
    let before = open_fds();
    let q: Queue<Node> = Queue::new().unwrap();
    let (a, b) = Pipe::duplex::<u8>().unwrap();
    q.put(Node(q.clone(), Some(a))).unwrap();
    q.put(Node(q.clone(), None)).unwrap();
    drop(q);
    b.send(1).unwrap(); // `a` is still held (in flight), so the pipe is open
    drop(b);
    (before, open_fds())
}

/// Keeps every handle it receives (the same queue each time), then answers on one of them.
fn keep_them_all((inbox, n): (Queue<Queue<u64>>, usize)) -> u64 {
    let kept: Vec<Queue<u64>> = (0..n).map(|_| inbox.get().unwrap()).collect();
    kept[n / 2].put(7).unwrap();
    kept.len() as u64
}

#[test]
fn the_same_queue_received_thousands_of_times_is_mapped_once() {
    // Each ring reserves 64 GiB of address space: 3,000 separate mappings would need 192 TiB,
    // more than a process has (128 TiB), so this passes only if a handle that arrives for an
    // object already mapped in the process shares that mapping.
    let n = 3_000;
    let inbox: Queue<Queue<u64>> = Queue::new().unwrap();
    let target: Queue<u64> = Queue::new().unwrap();
    let child = start(StartMethod::Spawn, keep_them_all, (inbox.clone(), n));
    for _ in 0..n {
        inbox.put(target.clone()).unwrap();
    }
    assert_eq!(target.get().unwrap(), 7);
    assert_eq!(child.join().unwrap(), n as u64);
}
