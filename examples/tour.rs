//! A short, visible walk through multiproc's main features. Run it with
//! `cargo run --release --example tour`.
//!
//! Expected output:
//! ```text,ordered
//! multiproc tour: main process {pid} ({n} CPUs)
//!
//! 1. Processes, under each of Python's start methods
//!    ForkServer: child {pid} (Process-{n}) squared 12 -> 144
//!    Spawn: child {pid} (Process-{n}) squared 12 -> 144
//!    Fork: child {pid} (Process-{n}) squared 12 -> 144
//!    Fork with a closure: sum of [1, 2, 3] -> 6
//!
//! 2. Queues and pipes between processes (shared memory)
//!    3 worker processes summed 1..=3000 from a Queue -> 4501500
//!    Pipe: 10000 round trips with a child, {n} ns each
//!    a Queue made after the child started, sent to it inside an item: reply 42
//!    a producer killed with SIGKILL: get() -> closed: the other side is gone
//!
//! 3. Failures are errors, never hangs
//!    a panicking child: process failed with exit code 1: bad input: -1
//!    a killed child: process failed with exit code -9: killed by signal 9 (SIGKILL)
//!
//! 4. Subprocess
//!    check_output(["echo", "hello from a subprocess"]) -> "hello from a subprocess"
//!    run(["sleep", "5"], timeout = 100 ms) -> timed out
//!
//! 5. Pools and executors
//!    Pool(2).map(square, 1..=5) -> [1, 4, 9, 16, 25]
//!    a worker killed mid-task: worker process died with exit code -9; the pool goes on: 42
//!    ThreadPoolExecutor: as_completed over 4 futures -> sum 6
//!
//! 6. Shared state across processes
//!    4 processes x 1000 increments under Value::lock() -> 4000
//!    a child killed holding a Lock: next acquire recovers it, previous_owner_died = true
//!
//! tour finished in {n} ms
//! ```

use multiproc::subprocess::{self, RunOptions};
use multiproc::{Connection, Event, Lock, Pipe, Process, Queue, StartMethod, Value};
use std::time::{Duration, Instant};

fn square(x: u64) -> (u32, String, u64) {
    let me = multiproc::current_process();
    (me.pid, me.name, x * x)
}

fn must_be_positive(x: i64) -> i64 {
    // This child is meant to panic: say so in one tidy line on standard error, instead of
    // Rust's `thread '<unnamed>' panicked at …` report in the middle of the tour.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let text = (payload.downcast_ref::<String>().map(String::as_str))
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("?");
        let me = multiproc::current_process();
        eprintln!("   ({} panics, as expected: {text})", me.name);
    }));
    assert!(x >= 0, "bad input: {x}");
    x
}

fn just_square(x: u64) -> u64 {
    x * x
}

fn kill_own_worker(_: ()) -> u64 {
    let me = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-9", &me])
        .status();
    loop {
        std::thread::park();
    }
}

fn sum_chunks((tasks, sums): (Queue<Vec<u64>>, Queue<u64>)) {
    while let Ok(chunk) = tasks.get() {
        sums.put(chunk.iter().sum()).unwrap();
    }
}

fn echo(conn: Connection<u32>) {
    while let Ok(v) = conn.recv() {
        conn.send(v).unwrap();
    }
}

/// Answers each request on the queue that came with it.
fn answer_on(requests: Queue<(u32, Queue<u32>)>) {
    while let Ok((x, reply)) = requests.get() {
        reply.put(2 * x).unwrap();
    }
}

fn put_then_sleep(q: Queue<u32>) {
    q.put(1).unwrap();
    sleep_forever(());
}

fn sleep_forever(_: ()) {
    loop {
        std::thread::park();
    }
}

fn add_thousand(counter: Value<u64>) {
    for _ in 0..1000 {
        *counter.lock() += 1;
    }
}

fn hold_lock((lock, holding): (Lock, Event)) {
    let _g = lock.acquire();
    holding.set();
    sleep_forever(());
}

fn main() -> multiproc::Result<()> {
    let start = Instant::now();
    println!(
        "multiproc tour: main process {} ({} CPUs)",
        std::process::id(),
        multiproc::cpu_count()
    );

    println!("\n1. Processes, under each of Python's start methods");
    for method in [
        StartMethod::ForkServer,
        StartMethod::Spawn,
        StartMethod::Fork,
    ] {
        let p = Process::builder().start_method(method).spawn(square, 12)?;
        let (pid, name, value) = p.join()?;
        println!("   {method:?}: child {pid} ({name}) squared 12 -> {value}");
    }
    let numbers = [1, 2, 3];
    let p = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn_closure(move || numbers.iter().sum::<i32>())?;
    println!("   Fork with a closure: sum of [1, 2, 3] -> {}", p.join()?);

    println!("\n2. Queues and pipes between processes (shared memory)");
    let tasks = Queue::new()?;
    let sums = Queue::new()?;
    for chunk in (1..=3000u64).collect::<Vec<_>>().chunks(100) {
        tasks.put(chunk.to_vec())?;
    }
    let workers: Vec<_> = (0..3)
        .map(|_| multiproc::spawn(sum_chunks, (tasks.clone(), sums.clone())))
        .collect::<multiproc::Result<_>>()?;
    drop(tasks); // the workers stop when the queue is drained and nobody can refill it
    let mut total = 0;
    for w in workers {
        w.join()?;
    }
    while let Ok(s) = sums.get_nowait() {
        total += s;
    }
    println!("   3 worker processes summed 1..=3000 from a Queue -> {total}");
    let (here, there) = Pipe::duplex()?;
    let echo = multiproc::spawn(echo, there)?;
    let rounds = 10_000u32;
    let t = Instant::now();
    for i in 0..rounds {
        here.send(i)?;
        assert_eq!(here.recv()?, i);
    }
    let each = t.elapsed().as_nanos() / u128::from(rounds);
    println!("   Pipe: {rounds} round trips with a child, {each} ns each");
    drop(here);
    echo.join()?;
    let requests = Queue::new()?;
    let server = multiproc::spawn(answer_on, requests.clone())?;
    let reply = Queue::new()?; // the child has never heard of this queue
    requests.put((21, reply.clone()))?;
    println!(
        "   a Queue made after the child started, sent to it inside an item: reply {}",
        reply.get()?
    );
    drop(requests);
    server.join()?;
    let q: Queue<u32> = Queue::new()?;
    let mut producer = multiproc::spawn(put_then_sleep, q.clone())?;
    q.get()?;
    producer.kill()?;
    println!(
        "   a producer killed with SIGKILL: get() -> {}",
        q.get().unwrap_err()
    );
    producer.wait_timeout(Duration::from_secs(5));

    println!("\n3. Failures are errors, never hangs");
    // The child prints its panic in one line on stderr (its panic hook); the parent gets it as
    // an error.
    let bad = multiproc::spawn(must_be_positive, -1)?;
    println!("   a panicking child: {}", bad.join().unwrap_err());
    let mut stuck = multiproc::spawn(sleep_forever, ())?;
    stuck.kill()?;
    stuck.wait_timeout(Duration::from_secs(5));
    println!("   a killed child: {}", stuck.join().unwrap_err());

    println!("\n4. Subprocess");
    let out = subprocess::check_output(["echo", "hello from a subprocess"])?;
    println!(
        "   check_output([\"echo\", \"hello from a subprocess\"]) -> {:?}",
        String::from_utf8_lossy(&out).trim_end()
    );
    let slow = subprocess::run(
        ["sleep", "5"],
        &RunOptions {
            timeout: Some(Duration::from_millis(100)),
            ..Default::default()
        },
    );
    let verdict = match slow {
        Err(multiproc::Error::TimeoutExpired { .. }) => "timed out".to_string(),
        other => format!("{other:?}"),
    };
    println!("   run([\"sleep\", \"5\"], timeout = 100 ms) -> {verdict}");

    println!("\n5. Pools and executors");
    let pool = multiproc::pool::Pool::new(2)?;
    println!(
        "   Pool(2).map(square, 1..=5) -> {:?}",
        pool.map(just_square, 1..=5)?
    );
    let died = pool.apply(kill_own_worker, ()).unwrap_err();
    println!(
        "   a worker killed mid-task: {died}; the pool goes on: {}",
        pool.apply(|x: u64| x + 1, 41)?
    );
    let threads = multiproc::futures::ThreadPoolExecutor::new(2);
    let fs = (0..4)
        .map(|i| threads.submit(move || i))
        .collect::<multiproc::Result<Vec<_>>>()?;
    let sum: i32 = multiproc::futures::as_completed(fs, None)
        .map(|f| f.and_then(|f| f.result()).unwrap_or(0))
        .sum();
    println!("   ThreadPoolExecutor: as_completed over 4 futures -> sum {sum}");

    println!("\n6. Shared state across processes");
    let counter = Value::new(0u64)?;
    let adders: Vec<_> = (0..4)
        .map(|_| multiproc::spawn(add_thousand, counter.clone()))
        .collect::<multiproc::Result<_>>()?;
    for a in adders {
        a.join()?;
    }
    println!(
        "   4 processes x 1000 increments under Value::lock() -> {}",
        counter.get()
    );
    let (lock, holding) = (Lock::new()?, Event::new()?);
    let holder = multiproc::spawn(hold_lock, (lock.clone(), holding.clone()))?;
    holding.wait();
    holder.kill()?;
    let g = lock.acquire();
    println!(
        "   a child killed holding a Lock: next acquire recovers it, previous_owner_died = {}",
        g.previous_owner_died()
    );
    drop(g);

    println!("\ntour finished in {} ms", start.elapsed().as_millis());
    Ok(())
}
