//! Seed 003, distributed processes: a master puts 10 numbers on a task queue, workers in
//! other processes (on other machines, in real life) square them and put the results on a
//! result queue, which the master reads. The queues live in Redis
//! (`multiproc::redis::Queue`), where Python's version serves them with `BaseManager`.
//!
//! The master starts its workers as this same program, `seed003_distributed worker --url URL
//! --id ID`: the command you would run on each machine. The server is the one named by
//! `MULTIPROC_REDIS_URL` (`cargo xtask examples` starts one); without it, the example starts
//! a throwaway `redis-server` itself.
//!
//! Expected output:
//! ```text
//! Put task {n}...
//! Put task {n}...
//! Put task {n}...
//! Put task {n}...
//! Put task {n}...
//! Put task {n}...
//! Put task {n}...
//! Put task {n}...
//! Put task {n}...
//! Put task {n}...
//! Try get results...
//! Connect to server {*}...
//! Connect to server {*}...
//! run task {n} * {n}...
//! run task {n} * {n}...
//! run task {n} * {n}...
//! run task {n} * {n}...
//! run task {n} * {n}...
//! run task {n} * {n}...
//! run task {n} * {n}...
//! run task {n} * {n}...
//! run task {n} * {n}...
//! run task {n} * {n}...
//! Result: {n} * {n} = {n}
//! Result: {n} * {n} = {n}
//! Result: {n} * {n} = {n}
//! Result: {n} * {n} = {n}
//! Result: {n} * {n} = {n}
//! Result: {n} * {n} = {n}
//! Result: {n} * {n} = {n}
//! Result: {n} * {n} = {n}
//! Result: {n} * {n} = {n}
//! Result: {n} * {n} = {n}
//! task queue is empty.
//! task queue is empty.
//! worker exit.
//! worker exit.
//! master exit.
//! ```

use multiproc::redis::{LocalServer, Queue, URL_ENV};
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::time::Duration;

fn say(line: String) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// `task_worker.py`: take numbers until the queue stays empty for a second.
fn worker(url: &str, id: &str) -> multiproc::Result<()> {
    say(format!("Connect to server {url}..."));
    let task: Queue<u64> = Queue::open(url, &format!("seed003:{id}:task"))?;
    let result: Queue<String> = Queue::open(url, &format!("seed003:{id}:result"))?;
    loop {
        match task.get_timeout(Duration::from_secs(1)) {
            Ok(n) => {
                say(format!("run task {n} * {n}..."));
                result.put(format!("{n} * {n} = {}", n * n))?;
                task.task_done()?; // done: a crash before this line would hand n to another worker
            }
            Err(multiproc::Error::Empty) => {
                say("task queue is empty.".into());
                break;
            }
            Err(e) => return Err(e),
        }
    }
    say("worker exit.".into());
    Ok(())
}

/// `task_master.py`.
fn master(url: &str) -> multiproc::Result<()> {
    let id = std::process::id().to_string();
    let task: Queue<u64> = Queue::open(url, &format!("seed003:{id}:task"))?;
    let result: Queue<String> = Queue::open(url, &format!("seed003:{id}:result"))?;
    let random = RandomState::new();
    for i in 0..10u64 {
        let n = random.hash_one(i) % 10001; // random.randint(0, 10000)
        say(format!("Put task {n}..."));
        task.put(n)?;
    }
    say("Try get results...".into());
    let exe = std::env::current_exe()?;
    let workers: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["worker", "--url", url, "--id", &id])
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for _ in 0..10 {
        let r = result.get_timeout(Duration::from_secs(10))?;
        result.task_done()?;
        say(format!("Result: {r}"));
    }
    for mut w in workers {
        w.wait()?;
    }
    say("master exit.".into());
    Ok(())
}

fn main() -> multiproc::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
                .ok_or_else(|| multiproc::Error::Invalid(format!("worker needs {flag}")))
        };
        return worker(&value("--url")?, &value("--id")?);
    }
    match std::env::var(URL_ENV) {
        Ok(url) => master(&url),
        Err(_) => {
            let server = LocalServer::start()?;
            master(server.url())
        }
    }
}
