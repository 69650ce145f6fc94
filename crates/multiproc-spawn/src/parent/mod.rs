//! The parent's books: its record of each child ([`record`]), the list of live ones with their
//! reaper ([`registry`]), the Fork children's socket pairs and outcome slots ([`fork_pool`]),
//! and its connection to the fork server ([`server_conn`]). No global lives
//! here: the process-wide page (`state.rs`) holds them, and the upper modules call their
//! methods.

pub(crate) mod fork_pool;
pub(crate) mod record;
pub(crate) mod registry;
pub(crate) mod server_conn;
