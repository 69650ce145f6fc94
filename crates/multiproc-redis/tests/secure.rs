//! The secure deployment of the README, on one machine: a server that speaks only TLS and
//! demands a client certificate, an ACL user with exactly the commands and key prefixes the
//! executor and its workers need, and the refusals around it (a plaintext client, a wrong
//! password, a certificate from another authority, a key outside the user's prefix).
//!
//! The certificates (a throw-away CA, the server's for IP 127.0.0.1, a client's, and a second
//! CA nobody trusts) are made at test time with the `openssl` program.

mod common;

use multiproc::redis::{Client, Executor, LocalServer, Lock, Queue, Worker};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn double(x: u64) -> u64 {
    x * 2
}

multiproc::redis::task!(double);

/// The executor namespace the ACL user may use.
const NS: &str = "secure";

/// The password of the `default` user (the administrator, for the test's own checks).
const ADMIN: &str = "admin-pw";

/// The ACL user of the workers and the executor's clients: exactly the commands they send
/// (the scripts' commands included: the server checks those too) on exactly the keys of the
/// namespace [`NS`]. The README shows this line; [`the_acl_user_has_exactly_the_commands_the_executor_uses`]
/// fails when a command is missing or no longer used.
const WORKER_ACL: &str = "user worker on >worker-pw resetchannels \
    ~multiproc:exec:secure:* ~multiproc:queue:exec:secure:* \
    -@all +ping +eval +evalsha +script|load +multi +exec +get +mget +set +del +unlink +exists \
    +incr +rpush +lpush +lpop +rpop +lrange +lrem +llen +lmove +blmove +blpop \
    +sadd +srem +smembers +pexpire +pttl +scan";

/// A user for the Queue and Lock checks: its own prefixes, every command of the two types.
const APP_ACL: &str = "user app on >app-pw resetchannels \
    ~multiproc:queue:app* ~multiproc:lock:app* -@all +@read +@write +@list +@scripting +@transaction +ping";

/// The commands of [`WORKER_ACL`].
fn worker_commands() -> BTreeSet<String> {
    WORKER_ACL
        .split_whitespace()
        .filter_map(|w| w.strip_prefix('+'))
        .map(str::to_string)
        .collect()
}

struct Certs {
    dir: PathBuf,
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Certs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1, a client certificate, both signed by the CA, and
/// a second, untrusted CA with a client certificate of its own. `None` (skipped) without
/// `openssl` or `redis-server`.
fn certs() -> Option<Certs> {
    if !multiproc_testkit::has_program("openssl") {
        multiproc_testkit::skip_this("no openssl program to make test certificates");
        return None;
    }
    if !LocalServer::available() {
        multiproc_testkit::skip_this("no redis-server");
        return None;
    }
    let dir = std::env::temp_dir().join(common::unique("tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.as_path();
    // Extensions make version 3 certificates (rustls refuses version 1).
    std::fs::write(
        d.join("server.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    std::fs::write(
        d.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for ca in ["ca", "rogue"] {
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{ca}.key"),
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{ca}.key"),
                "-sha256",
                "-days",
                "2",
                "-subj",
                &format!("/CN=multiproc test {ca}"),
                "-out",
                &format!("{ca}.pem"),
            ],
        );
    }
    for (name, ca, ext) in [
        ("server", "ca", "server.ext"),
        ("client", "ca", "client.ext"),
        ("stranger", "rogue", "client.ext"),
    ] {
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key.ec"),
            ],
        );
        // PKCS#8, the form every TLS library reads.
        openssl(
            d,
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &format!("{name}.key.ec"),
                "-out",
                &format!("{name}.key"),
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                &format!("/CN={name}"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        let mut args = vec![
            "x509".to_string(),
            "-req".into(),
            "-in".into(),
            format!("{name}.csr"),
            "-CA".into(),
            format!("{ca}.pem"),
            "-CAkey".into(),
            format!("{ca}.key"),
            "-CAcreateserial".into(),
            "-days".into(),
            "2".into(),
            "-sha256".into(),
            "-out".into(),
            format!("{name}.pem"),
        ];
        args.extend(["-extfile".to_string(), ext.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(d, &args);
    }
    Some(Certs { dir })
}

/// A TLS-only server that demands client certificates, with the `default` user behind
/// [`ADMIN`] and the users `worker` and `app`.
fn secure_server(c: &Certs) -> Option<LocalServer> {
    let started = LocalServer::builder()
        .tls(c.path("ca.pem"), c.path("server.pem"), c.path("server.key"))
        .client_cert(c.path("client.pem"), c.path("client.key"))
        .config_line(format!("user default on >{ADMIN} ~* &* +@all"))
        .config_line(WORKER_ACL)
        .config_line(APP_ACL)
        .start();
    match started {
        Ok(s) => Some(s),
        Err(e) if e.to_string().contains("tls") || e.to_string().contains("TLS") => {
            multiproc_testkit::skip_this(&format!("redis-server without TLS ({e})"));
            None
        }
        Err(e) => panic!("cannot start the TLS server: {e}"),
    }
}

fn admin(s: &LocalServer) -> multiproc::redis::raw::Connection {
    Client::open(&s.url_with_user("default", ADMIN))
        .unwrap()
        .raw_connection()
        .unwrap()
}

/// The worker side: this test binary started again with `MULTIPROC_TEST_WORKER=URL`.
#[test]
fn worker_entry() {
    let Ok(url) = std::env::var("MULTIPROC_TEST_WORKER") else {
        return;
    };
    Worker::new(&url)
        .namespace(NS)
        .processes(2)
        .heartbeat(Duration::from_millis(500))
        .run()
        .unwrap();
}

/// The worker supervisor; when a check fails, its workers are told to stop and, failing
/// that, it is killed.
struct Supervisor<'a>(std::process::Child, &'a Executor);

impl Drop for Supervisor<'_> {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        let _ = self.1.shutdown_workers();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The commands the server ran (`calls`) and refused (`rejected_calls`), from
/// `INFO commandstats`.
fn command_stats(
    con: &mut multiproc::redis::raw::Connection,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let info: String = multiproc::redis::raw::cmd("INFO")
        .arg("commandstats")
        .query(con)
        .unwrap();
    let (mut ran, mut refused) = (BTreeSet::new(), BTreeSet::new());
    for line in info.lines() {
        let Some((name, stats)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |f: &str| {
            stats
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{f}=")))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if field("calls") > 0 {
            ran.insert(name.to_string());
        }
        if field("rejected_calls") > 0 {
            refused.insert(name.to_string());
        }
    }
    (ran, refused)
}

#[test]
fn the_acl_user_has_exactly_the_commands_the_executor_uses() {
    let Some(c) = certs() else { return };
    let Some(server) = secure_server(&c) else {
        return;
    };
    let url = server.url_with_user("worker", "worker-pw");
    let mut admin = admin(&server);
    let _: () = multiproc::redis::raw::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut admin)
        .unwrap();

    let exec = Executor::builder(&url).namespace(NS).build().unwrap();
    let mut supervisor = Supervisor(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
            .env("MULTIPROC_TEST_WORKER", &url)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        &exec,
    );
    // Bounded waits: a worker refused a command retries for ever.
    let futures: Vec<_> = (0..200u64)
        .map(|x| exec.submit(double, x).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for (x, mut f) in (0..200u64).zip(futures) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert_eq!(f.result_timeout(left).unwrap(), x * 2);
    }
    // And the batched path: `map` pushes its tasks in batches and collects many outcomes per
    // round trip (MGET, UNLINK).
    let mapped = exec.map(double, 0..300u64).unwrap();
    assert_eq!(mapped, (0..300u64).map(|x| x * 2).collect::<Vec<_>>());
    let info = exec.info().unwrap();
    assert_eq!(info.workers.len(), 2, "{info:?}");
    exec.shutdown_workers().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = supervisor.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the workers did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "worker supervisor: {status}");

    let (ran, refused) = command_stats(&mut admin);
    // The administrator's own commands.
    let ran: BTreeSet<String> = ran
        .into_iter()
        .filter(|c| !["auth", "info", "config|resetstat", "client|setinfo"].contains(&c.as_str()))
        .collect();
    let log: Vec<multiproc::redis::raw::Value> = multiproc::redis::raw::cmd("ACL")
        .arg("LOG")
        .query(&mut admin)
        .unwrap();
    assert!(
        refused.is_empty() && log.is_empty(),
        "refused: {refused:?}, ACL LOG: {log:?}"
    );
    let allowed = worker_commands();
    // Commands of paths this run does not provoke: a `get` at its deadline (LMOVE, the
    // non-blocking move) and the requeue of a dead worker's tasks (LPOP, in a script).
    let rare: BTreeSet<String> = ["lmove", "lpop"].map(String::from).into();
    let unused: Vec<_> = allowed
        .difference(&ran)
        .filter(|c| !rare.contains(*c))
        .collect();
    let missing: Vec<_> = ran.difference(&allowed).collect();
    assert!(
        unused.is_empty() && missing.is_empty(),
        "the ACL line is not exact: allowed but unused {unused:?}, used but not allowed {missing:?}"
    );
}

#[test]
fn queue_and_lock_work_over_tls_as_an_acl_user() {
    let Some(c) = certs() else { return };
    let Some(server) = secure_server(&c) else {
        return;
    };
    let url = server.url_with_user("app", "app-pw");
    let q: Queue<Vec<u8>> = Queue::open(&url, "app-items").unwrap();
    // Larger than TLS's record and the socket's buffers: the write side waits and flushes.
    let big: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    q.put(b"small".to_vec()).unwrap();
    q.put(big.clone()).unwrap();
    assert_eq!(q.get().unwrap(), b"small");
    q.task_done().unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), big);
    q.task_done().unwrap();
    assert!(q.empty().unwrap());

    let lock = Lock::open(&url, "app-lock", Duration::from_secs(10)).unwrap();
    assert!(lock.acquire_timeout(Duration::from_secs(5)).unwrap());
    let other = Lock::open(&url, "app-lock", Duration::from_secs(10)).unwrap();
    assert!(!other.acquire_timeout(Duration::from_millis(200)).unwrap());
    lock.release().unwrap();
    assert!(other.acquire_timeout(Duration::from_secs(5)).unwrap());
    other.release().unwrap();
}

#[test]
fn refusals_are_clear_and_quick() {
    let Some(c) = certs() else { return };
    let Some(server) = secure_server(&c) else {
        return;
    };
    let good = server.url_with_user("app", "app-pw");
    let port = good
        .split(':')
        .nth(3)
        .and_then(|p| p.split('/').next())
        .unwrap()
        .to_string();
    let quick = |what: &str, r: Result<Client, multiproc::Error>, want: &[&str]| {
        let e = r.expect_err(what).to_string();
        assert!(want.iter().any(|w| e.contains(w)), "{what}: {e}");
    };
    let t = Instant::now();

    // A plaintext client on the TLS port: the server hangs up.
    quick(
        "plaintext",
        Client::open(&format!("redis://app:app-pw@127.0.0.1:{port}/0")),
        &["cannot", "connection", "closed", "reset"],
    );
    // A wrong password, through Client, Queue and Executor alike.
    let wrong = server.url_with_user("app", "not-the-password");
    quick(
        "wrong password",
        Client::open(&wrong),
        &["authentication failed"],
    );
    let e = Queue::<u8>::open(&wrong, "app-q").unwrap_err().to_string();
    assert!(e.contains("authentication failed"), "{e}");
    let e = Executor::builder(&wrong)
        .namespace(NS)
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("authentication failed"), "{e}");
    // No password at all, against a server whose default user has one.
    let anon = server.url();
    quick(
        "no password",
        Client::open(anon),
        &["NOAUTH", "authentication"],
    );
    // No client certificate (the server demands one).
    let no_cert = format!(
        "rediss://app:app-pw@127.0.0.1:{port}/0?cacert={}",
        c.path("ca.pem").display()
    );
    let e = Queue::<u8>::open(&no_cert, "app-q")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot"), "no client certificate: {e}");
    // A server certificate checked against the wrong authority.
    let rogue = format!(
        "rediss://app:app-pw@127.0.0.1:{port}/0?cacert={}&cert={}&key={}",
        c.path("rogue.pem").display(),
        c.path("client.pem").display(),
        c.path("client.key").display()
    );
    let e = Queue::<u8>::open(&rogue, "app-q").unwrap_err().to_string();
    assert!(e.contains("certificate"), "rogue CA: {e}");
    quick(
        "rogue CA",
        Client::open(&rogue),
        &["certificate", "Certificate"],
    );
    // A client certificate from an authority the server does not trust.
    let stranger = format!(
        "rediss://app:app-pw@127.0.0.1:{port}/0?cacert={}&cert={}&key={}",
        c.path("ca.pem").display(),
        c.path("stranger.pem").display(),
        c.path("stranger.key").display()
    );
    assert!(Queue::<u8>::open(&stranger, "app-q").is_err());
    // A worker refused the same way stops at once too, where it would wait out an outage;
    // the plaintext one is told why.
    let plaintext = format!("redis://app:app-pw@127.0.0.1:{port}/0");
    for (what, url, want) in [
        ("worker in plaintext", plaintext, "rediss://"),
        ("worker with a rogue CA", rogue.clone(), "certificate"),
        (
            "worker with a stranger's certificate",
            stranger.clone(),
            "certificate",
        ),
        (
            "worker without a client certificate",
            no_cert.clone(),
            "certificate",
        ),
    ] {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(Worker::new(&url).namespace(NS).run_in_this_process());
        });
        let e = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{what}: still retrying"))
            .expect_err(what)
            .to_string();
        assert!(e.contains(want), "{what}: {e}");
    }
    // Settings that cannot work are refused before connecting.
    quick(
        "half a client cert",
        Client::open(&format!("{no_cert}&cert=x.pem")),
        &["both cert"],
    );
    quick(
        "missing CA file",
        Client::open(&format!(
            "rediss://127.0.0.1:{port}/0?cacert=/nonexistent.pem"
        )),
        &["cannot read"],
    );
    quick(
        "TLS settings on redis://",
        Client::open(&format!("redis://127.0.0.1:{port}/0?cacert=x")),
        &["rediss://"],
    );
    quick(
        "#insecure",
        Client::open(&format!("rediss://127.0.0.1:{port}/0#insecure")),
        &["#insecure"],
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "refusals took {:?}",
        t.elapsed()
    );

    // A user outside its key prefix: refused by the server, at once.
    let t = Instant::now();
    let e = Queue::<u8>::open(&good, "elsewhere")
        .and_then(|q| q.put(1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("NOPERM") || e.contains("no permissions"),
        "other prefix: {e}"
    );
    let exec = Executor::builder(&good).namespace("elsewhere").build();
    let e = exec
        .and_then(|x| x.submit(double, 1).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("NOPERM") || e.contains("no permissions"),
        "other namespace: {e}"
    );
    let worker = server.url_with_user("worker", "worker-pw");
    let e = Queue::<u8>::open(&worker, "app-items")
        .and_then(|q| q.put(1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("NOPERM") || e.contains("no permissions"),
        "worker on the app's queue: {e}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "NOPERM took {:?}",
        t.elapsed()
    );
}
