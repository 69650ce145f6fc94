//! Seed 001, "Create a Process using the Process subclass": Python subclasses `Process` and
//! overrides `run`; in Rust the state is a struct with a `run` method, started in a child.
//!
//! The tutorial's intervals are 1 s and 2 s; this port scales them down to 100 ms and 200 ms.
//!
//! Expected output:
//! ```text
//! Process mrsoft (pid {pid}) starts, interval {n} s
//! Process {*} (pid {pid}) starts, interval {n} s
//! Process mrsoft ran {n} s
//! Process {*} ran {n} s
//! both processes joined
//! ```

use multiproc::{Process, current_process};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What Python keeps on `self`: the interval (and the name, given to the process).
#[derive(Debug, Serialize, Deserialize)]
struct SubProcess {
    interval: f64,
}

impl SubProcess {
    /// Python's overridden `run()`.
    fn run(self) {
        let me = current_process();
        println!(
            "Process {} (pid {}) starts, interval {} s",
            me.name, me.pid, self.interval
        );
        let t_start = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(self.interval));
        println!(
            "Process {} ran {:.2} s",
            me.name,
            t_start.elapsed().as_secs_f64()
        );
    }

    /// Python's `start()`: runs `run` in a new process, named if a name was given.
    fn start(self, name: &str) -> multiproc::Result<Process<()>> {
        let builder = Process::builder();
        let builder = if name.is_empty() {
            builder
        } else {
            builder.name(name)
        };
        builder.spawn(SubProcess::run, self)
    }
}

fn main() -> multiproc::Result<()> {
    let p1 = SubProcess { interval: 0.1 }.start("mrsoft")?;
    let p2 = SubProcess { interval: 0.2 }.start("")?;
    p1.join()?;
    p2.join()?;
    println!("both processes joined");
    Ok(())
}
