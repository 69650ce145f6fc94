//! A manager under a limited address space (`ulimit -v 4 GiB`, RLIMIT_AS): each of its queues
//! and pipes reserved 64 GiB of address space, so `Manager::new` failed with a bare `ENOMEM`
//! where Python's manager works.
//!
//! The test re-runs this test binary under `sh -c 'ulimit -v …; exec …'` with the same test
//! selected (`multiproc_testkit::run_self`), so the limit applies to a fresh process.

use multiproc_manager::Manager;

/// 4 GiB of address space, in KiB for `ulimit -v`.
const FOUR_GIB: &str = "ulimit -v 4194304";

#[test]
fn a_manager_works_under_a_4_gib_address_space_limit() {
    const TEST: &str = "a_manager_works_under_a_4_gib_address_space_limit";
    if !multiproc_testkit::is_child(TEST) {
        multiproc_testkit::run_self(TEST, &multiproc_testkit::under_ulimit(FOUR_GIB));
        return;
    }
    let manager = Manager::new().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    d.insert("answer".to_string(), 42).unwrap();
    assert_eq!(d.items().unwrap(), [("answer".to_string(), 42)]);
}
