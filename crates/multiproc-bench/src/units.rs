//! Item sizes as the benchmark report shows them. One source for the harness, which names
//! figures with it, and for `xtask`, which reads those names back: xtask includes this file by
//! path rather than depend on the benchmark crate (and through it on all of multiproc).

/// An item size as the report shows it: `8 B`, `1 KiB`, `64 MiB`, `1.5 KiB`.
pub fn size_label(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v.fract() == 0.0 {
        format!("{v} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
