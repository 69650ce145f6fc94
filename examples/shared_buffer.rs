//! A worker process renders an "image" (1920×1080 RGBA, 8 MB) straight into a
//! `SharedBuffer` and hands it back through a queue: what crosses is a handle, not the
//! bytes, so the hand-off takes microseconds whatever the size. The parent reads the pixels
//! in place.
//!
//! Expected output:
//! ```text,ordered
//! image: 1920x1080 RGBA, 8294400 bytes
//! checksum: {n}
//! hand-off: {n} µs
//! ```

use std::time::Duration;

use multiproc::{Process, Queue, SharedBuffer};

const WIDTH: usize = 1920;
const HEIGHT: usize = 1080;

/// Renders a gradient into a fresh shared buffer, then hands it over, with the moment it did.
fn render(done: Queue<(SharedBuffer, Duration)>) {
    let mut image = SharedBuffer::new(WIDTH * HEIGHT * 4).expect("shared memory");
    for (i, px) in image.chunks_exact_mut(4).enumerate() {
        let (x, y) = (i % WIDTH, i / WIDTH);
        px.copy_from_slice(&[(x * 255 / WIDTH) as u8, (y * 255 / HEIGHT) as u8, 128, 255]);
    }
    let sent_at = since_epoch();
    done.put((image, sent_at)).expect("hand-off");
}

fn since_epoch() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

fn main() -> multiproc::Result<()> {
    let done = Queue::new()?;
    let worker = Process::builder().spawn(render, done.clone())?;
    let (image, sent_at) = done.get()?;
    let handed_off = since_epoch().saturating_sub(sent_at);
    let checksum: u64 = image.iter().map(|&b| u64::from(b)).sum();
    worker.join()?;
    println!("image: {WIDTH}x{HEIGHT} RGBA, {} bytes", image.len());
    println!("checksum: {checksum}");
    println!("hand-off: {:.1} µs", handed_off.as_secs_f64() * 1e6);
    Ok(())
}
