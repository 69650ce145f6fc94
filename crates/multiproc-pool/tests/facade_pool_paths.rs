//! Touches every pool and executor path of the facade that API.md names, so a rename fails to
//! compile.

use multiproc::futures::{
    AsCompleted, Future, ProcessPoolExecutor, ReturnWhen, ThreadPoolExecutor, as_completed, wait,
};
use multiproc::pool::{AsyncResult, Pool, PoolBuilder};
use multiproc::{Error, Result, StartMethod};
use std::time::Duration;

fn id(x: u8) -> u8 {
    x
}

fn init(_: ()) {}

#[test]
fn pool_paths_exist() -> Result<()> {
    let builder: PoolBuilder = Pool::builder()
        .processes(1)
        .initializer(init, ())
        .maxtasksperchild(10)
        .start_method(StartMethod::ForkServer);
    let pool: Pool = builder.build()?;
    let _: u8 = pool.apply(id, 1)?;
    let mut r: AsyncResult<u8> = pool.apply_async(id, 2)?;
    let _: bool = r.wait_timeout(Duration::from_secs(60));
    let _: bool = r.ready();
    let _: u8 = r.get_timeout(Duration::from_secs(60))?;
    let _: Vec<u8> = pool.map(id, [1, 2])?;
    let _: Vec<u8> = pool.map_chunked(id, [1, 2], 1)?;
    let _: Vec<u8> = pool.map_async(id, [1])?.get()?;
    let _: Vec<Result<u8>> = pool.imap(id, [1])?.collect();
    let _: Vec<Result<u8>> = pool.imap_unordered(id, [1])?.collect();
    let _: Vec<u8> = pool.starmap(id, [3])?;
    pool.close();
    pool.join()?;
    Pool::new(1)?.terminate();
    Ok(())
}

#[test]
fn futures_paths_exist() -> Result<()> {
    let ex = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(5)
        .initializer(init, ())
        .start_method(StartMethod::Fork)
        .build()?;
    let mut f: Future<u8> = ex.submit(id, 1)?;
    let _: u8 = f.result_timeout(Duration::from_secs(60))?;
    let _: Vec<Result<u8>> = ex.map(id, [1, 2])?.collect();
    ex.shutdown(true, false);
    let _ = ProcessPoolExecutor::new(1)?;
    let t = ThreadPoolExecutor::new(1);
    let f: Future<u8> = t.submit(|| 1)?;
    let _: (bool, bool, bool) = (f.done(), f.running(), f.cancelled());
    let _: bool = f.cancel();
    f.add_done_callback(|_| {});
    let fs = vec![f];
    let (_done, _not): (Vec<usize>, Vec<usize>) = wait(&fs, None, ReturnWhen::FirstCompleted);
    let _ = [ReturnWhen::FirstException, ReturnWhen::AllCompleted];
    let it: AsCompleted<u8> = as_completed(fs, None);
    for f in it {
        let _: Result<u8> = f?.result();
    }
    let _: Vec<Result<u8>> = t.map(|x: u8| x, [1])?.collect();
    t.shutdown(true, true);
    assert!(matches!(t.submit(|| 1), Err(Error::PoolClosed)));
    Ok(())
}
