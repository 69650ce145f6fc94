//! Named shared memory between processes (ported from CPython's
//! `_TestSharedMemory.test_shared_memory_basics` and friends), and its cleanup: a segment
//! leaves `/dev/shm` when unlinked, when its last holder drops it, and when every holder was
//! killed (swept by the next `create`/`open`/`sweep`).

mod common;
use common::{METHODS, start};
use multiproc_testkit::{shm_exists, unique_name};

use std::io::ErrorKind;
use std::time::Duration;

use multiproc_ipc::shared_memory::{SharedMemory, sweep};
use multiproc_ipc::{Error, Event};

fn is_kind(e: &Error, kind: ErrorKind) -> bool {
    matches!(e, Error::Io(io) if io.kind() == kind)
}

/// Opens the segment by name (the child knows only the name), checks what the parent wrote,
/// writes its answer.
fn open_by_name_and_answer(name: String) -> Vec<u8> {
    let shm = SharedMemory::open(&name).unwrap();
    let mut got = vec![0; 5];
    shm.read_at(0, &mut got).unwrap();
    shm.write_at(100, b"child was here").unwrap();
    got
}

#[test]
fn attach_by_name_sees_writes_both_ways() {
    for m in METHODS {
        let name = unique_name("mptest_attach");
        let shm = SharedMemory::create(Some(&name), 4096).unwrap();
        assert_eq!((shm.name(), shm.size()), (name.as_str(), 4096));
        assert!(shm_exists(&name));
        shm.write_at(0, b"hello").unwrap();
        let got = start(m, open_by_name_and_answer, name.clone())
            .join()
            .unwrap();
        assert_eq!(got, b"hello");
        let mut answer = [0; 14];
        shm.read_at(100, &mut answer).unwrap();
        assert_eq!(&answer, b"child was here", "{m:?}");
        shm.unlink().unwrap();
        assert!(!shm_exists(&name));
        // Still usable after unlink, as in POSIX.
        shm.write_at(0, b"x").unwrap();
    }
}

#[test]
fn create_existing_open_missing_and_second_unlink_err() {
    let name = unique_name("mptest_errs");
    let shm = SharedMemory::create(Some(&name), 10).unwrap();
    let again = SharedMemory::create(Some(&name), 10).unwrap_err();
    assert!(is_kind(&again, ErrorKind::AlreadyExists), "{again:?}");
    let missing = SharedMemory::open(&unique_name("mptest_missing")).unwrap_err();
    assert!(is_kind(&missing, ErrorKind::NotFound), "{missing:?}");
    let other = SharedMemory::open(&name).unwrap();
    shm.unlink().unwrap();
    let second = other.unlink().unwrap_err();
    assert!(is_kind(&second, ErrorKind::NotFound), "{second:?}");
    assert!(shm.unlink().is_err());
    assert!(
        SharedMemory::open(&name).is_err(),
        "unlinked: no longer opens"
    );
    assert!(SharedMemory::create(Some(&name), 0).is_err(), "size 0");
    assert!(SharedMemory::create(Some("a/b"), 1).is_err(), "bad name");
}

#[test]
fn generated_names_and_views() {
    let a = SharedMemory::create(None, 100).unwrap();
    let b = SharedMemory::create(None, 100).unwrap();
    assert_ne!(a.name(), b.name());
    assert!(shm_exists(a.name()));
    assert_eq!(a.as_ptr() as usize % 4096, 0);
    a.write_at(3, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]).unwrap();
    let mut all = [0u8; 100];
    a.read_at(0, &mut all).unwrap();
    assert_eq!(&all[..15], &[0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0]);
    assert!(a.read_at(99, &mut [0; 2]).is_err());
    assert!(a.write_at(usize::MAX, &[0]).is_err());
    // SAFETY: no other process or view writes `a` now.
    assert_eq!(unsafe { a.as_slice() }, &all[..]);
}

#[test]
fn the_last_holder_to_drop_removes_the_name() {
    let name = unique_name("mptest_drop");
    let shm = SharedMemory::create(Some(&name), 10).unwrap();
    let other = SharedMemory::open(&name).unwrap();
    let clone = shm.clone();
    drop(shm);
    drop(other);
    assert!(shm_exists(&name), "a clone still holds it");
    drop(clone);
    assert!(!shm_exists(&name));
    assert!(SharedMemory::open(&name).is_err());
}

fn open_and_hold((name, ready, done): (String, Event, Event)) {
    let shm = SharedMemory::open(&name).unwrap();
    ready.set();
    done.wait();
    drop(shm);
}

#[test]
fn a_segment_lives_while_another_process_holds_it() {
    for m in METHODS {
        let name = unique_name("mptest_held");
        let (ready, done) = (Event::new().unwrap(), Event::new().unwrap());
        let shm = SharedMemory::create(Some(&name), 10).unwrap();
        let p = start(
            m,
            open_and_hold,
            (name.clone(), ready.clone(), done.clone()),
        );
        ready.wait();
        drop(shm);
        assert!(shm_exists(&name), "{m:?}: the child still holds it");
        let third = SharedMemory::open(&name).unwrap();
        drop(third);
        done.set();
        p.join().unwrap();
        assert!(
            !shm_exists(&name),
            "{m:?}: the last holder's drop unlinked it"
        );
    }
}

fn receive_handle((shm, ready, done): (SharedMemory, Event, Event)) -> String {
    shm.write_at(0, b"via handle").unwrap();
    ready.set();
    done.wait();
    shm.name().to_owned()
}

#[test]
fn a_handle_travels_in_spawn_arguments() {
    for m in METHODS {
        let shm = SharedMemory::create(None, 64).unwrap();
        let (ready, done) = (Event::new().unwrap(), Event::new().unwrap());
        let p = start(
            m,
            receive_handle,
            (shm.clone(), ready.clone(), done.clone()),
        );
        ready.wait();
        let mut b = [0; 10];
        shm.read_at(0, &mut b).unwrap();
        assert_eq!(&b, b"via handle");
        done.set();
        assert_eq!(p.join().unwrap(), shm.name(), "{m:?}");
    }
}

fn create_open_and_park((names, ready): (Vec<String>, Event)) {
    let mut keep = Vec::new();
    for n in &names {
        keep.push(
            SharedMemory::create(Some(n), 4096)
                .or_else(|_| SharedMemory::open(n))
                .unwrap(),
        );
    }
    ready.set();
    loop {
        std::thread::park();
    }
}

#[test]
fn segments_of_killed_holders_are_swept() {
    for m in METHODS {
        let names = vec![unique_name("mptest_killed"), unique_name("mptest_killed")];
        let ready = Event::new().unwrap();
        // Two processes hold both segments; both are killed with -9.
        let mut ps = Vec::new();
        for _ in 0..2 {
            ready.clear();
            ps.push(start(
                m,
                create_open_and_park,
                (names.clone(), ready.clone()),
            ));
            ready.wait();
        }
        assert!(names.iter().all(|n| shm_exists(n)));
        for p in &ps {
            p.kill().unwrap();
        }
        for mut p in ps {
            assert!(p.wait_timeout(Duration::from_secs(30)));
        }
        // The next create (or open, or an explicit sweep) removes them.
        let fresh = SharedMemory::create(None, 1).unwrap();
        assert!(names.iter().all(|n| !shm_exists(n)), "{m:?}: swept");
        sweep();
        assert!(shm_exists(fresh.name()), "a live segment is never swept");
    }
}

#[test]
fn sweep_leaves_live_and_foreign_files_alone() {
    let live = SharedMemory::create(Some(&unique_name("mptest_live")), 8).unwrap();
    let foreign = format!("mptest_foreign_{}", std::process::id());
    let path = std::path::Path::new("/dev/shm").join(&foreign);
    std::fs::write(&path, vec![0u8; 3 * 4096]).unwrap();
    sweep();
    assert!(shm_exists(live.name()) && path.exists());
    std::fs::remove_file(&path).unwrap();
    // Opening a file that is not ours is an error, not a crash.
    std::fs::write(&path, vec![7u8; 3 * 4096]).unwrap();
    assert!(SharedMemory::open(&foreign).is_err());
    std::fs::remove_file(&path).unwrap();
}
