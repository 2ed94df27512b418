//! The `crashing` kernel: it fails on purpose right after the hand-over, in the
//! way its application argument names, before it loads an IDT of its own, so that
//! what the loader's exception handler, QEMU and the reports make of each failure
//! can be checked against the truth. And `gap`, which does not fail but waits
//! 50 ms between two lines, for the report's gaps between the kernel's lines.
//!
//! It stands in for an older-generation kernel (0.6–0.10: no ABI tag), so the
//! loader hands it `-freq` on its command line (the TSC frequency `gap` waits by)
//! and the recursive page-table entry `recursive-slot` removes.
//!
//! What each mode prints before it fails is the protocol: one `tk: crashing=<mode>`
//! line (none for `triple-fault`, which mimics a kernel that dies before its
//! first line), then the failure; `hang` and `gap` print a kernel log shaped like
//! a Hermit 0.6 kernel's first ([`crate::hermit_log::OLDER`]). [`Crash::from_args`] is pure and host-tested;
//! `run` (feature `bare-metal`) commits the failures through [`crate::arch::faults`].

#![forbid(unsafe_code)]

/// One way to fail (or, for `Gap`, to take time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// A read from an unmapped page just above the kernel's image.
    PageFault,
    /// A read through a null pointer (a field at offset 0x18).
    NullPointer,
    /// PML4[511] cleared, then read through: the page fault kernels 0.6–0.10 die of
    /// on page tables without the recursive entry.
    RecursiveSlot,
    /// `ud2`.
    InvalidOpcode,
    /// A read through a non-canonical address.
    GeneralProtection,
    /// Recursion until the 32 KiB stack runs into the guard page below it.
    StackOverflow,
    /// An empty IDT, then a trap: the CPU shuts down (no output before).
    TripleFault,
    /// Halts for ever after a kernel log and one line.
    Hang,
    /// Two lines 50 ms apart, an application line, then success.
    Gap,
}

impl Crash {
    /// Every mode, with its argument.
    pub const ALL: [(Crash, &'static str); 9] = [
        (Crash::PageFault, "page-fault"),
        (Crash::NullPointer, "null-pointer"),
        (Crash::RecursiveSlot, "recursive-slot"),
        (Crash::InvalidOpcode, "invalid-opcode"),
        (Crash::GeneralProtection, "general-protection"),
        (Crash::StackOverflow, "stack-overflow"),
        (Crash::TripleFault, "triple-fault"),
        (Crash::Hang, "hang"),
        (Crash::Gap, "gap"),
    ];

    /// The mode's argument (`page-fault`).
    pub fn name(self) -> &'static str {
        Crash::ALL
            .iter()
            .find(|(crash, _)| *crash == self)
            .map_or("?", |(_, name)| name)
    }

    /// The mode named by the first application argument; `None` without one, or
    /// for an unknown one.
    pub fn from_args<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> Option<Crash> {
        let first = args.next()?;
        Crash::ALL
            .iter()
            .find(|(_, name)| name.as_bytes() == first)
            .map(|(crash, _)| *crash)
    }
}

/// How long `gap` waits between its two lines.
pub const GAP_MS: u64 = 50;

#[cfg(feature = "bare-metal")]
pub use run::run;

#[cfg(feature = "bare-metal")]
mod run {
    //! Committing the failures.

    use super::{Crash, GAP_MS};
    use crate::arch::faults;
    use crate::arch::memory::mapped_bytes;
    use crate::arch::serial::{serial_init, Serial};
    use crate::arch::{cpu, port};
    use crate::bootinfo::{BootInfo, RAW_SIZE};
    use crate::report::{Dec, Hex, EXIT_SUCCESS};
    use crate::{cmdline, emit, hermit_log};

    /// Exit value for a run that could not even start failing (no boot info, no
    /// mode): the boot-info group's.
    fn give_up(why: &str) -> ! {
        emit!(&mut Serial, "tk: FAIL crashing: ", why, "\n");
        port::exit(crate::report::Group::BootInfo.exit_value())
    }

    /// Runs the mode the command line names.
    pub fn run(boot_info: u64) -> ! {
        serial_init();
        let raw = mapped_bytes(boot_info, RAW_SIZE as u64)
            .ok()
            .and_then(|bytes| <&[u8; RAW_SIZE]>::try_from(bytes).ok())
            .unwrap_or_else(|| give_up("the boot info is not mapped"));
        let info = BootInfo::parse(raw, crate::notes::ENTRY_VERSION);
        let line = mapped_bytes(info.cmdline_ptr, info.cmdline_len)
            .unwrap_or_else(|_| give_up("the command line is not mapped"));
        let Some(crash) = Crash::from_args(cmdline::app_args(line)) else {
            give_up("no mode: pass one of page-fault, null-pointer, recursive-slot, invalid-opcode, general-protection, stack-overflow, triple-fault, hang, gap after --")
        };
        let out = &mut Serial;
        if crash != Crash::TripleFault {
            emit!(out, "tk: crashing=", crash.name(), "\n");
        }
        match crash {
            Crash::PageFault => {
                // The first page past the kernel's 2 MiB pages: RAM, but unmapped.
                let above = (info.image_end + 0x1f_ffff) & !0x1f_ffff;
                faults::read_unmapped(above + 0x1000);
            }
            Crash::NullPointer => {
                faults::read_unmapped(0x18);
            }
            Crash::RecursiveSlot => {
                faults::walk_without_recursive_entry();
            }
            Crash::InvalidOpcode => faults::invalid_opcode(),
            Crash::GeneralProtection => {
                faults::read_non_canonical();
            }
            Crash::StackOverflow => {
                overflow_stack(0);
            }
            Crash::TripleFault => faults::triple_fault(),
            Crash::Hang => {
                hermit_log::write(out, hermit_log::OLDER);
                emit!(out, "tk: waiting for ever\n");
                faults::halt_forever()
            }
            Crash::Gap => gap(line),
        }
        give_up("the failure did not happen")
    }

    /// Recurses with 512 bytes of stack per call until the stack runs out.
    #[inline(never)]
    fn overflow_stack(depth: u64) -> u64 {
        let mut frame = [0u8; 512];
        frame[(depth % 512) as usize] = depth as u8;
        let frame = core::hint::black_box(&mut frame);
        // Never true: it keeps the recursion from being called unconditional.
        if depth == u64::MAX {
            return 0;
        }
        // Work after the call keeps it from becoming a loop.
        overflow_stack(depth + 1) + u64::from(frame[0])
    }

    /// A kernel log of the older generation's shape, two lines `GAP_MS` apart by
    /// the TSC (at the `-freq` the loader inserts), then a line without the `tk:`
    /// prefix, as an application's, then success.
    fn gap(cmdline: &[u8]) -> ! {
        let out = &mut Serial;
        let Ok(Some(mhz)) = cmdline::freq_mhz(cmdline) else {
            give_up("gap needs -freq on the command line (the loader inserts it)")
        };
        hermit_log::write(out, hermit_log::OLDER);
        emit!(out, "tk: waiting ", Dec(GAP_MS), " ms\n");
        let start = cpu::rdtsc();
        let ticks = u64::from(mhz) * 1000 * GAP_MS;
        while cpu::rdtsc().wrapping_sub(start) < ticks {
            core::hint::spin_loop();
        }
        emit!(out, "tk: waited ", Hex(ticks), " ticks\n");
        emit!(out, "Hello from the application after the gap\n");
        emit!(out, "tk: ok\n");
        port::exit(EXIT_SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_come_from_the_first_application_argument() {
        let args = |line: &'static [u8]| crate::cmdline::app_args(line);
        assert_eq!(
            Crash::from_args(args(b"loader -freq 2800 -- stack-overflow x")),
            Some(Crash::StackOverflow)
        );
        assert_eq!(Crash::from_args(args(b"loader -- gap")), Some(Crash::Gap));
        assert_eq!(Crash::from_args(args(b"loader gap")), None, "no --");
        assert_eq!(Crash::from_args(args(b"loader -- nonsense")), None);
        for (crash, name) in Crash::ALL {
            assert_eq!(crash.name(), name);
            assert_eq!(Crash::from_args([name.as_bytes()].into_iter()), Some(crash));
        }
    }
}
