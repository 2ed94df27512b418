//! Port I/O: the loader's only `in` and `out` instructions, on the ports named here
//! (the serial port is the `uart_16550` crate's).

use core::arch::asm;

/// An I/O port the loader reads or writes. Only the constants below exist, so the
/// safety argument of [`inb`] and [`outb`] covers every port they are ever given.
#[derive(Clone, Copy)]
pub struct Port(u16);

impl Port {
    /// QEMU's isa-debug-exit device (`-device isa-debug-exit,iobase=0xf4`): a write
    /// ends the run.
    pub const DEBUG_EXIT: Port = Port(0xf4);
    /// PIT channel 2's counter.
    pub const PIT_CHANNEL2_DATA: Port = Port(0x42);
    /// The PIT's mode and read-back commands.
    pub const PIT_COMMAND: Port = Port(0x43);
    /// Port B: bit 0 gates PIT channel 2, bit 1 drives the speaker.
    pub const PORT_B: Port = Port(0x61);
    /// QEMU's fw_cfg selector (a 16-bit write chooses an item), read by
    /// fault-injection builds only.
    #[cfg(feature = "faults")]
    pub const FW_CFG_SELECTOR: Port = Port(0x510);
    /// QEMU's fw_cfg data port: the selected item's next byte.
    #[cfg(feature = "faults")]
    pub const FW_CFG_DATA: Port = Port(0x511);
}

/// Reads one byte from `port`.
#[inline(always)]
pub fn inb(port: Port) -> u8 {
    let value: u8;
    // SAFETY: reading the PIT, port B and fw_cfg's data has no memory-safety effect.
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port.0, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Writes one byte to `port`.
#[inline(always)]
pub fn outb(port: Port, value: u8) {
    // SAFETY: the debug-exit device, the PIT and port B have no memory-safety effect
    // (the speaker bit is the caller's to keep off).
    unsafe {
        asm!("out dx, al", in("dx") port.0, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Writes one 16-bit word to `port`.
#[cfg(feature = "faults")]
#[inline(always)]
pub fn outw(port: Port, value: u16) {
    // SAFETY: selecting a fw_cfg item (the only 16-bit port) has no memory-safety
    // effect.
    unsafe {
        asm!("out dx, ax", in("dx") port.0, in("ax") value, options(nomem, nostack, preserves_flags))
    };
}
