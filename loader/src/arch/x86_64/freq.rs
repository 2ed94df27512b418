//! Finding the TSC frequency without waiting for it, so that the trace can turn ticks
//! into time and the kernel can be spared its own calibration.
//!
//! Sources, best first: CPUID leaf 0x15 (crystal ratio), leaf 0x16 (base MHz), the
//! hypervisor leaf 0x40000010 (kHz); otherwise a measurement against a reference
//! counter **across the loader's own work**: [`start`] starts the counter at entry
//! and reads it together with the TSC; [`measure`], called when the frequency is
//! first needed, reads both again. Neither waits: the window is the work in between
//! (only a window too short for [`MAX_ERROR_PPM`] is stretched by polling). The
//! reference is PIT channel 2 (1.193182 MHz, every PC) read back with the latch
//! command, which tells the count whenever counting began; where there is no PIT
//! (`microvm` with `pit=off`), the local APIC timer, which QEMU and KVM run at 1 GHz.
//!
//! Each reading brackets the counter read between two TSC reads. A PIT count lasts
//! 0.84 µs, so a PIT reading waits for the count to change and takes the moment it
//! changed, bracketed by the reads on either side: the window is then known to the
//! width of two brackets, not to a count, and under `-icount` (where a read takes
//! nanoseconds) a window of a hundred microseconds is enough. A reading whose
//! bracket is wide (the vCPU was descheduled while the host was busy) is taken
//! again, so that the error stays below [`MAX_ERROR_PPM`]. `-freq` on the command
//! line beats all of this; the caller checks it first.

use core::arch::x86_64::__cpuid;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::port::{inb, outb, Port};
use super::rdtsc;

/// Where a frequency came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    CommandLine,
    CpuidCrystal,
    CpuidBase,
    Hypervisor,
    /// Measured against PIT channel 2 across the loader's work.
    Pit,
    /// Measured against the local APIC timer across the loader's work.
    ApicTimer,
    Unknown,
}

/// A frequency, where it came from and over how long it was measured (0 when it
/// was not measured).
#[derive(Clone, Copy, Debug)]
pub struct Frequency {
    pub khz: u32,
    pub source: Source,
    pub window_us: u32,
}

/// Plausible TSC frequencies: anything else is a broken source.
const PLAUSIBLE_KHZ: core::ops::RangeInclusive<u64> = 100_000..=10_000_000;
/// The shortest measurement window, whatever the brackets say: a guard against a
/// reference that moved a handful of counts.
const MIN_WINDOW_US: u64 = 50;
/// The most the two readings' brackets may add to the error, in parts per million
/// of the window: 0.1 %, a fifth of the 0.5 % the kernel's clock may be off.
const MAX_ERROR_PPM: u64 = 1_000;
/// Reads a PIT reading may take to see its count change (one count is 0.84 µs; a
/// read takes longer than that under emulation, and nanoseconds under `-icount`).
const MAX_EDGE_READS: u32 = 10_000;
/// How long to keep polling for a good reading before taking the best one.
const MAX_WINDOW_US: u64 = 40_000;
/// A bound on the readings, for a reference counter that does not move.
const MAX_READINGS: u32 = 100_000;
/// Readings taken at the start, the narrowest bracket kept: a vCPU descheduled in
/// the middle of the one start reading would otherwise spoil the whole window.
const START_READINGS: u32 = 3;
/// How often [`measure`] may read again, or begin a new window, when a long window is
/// still too uncertain.
const MAX_NEW_WINDOWS: u32 = 2;

/// The frequency in kHz from CPUID or the hypervisor, if they tell it.
fn from_cpuid_or_hypervisor() -> Option<(u32, Source)> {
    from_cpuid().or_else(from_hypervisor)
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
/// Channel 2, low then high byte, mode 0 (interrupt on terminal count), binary.
const PIT_CHANNEL2_MODE0: u8 = 0b1011_0000;
/// Read-back command for channel 2: latch its count and its status.
const PIT_READ_BACK_CHANNEL2: u8 = 0b1100_1000;
/// In a read-back status: the OUT pin (in mode 0: high once the count passed zero).
const PIT_STATUS_OUT: u8 = 1 << 7;
/// In a read-back status: the access mode and operating mode as programmed.
const PIT_STATUS_MODE_MASK: u8 = 0b0011_1110;
/// Port B's bits: bit 0 gates channel 2, bit 1 drives the speaker.
const PORT_B_GATE2: u8 = 1 << 0;
const PORT_B_SPEAKER: u8 = 1 << 1;

/// The local APIC's registers (xAPIC, identity-mapped by the boot tables).
const APIC_BASE: u64 = 0xFEE0_0000;
const APIC_LVT_TIMER: u64 = 0x320;
const APIC_TIMER_INITIAL: u64 = 0x380;
const APIC_TIMER_CURRENT: u64 = 0x390;
const APIC_TIMER_DIVIDE: u64 = 0x3E0;
/// LVT timer: masked, one-shot.
const APIC_LVT_MASKED: u32 = 1 << 16;
/// Divide configuration 0b1011: divide by 1.
const APIC_DIVIDE_BY_1: u32 = 0b1011;
/// The APIC timer's rate under QEMU and KVM (their APIC bus runs at 1 GHz).
const APIC_TIMER_HZ: u64 = 1_000_000_000;
/// IA32_APIC_BASE: bit 11 enables the APIC.
const MSR_APIC_BASE: u32 = 0x1B;
const APIC_GLOBAL_ENABLE: u64 = 1 << 11;

fn apic_read(register: u64) -> u32 {
    // SAFETY: the APIC's MMIO page is identity-mapped by the boot tables; reading a
    // timer register has no side effect.
    unsafe { core::ptr::read_volatile((APIC_BASE + register) as *const u32) }
}

fn apic_write(register: u64, value: u32) {
    // SAFETY: as in `apic_read`; only the timer's registers are written, with its
    // interrupt masked.
    unsafe { core::ptr::write_volatile((APIC_BASE + register) as *mut u32, value) }
}

/// Which reference counter [`start`] started.
const REFERENCE_NONE: u8 = 0;
const REFERENCE_PIT: u8 = 1;
const REFERENCE_APIC: u8 = 2;

static REFERENCE: AtomicU8 = AtomicU8::new(REFERENCE_NONE);
/// The TSC before the start reading.
static START_TSC: AtomicU64 = AtomicU64::new(0);
/// The width of the start reading's bracket, in TSC ticks.
static START_BRACKET: AtomicU64 = AtomicU64::new(0);
/// The reference count at the start reading.
static START_COUNT: AtomicU32 = AtomicU32::new(0);

/// One bracketed reading: the TSC before and after, the reference count.
struct Reading {
    before: u64,
    after: u64,
    count: u32,
    /// The reference wrapped (PIT) or expired (APIC) since it was started.
    expired: bool,
}

impl Reading {
    fn middle(&self) -> u64 {
        self.before + self.after.wrapping_sub(self.before) / 2
    }

    fn bracket(&self) -> u64 {
        self.after.wrapping_sub(self.before)
    }
}

/// A PIT reading at the moment its count changed: reads until the count differs from
/// the first read's; the change happened between the two reads' latches, so the
/// bracket runs from the earlier read's start to the later one's end, and the count
/// is the new one from its first moment, not from somewhere within its 0.84 µs.
fn read_pit_edge() -> Reading {
    let mut previous = read_pit_once();
    for _ in 0..MAX_EDGE_READS {
        let reading = read_pit_once();
        if reading.count != previous.count || reading.expired {
            return Reading {
                before: previous.before,
                ..reading
            };
        }
        previous = reading;
    }
    // A count that does not move: the caller sees no progress and gives up.
    previous
}

fn read_pit_once() -> Reading {
    let before = rdtsc();
    outb(Port::PIT_COMMAND, PIT_READ_BACK_CHANNEL2);
    let status = inb(Port::PIT_CHANNEL2_DATA);
    let low = inb(Port::PIT_CHANNEL2_DATA);
    let high = inb(Port::PIT_CHANNEL2_DATA);
    let after = rdtsc();
    Reading {
        before,
        after,
        count: u32::from(u16::from_le_bytes([low, high])),
        expired: status & PIT_STATUS_OUT != 0,
    }
}

fn read_apic() -> Reading {
    let before = rdtsc();
    let count = apic_read(APIC_TIMER_CURRENT);
    let after = rdtsc();
    Reading {
        before,
        after,
        count,
        expired: count == 0,
    }
}

/// Programs PIT channel 2 to count down from 0xFFFF (54.9 ms) and checks that a PIT
/// answers: its read-back status must show the mode just programmed (an absent
/// device reads 0xFF).
fn start_pit() -> bool {
    let port_b = inb(Port::PORT_B);
    outb(Port::PORT_B, (port_b & !PORT_B_SPEAKER) | PORT_B_GATE2);
    outb(Port::PIT_COMMAND, PIT_CHANNEL2_MODE0);
    outb(Port::PIT_CHANNEL2_DATA, 0xFF);
    outb(Port::PIT_CHANNEL2_DATA, 0xFF);
    outb(Port::PIT_COMMAND, PIT_READ_BACK_CHANNEL2);
    let status = inb(Port::PIT_CHANNEL2_DATA);
    let _ = (inb(Port::PIT_CHANNEL2_DATA), inb(Port::PIT_CHANNEL2_DATA));
    status & PIT_STATUS_MODE_MASK == PIT_CHANNEL2_MODE0 & PIT_STATUS_MODE_MASK
}

/// Starts the APIC timer counting down from `u32::MAX` (4.3 s at 1 GHz), its
/// interrupt masked. False when the APIC is disabled.
fn start_apic() -> bool {
    // SAFETY: reading IA32_APIC_BASE has no side effect; every x86_64 CPU has it.
    let base = unsafe { x86_64::registers::model_specific::Msr::new(MSR_APIC_BASE).read() };
    if base & APIC_GLOBAL_ENABLE == 0 || base & 0xFFFF_F000 != APIC_BASE {
        return false;
    }
    apic_write(APIC_LVT_TIMER, APIC_LVT_MASKED);
    apic_write(APIC_TIMER_DIVIDE, APIC_DIVIDE_BY_1);
    apic_write(APIC_TIMER_INITIAL, u32::MAX);
    true
}

/// Starts the reference counter and reads it. Call first thing: the longer the
/// loader works after this, the better [`measure`] knows the frequency.
pub fn start() {
    let (reference, read): (u8, fn() -> Reading) = if start_pit() {
        (REFERENCE_PIT, read_pit_edge)
    } else if start_apic() {
        (REFERENCE_APIC, read_apic)
    } else {
        return;
    };
    let mut reading = read();
    for _ in 1..START_READINGS {
        let again = read();
        if again.bracket() < reading.bracket() {
            reading = again;
        }
    }
    START_TSC.store(reading.before, Ordering::Relaxed);
    START_BRACKET.store(reading.bracket(), Ordering::Relaxed);
    START_COUNT.store(reading.count, Ordering::Relaxed);
    REFERENCE.store(reference, Ordering::Relaxed);
}

/// The TSC frequency: from CPUID or the hypervisor when they tell it, else measured
/// against the reference [`start`] started, else unknown (0).
pub fn measure() -> Frequency {
    if let Some((khz, source)) = from_cpuid_or_hypervisor() {
        return Frequency {
            khz,
            source,
            window_us: 0,
        };
    }
    type Restart = fn() -> bool;
    let (read, restart, hz, mask, source): (fn() -> Reading, Restart, u64, u32, Source) =
        match REFERENCE.load(Ordering::Relaxed) {
            REFERENCE_PIT => (read_pit_edge, start_pit, PIT_HZ, 0xFFFF, Source::Pit),
            REFERENCE_APIC => (
                read_apic,
                start_apic,
                APIC_TIMER_HZ,
                u32::MAX,
                Source::ApicTimer,
            ),
            _ => {
                return Frequency {
                    khz: 0,
                    source: Source::Unknown,
                    window_us: 0,
                }
            }
        };
    let mut start = Reading {
        before: START_TSC.load(Ordering::Relaxed),
        after: START_TSC.load(Ordering::Relaxed) + START_BRACKET.load(Ordering::Relaxed),
        count: START_COUNT.load(Ordering::Relaxed),
        expired: false,
    };
    // The best estimate so far: (uncertainty in ppm, reference counts, TSC ticks).
    let mut best: Option<(u64, u64, u64)> = None;
    let mut new_windows = 0;
    for _ in 0..MAX_READINGS {
        let reading = read();
        if reading.expired {
            // The window outgrew the counter (a slow debug build): start it again,
            // and measure a short window by polling.
            if !restart() {
                break;
            }
            start = read();
            best = None;
            continue;
        }
        // The counters count down.
        let counts = u64::from(start.count.wrapping_sub(reading.count) & mask);
        let ticks = reading.middle().wrapping_sub(start.middle());
        if counts == 0 || ticks == 0 {
            continue;
        }
        let uncertainty = (start.bracket() + reading.bracket()).saturating_mul(1_000_000) / ticks;
        if best.is_none_or(|(u, _, _)| uncertainty <= u) {
            best = Some((uncertainty, counts, ticks));
        }
        let window_us = counts * 1_000_000 / hz;
        if window_us >= MIN_WINDOW_US && uncertainty <= MAX_ERROR_PPM {
            break;
        }
        if window_us >= MAX_WINDOW_US {
            // A long window, and still too uncertain: a bracket is wide (the host took
            // the vCPU away in the middle of a reading). This reading's: the next one
            // is taken at once. The start reading's: begin a new window from a fresh
            // reading and poll it (a millisecond or so) rather than hand the kernel a
            // frequency that is off by percents.
            if new_windows == MAX_NEW_WINDOWS {
                break;
            }
            new_windows += 1;
            if start.bracket() > reading.bracket() {
                start = read();
                best = None;
            }
        }
    }
    let measured = best.and_then(|(_, counts, ticks)| {
        Some(Frequency {
            khz: plausible(ticks * hz / counts / 1000)?,
            source,
            window_us: u32::try_from(counts * 1_000_000 / hz).unwrap_or(u32::MAX),
        })
    });
    measured.unwrap_or(Frequency {
        khz: 0,
        source: Source::Unknown,
        window_us: 0,
    })
}
