//! A short walk through multiproc's main features.
//!
//! Expected output:
//! ```text
//! ...
//! ```

fn main() {
    println!("multiproc tour");
}
