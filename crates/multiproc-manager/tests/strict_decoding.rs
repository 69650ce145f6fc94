//! Values decode exactly: a value of another type, with bytes left over or ending early, is
//! `Err(Codec)` naming the expected type, never a wrong value and never a panic.

use multiproc_manager::{Error, Manager, decode, encode};

fn codec_text<T: std::fmt::Debug>(got: Result<T, Error>) -> String {
    match got {
        Err(Error::Codec(text)) => text,
        other => panic!("expected Err(Codec), got {other:?}"),
    }
}

#[test]
fn a_namespace_string_read_as_a_u64_is_a_codec_error_naming_u64() {
    let manager = Manager::new().unwrap();
    let ns = manager.namespace().unwrap();
    ns.set("name", "Bob the Builder").unwrap();
    let text = codec_text(ns.get::<u64>("name"));
    assert_eq!(text, "expected u64: 15 bytes left over");
    assert_eq!(
        ns.get::<String>("name").unwrap().as_deref(),
        Some("Bob the Builder")
    );
    ns.set("n", 7u8).unwrap();
    let text = codec_text(ns.get::<(u8, u8)>("n"));
    assert_eq!(text, "expected (u8, u8): the bytes end early");
}

#[test]
fn truncated_and_extended_values_are_codec_errors_naming_the_type() {
    let good = encode(&("Bob the Builder".to_owned(), vec![1u32, 300])).unwrap();
    for cut in 0..good.len() {
        let text = codec_text(decode::<(String, Vec<u32>)>(&good[..cut]));
        assert_eq!(
            text,
            "expected (alloc::string::String, alloc::vec::Vec<u32>): the bytes end early"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    let text = codec_text(decode::<(String, Vec<u32>)>(&longer));
    assert_eq!(
        text,
        "expected (alloc::string::String, alloc::vec::Vec<u32>): 1 byte left over"
    );
}

#[test]
fn random_values_never_panic() {
    let mut rng = multiproc_testkit::XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..10_000 {
        let bytes = rng.bytes(32);
        if let Err(e) = decode::<(String, Option<i64>)>(&bytes) {
            let text = codec_text::<()>(Err(e));
            assert!(
                text.starts_with("expected (alloc::string::String, "),
                "{text}"
            );
        }
    }
}
