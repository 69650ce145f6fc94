//! Python's documented `Manager` example: a child process fills a shared dict and reverses a
//! shared list held by the manager's server process; a `Namespace` too.
//!
//! ```python
//! def f(d, l, ns):
//!     d[1] = '1'; d['2'] = 2; d[0.25] = None
//!     l.reverse()
//!     ns.x = 10; ns.y = 'hello'
//!
//! with Manager() as manager:
//!     d = manager.dict(); l = manager.list(range(10)); ns = manager.Namespace()
//!     p = Process(target=f, args=(d, l, ns)); p.start(); p.join()
//!     print(d); print(l)
//! ```
//!
//! Python's dict mixes key types; in Rust the keys and values are one small enum.
//!
//! Expected output:
//! ```text,ordered
//! {1: '1', '2': 2, 0.25: None}
//! [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
//! ns.x = 10, ns.y = 'hello'
//! ```

use std::fmt;

use multiproc::Manager;
use multiproc::managers::{DictProxy, ListProxy, NamespaceProxy};
use serde::{Deserialize, Serialize};

/// A Python value of the kinds this example uses.
#[derive(Serialize, Deserialize)]
enum Py {
    Int(i64),
    Float(f64),
    Str(String),
    None,
}

impl fmt::Display for Py {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Py::Int(i) => write!(f, "{i}"),
            Py::Float(x) => write!(f, "{x}"),
            Py::Str(s) => write!(f, "'{s}'"),
            Py::None => f.write_str("None"),
        }
    }
}

fn f((d, l, ns): (DictProxy<Py, Py>, ListProxy<u32>, NamespaceProxy)) {
    d.insert(Py::Int(1), Py::Str("1".into())).unwrap();
    d.insert(Py::Str("2".into()), Py::Int(2)).unwrap();
    d.insert(Py::Float(0.25), Py::None).unwrap();
    l.reverse().unwrap();
    ns.set("x", 10).unwrap();
    ns.set("y", "hello").unwrap();
}

fn main() -> multiproc::Result<()> {
    let manager = Manager::new()?;
    let d = manager.dict::<Py, Py>()?;
    let l = manager.list::<u32>()?;
    l.extend(0..10)?;
    let ns = manager.namespace()?;
    let p = multiproc::spawn(f, (d.clone(), l.clone(), ns.clone()))?;
    p.join()?;
    let items: Vec<String> = d
        .items()?
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    println!("{{{}}}", items.join(", "));
    println!("{:?}", l.to_vec()?);
    let (x, y) = (
        ns.get::<i32>("x")?.unwrap_or_default(),
        ns.get::<String>("y")?.unwrap_or_default(),
    );
    println!("ns.x = {x}, ns.y = '{y}'");
    manager.shutdown()
}
