//! Fork children started by many threads at once each get their own outcome slot, and a Fork
//! child whose parent stopped listening still finishes.

mod common;

use common::{Reporter, exits_within, hear};
use multiproc_spawn::{Process, StartMethod};
use std::time::Duration;

fn fork() -> multiproc_spawn::ProcessBuilder {
    Process::builder().start_method(StartMethod::Fork)
}

/// Many threads forking at once each get their own slot.
#[test]
fn threads_forking_at_once_get_their_own_answers() {
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    let big = i % 10 == 0;
                    let p = fork()
                        .spawn_closure(move || {
                            let n = t * 1000 + i;
                            if big { vec![n; 100] } else { vec![n] }
                        })
                        .unwrap();
                    let v = p.join().unwrap();
                    assert_eq!(v.len(), if big { 100 } else { 1 });
                    assert!(
                        v.iter().all(|&n| n == t * 1000 + i),
                        "thread {t}, child {i}"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn wait_then_answer_big((go, r): (Reporter, Reporter)) -> String {
    r.say(std::process::id());
    // Blocks until the test writes to `go`'s pipe (a forked child holds a copy of the write end
    // too, so closing it would not do).
    let mut f = std::fs::File::from(go.0);
    let _ = std::io::Read::read(&mut f, &mut [0u8; 1]);
    "y".repeat(4 << 20)
}

/// A child whose handle was dropped still finishes when its result is too big for any buffer.
#[test]
fn a_child_whose_parent_stopped_listening_does_not_block_on_a_big_result() {
    let (go_rx, mut go_tx) = std::io::pipe().unwrap();
    let (mut rx, tx) = Reporter::pair();
    let go = Reporter(std::os::fd::OwnedFd::from(go_rx));
    let p = fork().spawn(wait_then_answer_big, (go, tx)).unwrap();
    let pid = hear(&mut rx).unwrap();
    drop(p);
    std::io::Write::write_all(&mut go_tx, b"!").unwrap();
    assert!(
        exits_within(pid, Duration::from_secs(30)),
        "the child is stuck writing its result"
    );
}
