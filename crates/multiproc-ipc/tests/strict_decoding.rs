//! Every item decodes exactly: bytes left over, bytes ending early or bytes of another type are
//! `Err(Codec)` naming the expected type, never a wrong value and never a panic.

use multiproc_ipc::Queue;
use multiproc_sync::Error;

fn codec_text<T: std::fmt::Debug>(got: Result<T, Error>) -> String {
    match got {
        Err(Error::Codec(text)) => text,
        other => panic!("expected Err(Codec), got {other:?}"),
    }
}

#[test]
fn a_string_read_as_a_u64_is_a_codec_error_naming_u64() {
    let q = Queue::<u64>::new().unwrap();
    q.put_bytes(&postcard::to_allocvec("Bob the Builder").unwrap())
        .unwrap();
    let text = codec_text(q.get());
    assert_eq!(text, "expected u64: 15 bytes left over");
}

#[test]
fn truncated_and_extended_items_are_codec_errors_naming_the_type() {
    let q = Queue::<(String, Vec<u32>)>::new().unwrap();
    let good =
        postcard::to_allocvec(&("Bob the Builder".to_owned(), vec![1u32, 300, 70_000])).unwrap();
    for cut in 0..good.len() {
        q.put_bytes(&good[..cut]).unwrap();
        let text = codec_text(q.get());
        assert_eq!(
            text,
            "expected (alloc::string::String, alloc::vec::Vec<u32>): the bytes end early"
        );
    }
    for extra in 1..5 {
        let mut longer = good.clone();
        longer.extend(std::iter::repeat_n(7u8, extra));
        q.put_bytes(&longer).unwrap();
        let text = codec_text(q.get());
        assert!(
            text.starts_with("expected (alloc::string::String, "),
            "{text}"
        );
        assert!(text.ends_with("left over"), "{text}");
    }
    q.put_bytes(&good).unwrap();
    assert_eq!(q.get().unwrap().0, "Bob the Builder");
}

#[test]
fn random_items_never_panic() {
    let q = Queue::<(String, Option<u64>)>::new().unwrap();
    let mut rng = multiproc_testkit::XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..10_000 {
        let bytes = rng.bytes(32);
        q.put_bytes(&bytes).unwrap();
        match q.get() {
            Ok(_) => {}
            Err(Error::Codec(text)) => assert!(text.starts_with("expected ("), "{text}"),
            Err(e) => panic!("{e:?}"),
        }
    }
}
