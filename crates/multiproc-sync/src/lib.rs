//! Python's `threading` and `queue` modules for Rust threads, and the one [`Error`] type that
//! the whole multiproc workspace returns.
//!
//! ```
//! use multiproc_sync::Error;
//! assert_eq!(Error::Timeout.to_string(), "timed out");
//! ```
#![warn(missing_docs)]

mod error;

pub use error::{Error, Result};
