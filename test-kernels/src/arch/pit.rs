//! The PIT's channel 0, polled, and the TSC: the clock the calibrating kernel
//! measures the TSC frequency with ([`crate::frequency`]). On a machine without a
//! PIT (QEMU's microvm) the ports read all ones and the count never moves.

use super::cpu::rdtsc;
use super::port::{inb, outb};
use crate::frequency::PitClock;

/// Channel 0's data port.
const CHANNEL_0: u16 = 0x40;
/// The mode/command port.
const COMMAND: u16 = 0x43;
/// Command: channel 0 (bits 7–6 = 0), low then high byte of the count (bits 5–4 =
/// 3), mode 2, the rate generator (bits 3–1 = 2), binary counting (bit 0 = 0).
const CHANNEL_0_RATE_GENERATOR: u8 = 0x34;
/// Command: channel 0 (bits 7–6 = 0), latch its count (bits 5–4 = 0), so that the
/// two bytes read next belong to one count.
const CHANNEL_0_LATCH: u8 = 0x00;

/// PIT channel 0 and the TSC of this machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct PitAndTsc;

impl PitClock for PitAndTsc {
    fn start_rate_generator(&mut self, reload: u16) {
        let [low, high] = reload.to_le_bytes();
        outb(COMMAND, CHANNEL_0_RATE_GENERATOR);
        outb(CHANNEL_0, low);
        outb(CHANNEL_0, high);
    }

    fn count(&mut self) -> u16 {
        outb(COMMAND, CHANNEL_0_LATCH);
        let low = inb(CHANNEL_0);
        let high = inb(CHANNEL_0);
        u16::from_le_bytes([low, high])
    }

    fn tsc(&mut self) -> u64 {
        rdtsc()
    }
}
