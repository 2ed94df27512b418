//! Finding the TSC frequency, so that the trace can turn ticks into time and the
//! kernel can be spared its own calibration. Sources, best first: CPUID leaf 0x15
//! (crystal ratio), leaf 0x16 (base MHz), the hypervisor leaf 0x40000010 (kHz), and a
//! 2 ms calibration against PIT channel 2. `-freq` on the command line beats all of
//! them; the caller checks it first.

use core::arch::asm;
use core::arch::x86_64::__cpuid;

use super::rdtsc;

/// Where a frequency came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    CpuidCrystal,
    CpuidBase,
    Hypervisor,
    Pit,
    Unknown,
}

/// Plausible TSC frequencies: anything else is a broken source.
const PLAUSIBLE_KHZ: core::ops::RangeInclusive<u64> = 100_000..=10_000_000;

/// The TSC frequency in kHz from the first source that gives a plausible value.
pub fn detect() -> (u32, Source) {
    let found = from_cpuid()
        .or_else(from_hypervisor)
        .or_else(|| calibrate_with_pit().map(|khz| (khz, Source::Pit)));
    match found {
        Some((khz, source)) => (khz, source),
        None => (0, Source::Unknown),
    }
}

fn plausible(khz: u64) -> Option<u32> {
    PLAUSIBLE_KHZ.contains(&khz).then_some(khz as u32)
}

fn from_cpuid() -> Option<(u32, Source)> {
    let max_leaf = __cpuid(0).eax;
    if max_leaf >= 0x15 {
        let leaf = __cpuid(0x15);
        let (denominator, numerator, crystal_hz) = (leaf.eax, leaf.ebx, leaf.ecx);
        if denominator != 0 && numerator != 0 && crystal_hz != 0 {
            let khz = u64::from(crystal_hz) * u64::from(numerator) / u64::from(denominator) / 1000;
            if let Some(khz) = plausible(khz) {
                return Some((khz, Source::CpuidCrystal));
            }
        }
    }
    if max_leaf >= 0x16 {
        let base_mhz = __cpuid(0x16).eax & 0xFFFF;
        if let Some(khz) = plausible(u64::from(base_mhz) * 1000) {
            return Some((khz, Source::CpuidBase));
        }
    }
    None
}

/// CPUID.1:ECX bit 31: running under a hypervisor.
const CPUID_HYPERVISOR: u32 = 1 << 31;
/// The hypervisor timing leaf (VMware's convention, also KVM/QEMU with invtsc):
/// EAX = TSC kHz.
const HYPERVISOR_TIMING_LEAF: u32 = 0x4000_0010;

fn from_hypervisor() -> Option<(u32, Source)> {
    if __cpuid(1).ecx & CPUID_HYPERVISOR == 0 {
        return None;
    }
    // Leaves above the hypervisor range's maximum are not read.
    if __cpuid(0x4000_0000).eax < HYPERVISOR_TIMING_LEAF {
        return None;
    }
    let khz = __cpuid(HYPERVISOR_TIMING_LEAF).eax;
    plausible(u64::from(khz)).map(|khz| (khz, Source::Hypervisor))
}

const PIT_HZ: u64 = 1_193_182;
const PIT_CHANNEL2_DATA: u16 = 0x42;
const PIT_COMMAND: u16 = 0x43;
/// Channel 2, low then high byte, mode 0 (interrupt on terminal count), binary.
const PIT_CHANNEL2_MODE0: u8 = 0b1011_0000;
/// Port 0x61: bit 0 gates channel 2, bit 1 drives the speaker, bit 5 reads OUT2.
const PORT_B: u16 = 0x61;
const PORT_B_GATE2: u8 = 1 << 0;
const PORT_B_SPEAKER: u8 = 1 << 1;
const PORT_B_OUT2: u8 = 1 << 5;
/// 2 ms of PIT counts: short enough not to matter, long enough for ~0.1 % precision.
const CALIBRATION_COUNTS: u16 = (PIT_HZ / 500) as u16;
/// Bound on the polling loop, so that a machine without a PIT (microvm with
/// `pit=off`) cannot hang the loader here.
const MAX_POLLS: u32 = 5_000_000;

fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: reading the PIT and port B has no memory-safety effect.
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    value
}

fn outb(port: u16, value: u8) {
    // SAFETY: programming PIT channel 2 and port B has no memory-safety effect; the
    // speaker stays off.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Counts TSC ticks over 2 ms of PIT channel 2. None without a working PIT.
fn calibrate_with_pit() -> Option<u32> {
    let saved = inb(PORT_B);
    outb(PORT_B, (saved & !PORT_B_SPEAKER) & !PORT_B_GATE2);
    outb(PIT_COMMAND, PIT_CHANNEL2_MODE0);
    outb(PIT_CHANNEL2_DATA, CALIBRATION_COUNTS as u8);
    outb(PIT_CHANNEL2_DATA, (CALIBRATION_COUNTS >> 8) as u8);
    // Raising the gate starts the count; OUT2 goes high at terminal count.
    outb(PORT_B, (saved & !PORT_B_SPEAKER) | PORT_B_GATE2);
    let start = rdtsc();
    let mut polls = 0;
    while inb(PORT_B) & PORT_B_OUT2 == 0 {
        polls += 1;
        if polls == MAX_POLLS {
            break;
        }
    }
    let end = rdtsc();
    outb(PORT_B, saved);
    // OUT2 high on the first poll means no PIT answered (an absent device reads
    // 0xFF); the bound being hit means it never fired.
    if polls == 0 || polls == MAX_POLLS {
        return None;
    }
    let khz = end.wrapping_sub(start) * PIT_HZ / u64::from(CALIBRATION_COUNTS) / 1000;
    plausible(khz)
}
