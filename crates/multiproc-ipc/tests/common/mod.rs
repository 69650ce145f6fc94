//! Helpers shared by the ipc crate's integration tests.
#![allow(dead_code, unreachable_pub)]

use multiproc_ipc::{Error, Queue};
use multiproc_spawn::{Process, StartMethod};

/// Every start method, so each cross-process test runs under all three.
pub const METHODS: [StartMethod; 3] = [
    StartMethod::Fork,
    StartMethod::Spawn,
    StartMethod::ForkServer,
];

/// Starts `f(args)` in a child under start method `m`.
pub fn start<A, R>(m: StartMethod, f: fn(A) -> R, args: A) -> Process<R>
where
    A: serde::Serialize + serde::de::DeserializeOwned + 'static,
    R: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    Process::builder().start_method(m).spawn(f, args).unwrap()
}

/// xorshift64*: a seeded, reproducible stream of pseudo-random numbers.
pub fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Busy-waits for `d` (a random point inside a child's work, not a synchronisation).
pub fn spin_for(d: std::time::Duration) {
    let t = std::time::Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Takes items from `q` and puts them on `out` until killed.
pub fn forward_forever<I>((q, out): (Queue<I>, Queue<I>))
where
    I: serde::Serialize + serde::de::DeserializeOwned,
{
    loop {
        let it = q.get().unwrap();
        out.put(it).unwrap();
    }
}

/// A queue of `(sequence number, payload)` items.
pub type Numbered<P> = Queue<(u64, P)>;

/// The fault test behind the queue's crash-safety claims: `rounds` rounds on one queue of
/// `maxsize` items that must survive them all, alternating (under Fork and ForkServer) a
/// producer `kill -9`ed while it puts (every item it committed arrives once, in order, and
/// passes `check`) and a consumer `kill -9`ed while it takes and forwards (at most the item
/// it held is missing, none arrives twice). Items are `(sequence number, payload)`; `make`
/// builds the payload of an item the test puts itself, `produce` is the child that puts
/// `make`-like items from sequence 0 for ever (given a seed), and `lost` says whether an
/// error from `get` stands for the killed consumer's one item (and is counted as such).
pub fn kill_rounds<P>(
    rounds: u64,
    maxsize: usize,
    produce: fn((Numbered<P>, u64)),
    mut make: impl FnMut(u64, &mut u64) -> P,
    check: impl Fn(&(u64, P)),
    lost: impl Fn(&Error) -> bool,
) where
    P: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    use std::time::Duration;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let q: Numbered<P> = Queue::with_maxsize(maxsize).unwrap();
    let out: Numbered<P> = Queue::new().unwrap();
    let batch = maxsize as u64;
    for round in 0..rounds {
        let method = [StartMethod::Fork, StartMethod::ForkServer][(round % 2) as usize];
        if round % 2 == 0 {
            let p = start(method, produce, (q.clone(), next(&mut rng)));
            // At least one item first: a child killed before it has even decoded its
            // arguments leaves its handles counted as in flight (see the holders docs).
            let want = 1 + next(&mut rng) % (batch + batch / 4);
            for seq in 0..want {
                let it = q.get().unwrap();
                assert_eq!(it.0, seq, "round {round}");
                check(&it);
            }
            spin_for(Duration::from_micros(next(&mut rng) % 2_000));
            p.kill().unwrap();
            drop(p);
            let mut expect = want;
            loop {
                match q.get() {
                    Ok(it) => {
                        assert_eq!(it.0, expect, "round {round}: lost or duplicated");
                        check(&it);
                        expect += 1;
                    }
                    Err(Error::Closed) => break,
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
        } else {
            let total = batch / 2 + next(&mut rng) % (2 * batch);
            for seq in 0..total.min(batch) {
                q.put((seq, make(seq, &mut rng))).unwrap();
            }
            let c = start(
                method,
                forward_forever::<(u64, P)>,
                (q.clone(), out.clone()),
            );
            for seq in batch..total {
                q.put((seq, make(seq, &mut rng))).unwrap();
            }
            let mut seen = std::collections::HashSet::new();
            let first = out.get().unwrap(); // the consumer is up (see above)
            check(&first);
            seen.insert(first.0);
            spin_for(Duration::from_micros(next(&mut rng) % 3_000));
            c.kill().unwrap();
            let _ = c.join();
            let mut errors = 0;
            for source in [&out, &q] {
                loop {
                    match source.get_nowait() {
                        Ok(it) => {
                            check(&it);
                            assert!(seen.insert(it.0), "round {round}: item {} twice", it.0);
                        }
                        Err(e) if lost(&e) => errors += 1,
                        Err(_) => break,
                    }
                }
            }
            let missing = total - seen.len() as u64;
            assert!(missing <= 1, "round {round}: {missing} items lost");
            assert!(errors <= missing, "round {round}");
        }
    }
    // Still a working queue.
    q.put((7, make(7, &mut rng))).unwrap();
    check(&q.get().unwrap());
}
