//! Link-time addresses, taken PC-relative so they do not depend on relocations.

use core::arch::asm;

/// Where this kernel's ELF header is at run time (the linker's `__ehdr_start`).
pub fn ehdr_address() -> u64 {
    let v: u64;
    // SAFETY: computes an address; nothing is read.
    unsafe {
        asm!("lea {}, [rip + __ehdr_start]", out(reg) v, options(nomem, nostack, preserves_flags))
    }
    v
}

/// Where `.bss` ends at run time (the linker's `_end`).
pub fn end_address() -> u64 {
    let v: u64;
    // SAFETY: computes an address; nothing is read.
    unsafe { asm!("lea {}, [rip + _end]", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Where the entry point `_start` is at run time.
pub fn entry_address() -> u64 {
    let v: u64;
    // SAFETY: computes an address; nothing is read.
    unsafe { asm!("lea {}, [rip + _start]", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}
