//! Seed 003, "multiprocessing": `run_proc` in a child process, the parent printing around it.
//!
//! Expected output:
//! ```text,ordered
//! Parent process {pid}.
//! Child process will start.
//! Run child process test ({pid})...
//! Child process end.
//! ```

use multiproc::Process;

fn run_proc(name: String) {
    println!("Run child process {} ({})...", name, std::process::id());
}

fn main() -> multiproc::Result<()> {
    println!("Parent process {}.", std::process::id());
    println!("Child process will start.");
    let p = Process::builder().spawn(run_proc, "test".to_string())?;
    p.join()?;
    println!("Child process end.");
    Ok(())
}
