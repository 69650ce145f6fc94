//! Seed 000, "子进程 subprocess": `subprocess.call` of a command, then its exit code.
//!
//! The tutorial runs `nslookup www.so.com`, which needs a network; this port runs `uname -a`,
//! which works offline, and prints the same shape of output.
//!
//! Expected output:
//! ```text,ordered
//! $uname -a:
//! {*}
//! Exit  0
//! ```

use multiproc::subprocess;
use std::io::Write;

fn main() -> multiproc::Result<()> {
    println!("$uname -a:");
    // The child writes to our standard output directly: flush ours first to keep the order.
    std::io::stdout().flush()?;
    let sre = subprocess::call(["uname", "-a"])?;
    println!("Exit  {sre}");
    Ok(())
}
