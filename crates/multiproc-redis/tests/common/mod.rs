//! Shared helpers of the Redis tests: the server (MULTIPROC_REDIS_URL, or one this test
//! process starts), unique names, and the rule that a test without a server fails under CI.
#![allow(dead_code, unreachable_pub)]

use multiproc::redis::LocalServer;

/// The shared server's URL: `MULTIPROC_REDIS_URL` (set by `cargo xtask test`), or a
/// `redis-server` this process starts. `None` (the test returns early, with a note) when
/// neither works; under `CI` that panics instead, so CI never skips.
pub fn url() -> Option<String> {
    match multiproc_redis::test_server_url() {
        Ok(url) => Some(url),
        Err(e) => {
            multiproc_testkit::skip_this(&format!("no Redis server ({e})"));
            None
        }
    }
}

/// A server owned by this test (for the tests that kill and restart it).
pub fn own_server(durable: bool) -> Option<LocalServer> {
    let started = if durable {
        LocalServer::start_durable()
    } else {
        LocalServer::start()
    };
    match started {
        Ok(s) => Some(s),
        Err(e) => {
            multiproc_testkit::skip_this(&format!("no redis-server could be started ({e})"));
            None
        }
    }
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(what: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("test-{what}-{}-{t}", std::process::id())
}
