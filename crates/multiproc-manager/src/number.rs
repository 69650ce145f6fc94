//! Numbers that [`DictProxy::update_with`](crate::DictProxy::update_with) updates in the server
//! without a closure: [`Number`] and [`Op`].

use multiproc_sync::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::calls::{decode, encode};

mod sealed {
    pub trait Sealed {}
}

/// A number type the server can update in place: the integer types (`i8` … `i64`, `u8` …
/// `u64`, `isize`, `usize`) and `f32`, `f64`. Sealed: the server must know how to do the
/// arithmetic on the stored bytes.
///
/// ```
/// fn kind<N: multiproc_manager::Number>(_: N) {}
/// kind(1u64);
/// kind(0.5f64);
/// ```
pub trait Number:
    sealed::Sealed + Copy + Serialize + DeserializeOwned + Send + Sync + 'static
{
    #[doc(hidden)]
    const KIND: u8;
}

/// A closure-free update, applied atomically in the server by
/// [`DictProxy::update_with`](crate::DictProxy::update_with). Integer overflow is an error
/// (`Err(Invalid)`), never a wrap.
///
/// ```
/// use multiproc_manager::Op;
/// let ops = [Op::Add(2u32), Op::Sub(1), Op::Mul(3), Op::Min(10), Op::Max(0), Op::Set(5)];
/// assert_eq!(ops.len(), 6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op<N> {
    /// `x + n` (Python's `d[k] += n`).
    Add(N),
    /// `x - n`.
    Sub(N),
    /// `x * n`.
    Mul(N),
    /// `min(x, n)`.
    Min(N),
    /// `max(x, n)`.
    Max(N),
    /// `n`, whatever `x` was.
    Set(N),
}

impl<N: Copy> Op<N> {
    pub(crate) fn code_and_operand(self) -> (u8, N) {
        match self {
            Op::Add(n) => (0, n),
            Op::Sub(n) => (1, n),
            Op::Mul(n) => (2, n),
            Op::Min(n) => (3, n),
            Op::Max(n) => (4, n),
            Op::Set(n) => (5, n),
        }
    }
}

trait Arith: Number + PartialOrd {
    fn add(self, o: Self) -> Option<Self>;
    fn sub(self, o: Self) -> Option<Self>;
    fn mul(self, o: Self) -> Option<Self>;
}

macro_rules! ints {
    ($($t:ty = $k:expr),*) => {$(
        impl sealed::Sealed for $t {}
        impl Number for $t { const KIND: u8 = $k; }
        impl Arith for $t {
            fn add(self, o: Self) -> Option<Self> { self.checked_add(o) }
            fn sub(self, o: Self) -> Option<Self> { self.checked_sub(o) }
            fn mul(self, o: Self) -> Option<Self> { self.checked_mul(o) }
        }
    )*};
}
macro_rules! floats {
    ($($t:ty = $k:expr),*) => {$(
        impl sealed::Sealed for $t {}
        impl Number for $t { const KIND: u8 = $k; }
        impl Arith for $t {
            fn add(self, o: Self) -> Option<Self> { Some(self + o) }
            fn sub(self, o: Self) -> Option<Self> { Some(self - o) }
            fn mul(self, o: Self) -> Option<Self> { Some(self * o) }
        }
    )*};
}
ints!(
    i8 = 0,
    i16 = 1,
    i32 = 2,
    i64 = 3,
    isize = 4,
    u8 = 5,
    u16 = 6,
    u32 = 7,
    u64 = 8,
    usize = 9
);
floats!(f32 = 10, f64 = 11);

fn apply_as<N: Arith>(
    current: Option<&[u8]>,
    default: &[u8],
    code: u8,
    operand: &[u8],
) -> Result<Vec<u8>> {
    let x: N = decode(current.unwrap_or(default))?;
    let n: N = decode(operand)?;
    let pick = |keep_x: bool| Some(if keep_x { x } else { n });
    let y = match code {
        0 => x.add(n),
        1 => x.sub(n),
        2 => x.mul(n),
        3 => pick(x <= n),
        4 => pick(x >= n),
        5 => Some(n),
        _ => return Err(Error::Codec(format!("unknown update op {code}"))),
    };
    encode(&y.ok_or_else(|| Error::Invalid("integer overflow in update_with".to_owned()))?)
}

/// The server side of `update_with`: the new value's bytes.
pub(crate) fn apply(
    kind: u8,
    current: Option<&[u8]>,
    default: &[u8],
    code: u8,
    operand: &[u8],
) -> Result<Vec<u8>> {
    let f = match kind {
        0 => apply_as::<i8>,
        1 => apply_as::<i16>,
        2 => apply_as::<i32>,
        3 => apply_as::<i64>,
        4 => apply_as::<isize>,
        5 => apply_as::<u8>,
        6 => apply_as::<u16>,
        7 => apply_as::<u32>,
        8 => apply_as::<u64>,
        9 => apply_as::<usize>,
        10 => apply_as::<f32>,
        11 => apply_as::<f64>,
        _ => return Err(Error::Codec(format!("unknown number kind {kind}"))),
    };
    f(current, default, code, operand)
}
