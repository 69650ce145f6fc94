//! Loom models of the ring itself (`cargo xtask loom`): the real [`Ring::put`] and
//! [`Ring::get`], whose atomics, locks and signals come from [`super::atomics`] (loom's
//! under `--cfg multiproc_loom`), over a [`ModelArea`] of [`BASE_CAP`] bytes: three 8-byte
//! items and the terminator fit, so the models go round the ring and reuse its words.
//!
//! Loom reports any payload read racing a payload write (a consumer trusting a stale header
//! would read words a producer is writing: each word's copy touches a loom cell), and the
//! tests check that no item is lost, duplicated or reordered per producer. A waiter sleeps
//! for real (the real `Signal` over a futex model without timeouts), so a lost wake-up is a
//! deadlock that loom reports: these models found that the signal's arming needs a fence
//! after it, and that a notify after a lock release needs one under the language's rules
//! (the hardware's locked instruction gives it on x86-64). Dead peers and
//! growth are not modelled here (the area cannot grow; a full ring waits for consumers):
//! the unit and stress tests cover those with real processes.

use std::time::Instant;

use loom::sync::Arc;

use super::atomics::ModelArea;
use super::{BASE_CAP, GetError, Ring};

struct Model {
    ring: Ring,
    area: ModelArea,
}

fn model(f: impl Fn(Arc<Model>) + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    // Three preemptions cover every interleaving the protocol's races need (a consumer
    // polling between a producer's payload copy, terminator, commit and `tail` store) and keep
    // the run to seconds.
    builder.preemption_bound.get_or_insert(3);
    builder.check(move || {
        let ring = Ring::default();
        ring.init(0, 0);
        f(Arc::new(Model {
            ring,
            area: ModelArea::new(BASE_CAP as usize),
        }));
    });
}

impl Model {
    fn put(&self, v: u64) {
        self.ring
            .put(&self.area, &v.to_le_bytes(), None, None, || true)
            .unwrap();
    }

    fn take(&self, deadline: Option<Instant>) -> Result<u64, GetError> {
        let mut scratch = Vec::new();
        let mut got = 0;
        self.ring.get(
            &self.area,
            &mut scratch,
            deadline,
            || true,
            &mut |b, at, _| {
                assert_eq!(at, None);
                got = u64::from_le_bytes(b.try_into().expect("a whole item"));
            },
        )?;
        Ok(got)
    }

    fn get(&self) -> u64 {
        self.take(None).unwrap()
    }

    /// The ring is empty (a get that does not wait finds nothing).
    fn assert_empty(&self) {
        assert_eq!(self.take(Some(Instant::now())), Err(GetError::Empty));
        assert_eq!(self.ring.len(), 0);
    }
}

#[test]
fn loom_ring_two_producers_one_consumer() {
    model(|m| {
        let p = {
            let m = m.clone();
            loom::thread::spawn(move || m.put(20))
        };
        m.put(10);
        let mut got = [m.get(), m.get()];
        p.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, [10, 20]);
        m.assert_empty();
    });
}

#[test]
fn loom_ring_one_producer_two_consumers() {
    model(|m| {
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
        m.assert_empty();
    });
}

#[test]
fn loom_ring_slot_reuse_after_a_lap() {
    // Five items of 16 bytes (header and payload) through 64 bytes: the fifth lands where
    // the first was, and the consumer may look at those words while the producer is still
    // writing them. Only the terminator stops it from taking an old header (or payload
    // bytes) for a new record, and the ring's room check (three records and a terminator at
    // most) from overwriting a record not yet read.
    model(|m| {
        let m2 = m.clone();
        let consumer = loom::thread::spawn(move || std::array::from_fn::<u64, 5, _>(|_| m2.get()));
        for v in 1..=5 {
            m.put(v);
        }
        assert_eq!(consumer.join().unwrap(), [1, 2, 3, 4, 5]);
        m.assert_empty();
    });
}
