//! multiproc::redis over TLS against plain TCP, alternated round by round on two local
//! servers (one `redis-server` with `--tls-port` only, one plain; both started here, skipped
//! with a note when `redis-server` or `openssl` is missing): the queue's put + get +
//! task_done (this crate's own socket, wrapped in rustls) and a raw PING through the `redis`
//! crate's connection (its `tls-rustls`). The certificates are a throw-away P-256 CA and a
//! server certificate for 127.0.0.1, made with `openssl` in a temporary folder.

use multiproc::redis::raw;
use multiproc::redis::{Client, LocalServer, Queue};
use multiproc_bench::{Measure, Report, alternate};
use std::path::Path;
use std::process::{Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A CA and a server certificate for 127.0.0.1 in `dir`; false when `openssl` fails.
fn certs(dir: &Path) -> bool {
    let ext =
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n";
    std::fs::write(dir.join("server.ext"), ext).is_ok()
        && openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ca.key",
            ],
        )
        && openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-sha256",
                "-days",
                "1",
                "-subj",
                "/CN=bench ca",
                "-out",
                "ca.pem",
            ],
        )
        && openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "server.key",
            ],
        )
        && openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                "server.key",
                "-subj",
                "/CN=server",
                "-out",
                "server.csr",
            ],
        )
        && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-sha256",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        )
}

fn main() {
    if !LocalServer::available() {
        println!("(redis_tls skipped: no redis-server)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("multiproc-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if !certs(&dir) {
        println!("(redis_tls skipped: openssl could not make the certificates)");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let tls = LocalServer::builder()
        .tls(
            dir.join("ca.pem"),
            dir.join("server.pem"),
            dir.join("server.key"),
        )
        .start()
        .expect("a TLS redis-server (Debian's is built with TLS)");
    let plain = LocalServer::start().unwrap();
    let n = std::env::var("MULTIPROC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let name = format!("bench-tls-{}", std::process::id());
    let q_tls: Queue<u64> = Queue::open(tls.url(), &name).unwrap();
    let q_plain: Queue<u64> = Queue::open(plain.url(), &name).unwrap();
    let mut con_tls = Client::open(tls.url()).unwrap().raw_connection().unwrap();
    let mut con_plain = Client::open(plain.url()).unwrap().raw_connection().unwrap();
    let queue = |q: &Queue<u64>| {
        Measure::new(3, n).per_op(|n| {
            for i in 0..n {
                q.put(i).unwrap();
                std::hint::black_box(q.get().unwrap());
                q.task_done().unwrap();
            }
        })
    };
    let ping = |c: &mut raw::Connection| {
        Measure::new(3, n).per_op(|n| {
            for _ in 0..n {
                raw::cmd("PING").query::<()>(c).unwrap();
            }
        })
    };
    let [q_t, q_p, p_t, p_p] = alternate(
        5,
        [
            &mut || queue(&q_tls),
            &mut || queue(&q_plain),
            &mut || ping(&mut con_tls),
            &mut || ping(&mut con_plain),
        ],
    );
    let mut report = Report::new("redis over TLS (one client, local server, per round trip)");
    report.row("Queue put+get+task_done, TLS", q_t, "same, plain TCP", q_p);
    report.row("raw redis crate PING, TLS", p_t, "same, plain TCP", p_p);
    drop((tls, plain));
    let _ = std::fs::remove_dir_all(&dir);
}
