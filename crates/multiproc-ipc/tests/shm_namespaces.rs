//! Named segments where pids and owners are not what they seem: holders in another pid
//! namespace that shares `/dev/shm` (a container with `--ipc=host`), and files of another
//! user (or links) planted under the name a process expects.
//!
//! The namespace tests run part of themselves again in a child process (this test binary,
//! filtered to the same test, with an environment variable naming the part) inside
//! `unshare -pf --mount-proc`: a new pid namespace with its own `/proc`, same `/dev/shm`.

use multiproc_testkit::{shm_exists, unique_name};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

use multiproc_ipc::Error;
use multiproc_ipc::shared_memory::{SharedMemory, sweep};

/// Which part of which test a child runs.
const PART: &str = "MULTIPROC_SHMNS_PART";
/// The segment name a child works on.
const NAME: &str = "MULTIPROC_SHMNS_NAME";

const PID_NS: &[&str] = &["-pf", "--mount-proc"];

fn part() -> Option<String> {
    std::env::var(PART).ok()
}

fn child_name() -> String {
    std::env::var(NAME).unwrap()
}

/// Starts `part` of `test` in a new pid namespace, its stdin and stdout piped.
fn start_in_pid_namespace(test: &str, part: &str, name: &str) -> Child {
    Command::new("unshare")
        .args(PID_NS)
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture"])
        .env(PART, part)
        .env(NAME, name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout up to a line `word` (the test harness prints its own lines too).
fn wait_for_line(out: &mut impl BufRead, word: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended before saying {word:?}"
        );
        if line.trim() == word {
            return;
        }
    }
}

fn finish(mut child: Child) {
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), None, "the child died of a signal: {st:?}");
    assert!(st.success(), "the child failed: {st:?}");
}

/// In the child: says `ready`, then waits for its stdin to close.
fn ready_then_wait() {
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
}

#[test]
fn segments_survive_sweeps_and_drops_across_pid_namespaces() {
    const TEST: &str = "segments_survive_sweeps_and_drops_across_pid_namespaces";
    match part().as_deref() {
        // Inside: creates a segment and holds it until told to go (then drops it).
        Some("hold") => {
            let shm = SharedMemory::create(Some(&child_name()), 64).unwrap();
            shm.write_at(0, b"inside").unwrap();
            ready_then_wait();
            drop(shm);
            println!("dropped");
            return;
        }
        // Inside: sweeps, then opens and drops a segment that a process outside holds.
        Some("sweep") => {
            let name = child_name();
            sweep();
            assert!(shm_exists(&name), "swept from inside while held outside");
            let shm = SharedMemory::open(&name).unwrap();
            let mut b = [0; 7];
            shm.read_at(0, &mut b).unwrap();
            assert_eq!(&b, b"outside");
            drop(shm);
            assert!(
                shm_exists(&name),
                "a drop inside unlinked a segment held outside"
            );
            SharedMemory::create(None, 1).unwrap(); // its sweep, too
            assert!(shm_exists(&name));
            println!("ready");
            return;
        }
        // Inside: creates a segment and dies without dropping it (as if killed).
        Some("die") => {
            std::mem::forget(SharedMemory::create(Some(&child_name()), 64).unwrap());
            println!("ready");
            return;
        }
        Some(p) => panic!("unknown part {p}"),
        None => {}
    }
    if !multiproc_testkit::require_root_and_unshare(TEST, PID_NS) {
        return;
    }

    // 1. Held inside, swept and then shared from outside: the inside drop leaves the name
    //    (we still hold it); ours, the last, removes it.
    let name = unique_name("mptest_ns_held_inside");
    let mut child = start_in_pid_namespace(TEST, "hold", &name);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "ready");
    sweep();
    assert!(
        shm_exists(&name),
        "a sweep outside removed a segment held inside"
    );
    SharedMemory::create(None, 1).unwrap(); // the automatic sweep, too
    assert!(shm_exists(&name));
    let ours = SharedMemory::open(&name).unwrap();
    let mut b = [0; 6];
    ours.read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"inside");
    drop(child.stdin.take()); // let it drop its handle and go
    wait_for_line(&mut out, "dropped");
    finish(child);
    assert!(
        shm_exists(&name),
        "a drop inside unlinked a segment held outside"
    );
    sweep();
    assert!(shm_exists(&name), "a sweep removed a segment we hold");
    drop(ours);
    assert!(!shm_exists(&name), "the last holder's drop left the name");

    // 2. Held outside, swept, opened and dropped inside.
    let name = unique_name("mptest_ns_held_outside");
    let ours = SharedMemory::create(Some(&name), 64).unwrap();
    ours.write_at(0, b"outside").unwrap();
    let mut child = start_in_pid_namespace(TEST, "sweep", &name);
    drop(child.stdin.take());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "ready");
    finish(child);
    assert!(shm_exists(&name));
    drop(ours);
    assert!(!shm_exists(&name), "the last holder's drop left the name");

    // 3. A holder inside that died: its segment is swept from outside.
    let name = unique_name("mptest_ns_dead_inside");
    let mut child = start_in_pid_namespace(TEST, "die", &name);
    drop(child.stdin.take());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_line(&mut out, "ready");
    finish(child);
    assert!(shm_exists(&name));
    assert!(sweep() >= 1, "nothing swept");
    assert!(
        !shm_exists(&name),
        "the segment of a dead holder was not swept"
    );
}

fn is_denied(r: Result<SharedMemory, Error>) -> bool {
    matches!(r, Err(Error::Io(e)) if e.kind() == ErrorKind::PermissionDenied)
}

#[test]
fn open_refuses_files_of_other_users_and_links() {
    const TEST: &str = "open_refuses_files_of_other_users_and_links";
    if !multiproc_testkit::is_root() {
        multiproc_testkit::skip(TEST, "needs root (to give a file to another user)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let name = unique_name("mptest_ns_planted");
    let path = std::path::Path::new("/dev/shm").join(&name);
    // A well-formed segment, so that only the owner and mode can make `open` refuse it.
    let shm = SharedMemory::create(Some(&name), 64).unwrap();
    assert!(SharedMemory::open(&name).is_ok());

    // Another user's file (nobody, 65534): refused, and never swept.
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let r = SharedMemory::open(&name);
    assert!(is_denied(r), "{:?}", SharedMemory::open(&name));
    sweep();
    assert!(path.exists());

    // Ours, but writable by everyone: refused.
    std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(is_denied(SharedMemory::open(&name)));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(SharedMemory::open(&name).is_ok());

    // A link under the expected name, to a file that would pass: refused.
    let link = unique_name("mptest_ns_link");
    let link_path = path.with_file_name(&link);
    std::os::unix::fs::symlink(&path, &link_path).unwrap();
    assert!(is_denied(SharedMemory::open(&link)));
    std::fs::remove_file(&link_path).unwrap();

    // Shortened by its owner (the same user): an error, not a SIGBUS.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(4096 + 100).unwrap();
    assert!(SharedMemory::open(&name).is_err());
    drop(shm);
    assert!(!path.exists());
}
