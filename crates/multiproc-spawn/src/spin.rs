//! Bounded spinning before a sleep, and when not to spin at all: the workspace's one spin policy,
//! which lives in the lowest crate (`multiproc_sync::spin`, where its stall rule and every
//! constant are explained). The parent's waits for a child and for the fork server use its
//! yielding phase with the stall rule, [`Spinner`].

pub(crate) use multiproc_sync::spin::Spinner;
