//! The string operations behind `memcpy`, `memmove`, `memset` and `memcmp`, as plain
//! functions so that the host tests (`loader/tests/mem.rs`) run exactly this code;
//! `mem.rs` exports them under the C names the freestanding binary must provide.

use core::arch::asm;

// Why eight bytes at a time: under QEMU's TCG a `rep` string instruction runs one
// iteration per pass through a translated block, so its cost is per iteration, not
// per byte; `rep movsq` moves eight bytes per iteration where `rep movsb` moves one
// (measured on the segment copy: see docs/benchmarks.md). On hardware both are fast.

/// Copies `n` bytes upwards: `rep movsq` for the whole qwords, `rep movsb` for the
/// rest.
///
/// # Safety
/// `dest` and `src` valid for `n` bytes; if they overlap, `dest` must not lie above
/// `src` (an upward copy would overwrite source bytes before reading them).
pub unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller guarantees both ranges are valid; DF is clear (ABI). The
    // qword copy stops at the last whole qword, the byte copy goes on from there.
    unsafe {
        asm!("rep movsq", "mov rcx, {rest}", "rep movsb",
             rest = in(reg) n % 8,
             inout("rcx") n / 8 => _, inout("rdi") dest => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
}

/// Copies `n` bytes downwards (last byte first), for overlapping ranges with `dest`
/// above `src`: `std`, the whole qwords from the top with `rep movsq`, the bytes
/// left at the bottom with `rep movsb`, `cld`.
///
/// # Safety
/// `dest` and `src` valid for `n` bytes.
pub unsafe fn copy_backward(dest: *mut u8, src: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    let qwords = n / 8;
    let rest = n % 8;
    // Going down, each qword is read before the bytes below it are written, so an
    // overlap of any distance copies correctly.
    // SAFETY: the caller guarantees both ranges are valid: the top qword starts at
    // n - 8 >= 0 when there is one, the bytes left end at rest - 1; DF is set only
    // around the copy and cleared again, as the ABI requires.
    unsafe {
        if qwords > 0 {
            asm!("std", "rep movsq", "cld",
                 inout("rcx") qwords => _, inout("rdi") dest.add(n - 8) => _,
                 inout("rsi") src.add(n - 8) => _, options(nostack));
        }
        if rest > 0 {
            asm!("std", "rep movsb", "cld",
                 inout("rcx") rest => _, inout("rdi") dest.add(rest - 1) => _,
                 inout("rsi") src.add(rest - 1) => _, options(nostack));
        }
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

/// Fills `n` bytes with `value`: blocks of 256 bytes with sixteen SSE stores, then
/// `rep stosq` with the byte in every lane for the whole qwords, `rep stosb` for the
/// rest. (Under emulation every turn of a `rep` costs like an instruction: a block
/// takes 19 instructions where `rep stosq` takes 32 turns. The loader's fills are
/// the kernel's `.bss`, its stack and page tables: tens of KiB.)
///
/// # Safety
/// `dest` valid for `n` bytes.
pub unsafe fn fill(dest: *mut u8, value: u8, n: usize) {
    let lanes = u64::from(value) * 0x0101_0101_0101_0101;
    // SAFETY: the caller guarantees the range is valid: the blocks cover
    // `n / 256 * 256` bytes from `dest`, the qwords and bytes the rest; the low byte
    // of rax is `value`, so every store writes the same byte pattern.
    unsafe {
        asm!(
            "test {blocks}, {blocks}",
            "jz 3f",
            "movq xmm0, rax",
            "punpcklqdq xmm0, xmm0",
            "2:",
            "movdqu [rdi], xmm0",
            "movdqu [rdi + 16], xmm0",
            "movdqu [rdi + 32], xmm0",
            "movdqu [rdi + 48], xmm0",
            "movdqu [rdi + 64], xmm0",
            "movdqu [rdi + 80], xmm0",
            "movdqu [rdi + 96], xmm0",
            "movdqu [rdi + 112], xmm0",
            "movdqu [rdi + 128], xmm0",
            "movdqu [rdi + 144], xmm0",
            "movdqu [rdi + 160], xmm0",
            "movdqu [rdi + 176], xmm0",
            "movdqu [rdi + 192], xmm0",
            "movdqu [rdi + 208], xmm0",
            "movdqu [rdi + 224], xmm0",
            "movdqu [rdi + 240], xmm0",
            "add rdi, 256",
            "dec {blocks}",
            "jnz 2b",
            "3:",
            "rep stosq",
            "mov rcx, {rest}",
            "rep stosb",
            blocks = inout(reg) n / 256 => _,
            rest = in(reg) n % 8,
            inout("rcx") (n % 256) / 8 => _,
            inout("rdi") dest => _,
            in("rax") lanes,
            out("xmm0") _,
            options(nostack),
        );
    }
}

/// Compares `n` bytes; the difference of the first unequal pair, or 0. Eight bytes
/// at a time until a word differs, then byte by byte within that word (or the last
/// few bytes).
///
/// # Safety
/// `a` and `b` valid for `n` bytes.
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while n - i >= 8 {
        // SAFETY: i + 8 <= n and the caller guarantees n readable bytes; unaligned
        // reads are fine on x86_64.
        let (x, y) = unsafe {
            (
                a.add(i).cast::<u64>().read_unaligned(),
                b.add(i).cast::<u64>().read_unaligned(),
            )
        };
        if x != y {
            break;
        }
        i += 8;
    }
    // At most eight bytes are left to look at. Volatile reads keep LLVM from turning
    // this loop back into a memcmp call (this is memcmp).
    while i < n {
        // SAFETY: i < n and the caller guarantees n readable bytes.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}
