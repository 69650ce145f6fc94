//! Helpers shared by the examples (none yet); the examples themselves are the `[[example]]`
//! targets listed in `Cargo.toml`.
