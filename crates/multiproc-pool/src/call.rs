//! How a call travels to a worker process: the worker runs a monomorphised trampoline that
//! decodes the arguments, calls the user's `fn(A) -> R` and encodes the result. Both the
//! trampoline and the target travel as [`FnRef`]s (offsets in the identical executable,
//! multiproc-spawn's own mechanism).

use multiproc_spawn::decode::decode_exact;
use multiproc_spawn::fnref::FnRef;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Every trampoline has this signature: `(target, argument bytes, result buffer)`.
pub(crate) type Trampoline = fn(usize, &[u8], &mut Vec<u8>) -> Result<(), String>;

/// A call the worker can make: which trampoline, which target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CallSpec {
    pub(crate) tramp: FnRef,
    pub(crate) target: FnRef,
}

impl CallSpec {
    /// `f(args)` with one argument and one result.
    pub(crate) fn one<A, R>(f: fn(A) -> R) -> CallSpec
    where
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        CallSpec {
            tramp: FnRef::new(call_one::<A, R> as Trampoline as usize),
            target: FnRef::new(f as usize),
        }
    }

    /// `f` over a chunk: the arguments are a `Vec<A>`, the result a `Vec<R>`.
    pub(crate) fn chunk<A, R>(f: fn(A) -> R) -> CallSpec
    where
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        CallSpec {
            tramp: FnRef::new(call_chunk::<A, R> as Trampoline as usize),
            target: FnRef::new(f as usize),
        }
    }

    /// Runs the call in this process (a worker of the same executable).
    pub(crate) fn run(self, args: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        // SAFETY: `tramp` was made from `call_one::<A, R>` or `call_chunk::<A, R>` coerced to
        // `Trampoline` in the identical executable (the worker checked that at start-up).
        let tramp = unsafe { std::mem::transmute::<usize, Trampoline>(self.tramp.address()) };
        tramp(self.target.address(), args, out)
    }
}

fn call_one<A: DeserializeOwned, R: Serialize>(
    target: usize,
    args: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let a: A = decode_exact(args).map_err(|e| format!("could not decode the arguments: {e}"))?;
    // SAFETY: `target` is the address of a `fn(A) -> R` in the identical executable: the
    // parent took it from this very monomorphisation's `f` (`CallSpec::one::<A, R>`).
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(target) };
    let r = f(a);
    encode_into(&r, out)
}

fn call_chunk<A: DeserializeOwned, R: Serialize>(
    target: usize,
    args: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let items: Vec<A> =
        decode_exact(args).map_err(|e| format!("could not decode the arguments: {e}"))?;
    // SAFETY: as in `call_one`: made by `CallSpec::chunk::<A, R>` from a `fn(A) -> R`.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(target) };
    let results: Vec<R> = items.into_iter().map(f).collect();
    encode_into(&results, out)
}

/// Appends the encoding of `value` to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let buf = std::mem::take(out);
    match postcard::to_extend(value, buf) {
        Ok(v) => {
            *out = v;
            Ok(())
        }
        Err(e) => Err(format!("could not encode the value: {e}")),
    }
}

/// Encodes a value to send, with a codec error in multiproc's terms.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> multiproc_sync::Result<Vec<u8>> {
    postcard::to_allocvec(value)
        .map_err(|e| multiproc_sync::Error::Codec(format!("could not encode the arguments: {e}")))
}

/// Decodes a result.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> multiproc_sync::Result<T> {
    decode_exact(bytes)
        .map_err(|e| multiproc_sync::Error::Codec(format!("could not decode the result: {e}")))
}

/// A pool's initializer, `f(args)` run in every worker as it starts. Its arguments may hold
/// multiproc handles (a queue, say), so they are encoded only while the worker's start-up
/// arguments are (when their descriptors can travel), and decoded and run while those are
/// decoded (when the descriptors have arrived). Under `Fork` nothing is encoded: the worker runs
/// `f(args.clone())` on its copy.
#[derive(Clone)]
pub(crate) struct Initializer(Arc<dyn InitCall>);

impl fmt::Debug for Initializer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Initializer")
    }
}

trait InitCall: Send + Sync {
    fn run_here(&self);
    fn encode(&self) -> Result<(CallSpec, Vec<u8>), String>;
}

struct TypedInit<A> {
    f: fn(A),
    args: A,
}

impl<A> InitCall for TypedInit<A>
where
    A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn run_here(&self) {
        (self.f)(self.args.clone())
    }

    fn encode(&self) -> Result<(CallSpec, Vec<u8>), String> {
        let bytes = postcard::to_allocvec(&self.args)
            .map_err(|e| format!("could not encode the initializer's arguments: {e}"))?;
        Ok((CallSpec::one::<A, ()>(self.f), bytes))
    }
}

impl Initializer {
    pub(crate) fn new<A>(f: fn(A), args: A) -> Initializer
    where
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        Initializer(Arc::new(TypedInit { f, args }))
    }

    /// Runs it in this process (a forked worker).
    pub(crate) fn run_here(&self) {
        self.0.run_here()
    }
}

/// The initializer field of a worker's start-up arguments: `Pending` in the parent (and in a
/// forked worker), `Ran` once decoding ran it in a fresh worker.
#[derive(Debug)]
pub(crate) enum InitField {
    Pending(Initializer),
    Ran,
}

impl Serialize for InitField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            InitField::Pending(init) => init
                .0
                .encode()
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            InitField::Ran => Err(serde::ser::Error::custom("the initializer already ran")),
        }
    }
}

impl<'de> Deserialize<'de> for InitField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (call, bytes) = <(CallSpec, Vec<u8>)>::deserialize(d)?;
        let mut sink = Vec::new();
        // Run now, while the descriptors of handles in its arguments are at hand.
        call.run(&bytes, &mut sink)
            .map_err(|e| serde::de::Error::custom(format!("the pool's initializer failed: {e}")))?;
        Ok(InitField::Ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(s: String) -> usize {
        s.len()
    }

    fn codec_text<T: fmt::Debug>(got: multiproc_sync::Result<T>) -> String {
        match got {
            Err(multiproc_sync::Error::Codec(text)) => text,
            other => panic!("expected Err(Codec), got {other:?}"),
        }
    }

    #[test]
    fn a_string_result_read_as_a_u64_is_a_codec_error_naming_u64() {
        let bytes = postcard::to_allocvec("Bob the Builder").unwrap();
        let text = codec_text(decode::<u64>(&bytes));
        assert!(text.ends_with("expected u64: 15 bytes left over"), "{text}");
    }

    #[test]
    fn arguments_and_results_decode_exactly() {
        let one = CallSpec::one(len as fn(String) -> usize);
        let chunk = CallSpec::chunk(len as fn(String) -> usize);
        let good = postcard::to_allocvec("Bob the Builder").unwrap();
        let mut out = Vec::new();
        one.run(&good, &mut out).unwrap();
        assert_eq!(decode::<usize>(&out).unwrap(), 15);
        for cut in 0..good.len() {
            let e = one.run(&good[..cut], &mut Vec::new()).unwrap_err();
            assert!(
                e.contains("expected alloc::string::String: the bytes end early"),
                "{e}"
            );
            let text = codec_text(decode::<String>(&good[..cut]));
            assert!(text.contains("expected alloc::string::String: "), "{text}");
        }
        let mut longer = good.clone();
        longer.push(1);
        let e = one.run(&longer, &mut Vec::new()).unwrap_err();
        assert!(
            e.contains("expected alloc::string::String: 1 byte left over"),
            "{e}"
        );
        let text = codec_text(decode::<String>(&longer));
        assert!(
            text.contains("expected alloc::string::String: 1 byte left over"),
            "{text}"
        );
        let mut chunk_bytes = postcard::to_allocvec(&vec!["a".to_owned()]).unwrap();
        chunk_bytes.extend([0, 0]);
        let e = chunk.run(&chunk_bytes, &mut Vec::new()).unwrap_err();
        assert!(
            e.contains("alloc::string::String>: 2 bytes left over"),
            "{e}"
        );
    }

    #[test]
    fn random_arguments_and_results_never_panic() {
        let one = CallSpec::one(len as fn(String) -> usize);
        let chunk = CallSpec::chunk(len as fn(String) -> usize);
        let mut rng = multiproc_testkit::XorShift(0x0123_4567_89AB_CDEF);
        for _ in 0..10_000 {
            let b = rng.bytes(40);
            if let Err(e) = one.run(&b, &mut Vec::new()) {
                assert!(e.contains("expected alloc::string::String: "), "{e}");
            }
            if let Err(e) = chunk.run(&b, &mut Vec::new()) {
                assert!(
                    e.contains("expected alloc::vec::Vec<alloc::string::String>: "),
                    "{e}"
                );
            }
            if let Err(multiproc_sync::Error::Codec(t)) = decode::<Vec<(u8, String)>>(&b) {
                assert!(
                    t.contains("expected alloc::vec::Vec<(u8, alloc::string::String)>"),
                    "{t}"
                );
            }
        }
    }
}
