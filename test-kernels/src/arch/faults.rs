//! The CPU faults the `crashing` kernel commits on purpose, one function each, so
//! that a report naming the function that faulted can be checked against the
//! truth. Each is `#[inline(never)]`: its address range is its own in the symbol
//! table and in the debug information.

use core::arch::asm;

use super::cpu::cr3;

/// Reads the u64 at `addr`, whatever is (or is not) mapped there: a page fault when
/// nothing is.
#[inline(never)]
pub fn read_unmapped(addr: u64) -> u64 {
    load(addr)
}

/// The u64 at `addr`, read by an instruction of the caller's own (inlined), so that
/// a fault's RIP lies in the function that names the failure.
#[inline(always)]
fn load(addr: u64) -> u64 {
    let value: u64;
    // SAFETY: deliberately reads memory that may be unmapped or not even canonical;
    // the fault it raises is the point (the loader's exception handler reports it and
    // ends the run).
    unsafe { asm!("mov {}, [{}]", out(reg) value, in(reg) addr, options(nostack, readonly)) };
    value
}

/// Clears PML4[511], the recursive entry kernels 0.6–0.10 reach their page tables
/// through (as a loader that does not set it leaves it), then reads the PML4's
/// last entry through it as those kernels' page-table walker does: a page fault at
/// 0xffff_ffff_ffff_fff8.
#[inline(never)]
pub fn walk_without_recursive_entry() -> u64 {
    let pml4 = cr3() & 0x000f_ffff_ffff_f000;
    // SAFETY: the loader's hand-over tables are identity-mapped and writable (a
    // newer kernel's rule the loader meets for all), so the PML4's last entry can be
    // written at its physical address; reloading CR3 drops the translations cached
    // through it. The read that follows faults on purpose.
    unsafe {
        core::ptr::write_volatile((pml4 + 511 * 8) as *mut u64, 0);
        asm!("mov cr3, {}", in(reg) cr3(), options(nostack, preserves_flags));
    }
    load(0xffff_ffff_ffff_fff8)
}

/// Executes `ud2`: an invalid-opcode exception.
#[inline(never)]
pub fn invalid_opcode() -> ! {
    // SAFETY: `ud2` raises #UD and never completes.
    unsafe { asm!("ud2", options(noreturn, nomem, nostack)) }
}

/// Reads through a non-canonical address: a general-protection fault (not a page
/// fault: the address never reaches the page tables).
#[inline(never)]
pub fn read_non_canonical() -> u64 {
    load(0x8000_0000_0000_0000)
}

/// Loads an empty IDT (limit 0) and executes `int3`: the breakpoint cannot be
/// delivered (#GP), nor can that (#DF), so the CPU shuts down: a triple fault,
/// which no handler of the loader's can see.
#[inline(never)]
pub fn triple_fault() -> ! {
    let empty = [0u16; 5];
    // SAFETY: loading an empty IDT and trapping is the point: the machine resets
    // (QEMU with -no-reboot stops), nothing runs after it.
    unsafe {
        asm!(
            "lidt [{}]",
            "int3",
            "ud2",
            in(reg) empty.as_ptr(),
            options(noreturn, nostack)
        )
    }
}

/// Halts with interrupts off, for ever: a hang that costs the host no CPU time.
#[inline(never)]
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: halting with interrupts off only stops this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}
