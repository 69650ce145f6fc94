//! The typed proxies: [`DictProxy`], [`ListProxy`], [`NamespaceProxy`], [`ValueProxy`] and
//! [`Proxy`] for registered types.

use std::fmt;
use std::marker::PhantomData;

use multiproc_sync::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::calls::{Reader, decode, op, put_bytes, put_value, put_varint};
use crate::client::Handle;
use crate::number::{Number, Op};

fn option<T: DeserializeOwned>(h: &Handle, answer: &[u8]) -> Result<Option<T>> {
    h.reading(|| match answer.split_first() {
        Some((0, _)) => Ok(None),
        Some((_, rest)) => decode(rest).map(Some),
        None => Err(Error::Codec("truncated answer".to_owned())),
    })
}

fn count(answer: &[u8]) -> Result<usize> {
    Ok(Reader::new(answer).varint()? as usize)
}

fn seq<T: DeserializeOwned>(h: &Handle, answer: &[u8]) -> Result<Vec<T>> {
    h.reading(|| {
        let mut r = Reader::new(answer);
        let n = r.varint()? as usize;
        let mut v = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            v.push(r.value()?);
        }
        Ok(v)
    })
}

macro_rules! proxy_common {
    ($name:ident < $($p:ident),* >) => {
        impl<$($p),*> Clone for $name<$($p),*> {
            fn clone(&self) -> Self {
                $name { handle: self.handle.clone(), _types: PhantomData }
            }
        }
        impl<$($p),*> fmt::Debug for $name<$($p),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("id", &self.handle.id).finish_non_exhaustive()
            }
        }
        impl<$($p),*> $name<$($p),*> {
            pub(crate) fn from_handle(handle: Handle) -> Self {
                $name { handle, _types: PhantomData }
            }
        }
    };
}

/// A proxy to a dict in the manager's server (Python's `manager.dict()`): keys and values are
/// any serde types, kept encoded in insertion order. Every call is one round trip; it
/// travels to other processes like every handle (spawn arguments, queue items) and answers
/// `Err(Closed)` once the server is gone.
///
/// ```
/// use multiproc_manager::{Manager, Op};
/// let manager = Manager::new()?;
/// let d = manager.dict::<String, u64>()?;
/// d.insert("a".into(), 1)?;
/// assert_eq!(d.get(&"a".into())?, Some(1));
/// assert_eq!(d.update_with("hits".into(), 0, Op::Add(5))?, 5);
/// assert_eq!(d.keys()?, ["a", "hits"]);
/// # Ok::<(), multiproc_manager::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct DictProxy<K, V> {
    handle: Handle,
    #[serde(skip)]
    _types: PhantomData<fn() -> (K, V)>,
}
proxy_common!(DictProxy<K, V>);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// `d.get(key)`: the value, or `None`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.get(&"a".into())?, Some(1));
    /// assert_eq!(d.get(&"b".into())?, None);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        option(
            &self.handle,
            &self.handle.call(op::DICT_GET, |b| put_value(b, key))?,
        )
    }

    /// `d[key] = value`; the value it replaced, if any.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// assert_eq!(d.insert("a".into(), 1)?, None);
    /// assert_eq!(d.insert("a".into(), 2)?, Some(1));
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        let a = self.handle.call(op::DICT_INSERT, |b| {
            put_value(b, &key)?;
            put_value(b, &value)
        })?;
        option(&self.handle, &a)
    }

    /// `d.pop(key, None)`: removes the key; its value, if it was there.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.remove(&"a".into())?, Some(1));
    /// assert_eq!(d.remove(&"a".into())?, None);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        option(
            &self.handle,
            &self.handle.call(op::DICT_REMOVE, |b| put_value(b, key))?,
        )
    }

    /// `key in d`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// d.insert("a".into(), 1)?;
    /// assert!(d.contains_key(&"a".into())?);
    /// assert!(!d.contains_key(&"b".into())?);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        let a = self.handle.call(op::DICT_CONTAINS, |b| put_value(b, key))?;
        Ok(a.first() == Some(&1))
    }

    /// `len(d)`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.len()?, 1);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        count(&self.handle.call(op::LEN, |_| Ok(()))?)
    }

    /// `len(d) == 0`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// `list(d.keys())`, in insertion order.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// d.insert("b".into(), 2)?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.keys()?, ["b", "a"]); // insertion order, as Python
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<K>> {
        seq(&self.handle, &self.handle.call(op::DICT_KEYS, |_| Ok(()))?)
    }

    /// `list(d.values())`, in insertion order.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// d.insert("b".into(), 2)?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.values()?, [2, 1]);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn values(&self) -> Result<Vec<V>> {
        seq(
            &self.handle,
            &self.handle.call(op::DICT_VALUES, |_| Ok(()))?,
        )
    }

    /// `list(d.items())`, in insertion order.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// d.insert("a".into(), 1)?;
    /// assert_eq!(d.items()?, [("a".to_string(), 1)]);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        let a = self.handle.call(op::DICT_ITEMS, |_| Ok(()))?;
        self.handle.reading(|| {
            let mut r = Reader::new(&a);
            let n = r.varint()? as usize;
            let mut v = Vec::with_capacity(n.min(1 << 20));
            for _ in 0..n {
                v.push((r.value()?, r.value()?));
            }
            Ok(v)
        })
    }

    /// `d.update(items)`, in one round trip.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// d.update([("a".to_string(), 1), ("b".to_string(), 2)])?;
    /// assert_eq!(d.len()?, 2);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let items: Vec<(K, V)> = items.into_iter().collect();
        self.handle.call(op::DICT_UPDATE, |b| {
            put_varint(b, items.len() as u64);
            for (k, v) in &items {
                put_value(b, k)?;
                put_value(b, v)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// `d.clear()`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let d = manager.dict::<String, u32>()?;
    /// d.insert("a".into(), 1)?;
    /// d.clear()?;
    /// assert!(d.is_empty()?);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.handle.call(op::CLEAR, |_| Ok(()))?;
        Ok(())
    }
}

impl<K: Serialize + DeserializeOwned, V: Number> DictProxy<K, V> {
    /// `d[key] = op(d.get(key, default))`, atomically in the server (Python's
    /// `d[key] = d.get(key, default) + n` is not atomic: two processes can lose an update);
    /// answers the new value. Integer overflow is `Err(Invalid)` and changes nothing.
    ///
    /// ```
    /// use multiproc_manager::{Manager, Op};
    /// let manager = Manager::new()?;
    /// let d = manager.dict::<char, i32>()?;
    /// assert_eq!(d.update_with('x', 10, Op::Add(1))?, 11);
    /// assert_eq!(d.update_with('x', 10, Op::Mul(3))?, 33);
    /// assert_eq!(d.update_with('x', 0, Op::Max(40))?, 40);
    /// assert!(d.update_with('x', 0, Op::Mul(i32::MAX)).is_err()); // overflow
    /// assert_eq!(d.get(&'x')?, Some(40));
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn update_with(&self, key: K, default: V, op: Op<V>) -> Result<V> {
        let (code, operand) = op.code_and_operand();
        let a = self.handle.call(op::DICT_UPDATE_WITH, |b| {
            b.push(V::KIND);
            b.push(code);
            put_value(b, &key)?;
            put_value(b, &default)?;
            put_value(b, &operand)
        })?;
        Reader::new(&a).value()
    }
}

/// A proxy to a list in the manager's server (Python's `manager.list()`).
///
/// ```
/// use multiproc_manager::Manager;
/// let manager = Manager::new()?;
/// let l = manager.list::<u32>()?;
/// l.extend(0..5)?;
/// l.push(5)?;
/// l.set(0, 10)?;
/// assert_eq!(l.pop()?, Some(5));
/// assert_eq!(l.get(0)?, Some(10));
/// assert_eq!(l.get(99)?, None);
/// l.reverse()?;
/// assert_eq!(l.to_vec()?, [4, 3, 2, 1, 10]);
/// assert_eq!(l.len()?, 5);
/// # Ok::<(), multiproc_manager::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct ListProxy<T> {
    handle: Handle,
    #[serde(skip)]
    _types: PhantomData<fn() -> T>,
}
proxy_common!(ListProxy<T>);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// `l.append(v)`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.push(1)?;
    /// assert_eq!(l.to_vec()?, [1]);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn push(&self, v: T) -> Result<()> {
        self.handle.call(op::LIST_PUSH, |b| put_value(b, &v))?;
        Ok(())
    }

    /// `l.pop()`, or `None` when empty.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.extend([1, 2])?;
    /// assert_eq!(l.pop()?, Some(2));
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn pop(&self) -> Result<Option<T>> {
        option(&self.handle, &self.handle.call(op::LIST_POP, |_| Ok(()))?)
    }

    /// `l[i]`, or `None` past the end.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.push(7)?;
    /// assert_eq!(l.get(0)?, Some(7));
    /// assert_eq!(l.get(1)?, None);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn get(&self, i: usize) -> Result<Option<T>> {
        option(
            &self.handle,
            &self.handle.call(op::LIST_GET, |b| {
                put_varint(b, i as u64);
                Ok(())
            })?,
        )
    }

    /// `l[i] = v`; `Err(Invalid)` past the end (Python's `IndexError`).
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.push(7)?;
    /// l.set(0, 8)?;
    /// assert_eq!(l.get(0)?, Some(8));
    /// assert!(l.set(5, 1).is_err()); // IndexError
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn set(&self, i: usize, v: T) -> Result<()> {
        self.handle.call(op::LIST_SET, |b| {
            put_varint(b, i as u64);
            put_value(b, &v)
        })?;
        Ok(())
    }

    /// `l.insert(i, v)` (at the end when `i` is past it).
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.extend([1, 3])?;
    /// l.insert(1, 2)?;
    /// assert_eq!(l.to_vec()?, [1, 2, 3]);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn insert(&self, i: usize, v: T) -> Result<()> {
        self.handle.call(op::LIST_INSERT, |b| {
            put_varint(b, i as u64);
            put_value(b, &v)
        })?;
        Ok(())
    }

    /// `len(l)`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.extend([1, 2])?;
    /// assert_eq!(l.len()?, 2);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn len(&self) -> Result<usize> {
        count(&self.handle.call(op::LEN, |_| Ok(()))?)
    }

    /// `len(l) == 0`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// `l.extend(items)`, in one round trip.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.extend(0..3)?;
    /// assert_eq!(l.to_vec()?, [0, 1, 2]);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        let mut enc = Vec::new();
        let mut n = 0u64;
        for v in items {
            put_value(&mut enc, &v)?;
            n += 1;
        }
        self.handle.call(op::LIST_EXTEND, |b| {
            put_varint(b, n);
            b.extend_from_slice(&enc);
            Ok(())
        })?;
        Ok(())
    }

    /// `list(l)`: a copy of the whole list.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.push(4)?;
    /// assert_eq!(l.to_vec()?, [4]);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>> {
        seq(
            &self.handle,
            &self.handle.call(op::LIST_TO_VEC, |_| Ok(()))?,
        )
    }

    /// `l.reverse()`, in the server.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.extend([1, 2, 3])?;
    /// l.reverse()?;
    /// assert_eq!(l.to_vec()?, [3, 2, 1]);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn reverse(&self) -> Result<()> {
        self.handle.call(op::LIST_REVERSE, |_| Ok(()))?;
        Ok(())
    }

    /// `l.clear()`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let l = manager.list::<u32>()?;
    /// l.extend([1, 2])?;
    /// l.clear()?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.handle.call(op::CLEAR, |_| Ok(()))?;
        Ok(())
    }
}

/// A proxy to a namespace (Python's `manager.Namespace()`): named attributes of any serde
/// types, each read back as the type it is asked for.
///
/// ```
/// use multiproc_manager::Manager;
/// let manager = Manager::new()?;
/// let ns = manager.namespace()?;
/// ns.set("x", 10)?;
/// ns.set("y", "hello")?;
/// assert_eq!(ns.get::<i32>("x")?, Some(10));
/// assert_eq!(ns.get::<String>("y")?.as_deref(), Some("hello"));
/// assert_eq!(ns.get::<i32>("z")?, None);
/// assert_eq!(ns.names()?, ["x", "y"]);
/// # Ok::<(), multiproc_manager::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NamespaceProxy {
    dict: DictProxy<String, ()>,
}

impl NamespaceProxy {
    pub(crate) fn from_handle(h: Handle) -> Self {
        NamespaceProxy {
            dict: DictProxy::from_handle(h),
        }
    }

    /// `ns.name`, decoded as `T` (`None` when unset: Python's `AttributeError`).
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let ns = manager.namespace()?;
    /// ns.set("name", "Ada")?;
    /// assert_eq!(ns.get::<String>("name")?.as_deref(), Some("Ada"));
    /// assert_eq!(ns.get::<String>("age")?, None);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let h = &self.dict.handle;
        option(h, &h.call(op::DICT_GET, |b| put_value(b, name))?)
    }

    /// `ns.name = v`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let ns = manager.namespace()?;
    /// ns.set("count", 3u32)?;
    /// assert_eq!(ns.get::<u32>("count")?, Some(3));
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn set<T: Serialize>(&self, name: &str, v: T) -> Result<()> {
        self.dict.handle.call(op::DICT_INSERT, |b| {
            put_value(b, name)?;
            put_value(b, &v)
        })?;
        Ok(())
    }

    /// `del ns.name`; whether it was set.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let ns = manager.namespace()?;
    /// ns.set("x", 1)?;
    /// assert!(ns.remove("x")?);
    /// assert!(!ns.remove("x")?);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn remove(&self, name: &str) -> Result<bool> {
        let a = self
            .dict
            .handle
            .call(op::DICT_REMOVE, |b| put_value(b, name))?;
        Ok(a.first() == Some(&1))
    }

    /// The attribute names, in the order they were first set.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let ns = manager.namespace()?;
    /// ns.set("x", 1)?;
    /// assert_eq!(ns.names()?, ["x"]);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn names(&self) -> Result<Vec<String>> {
        self.dict.keys()
    }
}

/// A proxy to one value (Python's `manager.Value(typecode, value)`, `v.value`).
///
/// ```
/// use multiproc_manager::Manager;
/// let manager = Manager::new()?;
/// let v = manager.value(1.5f64)?;
/// v.set(2.5)?;
/// assert_eq!(v.get()?, 2.5);
/// # Ok::<(), multiproc_manager::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct ValueProxy<T> {
    handle: Handle,
    #[serde(skip)]
    _types: PhantomData<fn() -> T>,
}
proxy_common!(ValueProxy<T>);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// `v.value`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let v = manager.value(1u32)?;
    /// assert_eq!(v.get()?, 1);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn get(&self) -> Result<T> {
        let a = self.handle.call(op::VALUE_GET, |_| Ok(()))?;
        self.handle.reading(|| Reader::new(&a).value())
    }

    /// `v.value = x`.
    ///
    /// ```
    /// # let manager = multiproc_manager::Manager::new()?;
    /// # let v = manager.value(1u32)?;
    /// v.set(2)?;
    /// assert_eq!(v.get()?, 2);
    /// # Ok::<(), multiproc_manager::Error>(())
    /// ```
    pub fn set(&self, x: T) -> Result<()> {
        self.handle.call(op::VALUE_SET, |b| put_value(b, &x))?;
        Ok(())
    }
}

/// A proxy to an instance of a registered type `T` (see [`Served`](crate::Served)): calls
/// its methods by name in the server.
#[derive(Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct Proxy<T> {
    handle: Handle,
    #[serde(skip)]
    _types: PhantomData<fn() -> T>,
}
proxy_common!(Proxy<T>);

impl<T> Proxy<T> {
    /// Calls `method` with `args`; decodes the answer as `R` (see [`Served`](crate::Served)
    /// for an example).
    pub fn call<A: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R> {
        let a = self.handle.call(op::USER_CALL, |b| {
            put_bytes(b, method.as_bytes());
            put_value(b, args)
        })?;
        self.handle.reading(|| decode(&a))
    }
}
