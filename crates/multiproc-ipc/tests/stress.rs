//! Many producers and consumers in separate processes with checksums, and a fault test that
//! `kill -9`s producers and consumers at random points: no item lost (but the one a killed
//! consumer held), duplicated or torn, and the survivors keep using the queue.

mod common;
use common::{kill_rounds, next};

use multiproc_ipc::{Error, Queue};
use multiproc_spawn::{Process, StartMethod};

const PRODUCERS: u64 = 4;
const CONSUMERS: u64 = 4;

fn per_producer() -> u64 {
    1_000_000
}

fn produce((q, id, n): (Queue<u64>, u64, u64)) {
    for seq in 0..n {
        q.put((id << 32) | seq).unwrap();
    }
}

/// Takes items until the queue is closed; checks that each producer's items arrive in order;
/// returns (count, sum of items, sum of squares mod 2^64).
fn consume(q: Queue<u64>) -> (u64, u64, u64) {
    let mut last = vec![None::<u64>; PRODUCERS as usize];
    let (mut count, mut sum, mut squares) = (0u64, 0u64, 0u64);
    loop {
        match q.get() {
            Ok(v) => {
                let (id, seq) = ((v >> 32) as usize, v & 0xFFFF_FFFF);
                assert!(
                    last[id].is_none_or(|l| l < seq),
                    "producer {id} out of order"
                );
                last[id] = Some(seq);
                count += 1;
                sum = sum.wrapping_add(v);
                squares = squares.wrapping_add(v.wrapping_mul(v));
            }
            Err(Error::Closed) => return (count, sum, squares),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn four_producers_four_consumers_with_checksums() {
    let n = per_producer();
    let q = Queue::with_maxsize(4096).unwrap();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            Process::builder()
                .start_method(StartMethod::ForkServer)
                .spawn(consume, q.clone())
                .unwrap()
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            Process::builder()
                .start_method(StartMethod::ForkServer)
                .spawn(produce, (q.clone(), id, n))
                .unwrap()
        })
        .collect();
    drop(q);
    for p in producers {
        p.join().unwrap();
    }
    let (mut count, mut sum, mut squares) = (0u64, 0u64, 0u64);
    for c in consumers {
        let (c, s, q) = c.join().unwrap();
        count += c;
        sum = sum.wrapping_add(s);
        squares = squares.wrapping_add(q);
    }
    let all = (0..PRODUCERS).flat_map(|id| (0..n).map(move |seq| (id << 32) | seq));
    let (want_sum, want_squares) = all.fold((0u64, 0u64), |(s, q), v| {
        (s.wrapping_add(v), q.wrapping_add(v.wrapping_mul(v)))
    });
    assert_eq!(count, PRODUCERS * n, "items lost or duplicated");
    assert_eq!((sum, squares), (want_sum, want_squares), "checksum");
}

// ---- kill -9 at random points ----

/// An item whose payload proves it is whole: `len` bytes, each `seq % 251`.
type Item = (u64, Vec<u8>);

fn item(seq: u64, rng: &mut u64) -> Item {
    // Mostly small items, now and then a large one (a long copy to be killed in).
    let len = match next(rng) % 16 {
        0 => 200_000 + next(rng) % 300_000,
        _ => next(rng) % 2_000,
    };
    (seq, vec![(seq % 251) as u8; len as usize])
}

fn check_whole(it: &Item) {
    assert!(
        it.1.iter().all(|&b| b == (it.0 % 251) as u8),
        "torn item {}",
        it.0
    );
}

fn produce_forever((q, seed): (Queue<Item>, u64)) {
    let mut rng = seed | 1;
    for seq in 0.. {
        q.put(item(seq, &mut rng)).unwrap();
    }
}

#[test]
fn kill_dash_nine_producers_and_consumers_a_hundred_times() {
    // Payloads of every size, so that kills land mid-copy of large records too; a torn item
    // fails `check_whole`.
    kill_rounds(
        100,
        32,
        produce_forever,
        |seq, rng| item(seq, rng).1,
        check_whole,
        |_| false,
    );
}
