//! The one place the raw algorithms take their atomics and thread hooks from: `std` normally,
//! `loom` under `--cfg multiproc_loom`, so `cargo xtask loom` can model-check them.

#[cfg(not(multiproc_loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering};

#[cfg(multiproc_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};

/// How many rounds a slow path spins before it sleeps (none under loom: a spin there only
/// multiplies the states to explore).
#[cfg(not(multiproc_loom))]
pub(crate) const SPIN_ROUNDS: u32 = 1;
#[cfg(multiproc_loom)]
pub(crate) const SPIN_ROUNDS: u32 = 0;

/// One spin step.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(multiproc_loom))]
    std::hint::spin_loop();
    #[cfg(multiproc_loom)]
    loom::thread::yield_now();
}
