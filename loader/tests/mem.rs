//! The loader's memory operations (`src/arch/x86_64/mem_ops.rs`), run on the host:
//! the same `rep movsb`/`rep stosb` code the bare-metal binary exports as `memcpy`,
//! `memmove`, `memset` and `memcmp`, checked against plain slice operations for every
//! small length and alignment, and overlap in both directions.

#[path = "../src/arch/x86_64/mem_ops.rs"]
mod mem_ops;

const LEN: usize = 1100;

fn pattern() -> Vec<u8> {
    (0..LEN).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn copies_and_fills_match_slice_operations() {
    let source = pattern();
    // Every small size, and sizes around the fill's 256-byte blocks.
    let sizes = (0..40).chain([255, 256, 257, 300, 511, 512, 513, 767, 1024, 1031]);
    for n in sizes {
        for offset in 0..9 {
            let mut ours = vec![0xEEu8; LEN];
            let mut expected = ours.clone();
            // SAFETY: both ranges lie inside their vectors (offset + n < LEN).
            unsafe {
                mem_ops::copy_forward(ours.as_mut_ptr().add(offset), source.as_ptr().add(3), n)
            };
            expected[offset..offset + n].copy_from_slice(&source[3..3 + n]);
            assert_eq!(ours, expected, "copy n={n} offset={offset}");

            // SAFETY: as above.
            unsafe { mem_ops::fill(ours.as_mut_ptr().add(offset), 0x5A, n) };
            expected[offset..offset + n].fill(0x5A);
            assert_eq!(ours, expected, "fill n={n} offset={offset}");
        }
    }
}

#[test]
fn overlapping_moves_in_both_directions() {
    for n in 0..48 {
        for (from, to) in [
            (10, 13),
            (13, 10),
            (0, 1),
            (1, 0),
            (20, 20),
            (5, 40),
            (40, 5),
        ] {
            let mut ours = pattern();
            let mut expected = ours.clone();
            // SAFETY: from + n and to + n stay inside the vector (at most 88 < 96).
            unsafe { mem_ops::copy_any(ours.as_mut_ptr().add(to), ours.as_ptr().add(from), n) };
            expected.copy_within(from..from + n, to);
            assert_eq!(ours, expected, "move n={n} from={from} to={to}");
        }
    }
}

#[test]
fn backward_copy_leaves_the_direction_flag_clear() {
    let mut buffer = pattern();
    // SAFETY: both ranges are inside the buffer.
    unsafe { mem_ops::copy_backward(buffer.as_mut_ptr().add(8), buffer.as_ptr(), 32) };
    // A forward copy after it must still go forward: with DF left set it would run
    // downwards from its start address and fail this comparison (or crash).
    let source = pattern();
    let mut target = vec![0u8; 16];
    // SAFETY: both ranges are 16 bytes of live vectors.
    unsafe { mem_ops::copy_forward(target.as_mut_ptr(), source.as_ptr(), 16) };
    assert_eq!(target, source[..16]);
}

#[test]
fn compare_orders_like_memcmp() {
    let a = pattern();
    let mut b = a.clone();
    // SAFETY: both vectors hold LEN bytes.
    let same = unsafe { mem_ops::compare(a.as_ptr(), b.as_ptr(), LEN) };
    assert_eq!(same, 0);
    b[50] = a[50].wrapping_add(1);
    // SAFETY: as above.
    let (less, more, prefix) = unsafe {
        (
            mem_ops::compare(a.as_ptr(), b.as_ptr(), LEN),
            mem_ops::compare(b.as_ptr(), a.as_ptr(), LEN),
            mem_ops::compare(a.as_ptr(), b.as_ptr(), 50),
        )
    };
    assert!(less < 0 && more > 0, "{less} {more}");
    assert_eq!(prefix, 0, "bytes after n do not count");

    // A difference at every position of a word and in the tail, at every length
    // around it, against the slice comparison's order.
    for n in 0..40 {
        for at in 0..n {
            for delta in [1u8, 0x80] {
                let mut c = a.clone();
                c[at] = a[at].wrapping_add(delta);
                // SAFETY: n <= LEN.
                let ours = unsafe { mem_ops::compare(a.as_ptr(), c.as_ptr(), n) };
                let expected = i32::from(a[at]) - i32::from(c[at]);
                assert_eq!(ours, expected, "n={n} at={at} delta={delta}");
            }
        }
        // SAFETY: as above.
        assert_eq!(unsafe { mem_ops::compare(a.as_ptr(), a.as_ptr(), n) }, 0);
    }
}
