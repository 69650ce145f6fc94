//! Touches every public path of the facade that API.md names, so a rename fails to compile.

use multiproc::subprocess::{CompletedProcess, RunOptions};
use multiproc::{Error, Process, ProcessBuilder, ProcessInfo, Result, StartMethod};
use std::time::Duration;

#[test]
fn error_paths_exist() {
    let _: Result<()> = Err(Error::Closed);
    let _ = [
        Error::Empty,
        Error::Full,
        Error::Timeout,
        Error::BrokenBarrier,
        Error::TooManyReleases,
    ];
    let _ = Error::ProcessFailed {
        exitcode: 1,
        message: String::new(),
    };
    let _ = Error::TaskFailed {
        message: String::new(),
    };
    let _ = Error::WorkerDied { exitcode: -9 };
    let _ = [
        Error::Cancelled,
        Error::ShutDown,
        Error::PoolClosed,
        Error::Codec(String::new()),
    ];
    let _ = Error::CalledProcess {
        returncode: 1,
        stdout: vec![],
        stderr: vec![],
    };
    let _ = Error::Io(std::io::Error::other("x"));
}

fn id(x: u8) -> u8 {
    x
}

#[test]
fn process_paths_exist() {
    multiproc::init();
    multiproc::set_start_method(multiproc::get_start_method());
    let builder: ProcessBuilder = Process::builder()
        .name("x")
        .daemon(false)
        .start_method(StartMethod::ForkServer);
    let mut p: Process<u8> = builder.spawn(id, 7).unwrap();
    let _: u32 = p.pid();
    let _: &str = p.name();
    let _: bool = p.is_daemon();
    assert!(p.wait_timeout(Duration::from_secs(30)));
    let _: bool = p.is_alive();
    assert_eq!(p.exitcode(), Some(0));
    p.terminate().unwrap();
    p.kill().unwrap();
    assert_eq!(p.join().unwrap(), 7);
    assert_eq!(multiproc::spawn(id, 8).unwrap().join().unwrap(), 8);
    let me: ProcessInfo = multiproc::current_process();
    assert_eq!(me.name, "MainProcess");
    assert!(multiproc::parent_process().is_none());
    let _: Vec<ProcessInfo> = multiproc::active_children();
    assert!(multiproc::cpu_count() >= 1);
}

#[test]
fn subprocess_paths_exist() {
    let _: i32 = multiproc::subprocess::call(&["true"]).unwrap();
    multiproc::subprocess::check_call(&["true"]).unwrap();
    let _: Vec<u8> = multiproc::subprocess::check_output(&["true"]).unwrap();
    let opts = RunOptions {
        timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let done: CompletedProcess = multiproc::subprocess::run(&["true"], &opts).unwrap();
    assert_eq!(done.returncode, 0);
}
