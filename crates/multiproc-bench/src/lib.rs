//! Shared benchmark harness: measure a closure, print medians and the ratio to a baseline.
