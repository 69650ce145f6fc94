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
// The `&[…]` form API.md writes (`&[&str]`) must keep compiling; clippy prefers `[…]` now that
// any iterable of strings is accepted.
#[allow(clippy::needless_borrows_for_generic_args)]
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

#[test]
fn shared_state_paths_exist() {
    use multiproc::shared_memory::{SharedMemory, sweep};
    use multiproc::{
        Array, ArrayGuard, Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock,
        LockGuard, RLock, RLockGuard, Semaphore, Value, ValueGuard,
    };
    let lock: Lock = Lock::new().unwrap();
    let g: LockGuard<'_> = lock.acquire();
    assert!(!g.previous_owner_died());
    drop(g);
    assert!(lock.try_acquire().is_some());
    assert!(lock.acquire_timeout(Duration::from_millis(1)).is_some());
    let r: RLock = RLock::new().unwrap();
    let _rg: RLockGuard<'_> = r.acquire();
    let s: Semaphore = Semaphore::new(1).unwrap();
    s.acquire();
    assert!(!s.try_acquire() && !s.acquire_timeout(Duration::ZERO));
    s.release();
    assert_eq!(s.get_value(), 1);
    let b: BoundedSemaphore = BoundedSemaphore::new(1).unwrap();
    assert!(matches!(b.release(), Err(Error::TooManyReleases)));
    let e: Event = Event::new().unwrap();
    e.set();
    e.wait();
    assert!(e.is_set() && e.wait_timeout(Duration::ZERO));
    e.clear();
    let c: Condition = Condition::new().unwrap();
    let mut cg: ConditionGuard<'_> = c.acquire();
    assert!(!cg.wait_timeout(Duration::from_millis(1)));
    assert!(cg.wait_for(|| true, None));
    cg.notify(1);
    cg.notify_all();
    drop(cg);
    let bar: Barrier = Barrier::new(1).unwrap();
    assert_eq!(bar.wait().unwrap(), 0);
    assert!(bar.wait_timeout(Duration::from_secs(1)).is_ok());
    assert_eq!(
        (bar.parties(), bar.n_waiting(), bar.broken()),
        (1, 0, false)
    );
    bar.abort();
    bar.reset();
    let v: Value<u32> = Value::new(1).unwrap();
    v.set(v.get() + 1);
    let mut vg: ValueGuard<'_, u32> = v.lock();
    *vg += 1;
    drop(vg);
    assert_eq!(v.get(), 3);
    let a: Array<u8> = Array::new(2).unwrap();
    let a2: Array<u8> = Array::from_slice(&[1, 2]).unwrap();
    a.set(0, a2.get(1));
    let ag: ArrayGuard<'_, u8> = a.lock();
    assert_eq!(&*ag, &[2, 0]);
    drop(ag);
    assert_eq!((a.len(), a.to_vec()), (2, vec![2, 0]));
    let shm: SharedMemory = SharedMemory::create(None, 8).unwrap();
    let other = SharedMemory::open(shm.name()).unwrap();
    assert_eq!(other.size(), 8);
    assert!(!shm.as_ptr().is_null());
    shm.unlink().unwrap();
    assert!(other.unlink().is_err());
    let _ = sweep();
    let mut buf: multiproc::SharedBuffer = multiproc::SharedBuffer::new(16).unwrap();
    buf[15] = 1;
    assert_eq!((buf.len(), buf[15]), (16, 1));
}
