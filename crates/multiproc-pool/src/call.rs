//! How a call travels to a worker process: the worker runs a monomorphised trampoline that
//! decodes the arguments, calls the user's `fn(A) -> R` and encodes the result. Both the
//! trampoline and the target travel as [`FnRef`]s (offsets in the identical executable,
//! multiproc-spawn's own mechanism).

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
