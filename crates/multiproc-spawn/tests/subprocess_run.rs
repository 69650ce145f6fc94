//! Python's `subprocess` behaviours: return codes, check, capture, input, cwd, env, timeout,
//! a missing program (ports of CPython's `test_subprocess` basics).
//!
//! The commands here are written `&[…]`, the form of the first API (`&[&str]`): it must keep
//! compiling now that any iterable of strings is accepted, though clippy prefers `[…]`.
#![allow(clippy::needless_borrows_for_generic_args)]

use multiproc_spawn::subprocess::{self, RunOptions};
use multiproc_sync::Error;
use std::time::{Duration, Instant};

#[test]
fn call_returns_the_code_and_check_call_errs_on_failure() {
    assert_eq!(subprocess::call(&["sh", "-c", "exit 3"]).unwrap(), 3);
    assert!(subprocess::check_call(&["true"]).is_ok());
    match subprocess::check_call(&["sh", "-c", "exit 4"]) {
        Err(Error::CalledProcess { returncode: 4, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_signal_is_minus_the_signal() {
    assert_eq!(subprocess::call(&["sh", "-c", "kill -9 $$"]).unwrap(), -9);
}

#[test]
fn check_output_captures_stdout_and_reports_failures_with_output() {
    assert_eq!(subprocess::check_output(&["echo", "hi"]).unwrap(), b"hi\n");
    match subprocess::check_output(&["sh", "-c", "echo out; echo err >&2; exit 2"]) {
        Err(Error::CalledProcess {
            returncode,
            stdout,
            stderr,
        }) => {
            assert_eq!(
                (returncode, &stdout[..], &stderr[..]),
                (2, &b"out\n"[..], &b"err\n"[..])
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn run_with_input_cwd_and_env() {
    let opts = RunOptions {
        capture_output: true,
        input: Some(b"piped in".to_vec()),
        cwd: Some("/".into()),
        env: vec![("MULTIPROC_TEST_VAR".into(), "yes".into())],
        ..Default::default()
    };
    let done = subprocess::run(
        &["sh", "-c", "cat; echo; pwd; echo $MULTIPROC_TEST_VAR"],
        &opts,
    )
    .unwrap();
    assert_eq!(done.returncode, 0);
    assert_eq!(
        String::from_utf8(done.stdout).unwrap(),
        "piped in\n/\nyes\n"
    );
    assert_eq!(done.args[0], "sh");
}

#[test]
fn a_large_output_does_not_block_the_child() {
    let opts = RunOptions {
        capture_output: true,
        timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let done = subprocess::run(&["head", "-c", "10000000", "/dev/zero"], &opts).unwrap();
    assert_eq!(done.stdout.len(), 10_000_000);
}

#[test]
fn a_timeout_kills_the_child_and_is_an_error() {
    let start = Instant::now();
    let opts = RunOptions {
        timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    assert!(matches!(
        subprocess::run(&["sleep", "30"], &opts),
        Err(Error::TimeoutExpired { .. })
    ));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(100),
        "returned before the timeout: {waited:?}"
    );
}

#[test]
fn a_timeout_past_the_end_of_the_clock_is_no_limit() {
    let opts = RunOptions {
        timeout: Some(Duration::MAX),
        ..Default::default()
    };
    let done = subprocess::run(&["sh", "-c", "exit 5"], &opts).unwrap();
    assert_eq!(done.returncode, 5);
}

#[test]
fn a_missing_program_is_an_io_error_naming_it() {
    match subprocess::call(&["no-such-program-multiproc"]) {
        Err(Error::Io(e)) => assert!(e.to_string().contains("no-such-program-multiproc"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        subprocess::call(&[] as &[&str]),
        Err(Error::Invalid(_))
    ));
}
