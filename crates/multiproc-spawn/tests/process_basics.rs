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
