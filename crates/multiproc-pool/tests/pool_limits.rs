//! Pools under the usual descriptor limit: `Pool(256)` fits under a soft `RLIMIT_NOFILE` of
//! 1024 (Python's forkserver `Pool(300)` does), what each worker costs in the parent's
//! descriptor table is measured, and a pool that does run out says what ran out.

use multiproc::StartMethod;
use multiproc::pool::Pool;
use multiproc_testkit::open_fds;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The soft limit most distributions start programs with.
const USUAL_SOFT: u64 = 1024;
/// Descriptors each worker may hold open in the parent (its task queue's shared-memory file and
/// two-socket descriptor channel, its lifeline socket, its process's socket and pidfd): the
/// figure measured here, asserted so that it does not grow unnoticed.
const FDS_PER_WORKER: usize = 6;

fn double(x: u64) -> u64 {
    x * 2
}

fn set_nofile(soft: u64, hard: Option<u64>) {
    let now = getrlimit(Resource::Nofile);
    let hard = hard.or(now.maximum);
    let soft = hard.map_or(soft, |h| soft.min(h));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(soft),
            maximum: hard,
        },
    )
    .unwrap();
}

/// In a child with the usual soft limit (the hard one left as it is): descriptors per worker
/// of a small pool, then `Pool(256)` mapping 1,000 items.
fn many_workers(_: ()) -> Result<usize, String> {
    set_nofile(USUAL_SOFT, None);
    // A pool's own descriptors (its result queue…) cancel out between a pool of 1 and one
    // of 17: what is left is what 16 workers cost.
    let build = |n| {
        Pool::builder()
            .processes(n)
            .start_method(StartMethod::ForkServer)
            .build()
            .map_err(|e| e.to_string())
    };
    let before = open_fds();
    let one = build(1)?;
    let with_one = open_fds();
    let seventeen = build(17)?;
    let with_both = open_fds();
    let per_worker = ((with_both - with_one) - (with_one - before)).div_ceil(16);
    drop((one, seventeen));
    let pool = Pool::builder()
        .processes(256)
        .start_method(StartMethod::ForkServer)
        .build()
        .map_err(|e| format!("Pool(256) under a soft limit of {USUAL_SOFT}: {e}"))?;
    let started = pool.pids();
    let got = pool.map(double, 0..1000u64).map_err(|e| e.to_string())?;
    if got != (0..1000u64).map(double).collect::<Vec<_>>() {
        return Err("wrong results".to_owned());
    }
    // Every worker started and none was replaced: a pool larger than the holder slots of
    // its result queue (240 once) had its last workers fail at start and be replaced for
    // ever, at full speed, while the others did the work.
    let mut distinct = pool.pids();
    if distinct != started {
        return Err(format!(
            "workers were replaced: {} of 256 changed",
            distinct
                .iter()
                .zip(&started)
                .filter(|(a, b)| a != b)
                .count()
        ));
    }
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != 256 || distinct.contains(&0) {
        return Err(format!("{} distinct live workers of 256", distinct.len()));
    }
    Ok(per_worker)
}

#[test]
fn pool_of_256_fits_under_a_soft_limit_of_1024() {
    let hard = getrlimit(Resource::Nofile).maximum;
    if hard.is_some_and(|h| h < 256 * FDS_PER_WORKER as u64) {
        multiproc_testkit::skip(
            "pool_of_256_fits_under_a_soft_limit_of_1024",
            "the hard RLIMIT_NOFILE is too low for 256 workers",
        );
        return;
    }
    let child = multiproc::spawn(many_workers, ()).unwrap();
    let per_worker = child.join().unwrap().unwrap();
    eprintln!("each worker costs {per_worker} descriptors in the parent");
    assert!(
        per_worker <= FDS_PER_WORKER,
        "each worker costs {per_worker} descriptors in the parent"
    );
}

/// In a child whose hard limit is 32 too: a pool that cannot get its descriptors.
fn starved(_: ()) -> String {
    set_nofile(32, Some(32));
    match Pool::builder()
        .processes(8)
        .start_method(StartMethod::ForkServer)
        .build()
    {
        Ok(pool) => match pool.map(double, 0..100u64) {
            Ok(_) => "the pool fit under 32 descriptors".to_owned(),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_pool_out_of_descriptors_says_what_ran_out() {
    let child = multiproc::spawn(starved, ()).unwrap();
    let message = child.join().unwrap();
    assert!(
        message.to_lowercase().contains("too many open files"),
        "the error hides its cause: {message}"
    );
}
