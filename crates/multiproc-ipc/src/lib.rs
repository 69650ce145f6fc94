//! Part of multiproc; filled by a later issue (see the workspace README).
#![warn(missing_docs)]
