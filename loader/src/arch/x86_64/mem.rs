//! The memory functions a freestanding binary must provide (the precompiled `core`
//! calls them, and `copy_from_slice`/`fill` compile to them). `rep movsb` and
//! `rep stosb` are what makes segment copies and zeroing fast: on CPUs with ERMSB
//! (and under QEMU's TCG, which implements them as block operations) they beat any
//! loop written here. The operations themselves live in `mem_ops.rs`, tested on the
//! host.

use super::mem_ops;

/// # Safety
/// `dest` and `src` valid for `n` bytes and not overlapping.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded caller guarantee; non-overlapping ranges copy safely upwards.
    unsafe { mem_ops::copy_forward(dest, src, n) };
    dest
}

/// # Safety
/// `dest` and `src` valid for `n` bytes; they may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded caller guarantee.
    unsafe { mem_ops::copy_any(dest, src, n) };
    dest
}

/// # Safety
/// `dest` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    // C passes the byte as an int; only its low 8 bits count.
    // SAFETY: forwarded caller guarantee.
    unsafe { mem_ops::fill(dest, value as u8, n) };
    dest
}

/// # Safety
/// `a` and `b` valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { mem_ops::compare(a, b, n) }
}

/// # Safety
/// As `memcmp`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded caller guarantee.
    unsafe { mem_ops::compare(a, b, n) }
}

/// The precompiled `alloc` references the unwinding personality even though the
/// loader is built with `panic = abort`; it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

/// Referenced by the precompiled `alloc`'s landing pads, which `panic = abort` never
/// reaches; if one ever did, stopping is the only sound answer.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    super::exit_qemu(rusty_loader::error::ExitCode::LoaderPanic.port_value())
}
