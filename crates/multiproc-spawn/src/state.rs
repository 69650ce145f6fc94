//! The process-wide state that starting a child touches, kept together on one memory page.
//!
//! After a `fork()` every page the parent or the child writes costs it a copy-on-write fault
//! (about a microsecond and a half on a small virtual machine), and a Fork spawn+join takes and
//! releases most of these locks on both sides of the fork. Scattered by the linker they landed on
//! two or three pages; gathered in one aligned block they cost one fault each side.

use crate::child::Report;
use crate::forkserver::Server;
use crate::identity::Ident;
use crate::registry::{Children, ForkPool};
use crate::start_method::StartMethod;
use std::sync::Mutex;
use std::sync::atomic::AtomicU8;

/// See the module docs. Each module reaches its field through its own accessor.
#[derive(Debug)]
pub(crate) struct State {
    /// Who this process is (see [`crate::identity`]).
    pub(crate) identity: Mutex<Ident>,
    /// How a child reports to its parent while its target runs (see [`crate::child`]).
    pub(crate) report: Mutex<Option<Report>>,
    /// Every child this process started that has not been seen to finish.
    pub(crate) children: Mutex<Children>,
    /// Socket pairs and outcome slots for Fork children.
    pub(crate) fork_pool: Mutex<ForkPool>,
    /// The connection to this process's fork server.
    pub(crate) server: Mutex<Option<Server>>,
    /// The default start method (see [`crate::start_method`]).
    pub(crate) start_method: AtomicU8,
}

/// [`State`], aligned so that it never straddles two pages.
#[derive(Debug)]
#[repr(align(1024))]
pub(crate) struct Aligned(pub(crate) State);

const _: () = assert!(std::mem::size_of::<State>() <= 1024);

pub(crate) static STATE: Aligned = Aligned(State {
    identity: Mutex::new(Ident::EMPTY),
    report: Mutex::new(None),
    children: Mutex::new(Children::EMPTY),
    fork_pool: Mutex::new(ForkPool::EMPTY),
    server: Mutex::new(None),
    start_method: AtomicU8::new(StartMethod::ForkServer.to_u8()),
});
