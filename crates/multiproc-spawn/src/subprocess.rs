//! Python's `subprocess` helpers: `call`, `check_call`, `check_output` and `run`, on top of
//! std's [`Command`], adding only what it lacks (a timeout that kills and keeps the output so
//! far, `check`, text mode, Python's return-code convention of `-signal`). A command is anything
//! that iterates over strings: `&["ls", "-l"]`, `["ls", "-l"]`, a `Vec<String>`.
//!
//! ```
//! use multiproc_spawn::subprocess::{self, RunOptions};
//! let out = subprocess::run(&["echo", "hello"], &RunOptions { capture_output: true, ..Default::default() }).unwrap();
//! assert_eq!(out.returncode, 0);
//! assert_eq!(out.stdout, b"hello\n");
//! assert_eq!(out.stdout_text().unwrap(), "hello\n"); // Python's `text=True`
//! ```

use multiproc_sync::{Error, Result};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of [`run`], built with struct-update syntax:
/// `RunOptions { timeout: Some(t), ..Default::default() }`. Always end the literal with
/// `..Default::default()`: new options arrive as new fields in minor versions (Python adds
/// keyword arguments the same way), and a literal that names every field would stop compiling.
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
    /// Python's `text=True`: check that captured standard output and error are UTF-8, so that
    /// [`CompletedProcess::stdout_text`]/[`stderr_text`](CompletedProcess::stderr_text) cannot
    /// fail; output that is not answers `Err(Codec)`. (`stdout`/`stderr` stay bytes either way.)
    ///
    /// ```
    /// use multiproc_spawn::subprocess::{run, RunOptions};
    /// let opts = RunOptions { capture_output: true, text: true, ..Default::default() };
    /// let out = run(["echo", "hi"], &opts)?;
    /// assert_eq!(out.stdout_text()?, "hi\n");
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub text: bool,
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

impl CompletedProcess {
    /// The captured standard output as text (Python's `text=True`): `Err(Codec)` if it is not
    /// UTF-8.
    ///
    /// ```
    /// use multiproc_spawn::subprocess::{run, RunOptions};
    /// let out = run(["printf", "%s", "héllo"], &RunOptions { capture_output: true, ..Default::default() })?;
    /// assert_eq!(out.stdout_text()?, "héllo");
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn stdout_text(&self) -> Result<&str> {
        utf8(&self.stdout, "stdout")
    }

    /// The captured standard error as text: `Err(Codec)` if it is not UTF-8.
    ///
    /// ```
    /// use multiproc_spawn::subprocess::{run, RunOptions};
    /// let out = run(["sh", "-c", "echo oops >&2"], &RunOptions { capture_output: true, ..Default::default() })?;
    /// assert_eq!(out.stderr_text()?, "oops\n");
    /// # Ok::<(), multiproc_sync::Error>(())
    /// ```
    pub fn stderr_text(&self) -> Result<&str> {
        utf8(&self.stderr, "stderr")
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| Error::Codec(format!("{what} is not UTF-8: {e}")))
}

/// Lossless command-line arguments: what every function here accepts (`&[&str]`, `Vec<String>`,
/// `["ls", "-l"]`, paths, `OsString`s…).
fn collect_args(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Vec<OsString> {
    args.into_iter().map(|a| a.as_ref().to_owned()).collect()
}

/// Runs a command with inherited standard streams and returns its return code.
///
/// ```
/// assert_eq!(multiproc_spawn::subprocess::call(&["true"]).unwrap(), 0);
/// assert_eq!(multiproc_spawn::subprocess::call(&["false"]).unwrap(), 1);
/// ```
pub fn call(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Result<i32> {
    run(args, &RunOptions::default()).map(|c| c.returncode)
}

/// Runs a command; `Err(CalledProcess)` if its return code is not 0.
///
/// ```
/// use multiproc_spawn::subprocess::check_call;
/// assert!(check_call(&["true"]).is_ok());
/// assert!(matches!(check_call(&["false"]), Err(multiproc_sync::Error::CalledProcess { returncode: 1, .. })));
/// ```
pub fn check_call(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Result<()> {
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
pub fn check_output(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Result<Vec<u8>> {
    let opts = RunOptions {
        capture_output: true,
        check: true,
        ..RunOptions::default()
    };
    run(args, &opts).map(|c| c.stdout)
}

/// Runs a command to completion with the given options (Python's `subprocess.run`).
///
/// `args` is the program and its arguments, anything that iterates over strings: `&["ls", "-l"]`,
/// `["ls", "-l"]`, a `Vec<String>`, `OsString`s or paths.
///
/// A missing program is `Err(Io)` whose message names it; a timeout kills the child and answers
/// `Err(TimeoutExpired)` (Python's `subprocess.TimeoutExpired`), which carries the output
/// captured until then.
///
/// ```
/// use multiproc_spawn::subprocess::{run, RunOptions};
/// use multiproc_sync::Error;
/// use std::time::Duration;
/// let cmd: Vec<String> = vec!["sh".into(), "-c".into(), "echo started; exec sleep 10".into()];
/// let opts = RunOptions { capture_output: true, timeout: Some(Duration::from_millis(500)), ..Default::default() };
/// match run(&cmd, &opts) {
///     Err(Error::TimeoutExpired { stdout, .. }) => assert_eq!(stdout, b"started\n"),
///     other => panic!("{other:?}"),
/// }
/// ```
pub fn run(
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    opts: &RunOptions,
) -> Result<CompletedProcess> {
    let args = collect_args(args);
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
    // A timeout past the end of the clock (`Duration::MAX`) is no limit.
    let limit = opts
        .timeout
        .and_then(|t| Some((t, multiproc_sync::raw::deadline_after(t)?)));
    let status = match limit {
        None => child.wait()?,
        Some((t, deadline)) => match wait_deadline(&mut child, deadline)? {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                // Readers may still be blocked on pipes a grandchild holds: take what they have
                // read so far and leave them.
                let (stdout, stderr) = io.partial();
                return Err(Error::TimeoutExpired {
                    timeout: t,
                    stdout,
                    stderr,
                });
            }
        },
    };
    let (stdout, stderr) = io.finish();
    let returncode = status
        .code()
        .unwrap_or_else(|| -status.signal().unwrap_or(0));
    let done = CompletedProcess {
        args: args
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect(),
        returncode,
        stdout,
        stderr,
    };
    if opts.text {
        done.stdout_text()?;
        done.stderr_text()?;
    }
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
    stdout: Option<Drain>,
    stderr: Option<Drain>,
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

    /// Everything the child wrote, once it closed its ends of the pipes.
    fn finish(self) -> (Vec<u8>, Vec<u8>) {
        let join = |d: Option<Drain>| {
            d.map(|d| {
                let _ = d.handle.join();
                take(&d.buf)
            })
            .unwrap_or_default()
        };
        (join(self.stdout), join(self.stderr))
    }

    /// What was read so far, after a timeout killed the child: waits a little for the readers
    /// to see the end of the pipes, but not for a grandchild that still holds them.
    fn partial(self) -> (Vec<u8>, Vec<u8>) {
        let grace = Instant::now() + Duration::from_millis(100);
        let settled = |d: &Option<Drain>| d.as_ref().is_none_or(|d| d.handle.is_finished());
        while !(settled(&self.stdout) && settled(&self.stderr)) && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(1));
        }
        let snap = |d: Option<Drain>| d.map(|d| take(&d.buf)).unwrap_or_default();
        (snap(self.stdout), snap(self.stderr))
    }
}

/// One reader thread and the bytes it has read so far.
struct Drain {
    buf: Arc<Mutex<Vec<u8>>>,
    handle: std::thread::JoinHandle<()>,
}

fn take(buf: &Mutex<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *buf.lock().unwrap_or_else(|p| p.into_inner()))
}

fn drain(mut r: impl Read + Send + 'static) -> Drain {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let handle = std::thread::spawn(move || {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => sink
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    Drain { buf, handle }
}
