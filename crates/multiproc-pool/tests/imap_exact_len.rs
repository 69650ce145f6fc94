//! `pool.imap_unordered(f, 0..200u64)?.progress()`: a progress bar needs an
//! `ExactSizeIterator`, which std does not make of a `Range<u64>`; `exact_len` does.

use multiproc::Error;
use multiproc::pool::Pool;

fn double(x: u64) -> u64 {
    x * 2
}

/// What `indicatif`'s `ProgressIterator::progress` asks of its iterator.
fn progress<I: ExactSizeIterator>(it: I) -> (u64, I) {
    (it.len() as u64, it)
}

#[test]
fn imap_unordered_over_a_u64_range_has_an_exact_length() {
    let pool = Pool::new(2).unwrap();
    let (len, mut it) = progress(
        pool.imap_unordered(double, 0..200u64)
            .unwrap()
            .exact_len()
            .unwrap(),
    );
    assert_eq!(len, 200);
    let mut lens = Vec::new();
    let mut got = Vec::new();
    while let Some(r) = it.next() {
        got.push(r.unwrap());
        lens.push(it.len());
    }
    assert_eq!(
        lens,
        (0..200).rev().collect::<Vec<usize>>(),
        "counts down to 0"
    );
    got.sort();
    assert_eq!(got, (0..200u64).map(double).collect::<Vec<_>>());
}

#[test]
fn imap_over_a_u64_range_has_an_exact_length_and_keeps_order() {
    let pool = Pool::new(2).unwrap();
    let (len, it) = progress(
        pool.imap(double, (0..200u64).step_by(2))
            .unwrap()
            .exact_len()
            .unwrap(),
    );
    assert_eq!(len, 100);
    let got: Vec<u64> = it.map(Result::unwrap).collect();
    assert_eq!(got, (0..200u64).step_by(2).map(double).collect::<Vec<_>>());
}

#[test]
fn an_input_of_unknown_length_is_invalid() {
    let pool = Pool::new(1).unwrap();
    let odd = (0..200u64).filter(|x| x % 2 == 1);
    assert!(matches!(
        pool.imap_unordered(double, odd).unwrap().exact_len(),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        pool.imap(double, 0u64..).unwrap().exact_len(),
        Err(Error::Invalid(_))
    ));
}
