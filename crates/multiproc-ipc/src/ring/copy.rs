//! Small copies without a call: the item bytes a put writes into the ring, and the encoder's
//! stack buffer, are a few bytes long far more often than not.

/// Copies `src` to `dst`, inline for up to 16 bytes (most queue items: a number, a short
/// tuple): two overlapping loads and stores of the widest size that fits, as a memcpy does
/// inside, without the call (through the PLT, to a routine picked at load time) that took as
/// long as the copy on every put of a small item. Larger ones call memcpy.
///
/// # Safety
/// `dst` is valid for `src.len()` bytes of writes and does not overlap `src`.
#[inline(always)]
pub(crate) unsafe fn copy_small_inline(src: &[u8], dst: *mut u8) {
    let (n, s) = (src.len(), src.as_ptr());
    // SAFETY: every load reads inside `src` and every store writes inside `dst[..n]`: the
    // pieces start at 0 and end at `n` (they overlap in the middle when `n` is not twice
    // their size); unaligned accesses are what `read_unaligned`/`write_unaligned` are for.
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                *dst = *s;
                *dst.add(n / 2) = *s.add(n / 2);
                *dst.add(n - 1) = *s.add(n - 1);
            }
            4..=7 => {
                let (a, b) = (
                    s.cast::<u32>().read_unaligned(),
                    s.add(n - 4).cast::<u32>().read_unaligned(),
                );
                dst.cast::<u32>().write_unaligned(a);
                dst.add(n - 4).cast::<u32>().write_unaligned(b);
            }
            8..=16 => {
                let (a, b) = (
                    s.cast::<u64>().read_unaligned(),
                    s.add(n - 8).cast::<u64>().read_unaligned(),
                );
                dst.cast::<u64>().write_unaligned(a);
                dst.add(n - 8).cast::<u64>().write_unaligned(b);
            }
            _ => std::ptr::copy_nonoverlapping(s, dst, n),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every length across the inline sizes and past them lands exactly: no byte missed in
    /// the overlapping pieces, none written before or after.
    #[test]
    fn small_copies_write_exactly_their_bytes() {
        for n in 0..=40usize {
            let src: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(37) | 1).collect();
            let mut dst = vec![0u8; n + 16];
            // SAFETY: `dst` has `n` bytes from offset 8 on, and is a buffer of its own.
            unsafe { super::copy_small_inline(&src, dst.as_mut_ptr().add(8)) };
            assert_eq!(&dst[8..8 + n], &src[..], "length {n}");
            assert!(
                dst[..8].iter().chain(&dst[8 + n..]).all(|&b| b == 0),
                "length {n}"
            );
        }
    }
}
