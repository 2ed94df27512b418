//! The memory functions a freestanding binary must provide (the precompiled `core`
//! calls them, and `copy_from_slice`/`fill` compile to them). `rep movsb` and
//! `rep stosb` are what makes segment copies and zeroing fast: on CPUs with ERMSB
//! (and under QEMU's TCG, which implements them as block operations) they beat any
//! loop written here.

use core::arch::asm;

/// # Safety
/// `dest` and `src` valid for `n` bytes and not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid; DF is clear (ABI).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// `dest` and `src` valid for `n` bytes; they may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // Forward copy is safe: dest is below src or the ranges do not overlap.
        // SAFETY: forwarded caller guarantee.
        return unsafe { memcpy(dest, src, n) };
    }
    // Overlap with dest above src: copy backwards.
    // SAFETY: the caller guarantees both ranges are valid; DF is restored to clear.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") dest.add(n).wrapping_sub(1) => _,
             inout("rsi") src.add(n).wrapping_sub(1) => _, options(nostack));
    }
    dest
}

/// # Safety
/// `dest` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range is valid.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") value as u8,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// `a` and `b` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // Volatile reads keep LLVM from turning this loop back into a memcmp call.
        // SAFETY: i < n and the caller guarantees n readable bytes.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

/// # Safety
/// As `memcmp`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { memcmp(a, b, n) }
}

/// The precompiled `alloc` references the unwinding personality even though the
/// loader is built with `panic = abort`; it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

/// Referenced by the precompiled `alloc`'s landing pads, which `panic = abort` never
/// reaches; if one ever did, stopping is the only sound answer.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    super::exit_qemu(crate::ExitCode::LoaderPanic.port_value())
}
