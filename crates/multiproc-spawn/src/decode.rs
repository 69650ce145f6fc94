//! Strict decoding of postcard bytes, shared by every crate of the workspace.
//!
//! Not API: public for the workspace's crates, hidden from the docs, and free to change in any
//! release.
//!
//! `postcard::from_bytes` ignores bytes left over after the value, so bytes of one type read
//! as another (a `String` as a `u64`: its length) would decode without complaint. Every decoder
//! of the workspace goes through [`decode_exact`] instead, which rejects them, and words its
//! errors after the expected type and the cause.

use serde::Deserialize;

/// Decodes `bytes` as exactly one `T`: bytes left over, bytes ending early or bytes that do
/// not fit `T` are an error whose text names `T` and the cause.
///
/// ```
/// use multiproc_spawn::decode::decode_exact;
///
/// let bytes = postcard::to_allocvec(&String::from("Bob the Builder")).unwrap();
/// assert_eq!(decode_exact::<String>(&bytes).unwrap(), "Bob the Builder");
/// assert_eq!(
///     decode_exact::<u64>(&bytes).unwrap_err(),
///     "expected u64: 15 bytes left over"
/// );
/// assert_eq!(
///     decode_exact::<String>(&bytes[..4]).unwrap_err(),
///     "expected alloc::string::String: the bytes end early"
/// );
/// ```
#[inline]
pub fn decode_exact<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(left_over::<T>(rest.len())),
        Err(e) => Err(failed::<T>(&e)),
    }
}

#[cold]
fn left_over<T>(n: usize) -> String {
    let unit = if n == 1 { "byte" } else { "bytes" };
    format!(
        "expected {}: {n} {unit} left over",
        std::any::type_name::<T>()
    )
}

#[cold]
fn failed<T>(e: &postcard::Error) -> String {
    use postcard::Error as E;
    let cause = match e {
        E::DeserializeUnexpectedEnd => "the bytes end early",
        E::DeserializeBadVarint => "a malformed integer",
        E::DeserializeBadBool => "a malformed bool",
        E::DeserializeBadChar => "a malformed char",
        E::DeserializeBadUtf8 => "a string that is not UTF-8",
        E::DeserializeBadOption => "a malformed option",
        E::DeserializeBadEnum => "an unknown enum variant",
        E::DeserializeBadEncoding => "a malformed encoding",
        E::DeserializeBadCrc => "a bad checksum",
        E::SerdeDeCustom => "the bytes do not fit the type",
        E::WontImplement | E::NotYetImplemented => "a type postcard cannot decode",
        _ => "the bytes do not fit the type",
    };
    format!("expected {}: {cause}", std::any::type_name::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum Shape {
        Dot,
        Line(u32, String),
        Box { w: u64, h: i16, tag: Option<char> },
    }

    fn check_strict<T>(value: &T)
    where
        T: serde::Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let name = std::any::type_name::<T>();
        let bytes = postcard::to_allocvec(value).unwrap();
        assert_eq!(&decode_exact::<T>(&bytes).unwrap(), value);
        for cut in 0..bytes.len() {
            let e = decode_exact::<T>(&bytes[..cut]).unwrap_err();
            assert!(e.starts_with(&format!("expected {name}: ")), "{e}");
        }
        for extra in 1..4 {
            let mut longer = bytes.clone();
            longer.extend(std::iter::repeat_n(0u8, extra));
            let e = decode_exact::<T>(&longer).unwrap_err();
            assert_eq!(e, left_over::<T>(extra));
            assert!(e.contains(name) && e.contains("left over"), "{e}");
        }
    }

    #[test]
    fn truncated_and_extended_bytes_are_errors_naming_the_type() {
        check_strict(&15u64);
        check_strict(&String::from("Bob the Builder"));
        check_strict(&vec![1u32, 2, 3]);
        check_strict(&Shape::Line(9, "x".into()));
        check_strict(&Shape::Box {
            w: 1 << 40,
            h: -3,
            tag: Some('é'),
        });
    }

    #[test]
    fn a_string_is_not_a_u64() {
        let bytes = postcard::to_allocvec("Bob the Builder").unwrap();
        assert_eq!(
            decode_exact::<u64>(&bytes).unwrap_err(),
            "expected u64: 15 bytes left over"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = multiproc_testkit::XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..10_000 {
            let b = rng.bytes(40);
            for e in [
                decode_exact::<Shape>(&b).err(),
                decode_exact::<String>(&b).err(),
                decode_exact::<(u64, Vec<i32>)>(&b).err(),
            ]
            .into_iter()
            .flatten()
            {
                assert!(e.starts_with("expected "), "{e}");
            }
        }
    }
}
