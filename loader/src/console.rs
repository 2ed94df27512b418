//! The serial console on COM1 (0x3f8, the port every Hermit kernel uses too).
//! Human-readable lines go here: fatal errors and CPU exceptions.

use core::fmt::{self, Write};

use spinning_top::Spinlock;
use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

const COM1: u16 = 0x3f8;

static SERIAL: Spinlock<Option<Uart16550<PioBackend>>> = Spinlock::new(None);

/// Programs the UART. Output before this (or without a UART) is dropped, not hung.
pub fn init() {
    // SAFETY: COM1 is a valid port range and the loader is the only user.
    let Ok(mut uart) = (unsafe { Uart16550::new_port(COM1) }) else {
        return;
    };
    if uart.init(Config::default()).is_ok() {
        *SERIAL.lock() = Some(uart);
    }
}

/// Writes raw bytes to the serial port.
pub fn write_bytes(bytes: &[u8]) {
    // An exception raised while the lock is held must still be able to print, so a
    // held lock is never waited for: a fresh handle on the same port is used instead.
    match SERIAL.try_lock() {
        Some(mut guard) => {
            if let Some(uart) = guard.as_mut() {
                uart.send_bytes_exact(bytes);
            }
        }
        None => {
            // SAFETY: as in `init`; the interrupted writer never resumes.
            if let Ok(mut uart) = unsafe { Uart16550::new_port(COM1) } {
                uart.send_bytes_exact(bytes);
            }
        }
    }
}

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints one line prefixed with `rusty-loader: ` (`wire::TEXT_LINE_PREFIX`).
pub fn print_line(args: fmt::Arguments) {
    let _ = writeln!(Console, "{}{args}", rusty_loader::wire::TEXT_LINE_PREFIX);
}
