//! Helpers shared by the ipc crate's integration tests.
#![allow(dead_code, unreachable_pub)]

use multiproc_spawn::{Process, StartMethod};

/// Every start method, so each cross-process test runs under all three.
pub const METHODS: [StartMethod; 3] = [
    StartMethod::Fork,
    StartMethod::Spawn,
    StartMethod::ForkServer,
];

/// Starts `f(args)` in a child under start method `m`.
pub fn start<A, R>(m: StartMethod, f: fn(A) -> R, args: A) -> Process<R>
where
    A: serde::Serialize + serde::de::DeserializeOwned + 'static,
    R: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    Process::builder().start_method(m).spawn(f, args).unwrap()
}
