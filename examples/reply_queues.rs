//! A server process answers clients that started after it: each request carries the queue to
//! answer on, a handle inside a queue item. Python's queues refuse that ("Queue objects should
//! only be shared between processes through inheritance"): it takes a `Manager` process's
//! queue, or a pipe end, which Python pickles specially.
//!
//! Expected output:
//! ```text
//! client 1: 1 squared is 1
//! client 2: 2 squared is 4
//! client 3: 3 squared is 9
//! server answered 3 requests
//! ```

use multiproc::{Process, Queue};

/// A number, and where to send its square.
type Request = (u64, Queue<u64>);

fn server(requests: Queue<Request>) -> usize {
    let mut answered = 0;
    // Ends with `Err(Closed)` once every client and the parent have dropped their handles.
    while let Ok((n, reply_to)) = requests.get() {
        reply_to.put(n * n).unwrap();
        answered += 1;
    }
    answered
}

fn client((id, requests): (u64, Queue<Request>)) {
    // Made here, after the server started: it reaches the server inside the request.
    let replies = Queue::new().unwrap();
    requests.put((id, replies.clone())).unwrap();
    println!("client {id}: {id} squared is {}", replies.get().unwrap());
}

fn main() -> multiproc::Result<()> {
    let requests = Queue::new()?;
    let server = Process::builder()
        .name("server")
        .spawn(server, requests.clone())?;
    let clients = (1..=3)
        .map(|id| Process::builder().spawn(client, (id, requests.clone())))
        .collect::<multiproc::Result<Vec<_>>>()?;
    drop(requests);
    for c in clients {
        c.join()?;
    }
    println!("server answered {} requests", server.join()?);
    Ok(())
}
