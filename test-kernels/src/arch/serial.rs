//! The COM1 UART every Hermit kernel uses (and the boot info must name), polled.

use super::port::{inb, outb};

/// The UART's base port.
const COM1: u16 = 0x3f8;

/// Sets COM1 to 115200 baud, 8N1, FIFO on, interrupts off.
pub fn serial_init() {
    outb(COM1 + 1, 0x00); // No interrupts: the kernels poll.
    outb(COM1 + 3, 0x80); // DLAB on to set the divisor...
    outb(COM1, 0x01); // ...of 1 (115200 baud),
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // then DLAB off, 8 data bits, no parity, one stop bit.
    outb(COM1 + 2, 0xc7); // FIFO on and cleared.
    outb(COM1 + 4, 0x03); // DTR and RTS.
}

/// The serial port as a byte sink.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl crate::report::Sink for Serial {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // Wait for the transmit holding register, but not forever: a machine
            // without a UART must still reach the exit port.
            for _ in 0..100_000 {
                if inb(COM1 + 5) & 0x20 != 0 {
                    break;
                }
                core::hint::spin_loop();
            }
            outb(COM1, b);
        }
    }
}
