//! A pool under a limited address space (`ulimit -v 4 GiB`, RLIMIT_AS): each of its queues
//! reserved 64 GiB of address space, so `Pool::new(2)` failed with a bare `ENOMEM` (even under
//! ~140 GB) where Python's pool works.
//!
//! The test re-runs this test binary under `sh -c 'ulimit -v …; exec …'` with the same test
//! selected (`multiproc_testkit::run_self`), so the limit applies to a fresh process.

use multiproc::pool::Pool;

/// 4 GiB of address space, in KiB for `ulimit -v`.
const FOUR_GIB: &str = "ulimit -v 4194304";

fn sqr(x: i64) -> i64 {
    x * x
}

#[test]
fn a_pool_works_under_a_4_gib_address_space_limit() {
    const TEST: &str = "a_pool_works_under_a_4_gib_address_space_limit";
    if !multiproc_testkit::is_child(TEST) {
        multiproc_testkit::run_self(TEST, &multiproc_testkit::under_ulimit(FOUR_GIB));
        return;
    }
    let p = Pool::new(2).unwrap();
    assert_eq!(
        p.map(sqr, 0..100).unwrap(),
        (0..100).map(|x| x * x).collect::<Vec<_>>()
    );
}
