//! Port I/O and the exit port.
//!
//! The kernels touch only three devices through ports: the COM1 UART, QEMU's
//! isa-debug-exit device and (the calibrating kernel) the PIT. None of them maps
//! memory, so port accesses have no memory effects.

use core::arch::asm;

/// Writes a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: port writes have no memory effects; the kernels only write the UART's
    // registers, the PIT's and the isa-debug-exit port.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the kernels read only the UART's line status register and the PIT's
    // latched count, which have no memory effects.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Writes `value` to QEMU's isa-debug-exit port (0xf4), then halts forever in case
/// the device is absent.
pub fn exit(value: u32) -> ! {
    // SAFETY: a port write; QEMU ends the process on it when the device exists.
    unsafe {
        asm!("out dx, eax", in("dx") 0xf4u16, in("eax") value, options(nomem, nostack, preserves_flags))
    }
    loop {
        // SAFETY: halting with interrupts off stops this CPU; nothing is left to do.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}
