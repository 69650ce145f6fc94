//! The worker process: runs the initializer, then tasks as they arrive, one at a time, and
//! sends each result back as soon as it has it. Idle, it looks for work for a short while
//! before it sleeps in `read`, so a stream of small tasks costs no wake-ups.

use crate::call::CallSpec;
use crate::thread_pool::panic_text;
use crate::wire::{self, Cursor, Frames, Link};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// How long an idle worker keeps looking for work before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// What a worker is started with.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerArgs {
    pub(crate) link: Link,
    pub(crate) init: Option<(CallSpec, Vec<u8>)>,
    /// Exit after this many tasks (0: never), Python's `maxtasksperchild`.
    pub(crate) max_tasks: usize,
}

/// The worker's entry point (a plain `fn`, so every start method can run it).
pub(crate) fn worker_main(args: WorkerArgs) {
    let WorkerArgs {
        link,
        init,
        max_tasks,
    } = args;
    let stream = link.0;
    if let Some((call, bytes)) = init {
        let mut sink = Vec::new();
        if let Err(e) = call.run(&bytes, &mut sink) {
            panic!("the pool's initializer failed: {e}");
        }
    }
    let _ = serve(&stream, max_tasks);
}

fn serve(stream: &UnixStream, max_tasks: usize) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let mut frames = Frames::default();
    let mut value = Vec::new();
    let mut out = Vec::new();
    let mut done = 0usize;
    loop {
        while let Some(frame) = frames.next_frame() {
            let mut cur = Cursor(frame);
            if cur.u8()? == wire::STOP {
                return Ok(());
            }
            while !cur.is_empty() {
                let (id, call, args) = cur.task()?;
                value.clear();
                let start = Instant::now();
                let ran = catch_unwind(AssertUnwindSafe(|| call.run(args, &mut value)));
                let ns = start.elapsed().as_nanos() as u64;
                out.clear();
                match ran {
                    Ok(Ok(())) => wire::push_result(&mut out, id, wire::OK, ns, &value),
                    Ok(Err(msg)) => {
                        wire::push_result(&mut out, id, wire::FAILED, ns, msg.as_bytes())
                    }
                    Err(p) => {
                        let msg = panic_text(&*p);
                        wire::push_result(&mut out, id, wire::PANIC, ns, msg.as_bytes())
                    }
                }
                blocking_send(stream, &out)?;
                done += 1;
                if max_tasks != 0 && done >= max_tasks {
                    return Ok(());
                }
            }
        }
        if !read_more(stream, &mut frames)? {
            return Ok(());
        }
    }
}

/// Sends all of `buf` on the non-blocking stream, sleeping only when the socket is full.
fn blocking_send(stream: &UnixStream, buf: &[u8]) -> io::Result<()> {
    let mut off = 0;
    while off < buf.len() {
        match (&*stream).write(&buf[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stream.set_nonblocking(false)?;
                let r = wire::send(stream, &buf[off..]);
                stream.set_nonblocking(true)?;
                return r;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads at least one more byte: spins a while, then sleeps. `Ok(false)`: the parent is gone.
fn read_more(stream: &UnixStream, frames: &mut Frames) -> io::Result<bool> {
    let spin_until = Instant::now() + SPIN;
    loop {
        match frames.fill(&mut &*stream) {
            Ok(more) => return Ok(more),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() < spin_until {
                    std::thread::yield_now();
                } else {
                    stream.set_nonblocking(false)?;
                    let r = frames.fill(&mut &*stream);
                    stream.set_nonblocking(true)?;
                    match r {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        other => return other,
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}
