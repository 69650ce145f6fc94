//! A thousand handles (3,000 descriptors: more than the 253 one `SCM_RIGHTS` message carries)
//! in a child's arguments and in its result, under every start method, arrive intact and in
//! order; and a parent with no room for a result's descriptors gets an error that names the
//! cause (never truncated handles or a hang). One test per start method and path, so that
//! under nextest (one process per test) a hang is one timeout and the limits are the test's own.

use multiproc_spawn::{Process, StartMethod, handoff};
use multiproc_testkit::open_fds;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::os::fd::{AsFd, OwnedFd};

const HANDLES: usize = 1000;

/// A handle of three descriptors, like a queue's.
#[derive(Debug)]
struct Trio([OwnedFd; 3]);

impl Serialize for Trio {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut at = [0u32; 3];
        for (i, fd) in self.0.iter().enumerate() {
            at[i] = handoff::send_fd(fd.as_fd()).map_err(serde::ser::Error::custom)?;
        }
        at.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Trio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let at = <[u32; 3]>::deserialize(d)?;
        let take = |i: u32| handoff::recv_fd(i).map_err(serde::de::Error::custom);
        Ok(Trio([take(at[0])?, take(at[1])?, take(at[2])?]))
    }
}

/// A file's identity (device, inode).
type Id = (u64, u64);

fn id(fd: &OwnedFd) -> Id {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::File::from(fd.try_clone().unwrap())
        .metadata()
        .unwrap();
    (md.dev(), md.ino())
}

/// Three distinct files (a pipe's two ends, `/dev/null`) and their identities.
fn three_files() -> ([OwnedFd; 3], [Id; 3]) {
    let (r, w) = std::io::pipe().unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let fds = [OwnedFd::from(r), OwnedFd::from(w), OwnedFd::from(null)];
    let ids = [id(&fds[0]), id(&fds[1]), id(&fds[2])];
    (fds, ids)
}

/// `HANDLES` trios; trio `i` holds the three files rotated by `i`, so that a descriptor out of
/// place shows.
fn many(base: &[OwnedFd; 3]) -> Vec<Trio> {
    (0..HANDLES)
        .map(|i| {
            Trio(std::array::from_fn(|j| {
                base[(i + j) % 3].try_clone().unwrap()
            }))
        })
        .collect()
}

/// How many descriptors of `trios` are the file they should be.
fn in_place(ids: &[Id; 3], trios: &[Trio]) -> usize {
    let mut n = 0;
    for (i, t) in trios.iter().enumerate() {
        for (j, fd) in t.0.iter().enumerate() {
            n += usize::from(id(fd) == ids[(i + j) % 3]);
        }
    }
    n
}

/// Raises this process's soft descriptor limit to its hard limit (a child inherits it), so
/// that 3,000 descriptors and their copies fit.
fn raise_nofile() {
    multiproc_testkit::set_soft_nofile(None);
    let now = multiproc_testkit::set_soft_nofile(None);
    assert!(
        now >= 8 * HANDLES as u64,
        "the hard descriptor limit ({now}) is too low for this test"
    );
}

fn check_args((ids, trios): ([Id; 3], Vec<Trio>)) -> (usize, usize) {
    (trios.len(), in_place(&ids, &trios))
}

fn args_arrive(m: StartMethod) {
    raise_nofile();
    let (base, ids) = three_files();
    let p = Process::builder()
        .start_method(m)
        .spawn(check_args, (ids, many(&base)))
        .unwrap();
    assert_eq!(p.join().unwrap(), (HANDLES, 3 * HANDLES), "{m:?}");
}

#[test]
fn a_thousand_handles_in_the_arguments_under_fork() {
    args_arrive(StartMethod::Fork);
}

#[test]
fn a_thousand_handles_in_the_arguments_under_spawn() {
    args_arrive(StartMethod::Spawn);
}

#[test]
fn a_thousand_handles_in_the_arguments_under_forkserver() {
    args_arrive(StartMethod::ForkServer);
}

fn make_many(base: Trio) -> Vec<Trio> {
    many(&base.0)
}

fn result_arrives(m: StartMethod) {
    raise_nofile();
    let (base, ids) = three_files();
    let p = Process::builder()
        .start_method(m)
        .spawn(make_many, Trio(base))
        .unwrap();
    let got = p.join().unwrap();
    assert_eq!(got.len(), HANDLES, "{m:?}");
    assert_eq!(in_place(&ids, &got), 3 * HANDLES, "{m:?}");
}

#[test]
fn a_thousand_handles_in_the_result_under_fork() {
    result_arrives(StartMethod::Fork);
}

#[test]
fn a_thousand_handles_in_the_result_under_spawn() {
    result_arrives(StartMethod::Spawn);
}

#[test]
fn a_thousand_handles_in_the_result_under_forkserver() {
    result_arrives(StartMethod::ForkServer);
}

/// Raises its own soft limit (inherited low from the test) and answers a thousand handles.
fn make_many_with_room(base: Trio) -> Vec<Trio> {
    raise_nofile();
    many(&base.0)
}

#[test]
fn a_parent_without_room_for_a_results_descriptors_gets_an_error_naming_the_cause() {
    raise_nofile();
    for m in [
        StartMethod::Fork,
        StartMethod::Spawn,
        StartMethod::ForkServer,
    ] {
        let (base, _) = three_files();
        // Room for a few more descriptors, not for 3,000: the child raises its own limit. Set
        // before the start, so the result can never arrive while the parent still had room.
        let before = multiproc_testkit::set_soft_nofile(Some(open_fds() as u64 + 100));
        let e = Process::builder()
            .start_method(m)
            .spawn(make_many_with_room, Trio(base))
            .and_then(|p| p.join())
            .unwrap_err()
            .to_string();
        multiproc_testkit::set_soft_nofile(Some(before));
        assert!(
            e.contains("out of descriptors") && e.contains("RLIMIT_NOFILE"),
            "{m:?}: {e}"
        );
        // The failed child is not left behind as a live one.
        assert!(
            multiproc_spawn::active_children().is_empty(),
            "{m:?}: {:?}",
            multiproc_spawn::active_children()
        );
    }
}

fn quick(x: u32) -> u32 {
    x
}

#[test]
fn a_child_without_room_for_its_arguments_descriptors_fails_with_an_error_naming_the_cause() {
    raise_nofile();
    // The fork server starts now, with room for few descriptors, and its children inherit
    // that limit; then this process gets its room back to send a thousand handles.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill, then to read.
    let hard = unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let hard = lim.rlim_cur;
        lim.rlim_cur = open_fds() as u64 + 100;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        hard
    };
    let p = Process::builder()
        .start_method(StartMethod::ForkServer)
        .spawn(quick, 1)
        .unwrap();
    assert_eq!(p.join().unwrap(), 1);
    lim.rlim_cur = hard;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let (base, ids) = three_files();
    let p = Process::builder()
        .start_method(StartMethod::ForkServer)
        .spawn(check_args, (ids, many(&base)))
        .unwrap();
    let e = p.join().unwrap_err().to_string();
    assert!(
        e.contains("out of descriptors") && e.contains("RLIMIT_NOFILE"),
        "{e}"
    );
}
