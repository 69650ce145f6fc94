//! Starting and supervising processes (in progress).
#![warn(missing_docs)]
