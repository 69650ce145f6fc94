//! An `Array` filled by workers: four processes each square their quarter of a shared array
//! of 16 numbers (Python's `multiprocessing.Array('d', 16)`), and the parent reads it back.
//!
//! Expected output:
//! ```text,ordered
//! squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144, 169, 196, 225]
//! sum = 1240
//! ```

use multiproc::{Array, Process};

fn fill((squares, from, to): (Array<u64>, usize, usize)) {
    for i in from..to {
        squares.set(i, (i * i) as u64);
    }
}

fn main() -> multiproc::Result<()> {
    let squares = Array::<u64>::new(16)?;
    let workers: Vec<_> = (0..4)
        .map(|k| Process::builder().spawn(fill, (squares.clone(), 4 * k, 4 * k + 4)))
        .collect::<multiproc::Result<_>>()?;
    for w in workers {
        w.join()?;
    }
    println!("squares: {:?}", squares.to_vec());
    println!("sum = {}", squares.lock().iter().sum::<u64>());
    Ok(())
}
