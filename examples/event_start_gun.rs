//! An `Event` as a start gun: five runner processes get ready and wait on one process-shared
//! event; the parent waits until all are ready (a `Semaphore` counts them in), then fires,
//! and every runner starts at once.
//!
//! Expected output:
//! ```text
//! runner {n} ready ({pid})
//! runner {n} ready ({pid})
//! runner {n} ready ({pid})
//! runner {n} ready ({pid})
//! runner {n} ready ({pid})
//! bang!
//! runner {n} off
//! runner {n} off
//! runner {n} off
//! runner {n} off
//! runner {n} off
//! all 5 runners finished
//! ```

use multiproc::{Event, Process, Semaphore};

fn runner((id, ready, gun): (u32, Semaphore, Event)) {
    println!("runner {id} ready ({})", std::process::id());
    ready.release();
    gun.wait();
    println!("runner {id} off");
}

fn main() -> multiproc::Result<()> {
    let gun = Event::new()?;
    let ready = Semaphore::new(0)?;
    let runners: Vec<_> = (1..=5)
        .map(|id| Process::builder().spawn(runner, (id, ready.clone(), gun.clone())))
        .collect::<multiproc::Result<_>>()?;
    for _ in 0..5 {
        ready.acquire();
    }
    println!("bang!");
    gun.set();
    for r in runners {
        r.join()?;
    }
    println!("all 5 runners finished");
    Ok(())
}
