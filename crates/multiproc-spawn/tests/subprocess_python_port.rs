//! Frictions met porting Python `subprocess` code: commands as `Vec<String>` or arrays,
//! `text=True`, and `TimeoutExpired.output`/`.stderr`.

use multiproc_spawn::subprocess::{self, RunOptions};
use multiproc_sync::Error;
use std::ffi::OsString;
use std::time::Duration;

fn capture() -> RunOptions {
    RunOptions {
        capture_output: true,
        timeout: Some(Duration::from_secs(60)),
        ..Default::default()
    }
}

#[test]
fn a_command_is_any_iterable_of_strings() {
    let cmd: Vec<String> = vec!["echo".into(), "from".into(), "a vec".into()];
    assert_eq!(
        subprocess::run(&cmd, &capture()).unwrap().stdout,
        b"from a vec\n"
    );
    assert_eq!(
        subprocess::run(cmd, &capture()).unwrap().stdout,
        b"from a vec\n"
    );
    assert_eq!(
        subprocess::run(["echo", "array"], &capture())
            .unwrap()
            .stdout,
        b"array\n"
    );
    let os: Vec<OsString> = vec!["printf".into(), "%s".into(), "os".into()];
    assert_eq!(subprocess::check_output(os).unwrap(), b"os");
    let argv: Vec<&str> = vec!["sh", "-c", "exit 5"];
    assert_eq!(subprocess::call(argv).unwrap(), 5);
    assert!(subprocess::check_call(vec![String::from("true")]).is_ok());
    let done = subprocess::run(vec!["echo".to_string()], &capture()).unwrap();
    assert_eq!(done.args, ["echo"]);
}

#[test]
fn text_mode_gives_strings_and_rejects_bytes_that_are_not_utf8() {
    let opts = RunOptions {
        text: true,
        ..capture()
    };
    let done = subprocess::run(["sh", "-c", "printf 'héllo'; printf 'wörld' >&2"], &opts).unwrap();
    assert_eq!(done.stdout_text().unwrap(), "héllo");
    assert_eq!(done.stderr_text().unwrap(), "wörld");
    match subprocess::run(["printf", "\\377"], &opts) {
        Err(Error::Codec(m)) => assert!(m.contains("stdout"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Without `text`, bytes that are not UTF-8 are fine, and the accessors report them.
    let raw = subprocess::run(["printf", "\\377"], &capture()).unwrap();
    assert_eq!(raw.stdout, [0xff]);
    assert!(matches!(raw.stdout_text(), Err(Error::Codec(_))));
}

#[test]
fn a_timeout_carries_the_output_captured_so_far() {
    let opts = RunOptions {
        timeout: Some(Duration::from_millis(700)),
        ..capture()
    };
    // `exec`: the sleep replaces the shell, so killing it closes the pipes.
    let cmd = ["sh", "-c", "echo partial; echo warn >&2; exec sleep 30"];
    match subprocess::run(cmd, &opts) {
        Err(Error::TimeoutExpired {
            timeout,
            stdout,
            stderr,
        }) => {
            assert_eq!(timeout, Duration::from_millis(700));
            assert_eq!(stdout, b"partial\n");
            assert_eq!(stderr, b"warn\n");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_timeout_with_a_grandchild_holding_the_pipe_still_returns_the_output() {
    let opts = RunOptions {
        timeout: Some(Duration::from_millis(700)),
        ..capture()
    };
    // The shell forks `sleep`, which keeps standard output open after the shell is killed.
    let started = std::time::Instant::now();
    match subprocess::run(["sh", "-c", "echo early; sleep 5; true"], &opts) {
        Err(Error::TimeoutExpired { stdout, .. }) => assert_eq!(stdout, b"early\n"),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited for the grandchild"
    );
}
