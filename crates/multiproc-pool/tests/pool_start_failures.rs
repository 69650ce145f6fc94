//! Workers that cannot start: a pool whose initializer always panics fails its tasks with the
//! workers' own reason instead of replacing them for ever (CPython's pool does, at full speed,
//! and its `map` never returns), and a pool larger than its result queue allows is refused at
//! `build`.

mod common;
use common::METHODS;

use multiproc::Error;
use multiproc::pool::{MAX_PROCESSES, Pool};
use std::time::Duration;

fn always_panics(_: ()) {
    panic!("the initializer cannot open its database");
}

fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn workers_whose_initializer_panics_fail_the_tasks_with_its_message() {
    for m in METHODS {
        let pool = Pool::builder()
            .processes(2)
            .start_method(m)
            .initializer(always_panics, ())
            .build()
            .unwrap();
        let mut r = pool.apply_async(double, 21).unwrap();
        // Bounded: a pool that replaced its workers for ever would never answer.
        match r.get_timeout(Duration::from_secs(60)) {
            Err(Error::ProcessFailed { message, .. }) => assert!(
                message.contains("every pool worker failed as it started")
                    && message.contains("cannot open its database"),
                "{m:?}: the error hides the reason: {message}"
            ),
            other => panic!("{m:?}: expected the workers' failure, got {other:?}"),
        }
        // No worker is left running or being replaced.
        assert!(pool.pids().is_empty(), "{m:?}: {:?}", pool.pids());
    }
}

#[test]
fn a_pool_larger_than_its_result_queue_allows_is_refused_at_build() {
    match Pool::new(MAX_PROCESSES + 1) {
        Err(Error::Invalid(message)) => {
            assert!(message.contains(&MAX_PROCESSES.to_string()), "{message}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a pool of {} workers was built", MAX_PROCESSES + 1),
    }
    const { assert!(MAX_PROCESSES >= 256, "Pool(256) must fit") };
}
