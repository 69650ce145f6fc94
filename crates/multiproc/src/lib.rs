//! multiproc: Python's process and thread toolbox (`multiprocessing`, `threading`, `queue`,
//! `concurrent.futures`, `subprocess`) for Rust, fast and robust.
//!
//! ```
//! assert_eq!(multiproc::Error::Timeout.to_string(), "timed out");
//! ```
#![warn(missing_docs)]

#[doc(inline)]
pub use multiproc_sync::{Error, Result};
