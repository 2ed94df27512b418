//! The boot timeline: the loader's stages on the TSC time axis, derived from event
//! timestamps and the tick counts the loader measured itself.
//!
//! Time 0 is the Multiboot entry. Two kinds of stage exist:
//!
//! - **Between events**: the work between two events that bracket it, e.g. ELF
//!   inspection and placement runs from `Frequency` to `Kernel`. Such a stage also
//!   contains the serial output of the event that opens it.
//! - **Measured**: a stage whose event carries its own tick count (`copy_ticks`,
//!   `ticks`). It ends at its event's timestamp (the loader reads the TSC right after
//!   the work and sends the event next) and starts that many ticks earlier.
//!
//! Top-level stages never overlap: a stage that would start before the previous one
//! ended is cut at that end (and a warning says so). The loader's time not covered
//! by any stage is "other": mostly the trace's own serial output between measured
//! stages, zeroing the gaps between segments, and building the boot info.

use serde::Serialize;

use rusty_loader::wire::LoaderEvent;

use super::format::Clock;
use super::memory::LISTED_WARNINGS;
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

/// Derives the timeline from the events; warnings go to `warnings`.
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
    // The time of the first event of a kind.
    macro_rules! at {
        ($pattern:pat) => {
            first!(events, |e| $pattern => e.timestamp)
        };
    }
    let long_mode = at!(LoaderEvent::LongModeEntered {});

    // Mode switch: from the entry to the first 64-bit instruction, timed by the
    // 32-bit start-up code, with "paging on" as the step inside it.
    if let Some(long_mode) = long_mode {
        let paging = at!(LoaderEvent::PagingEnabled {});
        let children = match paging {
            Some(paging) if paging <= long_mode => vec![
                b.stage("paging", "paging on".into(), 0, paging, true),
                b.stage("long-mode", "long mode".into(), paging, long_mode, true),
            ],
            _ => Vec::new(),
        };
        b.push("mode-switch", "mode switch".into(), 0, long_mode, true)
            .children = children;
    }

    // The stages bracketed by two events, in the order the loader runs them. The
    // first three events carry the start-up code's times; `MemoryMap` is the first
    // sent at its own time.
    let memory_map = at!(LoaderEvent::MemoryMap { .. });
    let command_line = at!(LoaderEvent::CommandLine { .. });
    let kernel = at!(LoaderEvent::Kernel { .. });
    let windows: [(&str, Option<u64>, Option<u64>, &str); 3] = [
        (
            "rust-start-up",
            long_mode,
            memory_map,
            "Rust start-up & MBI",
        ),
        ("boot-info", memory_map, command_line, "command line"),
        ("elf", command_line, kernel, "ELF inspection & placement"),
    ];
    for (id, start, end, name) in windows {
        if let (Some(start), Some(end)) = (start, end) {
            b.push(id, name.into(), start, end, false);
        }
    }

    // Each segment: copied, then zeroed, then its event is sent. Segments are
    // numbered from 1 in load order (the order of their PT_LOAD headers).
    let segments = events.iter().filter_map(|e| match e.kind {
        LoaderEvent::SegmentLoaded {
            copy_ticks,
            zero_ticks,
            ..
        } => Some((e.timestamp, copy_ticks, zero_ticks)),
        _ => None,
    });
    for (index, (end, copy, zero)) in (1..).zip(segments) {
        let name = format!("segment {index}");
        let stage = b.push(
            "segment",
            name,
            end.saturating_sub(copy.saturating_add(zero)),
            end,
            true,
        );
        // A stage cut short keeps its zeroing whole and shortens the copy.
        let zero = zero.min(stage.duration_ticks);
        let split = stage.end_ticks() - zero;
        let (start, stage_end) = (stage.start_ticks, stage.end_ticks());
        let copy_stage = b.stage(
            "segment-copy",
            format!("segment {index} copy"),
            start,
            split,
            true,
        );
        let zero_stage = b.stage(
            "segment-zero",
            format!("segment {index} zero"),
            split,
            stage_end,
            true,
        );
        let stage = b.stages.last_mut().expect("a stage was just pushed");
        stage.children = vec![copy_stage, zero_stage];
    }

    let relocated =
        first!(events, |e| LoaderEvent::Relocated { ticks, .. } => (e.timestamp, *ticks));
    if let Some((end, ticks)) = relocated {
        b.push_measured("relocation", "relocation".into(), end, ticks);
        // The frequency is measured once the loading is done (the longer the window,
        // the better): from the end of the relocation to its event. (A boot refused
        // earlier sends it just before the refusal: no stage of its own then.)
        if let Some(end) = at!(LoaderEvent::Frequency { .. }) {
            let start = b.cursor;
            b.push("frequency", "frequency".into(), start, end, false);
        }
    }
    if let Some((end, ticks)) =
        first!(events, |e| LoaderEvent::DeviceTree { ticks, .. } => (e.timestamp, *ticks))
    {
        b.push_measured("device-tree", "device tree".into(), end, ticks);
    }
    let page_tables =
        first!(events, |e| LoaderEvent::PageTables { ticks, .. } => (e.timestamp, *ticks));
    if let Some((sent, ticks)) = page_tables {
        // At `debug`, one `Mapping` event per mapping is sent between the measured
        // work and `PageTables`: the work ends at the first of them.
        let end = events
            .iter()
            .filter(|e| matches!(e.kind, LoaderEvent::Mapping { .. }) && e.timestamp >= b.cursor)
            .map(|e| e.timestamp)
            .min()
            .map_or(sent, |t| t.min(sent));
        b.push_measured("page-tables", "page tables".into(), end, ticks);
    }

    let hand_over = at!(LoaderEvent::HandOver { .. });
    let terminal =
        first!(events, |e| LoaderEvent::Refused { .. } | LoaderEvent::CpuException { .. } => e);
    let loader_end = if let Some(jump) = hand_over {
        // The jump itself: the event's time is read as its frame starts, and only
        // the jump follows the frame.
        if let Some((start, _)) = page_tables {
            b.push("hand-over", "hand-over".into(), start, jump, false);
        }
        jump
    } else if let Some(event) = terminal {
        // The stage that failed: the one after the last complete stage, from its end
        // to the refusal or the exception.
        let how = if matches!(event.kind, LoaderEvent::Refused { .. }) {
            "refused"
        } else {
            "exception"
        };
        let next = match b.stages.last().map(|s| s.id) {
            None => "start-up",
            Some("mode-switch") => "Rust start-up & MBI",
            Some("rust-start-up") => "command line",
            Some("boot-info") => "ELF inspection & placement",
            Some("elf" | "segment") => "loading & relocation",
            Some("relocation") => "frequency",
            Some("frequency") => "device tree",
            Some("device-tree") => "page tables",
            Some(_) => "hand-over",
        };
        let start = b.cursor;
        if event.timestamp > start {
            b.push(
                "failed",
                format!("{next} ({how})"),
                start,
                event.timestamp,
                false,
            );
        }
        event.timestamp
    } else {
        events.iter().map(|e| e.timestamp).max().unwrap_or(0)
    };

    if b.shortened > LISTED_WARNINGS {
        b.warnings.push(Warning::new(
            "timeline",
            format!(
                "… and {} more stages shortened to fit, not listed one by one",
                b.shortened - LISTED_WARNINGS
            ),
        ));
    }

    let loader_ticks = loader_end.max(b.cursor);
    let covered: u64 = b
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
        stages: b.stages,
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

/// The short name of a stage kind in the summary line.
pub fn summary_name(id: &str) -> &'static str {
    match id {
        "mode-switch" => "mode switch",
        "rust-start-up" => "start-up",
        "boot-info" => "command line",
        "frequency" => "frequency",
        "elf" => "ELF",
        "segment" => "copy",
        "relocation" => "relocate",
        "device-tree" => "device tree",
        "page-tables" => "page tables",
        "hand-over" => "hand-over",
        "failed" => "until failure",
        _ => "other",
    }
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
