//! The boot timeline: the loader's stages on the TSC time axis, derived from event
//! timestamps and the tick counts the loader measured itself.
//!
//! Time 0 is the Multiboot entry. Two kinds of stage exist:
//!
//! - **Between events**: the work between two events that bracket it, e.g. ELF
//!   inspection and placement runs from `CommandLine` to `Kernel`. (Since trace
//!   format 3 no stage holds the trace's own output: the loader takes the ticks it
//!   spends writing frames out of every time, and reports them once.)
//! - **Measured**: a stage whose event carries its own tick count (`copy_ticks`,
//!   `ticks`). It ends at its event's timestamp (the loader reads the TSC right after
//!   the work and sends the event next) and starts that many ticks earlier.
//!
//! Top-level stages never overlap: a stage that would start before the previous one
//! ended is cut at that end (and a warning says so). The loader's time not covered
//! by any stage is "other": the work between measured stages (zeroing the gaps
//! between segments, building the boot info, the events' own bookkeeping).

use serde::Serialize;

use rusty_loader::wire::LoaderEvent;

use super::format::Clock;
use super::memory::LISTED_WARNINGS;
use super::stages::{self, StageKind, Timing, STAGES};
use super::{first, Warning};
use crate::decode::Event;

/// One stage of the boot, with optional sub-stages inside it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stage {
    /// A stable identifier of the kind of stage (see docs/report-schema.md).
    pub id: &'static str,
    /// What a person reads, e.g. `segment 2 copy`.
    pub name: String,
    /// Ticks from the loader's entry (Multiboot or PVH) to the stage's start.
    pub start_ticks: u64,
    /// The stage's length in ticks.
    pub duration_ticks: u64,
    /// The start in microseconds; `None` when the TSC frequency is unknown.
    pub start_us: Option<f64>,
    /// The length in microseconds; `None` when the TSC frequency is unknown.
    pub duration_us: Option<f64>,
    /// True when the loader measured the length itself, false when it is the time
    /// between two events.
    pub measured: bool,
    /// Sub-stages, inside this stage's time range.
    pub children: Vec<Stage>,
}

impl Stage {
    /// The tick after the stage.
    pub fn end_ticks(&self) -> u64 {
        self.start_ticks.saturating_add(self.duration_ticks)
    }
}

/// The whole timeline of the loader's run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    /// The top-level stages in time order; they do not overlap.
    pub stages: Vec<Stage>,
    /// The loader's work in ticks: from its entry to the jump into the
    /// kernel (`HandOver`'s time), or to the last event when there was no hand-over.
    /// Since trace format 3 the trace's times leave out the time spent writing the
    /// trace itself (`trace_output_ticks`).
    pub loader_ticks: u64,
    /// `loader_ticks` in microseconds, when the frequency is known.
    pub loader_us: Option<f64>,
    /// Loader time not covered by any top-level stage.
    pub other_ticks: u64,
    /// `other_ticks` in microseconds, when the frequency is known.
    pub other_us: Option<f64>,
    /// The ticks the loader spent writing the trace (the last event's
    /// `trace_ticks`), when the trace says.
    pub trace_output_ticks: Option<u64>,
    /// `trace_output_ticks` in microseconds, when the frequency is known.
    pub trace_output_us: Option<f64>,
    /// The trace's bytes on the wire (frames with their markers).
    pub trace_bytes: usize,
    /// The loader's whole run: its work and writing the trace.
    pub total_ticks: u64,
    /// `total_ticks` in microseconds, when the frequency is known.
    pub total_us: Option<f64>,
}

/// Collects stages in time order, cutting any that would overlap the previous one.
struct Builder<'w> {
    clock: Clock,
    stages: Vec<Stage>,
    /// The end of the last top-level stage.
    cursor: u64,
    warnings: &'w mut Vec<Warning>,
    /// Stages shortened to fit: the first [`LISTED_WARNINGS`] have a warning each.
    shortened: usize,
}

impl Builder<'_> {
    fn stage(&self, id: &'static str, name: String, start: u64, end: u64, measured: bool) -> Stage {
        let end = end.max(start);
        Stage {
            id,
            name,
            start_ticks: start,
            duration_ticks: end - start,
            start_us: self.clock.us(start),
            duration_us: self.clock.us(end - start),
            measured,
            children: Vec::new(),
        }
    }

    /// Adds a top-level stage `[start, end)`, cut to begin after the previous one,
    /// and returns it for adding children.
    fn push(
        &mut self,
        id: &'static str,
        name: String,
        start: u64,
        end: u64,
        measured: bool,
    ) -> &mut Stage {
        let clamped = start.max(self.cursor);
        if clamped > start || end < clamped {
            self.shortened += 1;
            if self.shortened <= LISTED_WARNINGS {
                self.warnings.push(Warning::new(
                    "timeline",
                    format!(
                        "stage {name}: its ticks overlap the previous stage or run backwards; shortened to fit"
                    ),
                ));
            }
        }
        let stage = self.stage(id, name, clamped, end, measured);
        self.cursor = stage.end_ticks();
        self.stages.push(stage);
        let last = self.stages.len() - 1;
        &mut self.stages[last]
    }

    /// Adds a measured stage that ends at `end` and lasted `ticks`.
    fn push_measured(&mut self, id: &'static str, name: String, end: u64, ticks: u64) {
        self.push(id, name, end.saturating_sub(ticks), end, true);
    }
}

/// Derives the timeline from the events, stage by stage as [`STAGES`] describes
/// them; warnings go to `warnings`.
pub fn build(
    events: &[Event],
    clock: Clock,
    trace_bytes: usize,
    warnings: &mut Vec<Warning>,
) -> Timeline {
    let mut b = Builder {
        clock,
        stages: Vec::new(),
        cursor: 0,
        warnings,
        shortened: 0,
    };
    for (index, kind) in STAGES.iter().enumerate() {
        match kind.timing {
            Timing::Between {
                from,
                to,
                measured,
                split,
            } => b.between(index, events, (from, to), measured, split),
            Timing::Measured {
                event,
                ticks,
                ends_at,
            } => b.measured(kind, events, event, ticks, ends_at),
            Timing::Segments => b.segments(index, events),
            Timing::FirmwareCalls => b.firmware_calls(kind, events),
            Timing::Since { after, to } => b.since(kind, events, after, to),
            Timing::Failed => b.failed(kind, events),
            Timing::Part => {}
        }
    }
    b.warn_shortened();
    let loader_end = loader_end(events).max(b.cursor);
    b.timeline(events, loader_end, trace_bytes)
}

/// The first event of the contract named `name`.
fn first_named<'e>(events: &'e [Event], name: &str) -> Option<&'e Event> {
    events.iter().find(|e| is_named(e, name))
}

/// Whether `event` is the contract's event `name` (not an unknown one of that name).
fn is_named(event: &Event, name: &str) -> bool {
    event.kind.spec().is_some_and(|spec| spec.name == name)
}

/// The event that ended a boot without a hand-over: a refusal or an exception.
fn terminal(events: &[Event]) -> Option<&Event> {
    events.iter().find(|e| {
        matches!(
            e.kind,
            LoaderEvent::Refused { .. } | LoaderEvent::CpuException { .. }
        )
    })
}

/// Where the loader's work ends: the jump into the kernel (`HandOver`'s time), or
/// the refusal or exception, or its last event.
fn loader_end(events: &[Event]) -> u64 {
    let hand_over = first!(events, |e| LoaderEvent::HandOver { .. } => e.timestamp);
    hand_over
        .or_else(|| terminal(events).map(|e| e.timestamp))
        .unwrap_or_else(|| events.iter().map(|e| e.timestamp).max().unwrap_or(0))
}

impl Builder<'_> {
    /// [`Timing::Between`]: the stage at `index` of [`STAGES`], from the first
    /// event `from` (the entry when `None`) to the first `to`, split into its parts
    /// at the first `split` event when that lies inside.
    fn between(
        &mut self,
        index: usize,
        events: &[Event],
        (from, to): (Option<&str>, &str),
        measured: bool,
        split: Option<&str>,
    ) {
        let start = match from {
            Some(from) => first_named(events, from).map(|e| e.timestamp),
            None => Some(0),
        };
        let (Some(start), Some(end)) = (start, first_named(events, to).map(|e| e.timestamp)) else {
            return;
        };
        let at = split.and_then(|split| first_named(events, split).map(|e| e.timestamp));
        let children = match at {
            Some(at) if at <= end => {
                let mut parts = stages::parts(index);
                let mut part = |start, end| {
                    let kind = parts.next().expect("a split stage has two parts");
                    self.stage(kind.id, kind.name.into(), start, end, measured)
                };
                vec![part(start, at), part(at, end)]
            }
            _ => Vec::new(),
        };
        let kind = &STAGES[index];
        self.push(kind.id, kind.name.into(), start, end, measured)
            .children = children;
    }

    /// [`Timing::Measured`]: the work the first `event` reports.
    fn measured(
        &mut self,
        kind: &StageKind,
        events: &[Event],
        event: &str,
        ticks: fn(&LoaderEvent) -> Option<u64>,
        ends_at: Option<&str>,
    ) {
        let Some((sent, ticks)) =
            first_named(events, event).and_then(|e| Some((e.timestamp, ticks(&e.kind)?)))
        else {
            return;
        };
        // Events sent between the work and its report: the work ends at the first.
        let end = ends_at
            .and_then(|name| {
                events
                    .iter()
                    .filter(|e| is_named(e, name) && e.timestamp >= self.cursor)
                    .map(|e| e.timestamp)
                    .min()
            })
            .map_or(sent, |t| t.min(sent));
        self.push_measured(kind.id, kind.name.into(), end, ticks);
    }

    /// [`Timing::Segments`]: each segment copied, then zeroed, then its event sent.
    /// Segments are numbered from 1 in load order (the order of their PT_LOAD
    /// headers).
    fn segments(&mut self, index: usize, events: &[Event]) {
        let kind = &STAGES[index];
        let segments = events.iter().filter_map(|e| match e.kind {
            LoaderEvent::SegmentLoaded {
                copy_ticks,
                zero_ticks,
                ..
            } => Some((e.timestamp, copy_ticks, zero_ticks)),
            _ => None,
        });
        for (number, (end, copy, zero)) in (1..).zip(segments) {
            let name = format!("{} {number}", kind.name);
            let start = end.saturating_sub(copy.saturating_add(zero));
            let stage = self.push(kind.id, name.clone(), start, end, true);
            // A stage cut short keeps its zeroing whole and shortens the copy.
            let zero = zero.min(stage.duration_ticks);
            let (start, stage_end) = (stage.start_ticks, stage.end_ticks());
            let split = stage_end - zero;
            let mut parts = stages::parts(index);
            let mut part = |start, end| {
                let part = parts.next().expect("a segment has two parts");
                self.stage(part.id, format!("{name} {}", part.name), start, end, true)
            };
            let children = vec![part(start, split), part(split, stage_end)];
            let stage = self.stages.last_mut().expect("a stage was just pushed");
            stage.children = children;
        }
    }

    /// [`Timing::FirmwareCalls`]: each boot-services call the UEFI entry made.
    fn firmware_calls(&mut self, kind: &StageKind, events: &[Event]) {
        let calls = events.iter().filter_map(|e| match &e.kind {
            LoaderEvent::FirmwareCall { call, ticks, .. } => Some((e.timestamp, *ticks, call)),
            _ => None,
        });
        for (end, ticks, call) in calls {
            self.push_measured(kind.id, format!("{} {call}", kind.name), end, ticks);
        }
    }

    /// [`Timing::Since`]: from the end of the last stage to the first `to`, when a
    /// stage `after` was found.
    fn since(&mut self, kind: &StageKind, events: &[Event], after: &str, to: &str) {
        if !self.stages.iter().any(|s| s.id == after) {
            return;
        }
        if let Some(end) = first_named(events, to).map(|e| e.timestamp) {
            let start = self.cursor;
            self.push(kind.id, kind.name.into(), start, end, false);
        }
    }

    /// [`Timing::Failed`]: without a hand-over, the stage that failed: the one after
    /// the last complete stage, from its end to the refusal or the exception.
    fn failed(&mut self, kind: &StageKind, events: &[Event]) {
        if events
            .iter()
            .any(|e| matches!(e.kind, LoaderEvent::HandOver { .. }))
        {
            return;
        }
        let Some(event) = terminal(events) else {
            return;
        };
        let how = if matches!(event.kind, LoaderEvent::Refused { .. }) {
            "refused"
        } else {
            "exception"
        };
        let next = match self.stages.last() {
            None => stages::FIRST_WORK,
            Some(last) => stages::kind(last.id).map_or("hand-over", |k| k.then),
        };
        let start = self.cursor;
        if event.timestamp > start {
            let name = format!("{next} ({how})");
            self.push(kind.id, name, start, event.timestamp, false);
        }
    }

    /// One warning for the stages shortened beyond those listed one by one.
    fn warn_shortened(&mut self) {
        if self.shortened > LISTED_WARNINGS {
            self.warnings.push(Warning::new(
                "timeline",
                format!(
                    "… and {} more stages shortened to fit, not listed one by one",
                    self.shortened - LISTED_WARNINGS
                ),
            ));
        }
    }

    /// The timeline of the stages found, the loader's work ending at `loader_ticks`.
    fn timeline(self, events: &[Event], loader_ticks: u64, trace_bytes: usize) -> Timeline {
        let clock = self.clock;
        let covered: u64 = self
            .stages
            .iter()
            .map(|s| s.duration_ticks)
            .fold(0, u64::saturating_add);
        let other_ticks = loader_ticks.saturating_sub(covered);
        // The last event that says how long writing the trace took.
        let trace_output_ticks = events.iter().rev().find_map(|e| match e.kind {
            LoaderEvent::HandOver { trace_ticks, .. }
            | LoaderEvent::Refused { trace_ticks, .. }
            | LoaderEvent::CpuException { trace_ticks, .. } => Some(trace_ticks),
            _ => None,
        });
        let total_ticks = loader_ticks.saturating_add(trace_output_ticks.unwrap_or(0));
        Timeline {
            stages: self.stages,
            loader_ticks,
            loader_us: clock.us(loader_ticks),
            other_ticks,
            other_us: clock.us(other_ticks),
            trace_output_ticks,
            trace_output_us: trace_output_ticks.and_then(|t| clock.us(t)),
            trace_bytes,
            total_ticks,
            total_us: clock.us(total_ticks),
        }
    }
}

/// The short name of a stage kind in the summary line ([`StageKind::summary`]).
pub fn summary_name(id: &str) -> &'static str {
    stages::kind(id)
        .and_then(|kind| kind.summary)
        .unwrap_or("other")
}

impl Timeline {
    /// Ticks per summary category (segments added up as "copy", "other" and the
    /// trace's output last), in stage order, without empty ones.
    pub fn categories(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = Vec::new();
        for stage in &self.stages {
            let name = summary_name(stage.id);
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, ticks)) => *ticks = ticks.saturating_add(stage.duration_ticks),
                None => out.push((name, stage.duration_ticks)),
            }
        }
        out.push(("other", self.other_ticks));
        out.push(("trace output", self.trace_output_ticks.unwrap_or(0)));
        out.retain(|&(_, ticks)| ticks > 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::fixtures::event;

    /// A boot at 1 MHz, with one `Mapping` (a debug build) before `PageTables`.
    fn boot() -> Vec<Event> {
        [
            (0, "LoaderStart format=3 build=0x1 mbi=0x9500"),
            (500, "PagingEnabled"),
            (700, "LongModeEntered"),
            (3000, "MemoryMap regions=[0x0-0x4000000:1]"),
            (4000, "CommandLine kernel_args_at=65535 app_args_at=65535 text=k"),
            (7000, "Kernel kind=dyn entry_version=4 version=0.13.0 generation=0.11+ segments=1 base=0x800000 entry=0x800000"),
            (8000, "SegmentLoaded addr=0x800000 filesz=0x1000 memsz=0x1000 flags=5 copy_ticks=600 zero_ticks=100"),
            (9500, "Relocated relative=3 abs64=0 glob_dat=0 weak_skipped=0 ticks=300"),
            (9800, "Frequency khz=1000 source=pit window_us=9800"),
            (12000, "DeviceTree addr=0x150000 size=400 ticks=2000"),
            (13000, "Mapping start=0x0 end=0x200000 page_kib=4 writable=true"),
            (14000, "PageTables contract=universal pml4=0x2f0000 tables=4 bytes_4k=0x100000 bytes_2m=0x800000 ticks=900"),
            (14700, "HandOver entry=0x800000 rdi=0x150400 rsp=0x1a0000 trace_ticks=1200"),
        ]
        .into_iter()
        .map(|(t, m)| event(t, m))
        .collect()
    }

    fn timeline(events: &[Event]) -> Timeline {
        build(events, Clock { khz: 1000 }, 0, &mut Vec::new())
    }

    #[test]
    fn every_stage_of_a_whole_boot() {
        let stages: Vec<(&str, String, u64, u64)> = timeline(&boot())
            .stages
            .iter()
            .map(|s| (s.id, s.name.clone(), s.start_ticks, s.end_ticks()))
            .collect();
        let expected = [
            ("mode-switch", "mode switch", 0, 700),
            ("rust-start-up", "Rust start-up & MBI", 700, 3000),
            ("boot-info", "command line", 3000, 4000),
            ("elf", "ELF inspection & placement", 4000, 7000),
            ("segment", "segment 1", 7300, 8000),
            ("relocation", "relocation", 9200, 9500),
            ("frequency", "frequency", 9500, 9800),
            ("device-tree", "device tree", 10000, 12000),
            // The work ends at the first `Mapping`, sent after it.
            ("page-tables", "page tables", 12100, 13000),
            ("hand-over", "hand-over", 14000, 14700),
        ];
        let expected: Vec<(&str, String, u64, u64)> = expected
            .into_iter()
            .map(|(id, name, start, end)| (id, name.to_string(), start, end))
            .collect();
        assert_eq!(stages, expected);
        let t = timeline(&boot());
        let parts = |i: usize| -> Vec<(&str, &str)> {
            t.stages[i]
                .children
                .iter()
                .map(|c| (c.id, c.name.as_str()))
                .collect()
        };
        assert_eq!(
            parts(0),
            [("paging", "paging on"), ("long-mode", "long mode")]
        );
        assert_eq!(
            parts(4),
            [
                ("segment-copy", "segment 1 copy"),
                ("segment-zero", "segment 1 zero")
            ]
        );
    }

    #[test]
    fn a_failed_stage_is_named_after_the_work_that_follows_the_last_stage() {
        // The boot cut after its n-th event and refused 1000 ticks later.
        let failed = |n: usize| -> Option<String> {
            let mut events: Vec<Event> = boot().into_iter().take(n).collect();
            let at = events.last().map_or(0, |e| e.timestamp) + 1000;
            events.push(event(
                at,
                "Refused code=17 name=not-elf trace_ticks=5 text=no",
            ));
            let t = timeline(&events);
            let last = t.stages.last()?;
            (last.id == "failed").then(|| last.name.clone())
        };
        let names: Vec<Option<String>> = (1..=12).map(failed).collect();
        let expected = [
            "start-up",
            "start-up",
            "Rust start-up & MBI",
            "command line",
            "ELF inspection & placement",
            "loading & relocation",
            "loading & relocation",
            "frequency",
            "device tree",
            "page tables",
            "page tables",
            "hand-over",
        ];
        let expected: Vec<Option<String>> = expected
            .iter()
            .map(|next| Some(format!("{next} (refused)")))
            .collect();
        assert_eq!(names, expected);
    }
}
