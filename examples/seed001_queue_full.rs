//! Seed 001, "Queue": a `Queue(3)` filled to its limit, a `put` with a timeout that fails
//! with `Full`, then the three messages read back with `get_nowait`.
//!
//! Python waits 2 s in `put("message4", True, 2)`; this port waits 200 ms.
//!
//! Expected output:
//! ```text,ordered
//! Queue Full,count:3
//! message1
//! message2
//! message3
//! ```

use std::time::Duration;

use multiproc::{Error, Queue};

fn main() -> multiproc::Result<()> {
    let q = Queue::with_maxsize(3)?;
    q.put("message1".to_string())?;
    q.put("message2".to_string())?;
    q.put("message3".to_string())?;
    match q.put_timeout("message4".to_string(), Duration::from_millis(200)) {
        Err(Error::Full) => println!("Queue Full,count:{}", q.qsize()),
        other => panic!("expected Full, got {other:?}"),
    }
    if !q.empty() {
        for _ in 0..q.qsize() {
            println!("{}", q.get_nowait()?);
        }
    }
    if !q.full() {
        q.put_nowait("message4".to_string())?;
    }
    Ok(())
}
