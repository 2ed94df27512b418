//! The report layer: reports built from a decoded boot, a timeline of boot stages
//! with a summary, a memory map, and their renderings (text, JSON, Chrome trace,
//! SVG), and boot profiles over several boots. Everything here is pure: a
//! [`BootRecord`] in (and the application's symbols, read from bytes), a [`Report`]
//! and text out; no file, terminal or thread (it imports nothing of `crate::host`:
//! `tests/layers.rs` holds it to that).
//!
//! [`Report::build`] derives everything once (`timeline`, `memory`, `outcome`); the
//! renderings only format it. The JSON rendering is the [`Report`] itself, serialized:
//! its schema is documented in `docs/report-schema.md` and `docs/report-schema.json`.

pub mod after;
mod chrome;
pub mod crash;
pub mod format;
pub mod memory;
pub mod outcome;
pub mod profile;
pub mod registers;
pub mod stages;
mod svg;
pub mod symbols;
pub mod terminal;
#[cfg(test)]
mod tests;
mod text;
pub mod timeline;

use std::time::Duration;

use serde::Serialize;

use rusty_loader::wire::LoaderEvent;

// The report's input is the decoding layer's `BootRecord`; `crate::ending` (moving to
// xtask, issue 19) still reads it from this path.
pub(crate) use crate::decode::BootRecord;
use crate::decode::{format_mismatch, Event, HostTimes};
use format::{escape_text, human_us, round_ns, ser_opt_hex, Clock};
pub use memory::{Region, RegionKind};
pub use outcome::{ExitStatus, Outcome, OutcomeKind};
use symbols::AppSymbols;
pub use timeline::{Stage, Timeline};

/// The schema name in every JSON report.
pub const SCHEMA: &str = "rusty-trace/report";
/// The schema version: bumped when a field changes meaning or is removed (adding a
/// field does not bump it).
pub const SCHEMA_VERSION: u32 = 2;

/// The first event matching a pattern of [`LoaderEvent`], mapped to a value:
/// `first!(events, |e| LoaderEvent::Tls { start, .. } => (e.timestamp, *start))`.
macro_rules! first {
    ($events:expr, |$event:ident| $pattern:pat => $value:expr) => {
        $events.iter().find_map(|$event| match &$event.kind {
            $pattern => Some($value),
            #[allow(unreachable_patterns)]
            _ => None,
        })
    };
    ($events:expr, $pattern:pat => $value:expr) => {
        first!($events, |_event| $pattern => $value)
    };
}
pub(crate) use first;

/// Something a reader should look at: an overlap, a damaged stream, a clock that
/// cannot be read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Warning {
    /// The kind: `overlap`, `outside-ram`, `stream`, `frequency`, `format`,
    /// `timeline`, `exit-status` or `app` (the application ELF given does not match
    /// the boot).
    pub kind: &'static str,
    /// One sentence for people.
    pub message: String,
    /// Indexes into [`Report::memory`] of the regions concerned.
    pub regions: Vec<usize>,
}

impl Warning {
    fn new(kind: &'static str, message: String) -> Warning {
        Warning {
            kind,
            message,
            regions: Vec::new(),
        }
    }
}

/// The loader's identity and inputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoaderInfo {
    /// The trace format version (`LoaderStart.format`).
    pub format: Option<u64>,
    /// The build identity, as a `0x` hex string.
    #[serde(serialize_with = "ser_opt_hex")]
    pub build: Option<u64>,
    /// The address EBX held at the entry: the Multiboot information's, or after a
    /// PVH entry the start info's.
    #[serde(serialize_with = "ser_opt_hex")]
    pub mbi: Option<u64>,
    /// The boot protocol the loader was entered through (`multiboot`, `pvh`), when
    /// the trace names it (`Entry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// The MBI the loader wrote for the kernel after a PVH entry: address, size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mbi_built: Option<BuiltMbi>,
    /// The Multiboot command line.
    pub command_line: Option<CommandLine>,
}

/// The Multiboot information the loader wrote (after a PVH entry).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BuiltMbi {
    /// Its address, as a `0x` hex string.
    #[serde(serialize_with = "format::ser_hex")]
    pub addr: u64,
    /// Its size in bytes, memory map and command line included.
    pub size: u64,
}

/// The Multiboot command line, as the loader split it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandLine {
    /// The whole line, unchanged.
    pub text: String,
    /// Where the kernel arguments start (byte offset), if there are any.
    pub kernel_args_at: Option<u64>,
    /// Where the application arguments (after `--`) start, if there are any.
    pub app_args_at: Option<u64>,
}

/// The TSC frequency that turns ticks into time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Frequency {
    /// kHz; 0 when unknown (then every time in the report is in ticks).
    pub khz: u64,
    /// Where the loader got it (`cmdline`, `cpuid-15h`, `pit`, ...).
    pub source: Option<String>,
    /// How long the loader measured it, in microseconds (None when it was not
    /// measured, or the trace does not say).
    pub window_us: Option<u64>,
    /// Whether ticks can be turned into time.
    pub known: bool,
}

/// The validated application (`Kernel`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelInfo {
    /// `dyn` or `exec`.
    pub kind: String,
    /// The HERMIT note's entry version.
    pub entry_version: Option<u64>,
    /// The kernel version from the ABI-tag note (`0.0.0` when absent).
    pub version: String,
    /// The kernel generation whose rules it relies on.
    pub generation: String,
    /// The number of `PT_LOAD` segments.
    pub segments: Option<u64>,
    /// The load base.
    #[serde(serialize_with = "ser_opt_hex")]
    pub base: Option<u64>,
    /// The relocated entry point.
    #[serde(serialize_with = "ser_opt_hex")]
    pub entry: Option<u64>,
}

/// The relocations applied (`Relocated`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Relocations {
    /// `R_X86_64_RELATIVE` relocations.
    pub relative: Option<u64>,
    /// `R_X86_64_64` relocations.
    pub abs64: Option<u64>,
    /// `R_X86_64_GLOB_DAT` relocations.
    pub glob_dat: Option<u64>,
    /// Weak undefined symbols skipped.
    pub weak_skipped: Option<u64>,
}

/// The hand-over page tables (`PageTables`, `Mapping`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageTables {
    /// The rules they follow.
    pub contract: String,
    /// The PML4's address.
    #[serde(serialize_with = "ser_opt_hex")]
    pub pml4: Option<u64>,
    /// Table pages used.
    pub tables: Option<u64>,
    /// Bytes mapped with 4 KiB pages.
    pub bytes_4k: Option<u64>,
    /// Bytes mapped with 2 MiB pages.
    pub bytes_2m: Option<u64>,
    /// `Mapping` events seen (only in `debug` builds).
    pub mappings: usize,
}

/// Host-side times, in microseconds since the host began reading, and the stages
/// derived from them; all `None` unless the host read the stream live.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostReport {
    /// Whether the host saw the stream as QEMU sent it. Not for a recording, nor for
    /// a stream that arrived in one burst (buffered before it was read, as when a
    /// slow-starting reader is piped QEMU's output): their arrival times say when
    /// the reader got the bytes, not when the loader sent them, so every time below
    /// is then `None`.
    pub live: bool,
    /// The stream's first byte.
    pub first_byte_us: Option<f64>,
    /// Arrival of `LoaderStart`.
    pub loader_start_us: Option<f64>,
    /// Arrival of `HandOver`.
    pub hand_over_us: Option<f64>,
    /// The kernel's first output.
    pub first_kernel_output_us: Option<f64>,
    /// The end of the stream.
    pub end_us: Option<f64>,
    /// Firmware time: `LoaderStart`'s arrival minus the loader's own time to it,
    /// clamped at 0. Needs the TSC frequency.
    pub firmware_us: Option<f64>,
    /// From the hand-over's arrival to the kernel's first output.
    pub kernel_to_first_output_us: Option<f64>,
    /// From the hand-over's arrival to the end of the stream.
    pub kernel_to_exit_us: Option<f64>,
}

/// The health of the stream the events came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamHealth {
    /// Events decoded.
    pub events: usize,
    /// Names of events this decoder does not know (ignored), each once.
    pub unknown_events: Vec<String>,
    /// Frames that did not decode.
    pub malformed_frames: usize,
    /// The stream ended inside a frame.
    pub truncated: bool,
    /// Bytes of text seen.
    pub text_bytes: usize,
}

/// Everything the report says about one boot. Serialized, it is the JSON report
/// (`docs/report-schema.md`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Always [`SCHEMA_VERSION`].
    pub version: u32,
    /// The one-line summary ([`Report::summary_line`]).
    pub summary: String,
    /// The loader's identity and inputs.
    pub loader: LoaderInfo,
    /// The TSC frequency.
    pub frequency: Frequency,
    /// The application, when the loader got that far.
    pub kernel: Option<KernelInfo>,
    /// The relocations, when the loader got that far.
    pub relocations: Option<Relocations>,
    /// The page tables, when the loader got that far.
    pub page_tables: Option<PageTables>,
    /// The boot stages.
    pub timeline: Timeline,
    /// Host-side times.
    pub host: HostReport,
    /// Every memory region, sorted by address, containers first.
    pub memory: Vec<Region>,
    /// How the boot ended.
    pub outcome: Outcome,
    /// A CPU exception's diagnosis: RIP and the stack's return addresses as code
    /// (named with the application's ELF), the faulting address classified.
    pub crash: Option<crash::Crash>,
    /// How QEMU saw the guest stop (triple fault, reset, power-off, hang), when it
    /// was asked (`cargo xtask trace`).
    pub stop: Option<after::StopReport>,
    /// The kernel's text over time: milestones and the largest gaps between lines.
    pub kernel_text: after::KernelText,
    /// The stream's health.
    pub stream: StreamHealth,
    /// Everything a reader should look at.
    pub warnings: Vec<Warning>,
}

/// A duration in microseconds, rounded like every other time in the report.
fn us(duration: Duration) -> f64 {
    round_ns(duration.as_secs_f64() * 1_000_000.0)
}

impl Report {
    /// Derives the whole report from a boot record. Never fails: missing or damaged
    /// events leave the parts they would fill empty, with a warning where it helps.
    pub fn build(record: &BootRecord) -> Report {
        Report::build_with_app(record, None)
    }

    /// [`Report::build`], with the application's symbols to name the code addresses
    /// of a crash.
    pub fn build_with_app(record: &BootRecord, app: Option<&AppSymbols>) -> Report {
        // A stream can hold several boots (a guest that resets, recordings joined
        // together): the report is about one boot, the last, and says so. Mixing them
        // would also make every region of one boot "overlap" the same region of the
        // others.
        let is_start = |e: &Event| matches!(e.kind, LoaderEvent::LoaderStart { .. });
        let boots = record
            .earlier_boots
            .saturating_add(record.events.iter().filter(|e| is_start(e)).count());
        let last_start = record.events.iter().rposition(is_start);
        let events = &record.events[last_start.unwrap_or(0)..];
        let mut warnings = Vec::new();
        if boots > 1 {
            warnings.push(Warning::new(
                "stream",
                format!("the stream holds {boots} boots; this report covers the last one"),
            ));
        }

        // Stream health first: it qualifies everything after it.
        let mut unknown_events: Vec<String> = Vec::new();
        let mut unknown_seen = std::collections::HashSet::new();
        for e in events {
            if let LoaderEvent::Unknown { name, .. } = &e.kind {
                if unknown_seen.insert(name.as_str()) {
                    unknown_events.push(name.clone());
                }
            }
        }
        if record.malformed_frames > 0 {
            warnings.push(Warning::new(
                "stream",
                format!(
                    "{} frame(s) did not decode: events may be missing, and times after them are early by the ticks they carried",
                    record.malformed_frames
                ),
            ));
        }
        if record.truncated {
            warnings.push(Warning::new(
                "stream",
                "the stream ended inside a frame".to_string(),
            ));
        }
        if !unknown_events.is_empty() {
            let names: Vec<String> = unknown_events.iter().map(|n| escape_text(n)).collect();
            warnings.push(Warning::new(
                "stream",
                format!("events of unknown kinds were ignored: {}", names.join(", ")),
            ));
        }

        let start = first!(events, LoaderEvent::LoaderStart { format, build, mbi } => (*format, *build, *mbi));
        let format = start.map(|(format, _, _)| u64::from(format));
        if let Some(warning) = format.and_then(format_mismatch) {
            warnings.push(Warning::new("format", warning));
        }
        let loader = LoaderInfo {
            format,
            build: start.map(|(_, build, _)| u64::from(build)),
            mbi: start.map(|(_, _, mbi)| u64::from(mbi)),
            entry: first!(events, LoaderEvent::Entry { protocol } => protocol.clone()),
            mbi_built: first!(events, LoaderEvent::MbiBuilt { addr, size } => BuiltMbi {
                addr: u64::from(*addr),
                size: u64::from(*size),
            }),
            command_line: first!(events, LoaderEvent::CommandLine { kernel_args_at, app_args_at, text } => {
                // 65535 marks an absent part.
                let at = |offset: u16| (offset != u16::MAX).then_some(u64::from(offset));
                CommandLine {
                    text: text.clone(),
                    kernel_args_at: at(*kernel_args_at),
                    app_args_at: at(*app_args_at),
                }
            }),
        };

        let frequency_event = first!(events, LoaderEvent::Frequency { khz, source, window_us } => (u64::from(*khz), source.clone(), u64::from(*window_us)));
        let khz = frequency_event.as_ref().map_or(0, |(khz, _, _)| *khz);
        let frequency = Frequency {
            khz,
            source: frequency_event
                .as_ref()
                .map(|(_, source, _)| source.clone()),
            window_us: frequency_event
                .as_ref()
                .map(|(_, _, window)| *window)
                .filter(|&w| w > 0),
            known: khz > 0,
        };
        if khz == 0 && !record.errors_only {
            let why = if frequency_event.is_some() {
                "the TSC frequency is unknown"
            } else {
                "no Frequency event"
            };
            warnings.push(Warning::new(
                "frequency",
                format!("{why}: times are shown in TSC ticks"),
            ));
        }
        let clock = Clock { khz };

        let kernel = first!(events, LoaderEvent::Kernel { kind, entry_version, major, minor, patch, generation, segments, base, entry } => KernelInfo {
            kind: kind.clone(),
            entry_version: Some(u64::from(*entry_version)),
            version: format!("{major}.{minor}.{patch}"),
            generation: generation.clone(),
            segments: Some(u64::from(*segments)),
            base: Some(*base),
            entry: Some(*entry),
        });
        let relocations = first!(events, LoaderEvent::Relocated { relative, abs64, glob_dat, weak_skipped, .. } => Relocations {
            relative: Some(u64::from(*relative)),
            abs64: Some(u64::from(*abs64)),
            glob_dat: Some(u64::from(*glob_dat)),
            weak_skipped: Some(u64::from(*weak_skipped)),
        });
        let mappings = events
            .iter()
            .filter(|e| matches!(e.kind, LoaderEvent::Mapping { .. }))
            .count();
        let page_tables = first!(events, LoaderEvent::PageTables { contract, pml4, tables, bytes_4k, bytes_2m, .. } => PageTables {
            contract: contract.clone(),
            pml4: Some(*pml4),
            tables: Some(u64::from(*tables)),
            bytes_4k: Some(*bytes_4k),
            bytes_2m: Some(*bytes_2m),
            mappings,
        });

        let timeline = timeline::build(events, clock, record.trace_bytes, &mut warnings);
        let memory = memory::regions(events, record.loader_image);
        warnings.extend(memory::check(&memory));
        let outcome = outcome::build(
            events,
            record.exit_status,
            record.errors_only,
            &mut warnings,
        );
        let host = host_report(&record.host, events, clock);
        let crash = crash::build(events, record.loader_image, app);
        let stop = record.qemu_stop.as_ref().map(|stop| {
            after::stop_report(
                stop,
                events,
                record.loader_image,
                &record.host,
                &record.text_lines,
                app,
            )
        });
        let mut outcome = outcome;
        if let Some(stop) = &stop {
            outcome.kind = match stop.kind {
                "triple-fault" => OutcomeKind::TripleFault,
                "guest-reset" => OutcomeKind::GuestReset,
                "hang" => OutcomeKind::Hang,
                _ => OutcomeKind::Shutdown,
            };
            outcome.message = match &outcome.hand_over {
                Some(_) => format!("{}, then {}", outcome.message, stop.message),
                None => stop.message.clone(),
            };
        }
        let kernel_text = after::kernel_text(&record.text_lines, &record.host, host.live);
        if let Some(warning) = app.and_then(|app| crash::app_mismatch(events, app)) {
            warnings.push(Warning::new("app", warning));
        }

        let mut report = Report {
            schema: SCHEMA,
            version: SCHEMA_VERSION,
            summary: String::new(),
            loader,
            frequency,
            kernel,
            relocations,
            page_tables,
            timeline,
            host,
            memory,
            outcome,
            crash,
            stop,
            kernel_text,
            stream: StreamHealth {
                events: events.len(),
                unknown_events,
                malformed_frames: record.malformed_frames,
                truncated: record.truncated,
                text_bytes: record.text_bytes,
            },
            warnings,
        };
        report.summary = report.make_summary();
        report
    }

    /// The clock that turns this boot's ticks into time.
    pub fn clock(&self) -> Clock {
        Clock {
            khz: self.frequency.khz,
        }
    }

    /// One line in the spirit of `systemd-analyze time`, e.g. `boot: 41.2 ms
    /// firmware + 14.4 ms loader (device tree 3.6 ms, ELF 2.8 ms, frequency 0.8 ms) +
    /// 12.0 ms kernel to first output`. The loader part names its three longest
    /// stages; a boot that did not reach the kernel says how it ended instead.
    pub fn summary_line(&self) -> String {
        self.summary.clone()
    }

    fn make_summary(&self) -> String {
        let clock = self.clock();
        let mut parts = Vec::new();
        if let Some(firmware) = self.host.firmware_us {
            parts.push(format!("{} firmware", human_us(firmware)));
        }
        if self.stream.events > 0 {
            let mut categories = self.timeline.categories();
            // A stable sort keeps stage order among equal lengths.
            categories.sort_by_key(|&(_, ticks)| std::cmp::Reverse(ticks));
            let top: Vec<String> = categories
                .iter()
                .take(3)
                .map(|&(name, ticks)| format!("{name} {}", clock.human(ticks)))
                .collect();
            let mut loader = format!("{} loader", clock.human(self.timeline.total_ticks));
            if !top.is_empty() {
                loader += &format!(" ({})", top.join(", "));
            }
            parts.push(loader);
        } else {
            parts.push("no loader events".to_string());
        }
        if let Some(kernel) = self.host.kernel_to_first_output_us {
            parts.push(format!("{} kernel to first output", human_us(kernel)));
        }
        let mut line = format!("boot: {}", parts.join(" + "));
        match self.outcome.kind {
            OutcomeKind::HandedOver => {}
            OutcomeKind::Refused => {
                let name = self.outcome.refusal.as_ref().map_or("?", |r| &r.name);
                line += &format!("; refused: {}", escape_text(name));
            }
            OutcomeKind::CpuException => {
                let x = self.outcome.exception.as_ref();
                let vector = x
                    .and_then(|x| x.vector)
                    .map_or("?".to_string(), |v| v.to_string());
                let name = x.map_or("?", |x| &x.name);
                line += &format!("; CPU exception {vector} ({name})");
            }
            OutcomeKind::Truncated if self.stream.events > 0 => {
                line += "; trace ended before the hand-over"
            }
            OutcomeKind::Truncated => {}
            OutcomeKind::ErrorsOnly => line += "; no error (only errors are traced)",
            OutcomeKind::TripleFault => line += "; triple fault after the hand-over",
            OutcomeKind::GuestReset => line += "; the guest reset",
            OutcomeKind::Shutdown => line += "; the guest shut down without an exit code",
            OutcomeKind::Hang => line += "; the kernel hung",
        }
        if !clock.known() && self.stream.events > 0 {
            line += " [TSC frequency unknown: ticks]";
        }
        line
    }

    /// The human report for a terminal or a pipe: summary, facts, timeline, memory
    /// map and warnings, within 80 columns. `color` adds ANSI colours. Text from the
    /// trace is escaped, so no control character from it reaches the terminal.
    pub fn render_text(&self, color: bool) -> String {
        text::render(self, color)
    }

    /// The whole report as pretty-printed JSON in the documented, versioned schema
    /// (`"schema": "rusty-trace/report", "version": 2`; docs/report-schema.md).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("a report is plain data with string keys, which always serializes")
    }

    /// The Chrome/Perfetto trace-event JSON: stages as complete events (`"ph":"X"`,
    /// `ts`/`dur` in µs; in ticks when the frequency is unknown, as the thread name
    /// says), the memory layout and the outcome as metadata. Opens in
    /// ui.perfetto.dev or chrome://tracing.
    pub fn to_chrome_trace(&self) -> String {
        chrome::render(self)
    }

    /// A standalone SVG: the boot chart (stages on a time axis) and a picture of the
    /// memory layout, readable in any browser.
    pub fn to_svg(&self) -> String {
        svg::render(self)
    }
}

/// For each region of the report, whether a warning names it: one pass over the
/// warnings, however many regions each names.
fn warned_regions(report: &Report) -> Vec<bool> {
    let mut warned = vec![false; report.memory.len()];
    for &index in report.warnings.iter().flat_map(|w| &w.regions) {
        if let Some(flag) = warned.get_mut(index) {
            *flag = true;
        }
    }
    warned
}

/// Whether the events arrived as the loader sent them: the loader's time from the
/// first event timed when sent to the hand-over (or to its last event, and the end
/// of the stream) must show in their arrival times. A stream buffered before it was
/// read arrives at once; a live one takes about as long as the loader did (under
/// `-icount` virtual time may run a few times faster than the host's, which is why
/// the bar is a tenth). Spans of less than a millisecond prove nothing either way.
fn arrived_live(host: &HostTimes, events: &[Event], clock: Clock) -> bool {
    let Some(first_arrival) = host.first_timed_event else {
        return false;
    };
    let Some(first) = events.iter().find(|e| e.timed_when_sent()) else {
        return false;
    };
    let hand_over = events
        .iter()
        .find(|e| matches!(e.kind, LoaderEvent::HandOver { .. }));
    let (last, last_arrival) = match (hand_over, host.hand_over) {
        (Some(event), Some(arrival)) => (event, arrival),
        _ => match (events.last(), host.end) {
            (Some(event), Some(arrival)) => (event, arrival),
            _ => return true,
        },
    };
    let loader_ticks = last.timestamp.saturating_sub(first.timestamp);
    let host_us = us(last_arrival.saturating_sub(first_arrival));
    match clock.us(loader_ticks) {
        Some(loader_us) if loader_us >= 1000.0 => host_us * 10.0 >= loader_us,
        Some(_) => true,
        // Without the frequency: a burst delivers both in the same read.
        None => loader_ticks == 0 || last_arrival != first_arrival,
    }
}

/// Host times in microseconds, and the stages derived from them; none unless the
/// stream arrived live.
fn host_report(host: &HostTimes, events: &[Event], clock: Clock) -> HostReport {
    if host.first_byte.is_none() || !arrived_live(host, events, clock) {
        return HostReport::default();
    }
    let first_timed = events.iter().find(|e| e.timed_when_sent());
    let between =
        |from: Option<Duration>, to: Option<Duration>| Some(us(to?.saturating_sub(from?)));
    // The host saw the first event timed when sent at the loader's time of that
    // event after the entry: the rest before it was firmware.
    let firmware_us = host.first_timed_event.and_then(|arrival| {
        let loader = clock.us(first_timed?.timestamp)?;
        Some(round_ns((us(arrival) - loader).max(0.0)))
    });
    HostReport {
        live: true,
        first_byte_us: host.first_byte.map(us),
        loader_start_us: host.loader_start.map(us),
        hand_over_us: host.hand_over.map(us),
        first_kernel_output_us: host.first_kernel_output.map(us),
        end_us: host.end.map(us),
        firmware_us,
        kernel_to_first_output_us: between(host.hand_over, host.first_kernel_output),
        kernel_to_exit_us: between(host.hand_over, host.end),
    }
}
