//! A `Barrier` in lockstep: three processes do three rounds of work, and none starts round
//! `r + 1` before all have finished round `r`. Each writes its round into a shared `Array`;
//! after each barrier, every process checks that all slots show the same round. The party
//! that gets index 0 from the barrier announces the round.
//!
//! Expected output:
//! ```text,ordered
//! round 1: all 3 processes done
//! round 2: all 3 processes done
//! round 3: all 3 processes done
//! lockstep held: true
//! ```

use multiproc::{Array, Barrier, Process};

/// One party: true when every check saw all processes in the same round (a broken barrier,
/// which a dead party would cause, counts as false).
fn step((me, barrier, rounds): (usize, Barrier, Array<u32>)) -> bool {
    let mut in_step = true;
    for round in 1..=3 {
        rounds.set(me, round); // this round's work
        let Ok(index) = barrier.wait() else {
            return false;
        };
        in_step &= rounds.to_vec().iter().all(|&r| r == round);
        if index == 0 {
            println!("round {round}: all 3 processes done");
        }
        // Nobody writes the next round before everyone has checked this one.
        if barrier.wait().is_err() {
            return false;
        }
    }
    in_step
}

fn main() -> multiproc::Result<()> {
    let barrier = Barrier::new(3)?;
    let rounds = Array::<u32>::new(3)?;
    let others: Vec<_> = (1..3)
        .map(|me| Process::builder().spawn(step, (me, barrier.clone(), rounds.clone())))
        .collect::<multiproc::Result<_>>()?;
    let mut held = step((0, barrier, rounds));
    for p in others {
        held &= p.join()?;
    }
    println!("lockstep held: {held}");
    Ok(())
}
