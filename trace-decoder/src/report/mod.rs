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
pub mod ending;
mod facts;
pub mod format;
mod host_times;
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
pub mod uefi;

use serde::Serialize;

use rusty_loader::wire::LoaderEvent;

// The report's input is the decoding layer's `BootRecord`.
use crate::decode::BootRecord;
// (`HostTimes` for the tests, which see this module's names.)
#[cfg(test)]
use crate::decode::HostTimes;
use crate::decode::{format_mismatch, Event};
pub use facts::{
    BuiltMbi, CommandLine, Frequency, KernelInfo, LoaderInfo, PageTables, Relocations,
};
use format::{escape_text, human_us, Clock};
pub use host_times::HostReport;
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

impl Report {
    /// Derives the whole report from a boot record. Never fails: missing or damaged
    /// events leave the parts they would fill empty, with a warning where it helps.
    pub fn build(record: &BootRecord) -> Report {
        Report::build_with_app(record, None)
    }

    /// [`Report::build`], with the application's symbols to name the code addresses
    /// of a crash. Each section comes from its own builder; warnings are collected
    /// in the order the sections qualify each other (the stream first).
    pub fn build_with_app(record: &BootRecord, app: Option<&AppSymbols>) -> Report {
        let mut warnings = Vec::new();
        let events = last_boot(record, &mut warnings);
        let stream = stream_health(record, events, &mut warnings);
        let mut loader = LoaderInfo {
            trace_level: record.trace_level.map(|level| level.name()),
            ..LoaderInfo::of(events)
        };
        if let Some(warning) = loader.format.and_then(format_mismatch) {
            warnings.push(Warning::new("format", warning));
        }
        let frequency = frequency(events, record.errors_only, &mut warnings);
        let clock = Clock { khz: frequency.khz };
        loader.uefi = uefi::build(events, clock);
        let timeline = timeline::build(events, clock, record.trace_bytes, &mut warnings);
        let memory = memory::regions(events, record.loader_image);
        warnings.extend(memory::check(&memory));
        let mut outcome = outcome::build(
            events,
            record.exit_status,
            record.errors_only,
            &mut warnings,
        );
        let host = host_times::host_report(&record.host, events, clock);
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
        if let Some(stop) = &stop {
            outcome.then_stopped(stop);
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
            kernel: KernelInfo::of(events),
            relocations: Relocations::of(events),
            page_tables: PageTables::of(events),
            timeline,
            host,
            memory,
            outcome,
            crash: crash::build(events, record.loader_image, app),
            stop,
            kernel_text,
            stream,
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
        let by_tsc = self.loader.uefi.as_ref().and_then(|u| u.firmware_us);
        match (self.host.firmware_us, by_tsc) {
            (Some(host), Some(tsc)) => parts.push(format!(
                "{} firmware ({} by the TSC)",
                human_us(host),
                human_us(tsc)
            )),
            (Some(host), None) => parts.push(format!("{} firmware", human_us(host))),
            (None, Some(tsc)) => parts.push(format!("{} firmware (by the TSC)", human_us(tsc))),
            (None, None) => {}
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
            OutcomeKind::TripleFault
            | OutcomeKind::GuestReset
            | OutcomeKind::Shutdown
            | OutcomeKind::Hang
            | OutcomeKind::Interrupted => {
                let what = match self.outcome.kind {
                    OutcomeKind::TripleFault => "triple fault",
                    OutcomeKind::GuestReset => "the guest reset",
                    OutcomeKind::Shutdown => "the guest shut down without an exit code",
                    OutcomeKind::Hang => "hung",
                    _ => "interrupted (Ctrl-C)",
                };
                // QEMU's stop can come before the hand-over too: then it is the
                // loader's, not the kernel's.
                let place = if self.outcome.hand_over.is_some() {
                    "after the hand-over"
                } else {
                    "in the loader, before the hand-over"
                };
                line += &format!("; {what} {place}");
            }
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

/// The events of the record's last boot. A stream can hold several boots (a guest
/// that resets, recordings joined together): the report is about one boot, the
/// last, and says so. Mixing them would also make every region of one boot
/// "overlap" the same region of the others.
fn last_boot<'r>(record: &'r BootRecord, warnings: &mut Vec<Warning>) -> &'r [Event] {
    let is_start = |e: &Event| matches!(e.kind, LoaderEvent::LoaderStart { .. });
    let boots = record
        .earlier_boots
        .saturating_add(record.events.iter().filter(|e| is_start(e)).count());
    if boots > 1 {
        warnings.push(Warning::new(
            "stream",
            format!("the stream holds {boots} boots; this report covers the last one"),
        ));
    }
    let last_start = record.events.iter().rposition(is_start);
    &record.events[last_start.unwrap_or(0)..]
}

/// The stream's health, with a warning for each thing wrong with it: it qualifies
/// everything after it.
fn stream_health(
    record: &BootRecord,
    events: &[Event],
    warnings: &mut Vec<Warning>,
) -> StreamHealth {
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
    StreamHealth {
        events: events.len(),
        unknown_events,
        malformed_frames: record.malformed_frames,
        truncated: record.truncated,
        text_bytes: record.text_bytes,
    }
}

/// The TSC frequency, with a warning when it is unknown (and should be).
fn frequency(events: &[Event], errors_only: bool, warnings: &mut Vec<Warning>) -> Frequency {
    let (frequency, event) = Frequency::of(events);
    if !frequency.known && !errors_only {
        let why = if event {
            "the TSC frequency is unknown"
        } else {
            "no Frequency event"
        };
        warnings.push(Warning::new(
            "frequency",
            format!("{why}: times are shown in TSC ticks"),
        ));
    }
    frequency
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
