//! How a Fork child reports: a small outcome through its slot in a page shared with the parent,
//! a large one or one with handles through its socket, and slots are reused from one child to
//! the next, leaking nothing. (Alone in its test binary: it counts descriptors,
//! which Fork children started by other tests at the same time would disturb.)

mod common;

use common::{Reporter, hear};
use multiproc_spawn::{Process, StartMethod};
use multiproc_sync::Error;

fn fork() -> multiproc_spawn::ProcessBuilder {
    Process::builder().start_method(StartMethod::Fork)
}

/// Outcomes of every kind and size, in turn, come back whole, and leave no descriptor behind.
#[test]
fn outcomes_of_every_size_and_kind_come_back_in_turn() {
    // Warm up (the first Fork child maps the page of outcome slots, which is no descriptor, and
    // leaves its socket pair, never written into, for the next child: two descriptors kept).
    assert_eq!(fork().spawn_closure(|| 1).unwrap().join().unwrap(), 1);
    let before = multiproc_spawn::open_fd_count();
    for round in 0..20usize {
        // Small: fits a slot.
        let p = fork().spawn_closure(move || round as u64 * 3).unwrap();
        assert_eq!(p.join().unwrap(), round as u64 * 3);
        // Just too big for a slot, and much bigger.
        for len in [57, 100_000] {
            let p = fork()
                .spawn_closure(move || "x".repeat(len + round))
                .unwrap();
            assert_eq!(p.join().unwrap().len(), len + round);
        }
        // A handle in the result goes through the socket with its descriptor.
        let (mut rx, tx) = Reporter::pair();
        let p = fork().spawn_closure(move || tx).unwrap();
        let back = p.join().unwrap();
        back.say(round as u32);
        drop(back);
        assert_eq!(hear(&mut rx), Some(round as u32));
        // A short panic (slot) and a long one (socket).
        for len in [5, 500] {
            let p = fork()
                .spawn_closure(move || -> u8 { panic!("{}", "p".repeat(len)) })
                .unwrap();
            match p.join() {
                Err(Error::ProcessFailed {
                    exitcode: 1,
                    message,
                }) => {
                    assert_eq!(message, "p".repeat(len))
                }
                other => panic!("{other:?}"),
            }
        }
    }
    // A pair written into is closed, never reused, and a fresh one takes its place.
    assert_eq!(fork().spawn_closure(|| 2).unwrap().join().unwrap(), 2);
    assert_eq!(
        multiproc_spawn::open_fd_count(),
        before,
        "descriptors leaked"
    );
}

/// A child's socket pair serves the next child only if nothing was ever written into it. A
/// child killed before it reported, a report through the socket, a handle dropped unjoined:
/// each next child's outcome is still its own, and no descriptor is left behind.
#[test]
fn socket_pairs_serve_the_next_child_only_when_clean() {
    assert_eq!(fork().spawn_closure(|| 1).unwrap().join().unwrap(), 1);
    let before = multiproc_spawn::open_fd_count();
    for round in 0..30u64 {
        let (mut rx, tx) = Reporter::pair();
        let p = fork()
            .spawn_closure(move || -> u8 {
                tx.say(1);
                loop {
                    std::thread::park();
                }
            })
            .unwrap();
        assert_eq!(hear(&mut rx), Some(1), "the child runs");
        p.kill().unwrap();
        assert!(matches!(
            p.join(),
            Err(Error::ProcessFailed { exitcode: -9, .. })
        ));
        assert_eq!(
            fork().spawn_closure(move || round).unwrap().join().unwrap(),
            round
        );
        let big = fork().spawn_closure(move || vec![round; 10_000]).unwrap();
        assert_eq!(big.join().unwrap(), vec![round; 10_000]);
        assert_eq!(
            fork()
                .spawn_closure(move || round + 1)
                .unwrap()
                .join()
                .unwrap(),
            round + 1
        );
        let mut dropped = fork().spawn_closure(move || round + 2).unwrap();
        assert!(dropped.wait_timeout(std::time::Duration::from_secs(10)));
        drop(dropped);
        assert_eq!(
            fork()
                .spawn_closure(move || round + 3)
                .unwrap()
                .join()
                .unwrap(),
            round + 3
        );
    }
    assert_eq!(
        multiproc_spawn::open_fd_count(),
        before,
        "descriptors leaked"
    );
}
