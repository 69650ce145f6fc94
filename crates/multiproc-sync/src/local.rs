//! `Local<T>`: Python's `threading.local()`, one slot per thread.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

std::thread_local! {
    static SLOTS: RefCell<HashMap<usize, Box<dyn Any>>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// A value per thread: each thread sees only what it stored itself (Python's
/// `threading.local()`). Values are dropped when their thread exits.
///
/// ```
/// use multiproc_sync::Local;
/// use std::sync::Arc;
/// let l = Arc::new(Local::new());
/// l.set(1);
/// let l2 = l.clone();
/// std::thread::spawn(move || { assert_eq!(l2.get(), None); l2.set(5); }).join().unwrap();
/// assert_eq!(l.get(), Some(1));
/// ```
pub struct Local<T> {
    id: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local").field("id", &self.id).finish()
    }
}

impl<T: 'static> Default for Local<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: 'static> Local<T> {
    /// A slot that is empty on every thread.
    ///
    /// ```
    /// let l = multiproc_sync::Local::<u8>::new();
    /// assert_eq!(l.get(), None);
    /// ```
    pub fn new() -> Self {
        Local {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            _t: PhantomData,
        }
    }

    /// Runs `f` on this thread's slot (`None` while empty); what `f` leaves there stays.
    ///
    /// ```
    /// let l = multiproc_sync::Local::new();
    /// l.with(|v| *v = Some(String::from("Alice")));
    /// assert_eq!(l.with(|v| v.clone()), Some("Alice".into()));
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(&mut Option<T>) -> R) -> R {
        // Take the value out while `f` runs, so `f` may use other `Local`s freely.
        let mut slot: Option<T> = SLOTS
            .try_with(|s| s.borrow_mut().remove(&self.id))
            .ok()
            .flatten()
            .and_then(|b| b.downcast::<T>().ok())
            .map(|b| *b);
        let r = f(&mut slot);
        if let Some(v) = slot {
            let _ = SLOTS.try_with(|s| s.borrow_mut().insert(self.id, Box::new(v)));
        }
        r
    }

    /// Stores `value` in this thread's slot.
    ///
    /// ```
    /// let l = multiproc_sync::Local::new();
    /// l.set(1);
    /// assert_eq!(l.get(), Some(1));
    /// ```
    pub fn set(&self, value: T) {
        self.with(|v| *v = Some(value));
    }

    /// Empties this thread's slot and returns what was there.
    ///
    /// ```
    /// let l = multiproc_sync::Local::new();
    /// l.set(1);
    /// assert_eq!(l.take(), Some(1));
    /// assert_eq!(l.take(), None);
    /// ```
    pub fn take(&self) -> Option<T> {
        self.with(Option::take)
    }

    /// A copy of this thread's value, if any.
    ///
    /// ```
    /// assert_eq!(multiproc_sync::Local::<i32>::new().get(), None);
    /// ```
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        self.with(|v| v.clone())
    }

    /// This thread's value, storing `init()` first if the slot is empty.
    ///
    /// ```
    /// let l = multiproc_sync::Local::new();
    /// assert_eq!(l.get_or(|| 7), 7);
    /// assert_eq!(l.get_or(|| 8), 7);
    /// ```
    pub fn get_or(&self, init: impl FnOnce() -> T) -> T
    where
        T: Clone,
    {
        self.with(|v| v.get_or_insert_with(init).clone())
    }
}

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        // Other threads' values go when those threads exit; ids are never reused.
        let _ = SLOTS.try_with(|s| s.borrow_mut().remove(&self.id));
    }
}
