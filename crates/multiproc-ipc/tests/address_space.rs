//! Queues under a limited address space (`ulimit -v`, RLIMIT_AS) and with thousands of rings:
//! each ring reserves address space, sized to what the process has left, and where that runs
//! out the error names the limit instead of a bare `ENOMEM`.
//!
//! Each test re-runs this test binary under `sh -c 'ulimit …; exec …'` with the same test
//! selected (`multiproc_testkit::run_self`), so the limit applies to a fresh process (a forked child would
//! inherit the test runner's mappings).

use multiproc_ipc::{Error, Queue};

/// 4 GiB of address space, in KiB for `ulimit -v`.
const FOUR_GIB: &str = "ulimit -v 4194304";

#[test]
fn queues_work_under_a_4_gib_address_space_limit() {
    const TEST: &str = "queues_work_under_a_4_gib_address_space_limit";
    if !multiproc_testkit::is_child(TEST) {
        multiproc_testkit::run_self(TEST, &multiproc_testkit::under_ulimit(FOUR_GIB));
        return;
    }
    // Each ring reserved 64 GiB: `new` was a bare ENOMEM under this limit.
    let q: Queue<()> = Queue::new().unwrap();
    let item: Vec<u8> = (0..4 << 20).map(|i: u32| i as u8).collect();
    q.put_bytes(&item).unwrap();
    q.put_bytes(b"small").unwrap();
    assert_eq!(q.get_bytes().unwrap(), item);
    assert_eq!(q.get_bytes().unwrap(), b"small");
    // A pipe (two rings) and a few more queues fit beside it.
    let (a, b) = multiproc_ipc::Pipe::duplex::<u32>().unwrap();
    a.send(5).unwrap();
    assert_eq!(b.recv().unwrap(), 5);
    let more: Vec<Queue<u8>> = (0..20).map(|_| Queue::new().unwrap()).collect();
    more[19].put(1).unwrap();
    assert_eq!(more[19].get().unwrap(), 1);
    // An item larger than the ring's reserve can hold is an error that says why.
    let huge = vec![0u8; 1 << 30];
    let err = q.put_bytes(&huge).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("RLIMIT_AS")),
        "{err:?}"
    );
    // Making queues until the limit is reached ends with an error naming it, and the queues
    // made so far still work.
    let mut queues = Vec::new();
    let err = loop {
        match Queue::<u8>::new() {
            Ok(q) => queues.push(q),
            Err(e) => break e,
        }
        assert!(queues.len() < 100_000, "no limit reached");
    };
    assert!(err.to_string().contains("RLIMIT_AS"), "{err}");
    eprintln!("made {} queues under RLIMIT_AS: {err}", queues.len() + 22);
    queues[0].put(3).unwrap();
    assert_eq!(queues[0].get().unwrap(), 3);
    assert_eq!(q.get_bytes_timeout(std::time::Duration::ZERO).ok(), None);
}

#[test]
fn three_thousand_queues_work_or_the_error_names_the_limit() {
    // Descriptors are not what this test is about: give it all it may have.
    const TEST: &str = "three_thousand_queues_work_or_the_error_names_the_limit";
    if !multiproc_testkit::is_child(TEST) {
        multiproc_testkit::run_self(
            TEST,
            &multiproc_testkit::under_ulimit("ulimit -n \"$(ulimit -Hn)\""),
        );
        return;
    }
    // With 64 GiB each, the 2,048th ring found no address space left (128 TiB) and `new`
    // answered a bare ENOMEM.
    let mut queues = Vec::new();
    for i in 0..3_000u32 {
        match Queue::<u32>::new() {
            Ok(q) => queues.push(q),
            Err(e) => {
                let why = e.to_string();
                assert!(
                    why.contains("RLIMIT_AS") && why.contains("max_map_count"),
                    "queue {i}: {why}"
                );
                break;
            }
        }
    }
    for q in [queues.first().unwrap(), queues.last().unwrap()] {
        q.put(9).unwrap();
        assert_eq!(q.get().unwrap(), 9);
    }
    eprintln!("made {} queues", queues.len());
}

/// An item that serializes as one byte string (so its encoding asks for all its bytes at
/// once, as a large `Vec<u8>` field under `serde_bytes` would).
struct Blob(Vec<u8>);

impl serde::Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Blob(serde::Deserialize::deserialize(d)?))
    }
}

#[test]
fn encoding_an_item_that_cannot_be_allocated_is_an_error() {
    const TEST: &str = "encoding_an_item_that_cannot_be_allocated_is_an_error";
    if !multiproc_testkit::is_child(TEST) {
        multiproc_testkit::run_self(TEST, &multiproc_testkit::under_ulimit(FOUR_GIB));
        return;
    }
    let q: Queue<Blob> = Queue::new().unwrap();
    // 2.5 GiB fits under the 4 GiB limit once, not twice: its encoding cannot be allocated.
    // That aborted the process ("memory allocation failed"); Python raises MemoryError.
    let big = Blob(vec![0u8; 5 << 29]);
    let err = q.put(big).unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::OutOfMemory),
        "{err:?}"
    );
    assert!(err.to_string().contains("out of memory"), "{err}");
    // The queue and the encoder go on.
    q.put(Blob(vec![7; 3000])).unwrap();
    assert_eq!(q.get().unwrap().0, vec![7; 3000]);
}
