//! Helpers shared by the pool crate's integration tests.
#![allow(dead_code, unreachable_pub)]

use multiproc::StartMethod;
use multiproc::pool::Pool;

/// Every start method, so each pool test runs under all three.
pub const METHODS: [StartMethod; 3] = [
    StartMethod::Fork,
    StartMethod::Spawn,
    StartMethod::ForkServer,
];

/// A pool of `n` workers started with `method`.
pub fn pool(method: StartMethod, n: usize) -> Pool {
    Pool::builder()
        .processes(n)
        .start_method(method)
        .build()
        .unwrap()
}
