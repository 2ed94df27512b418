//! How Hermit kernels 0.6–0.10 learn the TSC frequency on a Multiboot boot, so that
//! the `calibrating` kernel costs what they cost: the `-freq <MHz>` kernel option if
//! given (see [`crate::cmdline::freq_mhz`]); otherwise a measurement against the
//! PIT, the one timer of known frequency; and if there is no PIT (QEMU's microvm), a
//! guess of 2 GHz.
//!
//! The measurement (hermit-os/kernel `src/arch/x86_64/kernel/processor.rs`):
//! program PIT channel 0 as a rate generator at 100 Hz, wait for the next tick
//! (giving up after 120,000,000 TSC ticks), then count TSC ticks over 3 PIT ticks
//! (30 ms): `MHz = 100 * cycles / (1_000_000 * 3)`, truncated to a `u16`, 0 meaning
//! failure. Hermit counts ticks in the timer interrupt's handler; the test kernels
//! run with interrupts off, so they poll the latched counter instead and see a tick
//! as the count jumping back up to the reload value. Only the clock is hardware
//! ([`PitClock`]); the logic here runs on the host against a simulated PIT.

#![forbid(unsafe_code)]

/// The PIT's input clock.
pub const PIT_HZ: u64 = 1_193_182;
/// The tick rate Hermit programs for the measurement.
pub const TICK_HZ: u64 = 100;
/// PIT ticks the measurement spans.
pub const TICKS_MEASURED: u64 = 3;
/// TSC ticks Hermit waits for the first PIT tick before it gives up.
pub const FIRST_TICK_TIMEOUT: u64 = 120_000_000;
/// TSC ticks the test kernel waits for the three ticks before it gives up too (its
/// own safeguard against a PIT that stops, where Hermit would wait forever): longer
/// than three ticks at any frequency whose MHz fit in a `u16` (2^32 > 65535 MHz *
/// 30 ms).
pub const MEASUREMENT_TIMEOUT: u64 = 1 << 32;
/// The frequency Hermit assumes when nothing else told it one.
pub const GUESS_MHZ: u16 = 2000;
/// The warning Hermit prints with its guess (a record of its 0.6 logger, as
/// [`crate::hermit_log::OLDER`]).
pub const GUESS_MESSAGE: &str =
    "[0][WARN] Could not determine the processor frequency! Guess a frequency of 2Ghz!";

/// The reload value for a tick rate, rounded to the nearest count as Hermit does:
/// 11932 for 100 Hz.
pub const fn reload(tick_hz: u64) -> u16 {
    ((PIT_HZ + tick_hz / 2) / tick_hz) as u16
}

/// PIT channel 0 and the TSC, as the measurement uses them.
pub trait PitClock {
    /// Programs channel 0 as a rate generator (mode 2) counting down from `reload`.
    fn start_rate_generator(&mut self, reload: u16);
    /// Latches channel 0's count and reads it.
    fn count(&mut self) -> u16;
    /// The time-stamp counter.
    fn tsc(&mut self) -> u64;
}

/// Where the frequency came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The `-freq` kernel option.
    Cmdline,
    /// Measured against the PIT.
    Pit,
    /// Nothing worked: [`GUESS_MHZ`].
    Guess,
}

impl Source {
    /// The name printed as `freq_source=`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Cmdline => "cmdline",
            Source::Pit => "pit",
            Source::Guess => "guess",
        }
    }
}

/// The outcome of [`detect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frequency {
    /// Where it came from.
    pub source: Source,
    /// The TSC frequency in MHz (never 0).
    pub mhz: u16,
    /// TSC ticks the detection took.
    pub tsc_ticks: u64,
}

impl Frequency {
    /// How long the detection took in microseconds, by the frequency it found.
    pub fn micros(&self) -> u64 {
        self.tsc_ticks / u64::from(self.mhz)
    }
}

/// Finds the TSC frequency as a Hermit 0.6–0.10 kernel does: `cmdline_mhz` (the
/// `-freq` value) unless absent or 0, else a PIT measurement, else the guess.
pub fn detect(cmdline_mhz: Option<u16>, clock: &mut impl PitClock) -> Frequency {
    let start = clock.tsc();
    let (source, mhz) = match cmdline_mhz {
        Some(mhz) if mhz > 0 => (Source::Cmdline, mhz),
        _ => match measure(clock) {
            Some(mhz) => (Source::Pit, mhz),
            None => (Source::Guess, GUESS_MHZ),
        },
    };
    Frequency {
        source,
        mhz,
        tsc_ticks: clock.tsc().wrapping_sub(start),
    }
}

/// Measures the TSC frequency in MHz over [`TICKS_MEASURED`] PIT ticks at
/// [`TICK_HZ`], starting at a tick edge. `None` if no tick came within
/// [`FIRST_TICK_TIMEOUT`] TSC ticks (no PIT), the ticks stopped, or the result is 0
/// or does not fit in a `u16`.
pub fn measure(clock: &mut impl PitClock) -> Option<u16> {
    clock.start_rate_generator(reload(TICK_HZ));
    let mut ticks = Ticks::new(clock);
    let waiting = clock.tsc();
    while !ticks.passed(clock) {
        if clock.tsc().wrapping_sub(waiting) > FIRST_TICK_TIMEOUT {
            return None;
        }
    }
    let start = clock.tsc();
    let mut counted = 0;
    while counted < TICKS_MEASURED {
        if ticks.passed(clock) {
            counted += 1;
        }
        if clock.tsc().wrapping_sub(start) > MEASUREMENT_TIMEOUT {
            return None;
        }
    }
    let cycles = clock.tsc().wrapping_sub(start);
    let mhz = TICK_HZ * cycles / (1_000_000 * TICKS_MEASURED);
    u16::try_from(mhz).ok().filter(|&mhz| mhz > 0)
}

/// Sees PIT ticks in successive counts: the counter runs down to 1 and reloads, so
/// a count above the one before is a tick.
struct Ticks {
    last: u16,
}

impl Ticks {
    fn new(clock: &mut impl PitClock) -> Ticks {
        Ticks {
            last: clock.count(),
        }
    }

    /// Whether a tick passed since the last call.
    fn passed(&mut self, clock: &mut impl PitClock) -> bool {
        let count = clock.count();
        let ticked = count > self.last;
        self.last = count;
        ticked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PIT and TSC simulated together: every access costs `step` TSC ticks, and
    /// the PIT's count follows from the TSC time since it was programmed.
    struct SimulatedClock {
        tsc: u64,
        tsc_hz: u64,
        step: u64,
        /// `None` for a machine without a PIT, whose ports read all ones.
        pit: Option<Pit>,
    }

    struct Pit {
        reload: u16,
        started_at: Option<u64>,
    }

    impl SimulatedClock {
        fn new(tsc_hz: u64, with_pit: bool) -> Self {
            SimulatedClock {
                tsc: 1_000_000,
                tsc_hz,
                step: 1_500,
                pit: with_pit.then_some(Pit {
                    reload: 0,
                    started_at: None,
                }),
            }
        }
    }

    impl PitClock for SimulatedClock {
        fn start_rate_generator(&mut self, reload: u16) {
            self.tsc += self.step;
            if let Some(pit) = &mut self.pit {
                pit.reload = reload;
                pit.started_at = Some(self.tsc);
            }
        }

        fn count(&mut self) -> u16 {
            self.tsc += self.step;
            match &self.pit {
                Some(Pit {
                    reload,
                    started_at: Some(at),
                }) => {
                    let pit_clocks =
                        u128::from(self.tsc - at) * u128::from(PIT_HZ) / u128::from(self.tsc_hz);
                    let reload = u128::from(*reload);
                    (reload - pit_clocks % reload) as u16
                }
                Some(_) => 0,
                None => 0xffff,
            }
        }

        fn tsc(&mut self) -> u64 {
            self.tsc += self.step;
            self.tsc
        }
    }

    #[test]
    fn the_reload_value_rounds_to_the_nearest_count() {
        assert_eq!(reload(100), 11932);
        assert_eq!(reload(1000), 1193);
    }

    #[test]
    fn measures_the_simulated_frequency() {
        for mhz in [1000u64, 2300, 2800, 3600] {
            let mut clock = SimulatedClock::new(mhz * 1_000_000, true);
            let measured = measure(&mut clock).expect("a measurement");
            // The PIT period for 100 Hz is 11932 counts, a little over 10 ms, and the
            // result is truncated: at most 1 MHz low.
            assert!(
                u64::from(measured) == mhz || u64::from(measured) + 1 == mhz,
                "{measured} MHz for {mhz}"
            );
        }
    }

    #[test]
    fn the_measurement_starts_at_a_tick_and_spans_three() {
        let tsc_hz = 2_000_000_000;
        let mut clock = SimulatedClock::new(tsc_hz, true);
        let found = detect(None, &mut clock);
        assert_eq!(found.source, Source::Pit);
        // Three periods (30 ms) at least, and less than four plus the overhead.
        let period_us = 1_000_000 * u64::from(reload(TICK_HZ)) / PIT_HZ;
        assert!(found.micros() >= 3 * period_us, "{found:?}");
        assert!(found.micros() < 4 * period_us + 100, "{found:?}");
    }

    #[test]
    fn without_a_pit_it_waits_then_guesses() {
        let mut clock = SimulatedClock::new(2_500_000_000, false);
        let found = detect(None, &mut clock);
        assert_eq!(found.source, Source::Guess);
        assert_eq!(found.mhz, GUESS_MHZ);
        assert!(found.tsc_ticks > FIRST_TICK_TIMEOUT, "{found:?}");
        assert!(found.micros() >= FIRST_TICK_TIMEOUT / u64::from(GUESS_MHZ));
    }

    #[test]
    fn the_command_line_wins_and_costs_no_measurement() {
        let mut clock = SimulatedClock::new(2_500_000_000, true);
        let found = detect(Some(2300), &mut clock);
        assert_eq!((found.source, found.mhz), (Source::Cmdline, 2300));
        assert!(clock.pit.as_ref().unwrap().started_at.is_none());
        assert_eq!(found.tsc_ticks, clock.step, "one TSC read after the first");
        // A zero from the command line would divide by zero later: Hermit measures.
        let found = detect(Some(0), &mut clock);
        assert_eq!(found.source, Source::Pit);
    }

    #[test]
    fn a_frequency_beyond_a_u16_is_no_measurement() {
        let mut clock = SimulatedClock::new(70_000_000_000, true);
        clock.step = 20_000;
        assert_eq!(measure(&mut clock), None);
    }

    #[test]
    fn source_names() {
        let names = [Source::Cmdline, Source::Pit, Source::Guess].map(Source::name);
        assert_eq!(names, ["cmdline", "pit", "guess"]);
    }
}
