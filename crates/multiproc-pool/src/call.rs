//! How a call travels to a worker process: the worker runs a monomorphised trampoline that
//! decodes the arguments, calls the user's `fn(A) -> R` and encodes the result. Both the
//! trampoline and the target travel as [`FnRef`]s (offsets in the identical executable,
//! multiproc-spawn's own mechanism).

use multiproc_spawn::fnref::FnRef;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
    let a: A =
        postcard::from_bytes(args).map_err(|e| format!("could not decode the arguments: {e}"))?;
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
        postcard::from_bytes(args).map_err(|e| format!("could not decode the arguments: {e}"))?;
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
    postcard::from_bytes(bytes)
        .map_err(|e| multiproc_sync::Error::Codec(format!("could not decode the result: {e}")))
}
