//! The string operations behind `memcpy`, `memmove`, `memset` and `memcmp`, as plain
//! functions so that the host tests (`loader/tests/mem.rs`) run exactly this code;
//! `mem.rs` exports them under the C names the freestanding binary must provide.

use core::arch::asm;

/// Copies `n` bytes upwards with `rep movsb`.
///
/// # Safety
/// `dest` and `src` valid for `n` bytes; if they overlap, `dest` must not lie above
/// `src` (an upward copy would overwrite source bytes before reading them).
pub unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller guarantees both ranges are valid; DF is clear (ABI).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
}

/// Copies `n` bytes downwards (last byte first) with `std; rep movsb; cld`, for
/// overlapping ranges with `dest` above `src`.
///
/// # Safety
/// `dest` and `src` valid for `n` bytes.
pub unsafe fn copy_backward(dest: *mut u8, src: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: the caller guarantees both ranges are valid, so the last bytes are in
    // them; DF is set only around the copy and cleared again, as the ABI requires.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") dest.add(n - 1) => _,
             inout("rsi") src.add(n - 1) => _, options(nostack));
    }
}

/// Copies `n` bytes between ranges that may overlap.
///
/// # Safety
/// `dest` and `src` valid for `n` bytes.
pub unsafe fn copy_any(dest: *mut u8, src: *const u8, n: usize) {
    // Unsigned distance: at least n when dest is below src or the ranges are apart.
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: forwarded; an upward copy is safe in this case.
        unsafe { copy_forward(dest, src, n) }
    } else {
        // SAFETY: forwarded.
        unsafe { copy_backward(dest, src, n) }
    }
}

/// Fills `n` bytes with `value` using `rep stosb`.
///
/// # Safety
/// `dest` valid for `n` bytes.
pub unsafe fn fill(dest: *mut u8, value: u8, n: usize) {
    // SAFETY: the caller guarantees the range is valid.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") value,
             options(nostack, preserves_flags));
    }
}

/// Compares `n` bytes; the difference of the first unequal pair, or 0.
///
/// # Safety
/// `a` and `b` valid for `n` bytes.
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // Volatile reads keep LLVM from turning this loop back into a memcmp call.
        // SAFETY: i < n and the caller guarantees n readable bytes.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}
