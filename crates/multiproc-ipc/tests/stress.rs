//! Many producers and consumers in separate processes with checksums, and a fault test that
//! `kill -9`s producers and consumers at random points: no item lost (but the one a killed
//! consumer held), duplicated or torn, and the survivors keep using the queue.

use std::collections::HashSet;
use std::time::{Duration, Instant};

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

fn next(rng: &mut u64) -> u64 {
    // xorshift64*
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn produce_forever((q, seed): (Queue<Item>, u64)) {
    let mut rng = seed | 1;
    for seq in 0.. {
        q.put(item(seq, &mut rng)).unwrap();
    }
}

fn forward_forever((q, out): (Queue<Item>, Queue<Item>)) {
    loop {
        let it = q.get().unwrap();
        out.put(it).unwrap();
    }
}

fn spin_for(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[test]
fn kill_dash_nine_producers_and_consumers_a_hundred_times() {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    // One queue survives all hundred rounds: whatever a killed process left behind (a
    // half-written record, a lock held by a dead owner) must not break it.
    let q: Queue<Item> = Queue::with_maxsize(32).unwrap();
    let out: Queue<Item> = Queue::new().unwrap();
    for round in 0..100u64 {
        let method = [StartMethod::Fork, StartMethod::ForkServer][(round % 2) as usize];
        if round % 2 == 0 {
            // A producer is killed while it puts: every item it committed arrives exactly
            // once, in order, whole.
            let p = Process::builder()
                .start_method(method)
                .spawn(produce_forever, (q.clone(), next(&mut rng)))
                .unwrap();
            // At least one item first: a child killed before it has even decoded its
            // arguments leaves its handles counted as in flight (see the holders docs).
            let want = 1 + next(&mut rng) % 40;
            for seq in 0..want {
                let it = q.get().unwrap();
                assert_eq!(it.0, seq, "round {round}");
                check_whole(&it);
            }
            spin_for(Duration::from_micros(next(&mut rng) % 2_000));
            p.kill().unwrap();
            drop(p);
            let mut expect = want;
            loop {
                match q.get() {
                    Ok(it) => {
                        assert_eq!(it.0, expect, "round {round}: lost or duplicated");
                        check_whole(&it);
                        expect += 1;
                    }
                    Err(Error::Closed) => break,
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
        } else {
            // A consumer is killed while it takes and forwards: at most the item it held is
            // missing, none twice, none torn.
            let total = 20 + next(&mut rng) % 60;
            for seq in 0..total.min(32) {
                q.put(item(seq, &mut rng)).unwrap();
            }
            let c = Process::builder()
                .start_method(method)
                .spawn(forward_forever, (q.clone(), out.clone()))
                .unwrap();
            for seq in 32..total {
                q.put(item(seq, &mut rng)).unwrap();
            }
            let mut seen = HashSet::new();
            let first = out.get().unwrap(); // the consumer is up (see above)
            check_whole(&first);
            seen.insert(first.0);
            spin_for(Duration::from_micros(next(&mut rng) % 3_000));
            c.kill().unwrap();
            let _ = c.join();
            for source in [&out, &q] {
                while let Ok(it) = source.get_nowait() {
                    check_whole(&it);
                    assert!(seen.insert(it.0), "round {round}: item {} twice", it.0);
                }
            }
            let missing = total - seen.len() as u64;
            assert!(missing <= 1, "round {round}: {missing} items lost");
        }
    }
    // Still a working queue.
    q.put((7, vec![7])).unwrap();
    assert_eq!(q.get().unwrap(), (7, vec![7]));
}
