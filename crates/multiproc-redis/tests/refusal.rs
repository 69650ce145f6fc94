//! A worker whose configuration the server refuses (a wrong password, an unknown user, no
//! password, a command outside its ACL user) returns that error at once, in the calling
//! process and from its worker processes alike, with the words `Client::open` uses; an outage
//! is waited out instead (see `partition.rs` and `faults.rs`). The TLS refusals (plaintext on
//! the TLS port, a certificate that does not verify) are checked in `secure.rs`.

mod common;

use multiproc::redis::{LocalServer, Worker};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn square(x: u64) -> u64 {
    x * x
}

multiproc::redis::task!(square);

/// The password of the `default` user.
const ADMIN: &str = "admin-pw";

/// A user that may connect and read the stop key, and nothing a worker needs after that.
const NARROW_ACL: &str = "user narrow on >narrow-pw ~* &* -@all +ping +get";

/// How long a refusal may take (an outage would retry for ever).
const QUICK: Duration = Duration::from_secs(5);

/// The worker side of [`a_worker_process_refused_a_command_stops_its_supervisor`]: this test
/// binary started again with `MULTIPROC_TEST_WORKER="URL NS FILE"` runs a supervisor with two
/// worker processes and writes what `run` answered to `FILE`.
#[test]
fn worker_entry() {
    let Ok(spec) = std::env::var("MULTIPROC_TEST_WORKER") else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let r = Worker::new(parts[0]).namespace(parts[1]).processes(2).run();
    std::fs::write(parts[2], format!("{r:?}")).unwrap();
}

fn server() -> Option<LocalServer> {
    match LocalServer::builder()
        .config_line(format!("user default on >{ADMIN} ~* &* +@all"))
        .config_line(NARROW_ACL)
        .start()
    {
        Ok(s) => Some(s),
        Err(e) => {
            multiproc_testkit::skip_this(&format!("no redis-server could be started ({e})"));
            None
        }
    }
}

/// Runs `f` on a thread and answers what it returned within `limit`, or `None` (the thread
/// is left running: an old worker would retry for ever).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// Both ways to run a worker, against `url`: the error each returned, within [`QUICK`].
fn refusals(url: &str, ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    for in_process in [true, false] {
        let (url, ns) = (url.to_string(), ns.to_string());
        let t = Instant::now();
        let r = within(QUICK * 2, move || {
            let w = Worker::new(&url).namespace(&ns).processes(1);
            if in_process {
                w.run_in_this_process()
            } else {
                w.run()
            }
        });
        let how = if in_process {
            "run_in_this_process"
        } else {
            "run"
        };
        let Some(r) = r else {
            panic!("{how}: still retrying after {:?}", QUICK * 2);
        };
        let e = r.as_ref().expect_err(how);
        assert!(
            t.elapsed() < QUICK,
            "{how}: refused after {:?}: {r:?}",
            t.elapsed()
        );
        assert!(matches!(e, multiproc::Error::Redis(_)), "{how}: {e:?}");
        out.push(e.to_string());
    }
    out
}

#[test]
fn a_worker_with_a_wrong_password_fails_at_once() {
    let Some(server) = server() else { return };
    let ns = common::unique("refused");
    for (what, url) in [
        (
            "wrong password",
            server.url_with_user("default", "not-the-password"),
        ),
        ("unknown user", server.url_with_user("nobody", "whatever")),
    ] {
        for e in refusals(&url, &ns) {
            assert!(e.contains("authentication failed"), "{what}: {e}");
        }
    }
    // No password at all, where the default user has one.
    for e in refusals(server.url(), &ns) {
        assert!(
            e.contains("NOAUTH") || e.contains("authentication"),
            "no password: {e}"
        );
    }
}

#[test]
fn a_worker_refused_a_command_fails_at_once() {
    let Some(server) = server() else { return };
    let ns = common::unique("noperm");
    let url = server.url_with_user("narrow", "narrow-pw");
    let e = within(QUICK * 2, move || {
        Worker::new(&url).namespace(&ns).run_in_this_process()
    })
    .expect("still retrying")
    .expect_err("a worker without the commands it needs");
    let e = e.to_string();
    assert!(e.contains("NOPERM") || e.contains("no permissions"), "{e}");
}

#[test]
fn a_worker_process_refused_a_command_stops_its_supervisor() {
    let Some(server) = server() else { return };
    let ns = common::unique("noperm-sup");
    let url = server.url_with_user("narrow", "narrow-pw");
    let dir = std::env::temp_dir().join(common::unique("refusal-out"));
    let out = dir.with_extension("txt");
    use std::os::unix::process::CommandExt;
    // A group of its own: a supervisor that does not stop is killed with its workers.
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .process_group(0)
        .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
        .env(
            "MULTIPROC_TEST_WORKER",
            format!("{url} {ns} {}", out.display()),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let t = Instant::now();
    let status = within(QUICK * 3, move || child.wait());
    if status.is_none() {
        let _ = std::process::Command::new("kill")
            .args(["-9", "--", &format!("-{pid}")])
            .status();
        panic!("the supervisor still runs after {:?}", QUICK * 3);
    }
    assert!(status.unwrap().unwrap().success());
    // Started two worker processes, heard from one, stopped the other: within a few seconds.
    assert!(t.elapsed() < QUICK * 2, "took {:?}", t.elapsed());
    let r = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(r.starts_with("Err(Redis("), "{r}");
    assert!(r.contains("NOPERM") || r.contains("no permissions"), "{r}");
}
