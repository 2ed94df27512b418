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

/// Where this kernel's dynamic section is at run time (the linker's `_DYNAMIC`), or
/// None for an executable, which has none (the weak reference is then 0).
pub fn dynamic_address() -> Option<u64> {
    let v: u64;
    // SAFETY: computes an address; nothing is read.
    unsafe {
        asm!(".weak _DYNAMIC", "lea {}, [rip + _DYNAMIC]", out(reg) v, options(nomem, nostack, preserves_flags))
    }
    (v != 0).then_some(v)
}
