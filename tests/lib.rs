//! Helpers shared by the cross-crate tests (none yet).
#![deny(missing_docs)]
