//! Seed 001, "Create process": `Process(target=test, args=(1,))` started from `main`.
//!
//! The tutorial does not join, so its child may print after "End of main process"; a Rust
//! program joins its live non-daemon children at exit as Python does, so the child's line is
//! always printed.
//!
//! Expected output:
//! ```text
//! Main process start
//! End of main process
//! I am a subprocess
//! ```

use multiproc::Process;

fn test(_interval: u32) {
    println!("I am a subprocess");
}

fn main() -> multiproc::Result<()> {
    println!("Main process start");
    let p = Process::builder().spawn(test, 1)?;
    println!("End of main process");
    // Not joined on purpose, as in the tutorial: the exit rule joins it.
    drop(p);
    Ok(())
}
