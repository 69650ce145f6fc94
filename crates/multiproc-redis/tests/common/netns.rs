//! A cluster of hosts on one machine (issue 29): each host is a Linux network namespace of its
//! own (`redis`, `w1`, `w2`, `client`) with one address in a private /24, linked by a veth pair
//! to a bridge that lives in a namespace of its own too, so the machine's own network is never
//! touched. `redis-server` runs in the `redis` namespace, bound only to that host's address;
//! worker hosts are this test binary run again inside their namespace; the test's own thread
//! joins the `client` namespace ([`Cluster::enter`]).
//!
//! [`Cluster::partition`] takes a host's link down on the bridge side (the host sees no
//! carrier: its packets go nowhere), [`Cluster::heal`] brings it back.
//!
//! Everything is torn down on drop (processes killed, namespaces and links deleted), after a
//! panic too; and if the test process itself is killed, a janitor shell (in a session of its
//! own, holding the read end of a pipe whose write end only this process has) does the same
//! when the pipe closes. Namespaces left by a process that no longer exists are removed when
//! the next cluster is made.
#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The Redis host.
pub const REDIS: &str = "redis";
/// The first worker host.
pub const W1: &str = "w1";
/// The second worker host.
pub const W2: &str = "w2";
/// The host the test's own thread runs the executor in.
pub const CLIENT: &str = "client";
/// Every host, in address order (`REDIS` is `.1`).
pub const HOSTS: [&str; 4] = [REDIS, W1, W2, CLIENT];

/// The variable a worker host process finds its host name in (see [`Cluster::spawn_in`]).
pub const HOST_ENV: &str = "MULTIPROC_CLUSTER_HOST";

/// The port `redis-server` listens on, on the Redis host's address only.
pub const REDIS_PORT: u16 = 6379;

/// The prefix of every namespace a cluster makes: `mpc-PID-N-HOST`.
const PREFIX: &str = "mpc-";

/// Clusters made by this process so far (the N in the names).
static MADE: AtomicU32 = AtomicU32::new(0);

/// The janitor: on a line or on end of input on stdin, kills every process in the namespaces
/// given as arguments, deletes them and removes the data directory (`$MPC_DIR`).
const JANITOR: &str = r#"read _line; for ns in "$@"; do for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; done; for ns in "$@"; do ip netns del "$ns" 2>/dev/null; done; rm -rf "$MPC_DIR"; exit 0"#;

/// A cluster of network namespaces on a bridge; see the module documentation.
#[derive(Debug)]
pub struct Cluster {
    /// `mpc-PID-N`: the namespaces are `mpc-PID-N-HOST` and `mpc-PID-N-br`.
    tag: String,
    /// The first three octets of the /24: `10.77.X`.
    net: String,
    dir: PathBuf,
    redis: Option<Child>,
    durable: bool,
    children: Vec<Child>,
    janitor: Option<(Child, ChildStdin)>,
}

/// Runs `ip ARGS`, panicking with its error output if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces (`ip netns list`) whose names start with [`PREFIX`].
fn our_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_owned)
        .collect()
}

/// Removes namespaces left by cluster processes that no longer exist (killed before their
/// janitor could run: the machine rebooted its container, say).
fn remove_stale() {
    for ns in our_namespaces() {
        let pid = ns[PREFIX.len()..].split('-').next().unwrap_or("");
        if pid.parse::<u32>().is_ok() && !PathBuf::from(format!("/proc/{pid}")).exists() {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", p]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

/// Joins the calling thread to the network namespace `/run/netns/NAME` (a thread's network
/// namespace is its own: the other threads of the process stay where they are; sockets it
/// makes from now on live in the namespace).
fn setns_current_thread(name: &str) {
    unsafe extern "C" {
        fn setns(fd: i32, nstype: i32) -> i32;
    }
    const CLONE_NEWNET: i32 = 0x4000_0000;
    let f = File::open(format!("/run/netns/{name}"))
        .unwrap_or_else(|e| panic!("cannot open the namespace {name}: {e}"));
    // SAFETY: `setns` only reads the descriptor, which `f` keeps open for the call; changing
    // the calling thread's network namespace touches no memory of this process, and no other
    // process sees it.
    let r = unsafe { setns(f.as_raw_fd(), CLONE_NEWNET) };
    assert_eq!(r, 0, "setns({name}): {}", std::io::Error::last_os_error());
}

impl Cluster {
    /// Makes the namespaces, the bridge and the links; `None` (the test is reported skipped
    /// by name, a failure under CI) when this process is not root or has no `ip`.
    pub fn new() -> Option<Cluster> {
        if !multiproc_testkit::is_root() {
            multiproc_testkit::skip_this("the namespace cluster needs root");
            return None;
        }
        if !multiproc_testkit::has_program("ip") {
            multiproc_testkit::skip_this("the namespace cluster needs `ip` (iproute2)");
            return None;
        }
        if !multiproc_testkit::has_program("redis-server") {
            multiproc_testkit::skip_this("the namespace cluster needs redis-server");
            return None;
        }
        remove_stale();
        let pid = std::process::id();
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{PREFIX}{pid}-{n}");
        // Each cluster has a bridge of its own, so addresses never meet another cluster's;
        // the octet still differs between concurrent runs, for whoever reads `ip` output.
        let net = format!("10.77.{}", (pid.wrapping_mul(7).wrapping_add(n)) % 250 + 1);
        let dir = std::env::temp_dir().join(format!("{tag}-data"));
        std::fs::create_dir_all(&dir).expect("the cluster's data directory");
        let mut c = Cluster {
            tag,
            net,
            dir,
            redis: None,
            durable: false,
            children: Vec::new(),
            janitor: None,
        };
        // The janitor first: from here on, whatever is made is removed however this ends.
        let mut names: Vec<String> = HOSTS.iter().map(|h| c.ns(h)).collect();
        names.push(c.bridge_ns());
        let mut cmd = if PathBuf::from("/usr/bin/setsid").exists() {
            let mut s = Command::new("/usr/bin/setsid");
            s.arg("sh");
            s
        } else {
            Command::new("sh")
        };
        let mut janitor = cmd
            .arg("-c")
            .arg(JANITOR)
            .arg("mpc-janitor")
            .args(&names)
            .env("MPC_DIR", &c.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the cluster's janitor shell");
        let stdin = janitor.stdin.take().expect("the janitor's stdin");
        c.janitor = Some((janitor, stdin));

        let br = c.bridge_ns();
        ip(&["netns", "add", &br]);
        ip(&["-n", &br, "link", "set", "lo", "up"]);
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        for (i, host) in HOSTS.iter().enumerate() {
            let ns = c.ns(host);
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let port = c.port(host);
            ip(&[
                "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            ip(&["-n", &br, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &br, "link", "set", &port, "up"]);
            let addr = format!("{}.{}/24", c.net, i + 1);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        Some(c)
    }

    /// The namespace of `host`.
    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.tag)
    }

    fn bridge_ns(&self) -> String {
        format!("{}-br", self.tag)
    }

    /// The bridge-side end of `host`'s link (a name inside the bridge's namespace).
    fn port(&self, host: &str) -> String {
        format!("p-{host}")
    }

    /// The address of `host`.
    pub fn addr(&self, host: &str) -> String {
        let i = HOSTS
            .iter()
            .position(|h| *h == host)
            .unwrap_or_else(|| panic!("no host {host}"));
        format!("{}.{}", self.net, i + 1)
    }

    /// The URL of the Redis server, as any host reaches it.
    pub fn redis_url(&self) -> String {
        format!("redis://{}:{REDIS_PORT}/0", self.addr(REDIS))
    }

    /// Joins the calling thread to `host`'s namespace: the executor it opens, and every
    /// connection it makes, go out through that host's link.
    pub fn enter(&self, host: &str) {
        setns_current_thread(&self.ns(host));
    }

    /// Runs `f` on a thread of its own inside `host`'s namespace; threads it starts stay
    /// there too.
    pub fn spawn_thread_in<T: Send + 'static>(
        &self,
        host: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let ns = self.ns(host);
        std::thread::spawn(move || {
            setns_current_thread(&ns);
            f()
        })
    }

    /// Starts `redis-server` in the Redis host, bound only to its address, in the cluster's
    /// data directory; `durable` adds `appendonly yes` with an fsync before every answer.
    /// Waits (at most 20 s) until it answers `PING` from the client host.
    pub fn start_redis(&mut self, durable: bool) {
        assert!(self.redis.is_none(), "redis-server runs already");
        self.durable = durable;
        let (addr, port, dir) = (
            self.addr(REDIS),
            REDIS_PORT.to_string(),
            self.dir.to_str().expect("UTF-8 temp dir").to_string(),
        );
        let log = self.dir.join("redis.log");
        let mut args = vec![
            "netns".to_string(),
            "exec".into(),
            self.ns(REDIS),
            "redis-server".into(),
            "--bind".into(),
            addr,
            "--port".into(),
            port,
            "--protected-mode".into(),
            "no".into(),
            "--dir".into(),
            dir,
            "--daemonize".into(),
            "no".into(),
            "--save".into(),
            String::new(),
            "--logfile".into(),
            log.to_str().expect("UTF-8 temp dir").into(),
        ];
        if durable {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        } else {
            args.extend(["--appendonly", "no"].map(String::from));
        }
        // `ip netns exec` ends by exec'ing the server: this child is the server itself.
        let child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip netns exec redis-server");
        self.redis = Some(child);
        let target: SocketAddr = format!("{}:{REDIS_PORT}", self.addr(REDIS))
            .parse()
            .expect("the server's address");
        let up = self
            .spawn_thread_in(CLIENT, move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                while Instant::now() < deadline {
                    if pong(target) {
                        return true;
                    }
                    // Time is what is waited for here: the server's start-up.
                    std::thread::sleep(Duration::from_millis(20));
                }
                false
            })
            .join()
            .expect("the readiness probe");
        if !up {
            let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
            panic!("redis-server did not answer from the client host within 20 s: {log}");
        }
    }

    /// Kills the server with SIGKILL (no shutdown, no save) and waits for it.
    pub fn kill_redis(&mut self) {
        if let Some(mut c) = self.redis.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and starts it again on the same address and data directory.
    pub fn restart_redis(&mut self) {
        self.kill_redis();
        let durable = self.durable;
        self.start_redis(durable);
    }

    /// Starts `program args…` inside `host`'s namespace, with [`HOST_ENV`] set to `host` and
    /// `env`; answers its index for [`running`](Cluster::running).
    pub fn spawn_in(
        &mut self,
        host: &str,
        program: &std::path::Path,
        args: &[&str],
        env: &[(&str, String)],
    ) -> usize {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(host)])
            .arg(program)
            .args(args)
            .env(HOST_ENV, host)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.children
            .push(cmd.spawn().expect("ip netns exec (a worker host)"));
        self.children.len() - 1
    }

    /// Whether the process started as `index` still runs.
    pub fn running(&mut self, index: usize) -> bool {
        self.children[index]
            .try_wait()
            .expect("the child's status")
            .is_none()
    }

    /// Waits (at most `within`) for the process started as `index` to exit; its status.
    pub fn wait_exit(
        &mut self,
        index: usize,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.children[index].try_wait().expect("the child's status") {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // No event to wait on for a child's exit with a bound: time it is.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Cuts `host` off: its link goes down on the bridge side.
    pub fn partition(&self, host: &str) {
        ip(&[
            "-n",
            &self.bridge_ns(),
            "link",
            "set",
            &self.port(host),
            "down",
        ]);
    }

    /// Ends the cut of `host`.
    pub fn heal(&self, host: &str) {
        ip(&[
            "-n",
            &self.bridge_ns(),
            "link",
            "set",
            &self.port(host),
            "up",
        ]);
    }
}

/// Whether a Redis server answers `PING` at `addr` (within a second).
fn pong(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().chain(self.redis.as_mut()) {
            let _ = c.kill();
        }
        // The janitor kills whatever else runs in the namespaces (the worker hosts' own
        // children), deletes them (their links go with them) and the data directory.
        if let Some((mut janitor, mut stdin)) = self.janitor.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = janitor.wait();
        }
        for c in self.children.iter_mut().chain(self.redis.as_mut()) {
            let _ = c.wait();
        }
    }
}
