//! Control registers, model-specific registers, the stack pointer and the code
//! segment.

use core::arch::asm;

/// CR0.
pub fn cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effects at ring 0.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// CR2: the address of the last page fault.
pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects at ring 0.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// CR3: the PML4's physical address plus cache bits.
pub fn cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects at ring 0.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// CR4.
pub fn cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects at ring 0.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// MSR number of EFER.
pub const MSR_EFER: u32 = 0xc000_0080;
/// MSR number of the FS base.
pub const MSR_FS_BASE: u32 = 0xc000_0100;

/// Reads a model-specific register.
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the kernels read only EFER and FS base, which exist on every x86_64
    // CPU, so this cannot fault.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    }
    u64::from(lo) | (u64::from(hi) << 32)
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist and the value must be valid for it.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the MSR and value are valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nostack, preserves_flags))
    }
}

/// The current stack pointer.
pub fn stack_pointer() -> u64 {
    let v: u64;
    // SAFETY: copies rsp; no memory is touched.
    unsafe { asm!("mov {}, rsp", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// The code segment selector (for the IDT gates).
pub fn code_segment() -> u16 {
    let v: u16;
    // SAFETY: copies CS; no memory is touched.
    unsafe { asm!("mov {0:x}, cs", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reads the TSC into eax:edx; CR4.TSD is clear at ring 0 anyway, and no
    // memory is touched.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) }
    u64::from(lo) | (u64::from(hi) << 32)
}
