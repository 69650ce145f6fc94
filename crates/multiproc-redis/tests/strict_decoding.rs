//! Items decode exactly: an item of another type, with bytes left over or ending early, is
//! `Err(Codec)` naming the expected type (and dropped from the queue), never a wrong value.

mod common;

use multiproc::Error;
use multiproc::redis::Queue;

fn codec_text<T: std::fmt::Debug>(got: Result<T, Error>) -> String {
    match got {
        Err(Error::Codec(text)) => text,
        other => panic!("expected Err(Codec), got {other:?}"),
    }
}

#[test]
fn a_string_read_as_a_u64_is_a_codec_error_naming_u64() {
    let Some(url) = common::url() else { return };
    let name = common::unique("strict-u64");
    let strings: Queue<String> = Queue::open(&url, &name).unwrap();
    let numbers: Queue<u64> = Queue::open(&url, &name).unwrap();
    strings.put("Bob the Builder".to_owned()).unwrap();
    let text = codec_text(numbers.get());
    assert!(text.ends_with("expected u64: 15 bytes left over"), "{text}");
    // Dropped, reported once.
    assert!(strings.empty().unwrap());
}

#[test]
fn extended_and_truncated_items_are_codec_errors_naming_the_type() {
    let Some(url) = common::url() else { return };
    let name = common::unique("strict-cut");
    let pairs: Queue<(String, u32)> = Queue::open(&url, &name).unwrap();
    let strings: Queue<String> = Queue::open(&url, &name).unwrap();
    pairs.put(("abc".to_owned(), 300)).unwrap();
    let text = codec_text(strings.get());
    assert!(
        text.ends_with("expected alloc::string::String: 2 bytes left over"),
        "{text}"
    );
    strings.put("abc".to_owned()).unwrap();
    let text = codec_text(pairs.get());
    assert!(
        text.ends_with("expected (alloc::string::String, u32): the bytes end early"),
        "{text}"
    );
}

#[test]
fn random_items_never_panic() {
    let Some(url) = common::url() else { return };
    let name = common::unique("strict-random");
    let raw: Queue<[u8; 12]> = Queue::open(&url, &name).unwrap();
    let typed: Queue<(String, Option<u64>)> = Queue::open(&url, &name).unwrap();
    let mut rng = multiproc_testkit::XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..10_000 {
        let mut item = [0u8; 12];
        item.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
        // A small length prefix now and then, so some items decode.
        item[0] %= 16;
        raw.put(item).unwrap();
        match typed.get() {
            Ok(_) => typed.task_done().unwrap(),
            Err(Error::Codec(text)) => assert!(text.contains("expected ("), "{text}"),
            Err(e) => panic!("{e:?}"),
        }
    }
}
