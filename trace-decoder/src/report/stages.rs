//! The boot's stages, described once: [`STAGES`] lists every kind of stage in the
//! order the loader runs them, each with what every output says of it: how its time
//! is found from the events (the timeline), its name, its name in the summary line,
//! its colour in the SVG boot chart, and what the loader does after it (which names
//! the stage a refused or crashed boot failed in). `timeline.rs` builds the stages
//! by walking this table, and the renderings look their kinds up in it.

use rusty_loader::wire::LoaderEvent;

/// How a stage's time is found from the events.
#[derive(Clone, Copy, Debug)]
pub enum Timing {
    /// From the first event named `from` (the loader's entry, time 0, when `None`)
    /// to the first named `to`. `measured`: both ends are the start-up code's own
    /// times; otherwise they are the times the two events were sent (which leave
    /// the trace's own output out). `split`: an event between the two that divides the stage into its
    /// two [`Timing::Part`]s (the rows that follow it in [`STAGES`]).
    Between {
        from: Option<&'static str>,
        to: &'static str,
        measured: bool,
        split: Option<&'static str>,
    },
    /// The work the first event named `event` reports: it ends at the event's time
    /// (the loader reads the TSC right after the work and sends the event next) and
    /// lasted the ticks the event carries. `ends_at`: events sent between the work
    /// and its report (debug builds' `Mapping`s), the first of which ends the work.
    Measured {
        event: &'static str,
        ticks: fn(&LoaderEvent) -> Option<u64>,
        ends_at: Option<&'static str>,
    },
    /// One stage per `SegmentLoaded`, numbered from 1 in load order: the segment
    /// copied, then zeroed (its two [`Timing::Part`]s), both measured.
    Segments,
    /// One stage per `FirmwareCall` (UEFI), named after the call: its ticks ending
    /// at its event's time.
    FirmwareCalls,
    /// From the end of the stage before it to the first event named `to`, when a
    /// stage of kind `after` was found (the frequency is measured from the end of
    /// the loading; a boot refused earlier sends its event just before the refusal).
    Since {
        after: &'static str,
        to: &'static str,
    },
    /// A part of the stage above it in [`STAGES`], timed with it.
    Part,
    /// The stage a refused or crashed boot failed in: from the end of the last
    /// stage to the refusal or the exception, named after what came next.
    Failed,
}

/// One kind of stage.
#[derive(Clone, Copy, Debug)]
pub struct StageKind {
    /// The stable identifier (see docs/report-schema.md).
    pub id: &'static str,
    /// What a person reads; a segment's gets its number (`segment 2`), its parts
    /// the segment's name before theirs (`segment 2 copy`).
    pub name: &'static str,
    /// The name in the summary line, where stages of one kind add up; `None` for
    /// parts, which the summary does not show.
    pub summary: Option<&'static str>,
    /// The colour of its bar in the SVG boot chart.
    pub color: &'static str,
    pub timing: Timing,
    /// What the loader does after it: a boot that failed after this stage failed
    /// in that.
    pub then: &'static str,
}

/// What a boot that failed before any stage failed in.
pub const FIRST_WORK: &str = "start-up";

/// The colour of a stage of no kind in [`STAGES`].
pub const OTHER_COLOR: &str = "#dddddd";

/// Every kind of stage, in the order the loader runs them, each part after its
/// stage.
pub const STAGES: &[StageKind] = &[
    StageKind {
        id: "mode-switch",
        name: "mode switch",
        summary: Some("mode switch"),
        color: "#9ecae1",
        // From the entry to the first 64-bit instruction, timed by the 32-bit
        // start-up code, with "paging on" as the step inside it.
        timing: Timing::Between {
            from: None,
            to: "LongModeEntered",
            measured: true,
            split: Some("PagingEnabled"),
        },
        then: "Rust start-up & MBI",
    },
    part("paging", "paging on", "#6baed6"),
    part("long-mode", "long mode", "#4292c6"),
    // UEFI: no mode switch (the firmware runs the loader in long mode). The EFI
    // stub and the start-up, each boot-services call as measured, then the
    // take-over (the loader's page tables, GDT and IDT, the UEFI map converted, the
    // RSDP copied) up to the kernel's memory map.
    StageKind {
        id: "uefi-start-up",
        name: "EFI stub & start-up",
        summary: Some("start-up"),
        color: "#c6dbef",
        timing: Timing::Between {
            from: None,
            to: "UefiEntry",
            measured: false,
            split: None,
        },
        then: "firmware calls",
    },
    StageKind {
        id: "firmware-call",
        name: "firmware:",
        summary: Some("firmware calls"),
        color: "#a1d99b",
        timing: Timing::FirmwareCalls,
        then: "firmware calls",
    },
    StageKind {
        id: "take-over",
        name: "take-over & UEFI map",
        summary: Some("take-over"),
        color: "#9ecae1",
        timing: Timing::Since {
            after: "firmware-call",
            to: "MemoryMap",
        },
        then: "command line",
    },
    // The stages bracketed by two events. `MemoryMap` is the first event sent at
    // its own time (the three before it carry the start-up code's times).
    between(
        "rust-start-up",
        "Rust start-up & MBI",
        "start-up",
        "#c6dbef",
        ("LongModeEntered", "MemoryMap"),
        "command line",
    ),
    between(
        "boot-info",
        "command line",
        "command line",
        "#fdd0a2",
        ("MemoryMap", "CommandLine"),
        "ELF inspection & placement",
    ),
    between(
        "elf",
        "ELF inspection & placement",
        "ELF",
        "#bcbddc",
        ("CommandLine", "Kernel"),
        "loading & relocation",
    ),
    StageKind {
        id: "segment",
        name: "segment",
        summary: Some("copy"),
        color: "#74c476",
        timing: Timing::Segments,
        then: "loading & relocation",
    },
    part("segment-copy", "copy", "#74c476"),
    part("segment-zero", "zero", "#e6ab02"),
    StageKind {
        id: "relocation",
        name: "relocation",
        summary: Some("relocate"),
        color: "#fd8d3c",
        timing: Timing::Measured {
            event: "Relocated",
            ticks: |e| match e {
                LoaderEvent::Relocated { ticks, .. } => Some(*ticks),
                _ => None,
            },
            ends_at: None,
        },
        then: "frequency",
    },
    StageKind {
        id: "frequency",
        name: "frequency",
        summary: Some("frequency"),
        color: "#fdae6b",
        timing: Timing::Since {
            after: "relocation",
            to: "Frequency",
        },
        then: "device tree",
    },
    StageKind {
        id: "device-tree",
        name: "device tree",
        summary: Some("device tree"),
        color: "#9e9ac8",
        timing: Timing::Measured {
            event: "DeviceTree",
            ticks: |e| match e {
                LoaderEvent::DeviceTree { ticks, .. } => Some(*ticks),
                _ => None,
            },
            ends_at: None,
        },
        then: "page tables",
    },
    StageKind {
        id: "page-tables",
        name: "page tables",
        summary: Some("page tables"),
        color: "#6baed6",
        timing: Timing::Measured {
            event: "PageTables",
            ticks: |e| match e {
                LoaderEvent::PageTables { ticks, .. } => Some(*ticks),
                _ => None,
            },
            // At `debug`, one `Mapping` per mapping is sent between the measured
            // work and `PageTables`.
            ends_at: Some("Mapping"),
        },
        then: "hand-over",
    },
    // The jump itself: `HandOver`'s time is read as its frame starts, and only the
    // jump follows the frame.
    between(
        "hand-over",
        "hand-over",
        "hand-over",
        "#fdd0a2",
        ("PageTables", "HandOver"),
        "hand-over",
    ),
    StageKind {
        id: "failed",
        name: "failed",
        summary: Some("until failure"),
        color: "#f4a6a6",
        timing: Timing::Failed,
        then: "hand-over",
    },
];

/// A stage between two events, not measured by the loader.
const fn between(
    id: &'static str,
    name: &'static str,
    summary: &'static str,
    color: &'static str,
    (from, to): (&'static str, &'static str),
    then: &'static str,
) -> StageKind {
    StageKind {
        id,
        name,
        summary: Some(summary),
        color,
        timing: Timing::Between {
            from: Some(from),
            to,
            measured: false,
            split: None,
        },
        then,
    }
}

/// A part of the stage above it.
const fn part(id: &'static str, name: &'static str, color: &'static str) -> StageKind {
    StageKind {
        id,
        name,
        summary: None,
        color,
        timing: Timing::Part,
        then: "",
    }
}

/// The kind of stage `id`, if it is one.
pub fn kind(id: &str) -> Option<&'static StageKind> {
    STAGES.iter().find(|kind| kind.id == id)
}

/// The parts of the stage at `index` of [`STAGES`]: the rows after it that are
/// [`Timing::Part`]s.
pub fn parts(index: usize) -> impl Iterator<Item = &'static StageKind> {
    STAGES[index + 1..]
        .iter()
        .take_while(|kind| matches!(kind.timing, Timing::Part))
}

#[cfg(test)]
mod tests {
    use rusty_loader::wire::EVENTS;

    use super::*;

    #[test]
    fn every_event_a_stage_names_is_the_contracts() {
        let known = |name: &str| EVENTS.iter().any(|spec| spec.name == name);
        for stage in STAGES {
            let names: Vec<&str> = match stage.timing {
                Timing::Between {
                    from, to, split, ..
                } => from.into_iter().chain([to]).chain(split).collect(),
                Timing::Measured { event, ends_at, .. } => {
                    [event].into_iter().chain(ends_at).collect()
                }
                Timing::Since { after, to } => {
                    assert!(kind(after).is_some(), "{}: no stage {after}", stage.id);
                    vec![to]
                }
                Timing::FirmwareCalls => vec!["FirmwareCall"],
                Timing::Segments | Timing::Part | Timing::Failed => Vec::new(),
            };
            for name in names {
                assert!(known(name), "{}: no event {name} in the contract", stage.id);
            }
        }
    }

    #[test]
    fn ids_are_unique_and_parts_follow_a_stage() {
        for (i, a) in STAGES.iter().enumerate() {
            assert!(STAGES[i + 1..].iter().all(|b| b.id != a.id), "{}", a.id);
        }
        assert!(!matches!(STAGES[0].timing, Timing::Part));
        assert_eq!(
            parts(0).map(|k| k.id).collect::<Vec<_>>(),
            ["paging", "long-mode"]
        );
        assert!(STAGES
            .iter()
            .all(|k| k.summary.is_some() != matches!(k.timing, Timing::Part)));
    }
}
