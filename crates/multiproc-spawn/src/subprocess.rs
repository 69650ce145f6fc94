//! Python's `subprocess` helpers (stub; filled below).
