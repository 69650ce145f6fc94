//! Process basics under every start method: values round-trip, exit codes, liveness.

use multiproc_spawn::{Process, StartMethod};
use multiproc_sync::Error;
use std::time::Duration;

const METHODS: [StartMethod; 3] = [
    StartMethod::Fork,
    StartMethod::Spawn,
    StartMethod::ForkServer,
];

fn double(x: u64) -> u64 {
    x * 2
}

#[test]
fn a_value_round_trips_under_every_method() {
    for m in METHODS {
        let p = Process::builder()
            .start_method(m)
            .spawn(double, 21)
            .unwrap();
        assert_eq!(p.join().unwrap(), 42, "{m:?}");
    }
}

fn boom(_: ()) -> u8 {
    panic!("boom from the child")
}

#[test]
fn a_panic_is_exit_code_1_with_its_message() {
    for m in METHODS {
        let p = Process::builder().start_method(m).spawn(boom, ()).unwrap();
        match p.join() {
            Err(Error::ProcessFailed { exitcode, message }) => {
                assert_eq!(exitcode, 1, "{m:?}");
                assert_eq!(message, "boom from the child", "{m:?}");
            }
            other => panic!("{m:?}: {other:?}"),
        }
    }
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

#[test]
fn exit_n_gives_n() {
    for m in METHODS {
        let mut p = Process::builder()
            .start_method(m)
            .spawn(exit_with, 7)
            .unwrap();
        assert!(p.wait_timeout(Duration::from_secs(30)));
        assert_eq!(p.exitcode(), Some(7), "{m:?}");
        assert!(matches!(
            p.join(),
            Err(Error::ProcessFailed { exitcode: 7, .. })
        ));
    }
}

/// Prints an unfinished line (no newline, so it stays in standard output's buffer) into `fd`.
fn print_into(fd: i32) {
    // SAFETY: `fd` is the write end of the test's pipe, open in this forked child.
    assert_eq!(unsafe { libc::dup2(fd, 1) }, 1);
    print!("an unfinished line");
}

/// A Fork child's buffered output reaches its standard output before it exits, as Python's
/// children flush `sys.stdout`: whether through its target's return or a panic.
#[test]
fn a_fork_childs_unfinished_line_is_flushed() {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    for panics in [false, true] {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() returns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (r, w) = (fds[0], fds[1]);
        let p = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn_closure(move || {
                print_into(w);
                assert!(!panics, "after printing");
            })
            .unwrap();
        let joined = p.join();
        assert_eq!(joined.is_err(), panics, "{joined:?}");
        // SAFETY: both ends are ours; the write end is closed first so the read sees the end.
        let mut read = unsafe {
            libc::close(w);
            std::fs::File::from_raw_fd(r)
        };
        let mut got = String::new();
        read.read_to_string(&mut got).unwrap();
        assert_eq!(got, "an unfinished line");
    }
}
