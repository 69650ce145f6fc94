//! Loom model of the ring's index protocol (`cargo xtask loom`).
//!
//! The real ring lives in shared memory and copies bytes, which loom cannot follow; this model
//! keeps its protocol exactly — producers serialised by the put lock, consumers by the get
//! lock, the record written before `tail` is published (Release) and read only after `tail`
//! is seen (Acquire), `head` published after the read and seen by producers before they
//! reuse the space — on one-word records in `UnsafeCell`s, so that loom reports any torn or
//! racy access, and checks that no item is lost, duplicated or reordered per producer.
//! Keep the orderings in step with `ring.rs` (`Ring::put`, `Ring::get`).

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::{Arc, Mutex};

const CAP: u64 = 2;

struct Model {
    put_lock: Mutex<()>,
    get_lock: Mutex<()>,
    tail: AtomicU64,
    head: AtomicU64,
    cells: [UnsafeCell<u64>; CAP as usize],
}

impl Model {
    fn new() -> Self {
        Model {
            put_lock: Mutex::new(()),
            get_lock: Mutex::new(()),
            tail: AtomicU64::new(0),
            head: AtomicU64::new(0),
            cells: [UnsafeCell::new(0), UnsafeCell::new(0)],
        }
    }

    fn try_put(&self, v: u64) -> bool {
        let _held = self.put_lock.lock().unwrap();
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        if tail - head == CAP {
            return false;
        }
        // SAFETY: the slot at `tail` is free (head is past its last use) and we hold the
        // put lock; loom checks that no consumer reads it concurrently.
        self.cells[(tail % CAP) as usize].with_mut(|p| unsafe { *p = v });
        self.tail.store(tail + 1, Ordering::Release);
        true
    }

    fn try_get(&self) -> Option<u64> {
        let _held = self.get_lock.lock().unwrap();
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        // SAFETY: the record at `head` was published by `tail`'s Release store, seen above.
        let v = self.cells[(head % CAP) as usize].with(|p| unsafe { *p });
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
