//! `SharedBuffer`: filled in place by one process, moved through a queue or pipe by handle,
//! read by another; freed after its last holder, `kill -9` included; clear errors for
//! impossible sizes and exhausted limits (never a signal).

mod common;
use common::{METHODS, start};

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use multiproc_ipc::{Error, Event, Pipe, Queue, SharedBuffer};
use serde::{Deserialize, Serialize};

const MIB: usize = 1 << 20;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 12)) as u8
}

/// A word-wise checksum (fast enough in a debug build for 64 MiB).
fn checksum(b: &[u8]) -> u64 {
    b.chunks(8).fold(0u64, |s, w| {
        let mut word = [0u8; 8];
        word[..w.len()].copy_from_slice(w);
        s.rotate_left(5) ^ u64::from_le_bytes(word)
    })
}

/// Fills `b` with a position-dependent pattern, a word at a time.
fn fill_pattern(b: &mut [u8]) {
    for (k, w) in b.chunks_mut(8).enumerate() {
        let word = (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes();
        w.copy_from_slice(&word[..w.len()]);
    }
}

/// The inodes of this process's buffer memfds, from its descriptors and its mappings.
fn my_buffers() -> (Vec<u64>, usize) {
    let mut fds = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        if target.to_string_lossy().contains("memfd:multiproc-buffer") {
            fds.push(std::fs::metadata(e.path()).unwrap().ino());
        }
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mapped = maps
        .lines()
        .filter(|l| l.contains("memfd:multiproc-buffer"))
        .count();
    (fds, mapped)
}

/// Every process on the machine that has a descriptor or a mapping of the file `ino`.
fn processes_holding(ino: u64) -> Vec<String> {
    let mut found = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = p.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(fds) = std::fs::read_dir(p.path().join("fd")) {
            for fd in fds.flatten() {
                let is_buffer = std::fs::read_link(fd.path())
                    .is_ok_and(|t| t.to_string_lossy().contains("memfd:multiproc-buffer"));
                if is_buffer && std::fs::metadata(fd.path()).is_ok_and(|m| m.ino() == ino) {
                    found.push(format!("{name} (fd)"));
                }
            }
        }
        if let Ok(maps) = std::fs::read_to_string(p.path().join("maps")) {
            let hit = maps.lines().any(|l| {
                l.contains("memfd:multiproc-buffer")
                    && l.split_ascii_whitespace().nth(4) == Some(&ino.to_string())
            });
            if hit {
                found.push(format!("{name} (map)"));
            }
        }
    }
    found
}

fn fill_and_send((q, len): (Queue<(SharedBuffer, u64)>, usize)) {
    let mut buf = SharedBuffer::new(len).unwrap();
    fill_pattern(&mut buf);
    let sum = checksum(&buf);
    q.put((buf, sum)).unwrap();
}

#[test]
fn a_child_fills_64_mib_in_place_and_the_parent_reads_it() {
    for m in METHODS {
        let q = Queue::new().unwrap();
        let p = start(m, fill_and_send, (q.clone(), 64 * MIB));
        let (buf, sum) = q.get().unwrap();
        p.join().unwrap();
        assert_eq!(buf.len(), 64 * MIB, "{m:?}");
        assert_eq!(checksum(&buf), sum, "{m:?}");
        let mut expect = vec![0; 64];
        fill_pattern(&mut expect);
        assert_eq!(&buf[..64], &expect[..], "{m:?}");
        assert_eq!(my_buffers().0.len(), 1, "one buffer held here");
        drop(buf);
        assert_eq!(
            my_buffers(),
            (vec![], 0),
            "{m:?}: the buffer outlived its holders"
        );
    }
}

fn add_one_and_send_back(c: multiproc_ipc::Connection<SharedBuffer>) {
    let mut buf = c.recv().unwrap();
    for b in buf.iter_mut() {
        *b = b.wrapping_add(1);
    }
    c.send(buf).unwrap();
}

#[test]
fn a_buffer_goes_through_a_pipe_and_comes_back_changed() {
    for m in METHODS {
        let (mine, theirs) = Pipe::duplex::<SharedBuffer>().unwrap();
        let p = start(m, add_one_and_send_back, theirs);
        let mut buf = SharedBuffer::new(3 * MIB + 5).unwrap();
        buf.fill(41);
        mine.send(buf).unwrap();
        let back = mine.recv().unwrap();
        p.join().unwrap();
        assert!(back.iter().all(|&b| b == 42), "{m:?}");
        assert_eq!(back.len(), 3 * MIB + 5);
    }
}

fn take_and_hold((q, got): (Queue<SharedBuffer>, Event)) {
    let buf = q.get().unwrap();
    assert_eq!(buf[12345], pattern(12345));
    got.set();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_receiver_killed_while_it_holds_the_buffer_frees_it() {
    for m in METHODS {
        let q = Queue::new().unwrap();
        let got = Event::new().unwrap();
        let p = start(m, take_and_hold, (q.clone(), got.clone()));
        let mut buf = SharedBuffer::new(64 * MIB).unwrap();
        for (i, b) in buf.iter_mut().enumerate().step_by(4096) {
            *b = pattern(i);
        }
        buf[12345] = pattern(12345);
        let (fds, _) = my_buffers();
        assert_eq!(fds.len(), 1);
        let ino = fds[0];
        q.put(buf).unwrap();
        assert!(
            got.wait_timeout(Duration::from_secs(30)),
            "{m:?}: never taken"
        );
        assert_eq!(my_buffers(), (vec![], 0), "{m:?}: the sender let go");
        assert!(
            !processes_holding(ino).is_empty(),
            "{m:?}: the child holds it"
        );
        p.kill().unwrap();
        assert!(p.join().is_err());
        assert_eq!(
            processes_holding(ino),
            Vec::<String>::new(),
            "{m:?}: someone still holds the killed receiver's buffer"
        );
    }
}

#[test]
fn zero_and_absurd_lengths_are_clear_errors() {
    let e = SharedBuffer::new(0).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("at least 1 byte"), "{e}");
    let e = SharedBuffer::new(usize::MAX).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("too large"), "{e}");
    // Representable, but more than RAM and swap: refused before any memory is touched.
    let e = SharedBuffer::new(1 << 56).unwrap_err();
    let Error::Io(io) = &e else {
        panic!("not an i/o error: {e:?}");
    };
    assert_eq!(io.kind(), ErrorKind::OutOfMemory, "{e}");
    assert!(e.to_string().contains("memory"), "{e}");
}

/// A hand-written item that sends one buffer twice (by reference): only one receiver may
/// ever own it.
#[derive(Debug)]
struct Twice(SharedBuffer);

impl Serialize for Twice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.0, &self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Twice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (a, _second) = <(SharedBuffer, SharedBuffer)>::deserialize(d)?;
        Ok(Twice(a))
    }
}

#[test]
fn a_buffer_sent_twice_by_reference_has_only_one_owner() {
    let q = Queue::<Twice>::new().unwrap();
    q.put(Twice(SharedBuffer::new(100).unwrap())).unwrap();
    // The second copy is refused while decoding (the codec reports a decoding error), so
    // the item as a whole never arrives: no second view of the bytes.
    let e = q.get().unwrap_err();
    assert!(matches!(e, Error::Codec(_)), "{e:?}");
}

#[test]
fn ulimit_f_is_an_error_not_sigxfsz() {
    const TEST: &str = "ulimit_f_is_an_error_not_sigxfsz";
    if !multiproc_testkit::is_child(TEST) {
        multiproc_testkit::run_self(TEST, &[] as &[&str]);
        return;
    }
    let lim = libc::rlimit {
        rlim_cur: 1 << 20,
        rlim_max: 1 << 20,
    };
    // SAFETY: `lim` is a valid rlimit; lowering it affects only this child of the test.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) }, 0);
    let e = SharedBuffer::new(4 * MIB).unwrap_err();
    let Error::Io(io) = &e else {
        panic!("not an i/o error: {e:?}");
    };
    assert_eq!(io.kind(), ErrorKind::FileTooLarge, "{e}");
    assert!(e.to_string().contains("RLIMIT_FSIZE"), "{e}");
    // One that fits is usable to its last byte.
    let mut small = SharedBuffer::new(512 * 1024).unwrap();
    let last = small.len() - 1;
    small[last] = 9;
    assert_eq!(small[last], 9);
    println!("child done");
}

/// Buffers are anonymous memfds, not files in `/dev/shm`: a full (tiny) `/dev/shm` does not
/// limit them, and nothing of theirs ever appears there.
#[test]
fn a_tiny_dev_shm_does_not_limit_buffers() {
    const TEST: &str = "a_tiny_dev_shm_does_not_limit_buffers";
    if !multiproc_testkit::in_private_mount_namespace(TEST) {
        return;
    }
    multiproc_testkit::mount_tmpfs("/dev/shm", "size=1m,mode=1777");
    let mut buf = SharedBuffer::new(8 * MIB).unwrap();
    buf.fill(3);
    assert_eq!(buf[8 * MIB - 1], 3);
    assert_eq!(std::fs::read_dir("/dev/shm").unwrap().count(), 0);
    println!("child done");
}
