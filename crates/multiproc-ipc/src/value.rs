//! `Value<T>` and `Array<T>` (Python's `multiprocessing.Value` and `.Array`): plain data in a
//! shared segment, behind its own robust lock.
//!
//! # Layout
//!
//! | offset (from the state) | what |
//! | --- | --- |
//! | 0 | robust lock word (guards the data) |
//! | 4 | element size, 8 element count (written before sharing; checked on arrival) |
//! | 32 (or `align_of::<T>()` if larger) | the elements |
//!
//! The data is touched only under the lock, so plain reads and writes suffice. A process
//! killed half-way through a write leaves a mix of old and new bytes: [`Plain`] types are
//! exactly those for which any such mix is still a valid value, and the next locker learns
//! of it from `previous_owner_died()`.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use multiproc_sync::Result;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::object::{Object, invalid};
use crate::shm::{Kind, OBJECT_OFFSET, SharedState};
use crate::wait::robust::RobustLock;
use crate::wait::robust::lock_forever;

/// Plain data that can live in shared memory: `Copy`, no pointers or references, valid when
/// all-zero, and valid for any byte-wise mix of two valid values (what a writer killed
/// mid-copy leaves behind).
///
/// Implemented for the integers, floats, `bool` and arrays of them. Unlike `bytemuck::Pod`
/// it admits `bool` (Python's `Value('?')`): every writer stores whole bytes of 0 or 1, so a
/// torn write still holds valid `bool`s. `char` is left out (a byte mix can form a surrogate).
///
/// ```
/// use multiproc_ipc::{Plain, Value};
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// #[repr(C)]
/// struct Point { x: f64, y: f64 }
/// // SAFETY: two f64s: no pointers, all-zero valid, any mix of bytes is a valid Point.
/// unsafe impl Plain for Point {}
/// let p = Value::new(Point { x: 1.0, y: 2.0 })?;
/// p.lock().x += 1.0;
/// assert_eq!(p.get(), Point { x: 2.0, y: 2.0 });
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
///
/// # Safety
///
/// Implementors hold no pointers, references or handles (the bytes are read in other
/// processes), all-zero bytes are a valid value, and any value whose every byte comes from
/// one of two valid values is valid.
pub unsafe trait Plain: Copy + Send + Sync + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive number or bool: no pointers, all-zero valid, and a byte mix of
        // two valid values is valid (any bits for numbers; bytes of 0/1 for bool).
        unsafe impl Plain for $t {}
    )* };
}
plain!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, bool
);

// SAFETY: an array of plain elements is plain, element by element.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

#[repr(C)]
struct ValueState {
    lock: RobustLock,
    elem_size: AtomicU32,
    len: AtomicU64,
}

// SAFETY: atomic words; all-zero is an unlocked lock over no data (set before sharing).
unsafe impl SharedState for ValueState {
    const KIND: Kind = Kind::Value;
}

/// Where the elements start, from the state: 32 bytes, or `T`'s alignment if larger.
const fn data_offset<T>() -> usize {
    let a = std::mem::align_of::<T>();
    if a > 32 { a } else { 32 }
}

/// The shared part of `Value` and `Array`: the object and its data pointer.
struct Cells<T: Plain> {
    obj: Object<ValueState>,
    data: NonNull<T>,
    len: usize,
}

// SAFETY: the data is `T: Send + Sync` plain bytes, touched only under the shared lock; the
// object handle is Send + Sync.
unsafe impl<T: Plain> Send for Cells<T> {}
// SAFETY: as above.
unsafe impl<T: Plain> Sync for Cells<T> {}

impl<T: Plain> Cells<T> {
    fn create(len: usize, fill: impl FnOnce(*mut T)) -> Result<Self> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .and_then(|b| b.checked_add(OBJECT_OFFSET + data_offset::<T>()))
            .filter(|&b| b <= isize::MAX as usize / 2)
            .ok_or_else(|| invalid(format!("an array of {len} elements is too large")))?;
        let obj = Object::create(bytes, |s: &ValueState, seg| {
            s.elem_size
                .store(std::mem::size_of::<T>() as u32, Ordering::Relaxed);
            s.len.store(len as u64, Ordering::Relaxed);
            // SAFETY: the fresh segment is `bytes` long, so the elements fit; nobody else
            // sees it yet.
            fill(unsafe { data_ptr::<T>(seg.base()) });
        })?;
        Ok(Self::from_object(obj))
    }

    fn from_object(obj: Object<ValueState>) -> Self {
        let len = obj.state().len.load(Ordering::Relaxed) as usize;
        // SAFETY: the data offset lies inside the mapping (checked at creation or arrival).
        let data = unsafe { NonNull::new_unchecked(data_ptr::<T>(obj.segment().base())) };
        Cells { obj, data, len }
    }

    /// A handle from elsewhere: the element type and the file length must match.
    fn arrived(obj: Object<ValueState>) -> std::io::Result<Self> {
        let st = obj.state();
        let size = st.elem_size.load(Ordering::Relaxed) as usize;
        let len = st.len.load(Ordering::Relaxed);
        let need = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_mul(size))
            .and_then(|b| b.checked_add(OBJECT_OFFSET + data_offset::<T>()));
        match need {
            Some(need) if size == std::mem::size_of::<T>() => obj.check_len(need)?,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the shared value holds {len} elements of {size} bytes, not of {}",
                        std::mem::size_of::<T>()
                    ),
                ));
            }
        }
        Ok(Self::from_object(obj))
    }

    fn lock_word(&self) -> &RobustLock {
        &self.obj.state().lock
    }

    /// Takes the lock; `owner_died` from a take-over.
    #[inline]
    fn lock(&self) -> bool {
        match self.lock_word().lock_until(None) {
            Some(died) => died,
            None => lock_forever(self.lock_word()),
        }
    }

    #[inline]
    fn unlock(&self) {
        // SAFETY: called only by a holder of the lock (the guards and the copy helpers).
        unsafe { self.lock_word().unlock() }
    }

    /// Runs `f` on the elements under the lock.
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> R {
        struct Unlock<'a, T: Plain>(&'a Cells<T>);
        impl<T: Plain> Drop for Unlock<'_, T> {
            fn drop(&mut self) {
                self.0.unlock();
            }
        }
        self.lock();
        let _unlock = Unlock(self);
        // SAFETY: we hold the lock, so no other thread of any process touches the elements
        // until we release it; they are `len` valid `T`s inside the mapping.
        f(unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) })
    }
}

/// # Safety
/// `base` is the start of a value segment at least long enough for its data offset.
unsafe fn data_ptr<T>(base: NonNull<u8>) -> *mut T {
    // SAFETY: per the contract; the offset is a multiple of `align_of::<T>()` and the base is
    // page aligned.
    unsafe {
        base.as_ptr()
            .add(OBJECT_OFFSET + data_offset::<T>())
            .cast::<T>()
    }
}

impl<T: Plain> Clone for Cells<T> {
    fn clone(&self) -> Self {
        Self::from_object(self.obj.clone())
    }
}

/// Python's `multiprocessing.Value`: one `T` in shared memory with its own robust lock.
///
/// [`get`](Self::get) and [`set`](Self::set) take the lock for one copy;
/// [`lock`](Self::lock) holds it for a read-modify-write (`*v.lock() += 1` is atomic across
/// processes, as `with v.get_lock(): v.value += 1` is in Python). A handle is cheap to clone
/// and travels to children in their spawn arguments.
///
/// ```
/// use multiproc_ipc::Value;
/// let counter = Value::new(0u64)?;
/// let other = counter.clone(); // what a child would hold
/// *other.lock() += 5;
/// counter.set(counter.get() * 2);
/// assert_eq!(counter.get(), 10);
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct Value<T: Plain> {
    cells: Cells<T>,
}

/// Holds a [`Value`]'s lock; derefs to the value.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T: Plain> {
    value: &'a Value<T>,
    died: bool,
    _not_send: PhantomData<*const ()>,
}

impl<T: Plain> Value<T> {
    /// A new shared value holding `v`.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Value::new(1.5f64)?.get(), 1.5);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new(v: T) -> Result<Self> {
        Ok(Value {
            cells: Cells::create(1, |p: *mut T| {
                // SAFETY: `p` points at room for one `T` in the fresh segment.
                unsafe { p.write(v) }
            })?,
        })
    }

    /// A copy of the value (taken under the lock).
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Value::new(7i32)?.get(), 7);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn get(&self) -> T {
        self.cells.with(|s| s[0])
    }

    /// Replaces the value (under the lock).
    ///
    /// ```
    /// let v = multiproc_ipc::Value::new(false)?;
    /// v.set(true);
    /// assert!(v.get());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, v: T) {
        self.cells.with(|s| s[0] = v)
    }

    /// Takes the lock and gives access to the value until the guard drops.
    ///
    /// ```
    /// let v = multiproc_ipc::Value::new(1u32)?;
    /// {
    ///     let mut g = v.lock();
    ///     *g += 1;
    ///     assert!(!g.previous_owner_died());
    /// }
    /// assert_eq!(v.get(), 2);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> ValueGuard<'_, T> {
        let died = self.cells.lock();
        ValueGuard {
            value: self,
            died,
            _not_send: PhantomData,
        }
    }
}

impl<T: Plain> ValueGuard<'_, T> {
    /// Whether the previous holder died holding the lock: the value may be half-written
    /// (still a valid `T`, see [`Plain`]).
    ///
    /// ```
    /// let v = multiproc_ipc::Value::new(0u8)?;
    /// assert!(!v.lock().previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }
}

impl<T: Plain> Deref for ValueGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so nobody writes the value meanwhile; it is a
        // valid `T` inside the mapping, which the `Value` keeps alive.
        unsafe { self.value.cells.data.as_ref() }
    }
}

impl<T: Plain> DerefMut for ValueGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes this the only borrow in this process.
        unsafe { &mut *self.value.cells.data.as_ptr() }
    }
}

impl<T: Plain> Drop for ValueGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.value.cells.unlock();
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}

impl<T: Plain> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            cells: self.cells.clone(),
        }
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("value", &self.get())
            .finish_non_exhaustive()
    }
}

impl<T: Plain> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.cells.obj.serialize(s)
    }
}

impl<'de, T: Plain> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let cells = Cells::arrived(Object::deserialize(d)?).map_err(serde::de::Error::custom)?;
        if cells.len != 1 {
            return Err(serde::de::Error::custom(
                "an Array arrived where a Value was expected",
            ));
        }
        Ok(Value { cells })
    }
}

/// Python's `multiprocessing.Array`: a fixed-length array of `T` in shared memory with one
/// robust lock.
///
/// [`get`](Self::get), [`set`](Self::set) and [`to_vec`](Self::to_vec) take the lock for one
/// copy; [`lock`](Self::lock) holds it and derefs to `[T]`.
///
/// ```
/// use multiproc_ipc::Array;
/// let a = Array::from_slice(&[1u32, 2, 3])?;
/// a.set(0, 10);
/// a.lock().iter_mut().for_each(|x| *x += 1);
/// assert_eq!(a.to_vec(), [11, 3, 4]);
/// assert_eq!((a.len(), a.get(2)), (3, 4));
/// # Ok::<(), multiproc_ipc::Error>(())
/// ```
pub struct Array<T: Plain> {
    cells: Cells<T>,
}

/// Holds an [`Array`]'s lock; derefs to its elements.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T: Plain> {
    array: &'a Array<T>,
    died: bool,
    _not_send: PhantomData<*const ()>,
}

impl<T: Plain> Array<T> {
    /// `len` zeroed elements.
    ///
    /// ```
    /// let a = multiproc_ipc::Array::<f64>::new(4)?;
    /// assert_eq!(a.to_vec(), [0.0; 4]);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn new(len: usize) -> Result<Self> {
        Ok(Array {
            cells: Cells::create(len, |_| {})?,
        })
    }

    /// A copy of `s` in shared memory.
    ///
    /// ```
    /// let a = multiproc_ipc::Array::from_slice(&[true, false])?;
    /// assert_eq!(a.to_vec(), [true, false]);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn from_slice(s: &[T]) -> Result<Self> {
        Ok(Array {
            cells: Cells::create(s.len(), |p| {
                // SAFETY: `p` points at room for `s.len()` elements in the fresh segment,
                // which cannot overlap `s`.
                unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len()) }
            })?,
        })
    }

    /// The number of elements.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Array::<u8>::new(3)?.len(), 3);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len
    }

    /// Whether it has no elements.
    ///
    /// ```
    /// assert!(multiproc_ipc::Array::<u8>::new(0)?.is_empty());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.cells.len == 0
    }

    /// A copy of element `i` (under the lock).
    ///
    /// # Panics
    ///
    /// If `i >= len()`, as slice indexing does; [`try_get`](Self::try_get) does not.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Array::from_slice(&[5i8, 6])?.get(1), 6);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn get(&self, i: usize) -> T {
        self.try_get(i).unwrap_or_else(|| self.out_of_bounds(i))
    }

    /// A copy of element `i`, or `None` past the end.
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Array::<u8>::new(1)?.try_get(1), None);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn try_get(&self, i: usize) -> Option<T> {
        (i < self.len()).then(|| self.cells.with(|s| s[i]))
    }

    /// Sets element `i` (under the lock).
    ///
    /// # Panics
    ///
    /// If `i >= len()`, as slice indexing does.
    ///
    /// ```
    /// let a = multiproc_ipc::Array::<u16>::new(2)?;
    /// a.set(1, 9);
    /// assert_eq!(a.to_vec(), [0, 9]);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn set(&self, i: usize, v: T) {
        if i >= self.len() {
            self.out_of_bounds(i);
        }
        self.cells.with(|s| s[i] = v)
    }

    #[cold]
    fn out_of_bounds(&self, i: usize) -> ! {
        panic!(
            "index {i} out of range for an Array of {} elements",
            self.len()
        )
    }

    /// A copy of all elements (under the lock, so never torn by a concurrent writer).
    ///
    /// ```
    /// assert_eq!(multiproc_ipc::Array::from_slice(&[1u64, 2])?.to_vec(), [1, 2]);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        self.cells.with(|s| s.to_vec())
    }

    /// Takes the lock and gives access to the elements until the guard drops.
    ///
    /// ```
    /// let a = multiproc_ipc::Array::<u32>::new(3)?;
    /// a.lock().copy_from_slice(&[1, 2, 3]);
    /// assert_eq!(a.lock().iter().sum::<u32>(), 6);
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn lock(&self) -> ArrayGuard<'_, T> {
        let died = self.cells.lock();
        ArrayGuard {
            array: self,
            died,
            _not_send: PhantomData,
        }
    }
}

impl<T: Plain> ArrayGuard<'_, T> {
    /// Whether the previous holder died holding the lock (see
    /// [`ValueGuard::previous_owner_died`]).
    ///
    /// ```
    /// let a = multiproc_ipc::Array::<u8>::new(1)?;
    /// assert!(!a.lock().previous_owner_died());
    /// # Ok::<(), multiproc_ipc::Error>(())
    /// ```
    pub fn previous_owner_died(&self) -> bool {
        self.died
    }
}

impl<T: Plain> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let c = &self.array.cells;
        // SAFETY: the guard holds the lock; the `len` elements are valid and mapped.
        unsafe { std::slice::from_raw_parts(c.data.as_ptr(), c.len) }
    }
}

impl<T: Plain> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let c = &self.array.cells;
        // SAFETY: as for `deref`, and `&mut self` makes this the only borrow in this process.
        unsafe { std::slice::from_raw_parts_mut(c.data.as_ptr(), c.len) }
    }
}

impl<T: Plain> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        self.array.cells.unlock();
    }
}

impl<T: Plain + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}

impl<T: Plain> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            cells: self.cells.clone(),
        }
    }
}

impl<T: Plain> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T: Plain> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.cells.obj.serialize(s)
    }
}

impl<'de, T: Plain> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let cells = Cells::arrived(Object::deserialize(d)?).map_err(serde::de::Error::custom)?;
        Ok(Array { cells })
    }
}
