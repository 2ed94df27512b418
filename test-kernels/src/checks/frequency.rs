//! Group `frequency` (the calibrating kernel only): finds the TSC frequency as a
//! Hermit 0.6–0.10 kernel does (see [`crate::frequency`]) and reports where it came
//! from, its value and what finding it cost: `tk: freq_source=cmdline|pit|guess`,
//! `tk: freq_mhz=<MHz>` and `tk: calibration_us=<µs>` (TSC ticks of the detection
//! divided by the frequency found), all in decimal. A bad `-freq` value fails
//! `freq-arg` of group `cmdline` (Hermit panics on it).

use super::verdict::fail;
use super::Context;
use crate::arch::pit::PitAndTsc;
use crate::cmdline;
use crate::emit;
use crate::frequency::{self, Source, GUESS_MESSAGE};
use crate::report::{self, Dec, Group};

/// Detects the frequency, then prints Hermit's warning if it had to guess, and the
/// facts.
pub fn run(ctx: &mut Context) {
    let bi = ctx.boot_info;
    let line = ctx.read("cmdline-mapped", bi.cmdline_ptr, bi.cmdline_len);
    let cmdline_mhz = cmdline::freq_mhz(line)
        .unwrap_or_else(|e| fail(Group::Cmdline, "freq-arg", &|s| emit!(s, e.describe())));
    let found = frequency::detect(cmdline_mhz, &mut PitAndTsc);

    let out = &mut ctx.out;
    if found.source == Source::Guess {
        emit!(out, GUESS_MESSAGE, "\n");
    }
    emit!(out, "tk: freq_source=", found.source.name(), "\n");
    emit!(out, "tk: freq_mhz=", Dec(found.mhz.into()), "\n");
    emit!(out, "tk: calibration_us=", Dec(found.micros()), "\n");
    report::passed(out, "frequency");
}
