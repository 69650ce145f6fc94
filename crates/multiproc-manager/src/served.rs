//! User types served by the manager (Python's `BaseManager.register(typeid, callable)`).

use multiproc_sync::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A type the manager's server holds and calls by method name (Python's
/// `BaseManager.register(typeid, callable)`): register it with
/// [`ManagerBuilder::register`](crate::ManagerBuilder::register), make instances with
/// [`Manager::create`](crate::Manager::create) and call them through a
/// [`Proxy`](crate::Proxy).
///
/// `call` gets the method name and the postcard-encoded arguments and answers the encoded
/// result; [`decode`](crate::decode) and [`encode`](crate::encode) do the conversions. An
/// error it returns reaches the caller; a panic reaches it as `Err(TaskFailed)` and the server
/// goes on.
///
/// ```
/// use multiproc_manager::{Manager, Served, decode, encode};
///
/// #[derive(Default)]
/// struct Counter(i64);
///
/// impl Served for Counter {
///     type Init = i64;
///     fn create(start: i64) -> multiproc_manager::Result<Self> {
///         Ok(Counter(start))
///     }
///     fn call(&mut self, method: &str, args: &[u8]) -> multiproc_manager::Result<Vec<u8>> {
///         match method {
///             "add" => {
///                 self.0 += decode::<i64>(args)?;
///                 encode(&self.0)
///             }
///             _ => Err(multiproc_manager::Error::Invalid(format!("no method {method}"))),
///         }
///     }
/// }
///
/// let manager = Manager::builder().register::<Counter>("Counter").build()?;
/// let c = manager.create::<Counter>("Counter", 10)?;
/// assert_eq!(c.call::<_, i64>("add", &5)?, 15);
/// assert!(c.call::<_, i64>("nope", &()).is_err());
/// # Ok::<(), multiproc_manager::Error>(())
/// ```
pub trait Served: Send + 'static {
    /// What [`create`](Self::create) is given (Python's arguments to the registered callable).
    type Init: Serialize + DeserializeOwned;

    /// Makes the object, in the server process.
    fn create(init: Self::Init) -> Result<Self>
    where
        Self: Sized;

    /// Calls `method` with encoded `args`; answers the encoded result.
    fn call(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>>;
}

pub(crate) trait DynServed: Send {
    fn call(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>>;
}

impl<T: Served> DynServed for T {
    fn call(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        Served::call(self, method, args)
    }
}

/// A registered type's constructor, as the server calls it.
pub(crate) type Ctor = fn(&[u8]) -> Result<Box<dyn DynServed>>;

pub(crate) fn construct<T: Served>(init: &[u8]) -> Result<Box<dyn DynServed>> {
    Ok(Box::new(T::create(crate::calls::decode(init)?)?))
}
