//! Loom model of the ring's record protocol (`cargo xtask loom`).
//!
//! The real ring lives in shared memory and copies bytes, which loom cannot follow; this model
//! keeps its protocol exactly, on one-word records in `UnsafeCell`s with one header word
//! each: producers serialised by the put lock, consumers by the get lock; a producer writes
//! the payload, zeroes the *next* slot's header (the terminator), commits its header
//! (Release) and then moves `tail`; a consumer polls the header at `head` (Acquire), reads
//! the payload and moves `head` (Release) without ever reading `tail`; producers reuse a
//! slot only once `head` (Acquire) says it was read, and keep one slot free for the
//! terminator. Loom reports any torn or racy payload access (a consumer trusting a stale
//! header would read a slot a producer is writing), and the tests check that no item is
//! lost, duplicated or reordered per producer. Keep the orderings in step with `ring/mod.rs`
//! (`Ring::put`, `Ring::get`).

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::{Arc, Mutex};

/// Slots in the model ring: two records and the terminator's slot, so that slots are reused
/// within the tests' three items.
const CAP: u64 = 3;
const READY: u64 = 1 << 63;

struct Model {
    put_lock: Mutex<()>,
    get_lock: Mutex<()>,
    tail: AtomicU64,
    head: AtomicU64,
    headers: [AtomicU64; CAP as usize],
    cells: [UnsafeCell<u64>; CAP as usize],
}

impl Model {
    fn new() -> Self {
        Model {
            put_lock: Mutex::new(()),
            get_lock: Mutex::new(()),
            tail: AtomicU64::new(0),
            head: AtomicU64::new(0),
            headers: std::array::from_fn(|_| AtomicU64::new(0)),
            cells: std::array::from_fn(|_| UnsafeCell::new(0)),
        }
    }

    fn slot(at: u64) -> usize {
        (at % CAP) as usize
    }

    fn try_put(&self, v: u64) -> bool {
        let _held = self.put_lock.lock().unwrap();
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        // The record and the terminator after it must fit.
        if tail - head + 2 > CAP {
            return false;
        }
        // SAFETY: the slot at `tail` is free (head is past its last use, and its header is
        // the previous producer's terminator, so no consumer reads it) and we hold the put
        // lock; loom checks that no consumer reads it concurrently.
        self.cells[Self::slot(tail)].with_mut(|p| unsafe { *p = v });
        self.headers[Self::slot(tail + 1)].store(0, Ordering::Relaxed);
        self.headers[Self::slot(tail)].store(READY | v, Ordering::Release);
        self.tail.store(tail + 1, Ordering::Release);
        true
    }

    fn try_get(&self) -> Option<u64> {
        let _held = self.get_lock.lock().unwrap();
        let head = self.head.load(Ordering::Relaxed);
        let header = self.headers[Self::slot(head)].load(Ordering::Acquire);
        if header == 0 {
            return None;
        }
        // SAFETY: the record at `head` was committed by the header's Release store, seen
        // above with Acquire.
        let v = self.cells[Self::slot(head)].with(|p| unsafe { *p });
        assert_eq!(
            header,
            READY | v,
            "a header committed in this lap, never a stale one"
        );
        self.head.store(head + 1, Ordering::Release);
        Some(v)
    }

    fn put(&self, v: u64) {
        while !self.try_put(v) {
            loom::thread::yield_now();
        }
    }

    fn get(&self) -> u64 {
        loop {
            if let Some(v) = self.try_get() {
                return v;
            }
            loom::thread::yield_now();
        }
    }
}

#[test]
fn loom_ring_two_producers_one_consumer() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let p = {
            let m = m.clone();
            loom::thread::spawn(move || m.put(20))
        };
        m.put(10);
        let mut got = [m.get(), m.get()];
        p.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, [10, 20]);
        assert_eq!(m.try_get(), None);
    });
}

#[test]
fn loom_ring_one_producer_two_consumers() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let m2 = m.clone();
        let consumer = loom::thread::spawn(move || [m2.get(), m2.get()]);
        for v in 1..=3 {
            m.put(v);
        }
        let mine = m.get();
        let theirs = consumer.join().unwrap();
        assert!(theirs[0] < theirs[1], "a consumer sees items in order");
        let mut all = vec![mine, theirs[0], theirs[1]];
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3]);
    });
}

#[test]
fn loom_ring_slot_reuse_after_a_lap() {
    // Four items through three slots: the fourth lands where the first was, and the consumer
    // may look at that slot while the producer is still writing it. Only the third item's
    // terminator stops it from taking the first item's header for a new record.
    loom::model(|| {
        let m = Arc::new(Model::new());
        let m2 = m.clone();
        let consumer = loom::thread::spawn(move || [m2.get(), m2.get(), m2.get(), m2.get()]);
        for v in 1..=4 {
            m.put(v);
        }
        assert_eq!(consumer.join().unwrap(), [1, 2, 3, 4]);
    });
}
