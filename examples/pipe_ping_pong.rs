//! A `Pipe` between two processes: the parent sends "ping i", the child answers "pong i".
//! When the parent drops its end, the child's `recv` answers `Err(Closed)` (Python's
//! `EOFError`) and it returns how many messages it answered.
//!
//! Expected output:
//! ```text,ordered
//! sent ping 0, got pong 0
//! sent ping 1, got pong 1
//! sent ping 2, got pong 2
//! child answered 3 messages
//! ```

use multiproc::{Connection, Pipe, Process};

fn ponger(conn: Connection<String>) -> usize {
    let mut answered = 0;
    while let Ok(msg) = conn.recv() {
        conn.send(msg.replace("ping", "pong")).unwrap();
        answered += 1;
    }
    answered
}

fn main() -> multiproc::Result<()> {
    let (parent, child) = Pipe::duplex()?;
    let p = Process::builder().spawn(ponger, child)?;
    for i in 0..3 {
        parent.send(format!("ping {i}"))?;
        println!("sent ping {i}, got {}", parent.recv()?);
    }
    drop(parent);
    println!("child answered {} messages", p.join()?);
    Ok(())
}
