//! Memory functions. A freestanding binary must provide memcpy & co. (the compiler
//! emits calls to them); `rep movsb`/`rep stosb` are short and fast on current CPUs,
//! and being assembly they cannot be turned back into calls to themselves.

use core::arch::asm;

/// Copies `n` bytes from `src` to `dst`, lowest address first.
///
/// # Safety
/// Both ranges must be valid; if they overlap, `dst` must not lie inside `src`'s range
/// above `src`.
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller guarantees the ranges; DF is clear per the ABI.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
            options(nostack, preserves_flags))
    }
}

/// Copies `n` bytes from `src` to `dst`, highest address first (for overlapping moves
/// to a higher address).
///
/// # Safety
/// Both ranges must be valid.
pub unsafe fn copy_backward(dst: *mut u8, src: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: the caller guarantees the ranges; the direction flag is set only for
    // this one instruction and cleared again, as the ABI requires.
    unsafe {
        asm!("std", "rep movsb", "cld",
            inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
            options(nostack))
    }
}

/// Sets `n` bytes at `dst` to `value`.
///
/// # Safety
/// The range must be valid for writes.
pub unsafe fn fill(dst: *mut u8, value: u8, n: usize) {
    // SAFETY: the caller guarantees the range; DF is clear per the ABI.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") value,
            options(nostack, preserves_flags))
    }
}

/// Compares `n` bytes: 0 if equal, else the difference of the first differing bytes.
///
/// # Safety
/// Both ranges must be valid for reads.
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 {
        return 0;
    }
    let (a_end, b_end): (*const u8, *const u8);
    // SAFETY: the caller guarantees the ranges. `repe cmpsb` stops after the first
    // differing pair (or after `n` bytes), so the last pair compared is just below
    // where rsi and rdi stop.
    unsafe {
        asm!("repe cmpsb", inout("rcx") n => _, inout("rsi") a => a_end, inout("rdi") b => b_end,
            options(nostack, readonly));
        i32::from(*a_end.sub(1)) - i32::from(*b_end.sub(1))
    }
}

#[cfg(all(feature = "bare-metal", not(test)))]
mod c_symbols {
    //! The C names the compiler calls.

    /// # Safety
    /// As C's `memcpy`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: as C's memcpy: valid, non-overlapping ranges.
        unsafe { super::copy_forward(dst, src, n) };
        dst
    }

    /// # Safety
    /// As C's `memmove`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // A destination inside the source's range above its start would be overwritten
        // before it is read by a forward copy: copy backwards then.
        if (dst as usize).wrapping_sub(src as usize) < n {
            // SAFETY: as C's memmove: valid ranges.
            unsafe { super::copy_backward(dst, src, n) };
        } else {
            // SAFETY: as C's memmove: valid ranges.
            unsafe { super::copy_forward(dst, src, n) };
        }
        dst
    }

    /// # Safety
    /// As C's `memset`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
        // SAFETY: as C's memset: a valid range.
        unsafe { super::fill(dst, value as u8, n) };
        dst
    }

    /// # Safety
    /// As C's `memcmp`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: as C's memcmp: valid ranges.
        unsafe { super::compare(a, b, n) }
    }

    /// # Safety
    /// As C's `bcmp`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: as C's bcmp: valid ranges.
        unsafe { super::compare(a, b, n) }
    }

    /// The precompiled `core` is built to unwind and its unwind tables name this
    /// personality routine; with `panic = abort` nothing ever unwinds, so it is never
    /// called, but the linker needs the symbol.
    #[unsafe(no_mangle)]
    pub extern "C" fn rust_eh_personality() {}

    /// Like the personality routine: referenced by `core`'s landing pads, never
    /// reached with `panic = abort`; halting is the safe answer if it ever were.
    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_Resume() -> ! {
        crate::arch::port::exit(crate::report::Group::Panic.exit_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_fills_and_compares() {
        let src: [u8; 37] = core::array::from_fn(|i| i as u8 * 7);
        let mut dst = [0u8; 37];
        // SAFETY: both arrays are 37 bytes.
        unsafe { copy_forward(dst.as_mut_ptr(), src.as_ptr(), 37) };
        assert_eq!(dst, src);
        // SAFETY: in bounds.
        unsafe { fill(dst.as_mut_ptr().add(3), 0xaa, 10) };
        assert!(dst[3..13].iter().all(|&b| b == 0xaa));
        assert_eq!(dst[13], src[13]);
        // SAFETY: in bounds; zero-length calls touch nothing.
        unsafe {
            assert_eq!(compare(src.as_ptr(), src.as_ptr(), 37), 0);
            assert_eq!(compare(src.as_ptr(), dst.as_ptr(), 3), 0);
            assert!(compare(src.as_ptr(), dst.as_ptr(), 37) < 0);
            assert!(compare(dst.as_ptr(), src.as_ptr(), 37) > 0);
            assert_eq!(compare(dst.as_ptr(), src.as_ptr(), 0), 0);
            copy_backward(dst.as_mut_ptr(), src.as_ptr(), 0);
            fill(dst.as_mut_ptr(), 0, 0);
        }
        // The first difference decides, not the later ones.
        let a = [1u8, 2, 0xff];
        let b = [1u8, 3, 0x00];
        // SAFETY: three bytes each.
        assert_eq!(unsafe { compare(a.as_ptr(), b.as_ptr(), 3) }, -1);
    }

    #[test]
    fn overlapping_moves() {
        let mut buf: [u8; 16] = core::array::from_fn(|i| i as u8);
        // Move up by 3: needs the backward copy.
        // SAFETY: both ranges lie inside the 16-byte buffer.
        unsafe { copy_backward(buf.as_mut_ptr().add(3), buf.as_ptr(), 10) };
        assert_eq!(&buf[3..13], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let mut buf: [u8; 16] = core::array::from_fn(|i| i as u8);
        // Move down by 3: the forward copy is right.
        // SAFETY: both ranges lie inside the 16-byte buffer.
        unsafe { copy_forward(buf.as_mut_ptr(), buf.as_ptr().add(3), 10) };
        assert_eq!(&buf[..10], &[3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }
}
