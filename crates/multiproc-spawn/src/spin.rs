//! Bounded spinning before a sleep, and when not to spin at all: the workspace's one spin policy,
//! which lives in the lowest crate (`multiproc_sync::spin`, where its stall rule and every
//! constant are explained). The parent's waits for a child and for the fork server use its
//! yielding phase with the stall rule, [`Spinner`]; how long each of spawn's waits looks is
//! set here, in one place.

pub(crate) use multiproc_sync::spin::Spinner;

use std::time::Duration;

/// How long after a forked child's start a wait looks (yielding the CPU between looks) before it
/// sleeps in `poll`. A no-op child, forked onto an idle CPU, takes about 100-150 µs on a small
/// virtual machine to start there, run and exit, while waking a sleeping thread on another core
/// costs 60-80 µs: looking for a little longer than that keeps the parent's CPU awake for the
/// child's exit. Past this, the child is a long one and waits sleep at once. A Spawn child
/// (an exec, over a millisecond) is never looked for before its outcome arrives.
pub(crate) const SPIN: Duration = Duration::from_micros(300);

/// How long a wait keeps looking once the outcome has arrived: the child writes it just before
/// `_exit`, so its exit follows within microseconds, and a second sleep would cost a second
/// wake-up.
pub(crate) const EXIT_SPIN: Duration = Duration::from_micros(500);

/// How long the server keeps looking after its last activity before it sleeps.
pub(crate) const SERVER_SPIN: Duration = Duration::from_micros(500);
