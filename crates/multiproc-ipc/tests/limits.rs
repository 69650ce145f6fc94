//! Exhausted limits are errors, never signal deaths: a full `/dev/shm` (SIGBUS at the first
//! write of a sparse file) and `ulimit -f` (SIGXFSZ when a file grows past it). Each case runs
//! in a child process (this test binary again, filtered to the same test, with an
//! environment variable saying which part to run), so that the mount or limit stays there
//! and a signal death shows as the child's exit status.

use multiproc_testkit::shm_exists;
use std::io::ErrorKind;
use std::process::Command;

use multiproc_ipc::shared_memory::SharedMemory;
use multiproc_ipc::{Error, Queue};

fn os_error(e: &Error) -> Option<i32> {
    match e {
        Error::Io(io) => io.raw_os_error(),
        _ => None,
    }
}

fn assert_efbig(e: &Error, what: &str) {
    let Error::Io(io) = e else {
        panic!("{what}: not an i/o error: {e:?}");
    };
    assert_eq!(io.kind(), ErrorKind::FileTooLarge, "{what}: {e}");
    assert!(io.to_string().contains("RLIMIT_FSIZE"), "{what}: {e}");
}

#[test]
fn a_full_dev_shm_is_enospc_at_create_not_sigbus() {
    const TEST: &str = "a_full_dev_shm_is_enospc_at_create_not_sigbus";
    if !multiproc_testkit::in_private_mount_namespace(TEST) {
        return;
    }
    // In our own mount namespace: a 1 MiB /dev/shm that nobody else sees.
    multiproc_testkit::mount_tmpfs("/dev/shm", "size=1m,mode=1777");

    // Bigger than the file system: refused at create, nothing left.
    let e = SharedMemory::create(Some("mptest_full_big"), 4_000_000).unwrap_err();
    assert_eq!(os_error(&e), Some(libc::ENOSPC), "{e}");
    assert!(
        !shm_exists("mptest_full_big"),
        "the failed create left its file"
    );
    let e = SharedMemory::create(None, 4_000_000).unwrap_err();
    assert_eq!(os_error(&e), Some(libc::ENOSPC), "{e}");

    // One that fits is usable to its last byte; the next one does not fit any more.
    let a = SharedMemory::create(Some("mptest_full_a"), 600_000).unwrap();
    a.write_at(a.size() - 1, &[7]).unwrap();
    let e = SharedMemory::create(Some("mptest_full_b"), 600_000).unwrap_err();
    assert_eq!(os_error(&e), Some(libc::ENOSPC), "{e}");
    assert!(!shm_exists("mptest_full_b"));
    // The failed one gave its pages back: the first is still whole, and the space the
    // second asked for can be had once the first goes.
    let mut b = [0];
    a.read_at(a.size() - 1, &mut b).unwrap();
    assert_eq!(b, [7]);
    drop(a);
    assert!(!shm_exists("mptest_full_a"));
    let c = SharedMemory::create(Some("mptest_full_c"), 600_000).unwrap();
    c.write_at(c.size() - 1, &[1]).unwrap();
    drop(c);
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
    println!("child done");
}

/// Sets this process's RLIMIT_FSIZE (soft and hard).
fn limit_file_size(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: `lim` is a valid rlimit; lowering a limit affects only this process (a child
    // of the test run).
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) }, 0);
}

#[test]
fn ulimit_f_is_efbig_not_sigxfsz() {
    const TEST: &str = "ulimit_f_is_efbig_not_sigxfsz";
    if !multiproc_testkit::is_child(TEST) {
        multiproc_testkit::run_self(TEST, &[] as &[&str]);
        return;
    }
    // Room for a queue's first ring (264 KiB), not for a 2 MiB item or a 4 MB segment.
    limit_file_size(1 << 20);
    let q = Queue::<Vec<u8>>::new().unwrap();
    q.put(vec![1; 1000]).unwrap();
    // An error, and we are still alive to see it (what it says: see the ignored test below).
    assert!(q.put(vec![2; 2 << 20]).is_err());
    // The queue still works after the failed growth.
    assert_eq!(q.get().unwrap(), vec![1; 1000]);
    q.put(vec![3; 10]).unwrap();
    assert_eq!(q.get().unwrap(), vec![3; 10]);

    let name = format!("mptest_fsize_{}", std::process::id());
    let e = SharedMemory::create(Some(&name), 4_000_000).unwrap_err();
    assert_efbig(&e, "SharedMemory::create");
    assert!(!shm_exists(&name), "the failed create left its file");

    // Below the first ring's size: the queue cannot even be made.
    limit_file_size(100 * 1024);
    let e = Queue::<u32>::new().unwrap_err();
    assert_efbig(&e, "Queue::new");
    println!("child done");
}

/// A put that must grow the ring past `ulimit -f` says so (`FileTooLarge`, naming
/// RLIMIT_FSIZE), as `Queue::new` does, rather than `Closed` (or, while another process holds
/// the queue, a wait for room that can never come).
#[test]
fn ring_growth_past_ulimit_f_says_efbig() {
    const TEST: &str = "ring_growth_past_ulimit_f_says_efbig";
    if !multiproc_testkit::is_child(TEST) {
        multiproc_testkit::run_self(TEST, &[] as &[&str]);
        return;
    }
    limit_file_size(1 << 20);
    let q = Queue::<Vec<u8>>::new().unwrap();
    let e = q.put(vec![2; 2 << 20]).unwrap_err();
    assert_efbig(&e, "a put that grows the ring past the limit");
    println!("child done");
}

/// In a child: lowers the soft descriptor limit, opens descriptors until none is left, then
/// waits in `get` on a queue that only the (live) test process can put on, and reports what
/// the `get` answered.
fn get_with_no_descriptor_left(
    (q, ready, report): (Queue<u32>, multiproc_ipc::Event, Queue<String>),
) {
    multiproc_testkit::set_soft_nofile(Some(64));
    let mut spare = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        spare.push(f);
    }
    ready.set();
    let got = q.get();
    drop(spare);
    report.put(format!("{got:?}")).unwrap();
}

/// A process at its `RLIMIT_NOFILE` cannot read `/proc` to see whether its peers live: that
/// proves nothing. Taking them for dead made its `get` answer `Closed` at once, and a manager
/// server at its limit dropped the connections of clients that were alive.
#[test]
fn a_process_out_of_descriptors_still_sees_its_live_peers() {
    let q: Queue<u32> = Queue::new().unwrap();
    let ready = multiproc_ipc::Event::new().unwrap();
    let report: Queue<String> = Queue::new().unwrap();
    let child = multiproc_spawn::spawn(
        get_with_no_descriptor_left,
        (q.clone(), ready.clone(), report.clone()),
    )
    .unwrap();
    ready.wait();
    // Its `get` must still be waiting: we live and may put. (Half a second covers many
    // liveness checks; a slower machine could only make this miss the defect, never fail.)
    if let Ok(early) = report.get_timeout(std::time::Duration::from_millis(500)) {
        panic!("the get of a process out of descriptors answered while we live: {early}");
    }
    q.put(7).unwrap();
    let got = report
        .get_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    assert_eq!(got, "Ok(7)");
    child.join().unwrap();
}

/// The one `/proc/<pid>/stat` reader: a live process with its start time, a reaped one gone.
#[test]
fn the_proc_reader_tells_alive_gone_and_start_time_apart() {
    use multiproc_ipc::proc_stat::{Task, task};
    let Task::Alive { start_time } = task(std::process::id()) else {
        panic!("this process reads as not alive");
    };
    assert!(start_time > 0);
    assert_eq!(
        task(std::process::id()),
        Task::Alive { start_time },
        "stable"
    );
    assert_eq!(task(0), Task::Gone);
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert_eq!(task(pid), Task::Gone, "a reaped child");
}
