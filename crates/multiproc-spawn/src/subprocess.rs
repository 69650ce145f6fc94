//! Python's `subprocess` helpers: `call`, `check_call`, `check_output` and `run`, on top of
//! std's [`Command`], adding only what it lacks (a timeout that kills, `check`, Python's
//! return-code convention of `-signal`).
//!
//! ```
//! use multiproc_spawn::subprocess::{self, RunOptions};
//! let out = subprocess::run(&["echo", "hello"], &RunOptions { capture_output: true, ..Default::default() }).unwrap();
//! assert_eq!(out.returncode, 0);
//! assert_eq!(out.stdout, b"hello\n");
//! ```

use multiproc_sync::{Error, Result};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Options of [`run`], built with struct-update syntax:
/// `RunOptions { timeout: Some(t), ..Default::default() }`.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Capture standard output and error into [`CompletedProcess`] (else they are inherited).
    pub capture_output: bool,
    /// Bytes to write to the child's standard input (else it inherits ours).
    pub input: Option<Vec<u8>>,
    /// Kill the child and answer `Err(Timeout)` if it runs longer than this.
    pub timeout: Option<Duration>,
    /// Answer `Err(CalledProcess)` if the return code is not 0.
    pub check: bool,
    /// The child's working directory.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables for the child (on top of ours).
    pub env: Vec<(String, String)>,
}

/// What [`run`] returns: Python's `CompletedProcess`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedProcess {
    /// The command line that ran.
    pub args: Vec<String>,
    /// The exit code, or `-signal` if a signal ended it.
    pub returncode: i32,
    /// Captured standard output (empty unless `capture_output`).
    pub stdout: Vec<u8>,
    /// Captured standard error (empty unless `capture_output`).
    pub stderr: Vec<u8>,
}

/// Runs a command with inherited standard streams and returns its return code.
///
/// ```
/// assert_eq!(multiproc_spawn::subprocess::call(&["true"]).unwrap(), 0);
/// assert_eq!(multiproc_spawn::subprocess::call(&["false"]).unwrap(), 1);
/// ```
pub fn call(args: &[&str]) -> Result<i32> {
    run(args, &RunOptions::default()).map(|c| c.returncode)
}

/// Runs a command; `Err(CalledProcess)` if its return code is not 0.
///
/// ```
/// use multiproc_spawn::subprocess::check_call;
/// assert!(check_call(&["true"]).is_ok());
/// assert!(matches!(check_call(&["false"]), Err(multiproc_sync::Error::CalledProcess { returncode: 1, .. })));
/// ```
pub fn check_call(args: &[&str]) -> Result<()> {
    run(
        args,
        &RunOptions {
            check: true,
            ..RunOptions::default()
        },
    )
    .map(drop)
}

/// Runs a command and returns its standard output; `Err(CalledProcess)` if it fails.
///
/// ```
/// let out = multiproc_spawn::subprocess::check_output(&["printf", "%s", "hi"]).unwrap();
/// assert_eq!(out, b"hi");
/// ```
pub fn check_output(args: &[&str]) -> Result<Vec<u8>> {
    let opts = RunOptions {
        capture_output: true,
        check: true,
        ..RunOptions::default()
    };
    run(args, &opts).map(|c| c.stdout)
}

/// Runs a command to completion with the given options (Python's `subprocess.run`).
///
/// A missing program is `Err(Io)` whose message names it; a timeout kills the child and answers
/// `Err(Timeout)`.
///
/// ```
/// use multiproc_spawn::subprocess::{run, RunOptions};
/// use std::time::Duration;
/// let slow = run(&["sleep", "10"], &RunOptions { timeout: Some(Duration::from_millis(50)), ..Default::default() });
/// assert!(matches!(slow, Err(multiproc_sync::Error::Timeout)));
/// ```
pub fn run(args: &[&str], opts: &RunOptions) -> Result<CompletedProcess> {
    let (program, rest) = args
        .split_first()
        .ok_or_else(|| Error::Invalid("subprocess needs at least a program name".into()))?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &opts.cwd {
        cmd.current_dir(dir);
    }
    if opts.input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    if opts.capture_output {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("could not run {program:?}: {e}"),
        ))
    })?;
    let io = Streams::start(&mut child, opts.input.clone());
    let status = match opts.timeout {
        None => child.wait()?,
        Some(t) => match wait_deadline(&mut child, Instant::now() + t)? {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                // Readers may still be blocked on pipes a grandchild holds: leave them.
                return Err(Error::Timeout);
            }
        },
    };
    let (stdout, stderr) = io.finish();
    let returncode = status
        .code()
        .unwrap_or_else(|| -status.signal().unwrap_or(0));
    let done = CompletedProcess {
        args: args.iter().map(|s| s.to_string()).collect(),
        returncode,
        stdout,
        stderr,
    };
    if opts.check && returncode != 0 {
        return Err(Error::CalledProcess {
            returncode,
            stdout: done.stdout,
            stderr: done.stderr,
        });
    }
    Ok(done)
}

/// Waits until `deadline`: `Some(status)` if the child ended, `None` if time ran out. Sleeps in
/// short, growing steps (std has no timed wait; the steps start at 50 µs, so a quick child costs
/// little, and never exceed 10 ms past the deadline).
fn wait_deadline(child: &mut Child, deadline: Instant) -> Result<Option<ExitStatus>> {
    let mut step = Duration::from_micros(50);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(step.min(deadline - now));
        step = (step * 2).min(Duration::from_millis(10));
    }
}

/// The threads that feed standard input and drain standard output and error, so that a child
/// never blocks on a full pipe while we wait for it.
struct Streams {
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Streams {
    fn start(child: &mut Child, input: Option<Vec<u8>>) -> Streams {
        if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
            std::thread::spawn(move || {
                // A child that exits without reading everything closes the pipe: not an error.
                let _ = stdin.write_all(&input);
            });
        }
        Streams {
            stdout: child.stdout.take().map(drain),
            stderr: child.stderr.take().map(drain),
        }
    }

    fn finish(self) -> (Vec<u8>, Vec<u8>) {
        let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        (join(self.stdout), join(self.stderr))
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}
