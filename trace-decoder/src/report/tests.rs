//! Unit tests of report building on hand-written event lists. The clock runs at
//! 1000 kHz in most of them, so one tick is one microsecond and the expected numbers
//! can be read off the events.

use std::time::Duration;

use super::*;

fn ev(timestamp: u64, message: &str) -> Event {
    crate::decode::fixtures::event(timestamp, message)
}

/// A whole successful boot at 1000 kHz, with round numbers.
fn boot() -> Vec<Event> {
    vec![
        ev(0, "LoaderStart format=3 build=0x1 mbi=0x9500"),
        ev(500, "PagingEnabled"),
        ev(700, "LongModeEntered"),
        ev(3000, "MemoryMap regions=[0x0-0x9fc00:1, 0x100000-0x4000000:1]"),
        ev(4000, "CommandLine kernel_args_at=65535 app_args_at=65535 text=kernel"),
        ev(4100, "Module start=0x200000 end=0x300000"),
        ev(7000, "Kernel kind=dyn entry_version=4 version=0.13.0 generation=0.11+ segments=2 base=0x800000 entry=0x801000"),
        ev(8000, "SegmentLoaded addr=0x800000 filesz=0x1000 memsz=0x1000 flags=5 copy_ticks=600 zero_ticks=100"),
        ev(9000, "SegmentLoaded addr=0x801000 filesz=0x100 memsz=0x2000 flags=6 copy_ticks=50 zero_ticks=250"),
        ev(9500, "Relocated relative=3 abs64=0 glob_dat=0 weak_skipped=0 ticks=300"),
        ev(9600, "Tls start=0x801000 filesz=0x10 memsz=0x40 align=0x10"),
        ev(10000, "Frequency khz=1000 source=cmdline window_us=0"),
        ev(12000, "DeviceTree addr=0x150000 size=400 ticks=2000"),
        ev(14000, "PageTables contract=universal pml4=0x1b0000 tables=4 bytes_4k=0x100000 bytes_2m=0x800000 ticks=1500"),
        ev(14700, "HandOver entry=0x801000 rdi=0x150400 rsp=0x1a0000 trace_ticks=800"),
    ]
}

fn record(events: Vec<Event>) -> BootRecord {
    BootRecord {
        events,
        loader_image: Some((0x100000, 0x1f0000)),
        ..BootRecord::default()
    }
}

/// Replaces the first event of `name` (or appends when `name` is absent).
fn with(mut events: Vec<Event>, name: &str, replacement: Event) -> Vec<Event> {
    match events.iter().position(|e| e.name() == name) {
        Some(i) => events[i] = replacement,
        None => events.push(replacement),
    }
    events
}

fn spans(stages: &[Stage]) -> Vec<(&str, u64, u64)> {
    stages
        .iter()
        .map(|s| (s.id, s.start_ticks, s.duration_ticks))
        .collect()
}

fn warning_kinds(report: &Report) -> Vec<&str> {
    report.warnings.iter().map(|w| w.kind).collect()
}

#[test]
fn stages_come_from_timestamps_and_measured_ticks() {
    let report = Report::build(&record(boot()));
    let timeline = &report.timeline;
    assert_eq!(
        spans(&timeline.stages),
        [
            ("mode-switch", 0, 700),
            ("rust-start-up", 700, 2300),
            ("boot-info", 3000, 1000),
            ("elf", 4000, 3000),
            ("segment", 7300, 700),
            ("segment", 8700, 300),
            ("relocation", 9200, 300),
            ("frequency", 9500, 500),
            ("device-tree", 10000, 2000),
            ("page-tables", 12500, 1500),
            ("hand-over", 14000, 700),
        ]
    );
    assert_eq!(
        spans(&timeline.stages[0].children),
        [("paging", 0, 500), ("long-mode", 500, 700 - 500)]
    );
    // A segment's event comes right after its zeroing, which follows its copy.
    assert_eq!(
        spans(&timeline.stages[4].children),
        [("segment-copy", 7300, 600), ("segment-zero", 7900, 100)]
    );
    assert_eq!(timeline.stages[4].name, "segment 1");
    assert!(timeline.stages[4].measured && !timeline.stages[3].measured);
    assert_eq!(timeline.loader_ticks, 14700);
    assert_eq!(timeline.other_ticks, 14700 - 13000);
    assert_eq!(timeline.stages[1].duration_us, Some(2300.0));
    assert_eq!(timeline.loader_us, Some(14700.0));
    // Writing the trace is its own line, not part of any stage.
    assert_eq!(timeline.trace_output_ticks, Some(800));
    assert_eq!(timeline.total_ticks, 14700 + 800);
    assert_eq!(timeline.total_us, Some(15500.0));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn summary_names_the_longest_stages() {
    let report = Report::build(&record(boot()));
    assert_eq!(
        report.summary_line(),
        "boot: 15.5 ms loader (ELF 3.0 ms, start-up 2.3 ms, device tree 2.0 ms)"
    );
    assert_eq!(report.outcome.kind, OutcomeKind::HandedOver);
    assert_eq!(
        report.outcome.message,
        "handed over to the kernel at 0x801000"
    );
}

#[test]
fn host_times_add_firmware_and_kernel() {
    let mut record = record(boot());
    record.host = HostTimes {
        first_byte: Some(Duration::from_millis(1)),
        loader_start: Some(Duration::from_millis(42)),
        // MemoryMap, the first event timed when sent, left the loader 3 ms after its
        // entry.
        first_timed_event: Some(Duration::from_millis(43)),
        hand_over: Some(Duration::from_millis(60)),
        first_kernel_output: Some(Duration::from_millis(72)),
        end: Some(Duration::from_millis(1060)),
    };
    let report = Report::build(&record);
    assert_eq!(report.host.firmware_us, Some(40_000.0));
    assert_eq!(report.host.kernel_to_first_output_us, Some(12_000.0));
    assert_eq!(report.host.kernel_to_exit_us, Some(1_000_000.0));
    assert_eq!(
        report.summary_line(),
        "boot: 40.0 ms firmware + 15.5 ms loader (ELF 3.0 ms, start-up 2.3 ms, device tree 2.0 ms) + 12.0 ms kernel to first output"
    );
    assert!(report.host.live);
    assert!(report
        .render_text(false)
        .contains("Host       firmware 40.0 ms"));

    // The loader's own time can exceed the host's (a late reader): firmware is 0.
    record.host.first_timed_event = Some(Duration::from_millis(1));
    assert_eq!(Report::build(&record).host.firmware_us, Some(0.0));

    // The kernel's first output in the hand-over's read: not "0 µs", untimed.
    record.host.first_kernel_output = record.host.hand_over;
    let report = Report::build(&record);
    assert_eq!(report.host.kernel_to_first_output_us, None);
    assert!(!report.summary_line().contains("kernel to first output"));
    let text = report.render_text(false);
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("the kernel's first output came in the hand-over's read (too soon to time)"),
        "{text}"
    );
}

#[test]
fn memory_map_is_sorted_and_nested() {
    let report = Report::build(&record(boot()));
    let rows: Vec<(&str, u64, u64, u32)> = report
        .memory
        .iter()
        .map(|r| (r.name.as_str(), r.start, r.end, r.depth))
        .collect();
    assert_eq!(
        rows,
        [
            ("usable RAM", 0, 0x9fc00, 0),
            ("MBI page", 0x9000, 0xa000, 1),
            ("usable RAM", 0x100000, 0x4000000, 0),
            ("loader image", 0x100000, 0x1f0000, 1),
            ("device tree", 0x150000, 0x150190, 2),
            ("boot info", 0x150400, 0x150480, 2),
            ("kernel stack", 0x1a0000, 0x1a8000, 2),
            ("page tables (4 pages)", 0x1b0000, 0x1b4000, 2),
            ("module (application)", 0x200000, 0x300000, 1),
            ("segment 1 R-X", 0x800000, 0x801000, 1),
            ("segment 2 RW-", 0x801000, 0x803000, 1),
            ("TLS image", 0x801000, 0x801040, 2),
        ]
    );
}

#[test]
fn an_empty_memory_map_entry_is_no_region() {
    // microvm's firmware lists a reserved entry of 0 bytes at 0.
    let events = with(
        boot(),
        "MemoryMap",
        ev(
            3000,
            "MemoryMap regions=[0x0-0x9fc00:1, 0x0-0x0:2, 0x100000-0x4000000:1]",
        ),
    );
    let report = Report::build(&record(events));
    assert!(
        report.memory.iter().all(|r| r.size > 0),
        "{:?}",
        report.memory
    );
    assert!(!report.render_text(false).contains("0x0000000  0x0000000"));
}

#[test]
fn the_summary_names_the_command_line_stage_so() {
    assert_eq!(timeline::summary_name("boot-info"), "command line");
    // A boot whose longest stage is the command line says so in its summary.
    let events = with(
        boot(),
        "CommandLine",
        ev(
            3900,
            "CommandLine kernel_args_at=65535 app_args_at=65535 text=kernel",
        ),
    );
    let events = with(
        events,
        "MemoryMap",
        ev(
            900,
            "MemoryMap regions=[0x0-0x9fc00:1, 0x100000-0x4000000:1]",
        ),
    );
    let summary = Report::build(&record(events)).summary_line();
    assert!(summary.contains("command line 3.0 ms"), "{summary}");
    assert!(!summary.contains("memory map"), "{summary}");
}

#[test]
fn a_stream_that_arrived_in_one_burst_has_no_host_times() {
    // Everything read at once, 1 ms after reading began, although the loader took
    // 14.7 ms: it was buffered before it was read.
    let mut record = record(boot());
    let at = Some(Duration::from_millis(1));
    record.host = HostTimes {
        first_byte: at,
        loader_start: at,
        first_timed_event: at,
        hand_over: at,
        first_kernel_output: at,
        end: at,
    };
    let report = Report::build(&record);
    assert_eq!(report.host, HostReport::default());
    assert!(!report.host.live);
    assert_eq!(
        report.summary_line(),
        "boot: 15.5 ms loader (ELF 3.0 ms, start-up 2.3 ms, device tree 2.0 ms)"
    );
    let text = report.render_text(false);
    assert!(
        text.contains("Host       times unknown: the stream did not arrive as the loader sent it"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["host"]["live"], false);
    assert_eq!(json["host"]["firmware_us"], serde_json::Value::Null);
    // A recording has no arrival times at all: the same.
    assert!(!Report::build(&super::tests::record(boot())).host.live);
}

#[test]
fn an_entry_version_2_kernel_has_a_shorter_boot_info() {
    let events = with(
        boot(),
        "Kernel",
        ev(7000, "Kernel kind=dyn entry_version=2 version=0.0.0 generation=0.6-0.10 segments=2 base=0x800000 entry=0x801000"),
    );
    let report = Report::build(&record(events));
    let boot_info = report
        .memory
        .iter()
        .find(|r| r.name == "boot info")
        .unwrap();
    assert_eq!((boot_info.start, boot_info.end), (0x150400, 0x150400 + 120));
}

#[test]
fn overlaps_that_must_not_be_are_warned() {
    // A module whose end runs into segment 1: a partial overlap.
    let events = with(
        boot(),
        "Module",
        ev(5100, "Module start=0x200000 end=0x800800"),
    );
    let report = Report::build(&record(events));
    assert_eq!(warning_kinds(&report), ["overlap"]);
    assert_eq!(
        report.warnings[0].message,
        "regions overlap: module (application) [0x200000, 0x800800) and segment 1 R-X [0x800000, 0x801000)"
    );
    let names: Vec<&str> = report.warnings[0]
        .regions
        .iter()
        .map(|&i| report.memory[i].name.as_str())
        .collect();
    assert_eq!(names, ["module (application)", "segment 1 R-X"]);
    assert!(report.render_text(false).contains("! segment 1 R-X"));

    // A kernel segment inside the loader image is contained, but not expected there.
    let events = with(
        boot(),
        "SegmentLoaded",
        ev(8000, "SegmentLoaded addr=0x110000 filesz=0x1000 memsz=0x1000 flags=5 copy_ticks=600 zero_ticks=100"),
    );
    let report = Report::build(&record(events));
    assert_eq!(warning_kinds(&report), ["overlap"]);
    assert!(report.warnings[0].message.contains("inside another"));
}

#[test]
fn regions_outside_usable_ram_are_warned() {
    let mut events = with(
        boot(),
        "SegmentLoaded",
        ev(8000, "SegmentLoaded addr=0x3fff000 filesz=0x1000 memsz=0x2000 flags=5 copy_ticks=600 zero_ticks=100"),
    );
    // A long memory map comes in more than one event.
    events.push(ev(3400, "MemoryMap regions=[0x1a0000-0x1a1000:2]"));
    let report = Report::build(&record(events));
    let messages: Vec<&str> = report.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "memory-map entries overlap: usable RAM [0x100000, 0x4000000) and reserved [0x1a0000, 0x1a1000)",
            "loader image [0x100000, 0x1f0000) overlaps reserved [0x1a0000, 0x1a1000)",
            "kernel stack [0x1a0000, 0x1a8000) overlaps reserved [0x1a0000, 0x1a1000)",
            "segment 1 R-X [0x3fff000, 0x4001000) is not wholly inside usable RAM",
        ]
    );
    assert_eq!(warning_kinds(&report)[1..], ["outside-ram"; 3]);

    // Adjacent usable entries count as one.
    let events = vec![
        ev(1, "MemoryMap regions=[0x0-0x1000:1, 0x1000-0x2000:1]"),
        ev(3, "Module start=0x800 end=0x1800"),
    ];
    let report = Report::build(&BootRecord {
        events,
        ..BootRecord::default()
    });
    assert_eq!(warning_kinds(&report), ["frequency"]);
}

#[test]
fn unknown_frequency_shows_ticks() {
    let events = with(
        boot(),
        "Frequency",
        ev(10000, "Frequency khz=0 source=unknown window_us=0"),
    );
    let report = Report::build(&record(events));
    assert!(!report.frequency.known);
    assert_eq!(report.timeline.loader_us, None);
    assert!(report
        .timeline
        .stages
        .iter()
        .all(|s| s.duration_us.is_none()));
    assert_eq!(warning_kinds(&report), ["frequency"]);
    assert_eq!(
        report.summary_line(),
        "boot: 15500 ticks loader (ELF 3000 ticks, start-up 2300 ticks, device tree 2000 ticks) [TSC frequency unknown: ticks]"
    );
    let text = report.render_text(false);
    assert!(text.contains("TSC frequency unknown (source unknown): times are in TSC ticks"));
    assert!(text.contains("Timeline (TSC ticks from the loader's entry)"));
    assert!(text.contains("  2300 ticks"));
    assert!(report.to_chrome_trace().contains("1 µs shown = 1 TSC tick"));

    // No Frequency event at all is the same.
    let events: Vec<Event> = boot()
        .into_iter()
        .filter(|e| e.name() != "Frequency")
        .collect();
    let report = Report::build(&record(events));
    assert_eq!(report.frequency.khz, 0);
    assert!(report.warnings[0].message.starts_with("no Frequency event"));
}

#[test]
fn refusal_ends_the_boot() {
    // A refusal during the ELF inspection: the loader sends the frequency it
    // measured so far, then the refusal.
    let mut events: Vec<Event> = boot().into_iter().take(6).collect();
    events.push(ev(5500, "Frequency khz=1000 source=pit window_us=5500"));
    events.push(ev(
        6000,
        "Refused code=17 name=not-elf trace_ticks=90 text=the module is not an ELF file",
    ));
    let mut record = record(events);
    record.exit_status = Some(35);
    let report = Report::build(&record);
    assert_eq!(report.outcome.kind, OutcomeKind::Refused);
    assert_eq!(
        report.outcome.message,
        "refused (not-elf): the module is not an ELF file"
    );
    let exit = report.outcome.exit.as_ref().unwrap();
    assert_eq!((exit.by, exit.name.as_deref()), ("loader", Some("not-elf")));
    let last = report.timeline.stages.last().unwrap();
    assert_eq!(
        (
            last.id,
            last.name.as_str(),
            last.start_ticks,
            last.duration_ticks
        ),
        ("failed", "ELF inspection & placement (refused)", 4000, 2000)
    );
    assert_eq!(report.timeline.loader_ticks, 6000);
    assert!(report.summary_line().ends_with("; refused: not-elf"));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // An exit status that contradicts the trace is worth a warning.
    record.exit_status = Some(3);
    assert_eq!(warning_kinds(&Report::build(&record)), ["exit-status"]);
}

#[test]
fn cpu_exception_in_the_kernel() {
    let mut events = boot();
    events.push(ev(
        15000,
        "CpuException vector=14 error_code=0x2 rip=0x801234 cr2=0xdead000 in_kernel=true trace_ticks=900 rsp=0x103f80 rflags=0x46 cr3=0x134000 stack=[0x801250, 0x0]",
    ));
    let mut record = record(events);
    record.exit_status = Some(129 + 2 * 14);
    let report = Report::build(&record);
    assert_eq!(report.outcome.kind, OutcomeKind::CpuException);
    assert_eq!(
        report.outcome.message,
        "handed over to the kernel, then CPU exception 14 (#PF page fault) in the kernel at rip 0x801234, address 0xdead000"
    );
    assert_eq!(report.outcome.exit.as_ref().unwrap().by, "cpu-exception");
    assert!(report
        .summary_line()
        .ends_with("; CPU exception 14 (#PF page fault)"));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn the_svg_of_a_crash_shows_the_crash_section_of_the_text() {
    let mut events = boot();
    events.push(ev(
        15000,
        "CpuException vector=14 error_code=0x2 rip=0x801234 cr2=0xdead000 in_kernel=true trace_ticks=900 rsp=0x103f80 rflags=0x46 cr3=0x134000 stack=[0x801250, 0x0]",
    ));
    let report = Report::build(&record(events));
    let crash = report.crash.as_ref().expect("a crash section");
    let svg = report.to_svg();
    let text = report.render_text(false);
    assert!(svg.contains(">Crash</text>"), "{svg}");
    // Every line of the text's crash section is in the SVG, escaped for XML.
    for (label, line) in crash.lines() {
        assert!(text.contains(&format::escape_text(&line)[..20.min(line.len())]));
        let first = format::wrap(&line, 118).remove(0);
        assert!(
            svg.contains(&format::xml_escape(&first)),
            "{line:?} in {svg}"
        );
        if !label.is_empty() {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
    }
    assert!(svg.contains("0xdead000"), "CR2");
    assert!(svg.contains("0x801234"), "RIP");
}

#[test]
fn the_loader_total_is_one_number_in_every_rendering() {
    let report = Report::build(&record(boot()));
    let total = report.clock().human(report.timeline.total_ticks);
    assert_eq!(report.timeline.total_us, Some(15_500.0));
    // The text report's row, the SVG chart's row, the summary in both, the Chrome
    // trace's span: the work (14.7 ms) and the trace's output (0.8 ms) together.
    let text = report.render_text(false);
    assert!(
        text.contains("  loader total") && text.contains("15.500 ms"),
        "{text}"
    );
    let svg = report.to_svg();
    // The chart's row: its name, then its duration in the next element.
    let row = svg
        .split_once(">loader total</text>\n")
        .map(|(_, rest)| rest.lines().next().unwrap_or(""))
        .unwrap_or_else(|| panic!("no loader total row in {svg}"));
    assert!(row.ends_with(&format!(">{total}</text>")), "{row}");
    assert!(svg.contains("trace output (0 B)</text>"), "{svg}");
    assert!(report.summary.starts_with(&format!("boot: {total} loader")));
    let chrome: serde_json::Value = serde_json::from_str(&report.to_chrome_trace()).unwrap();
    let span = chrome["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "loader total")
        .expect("a loader total span");
    assert_eq!(span["dur"], 15_500.0);
    assert_eq!(chrome["metadata"]["loader_total_us"], 15_500.0);
}

#[test]
fn a_trace_that_stops_early_is_truncated() {
    let mut record = record(boot().into_iter().take(9).collect());
    record.truncated = true;
    record.malformed_frames = 2;
    let report = Report::build(&record);
    assert_eq!(report.outcome.kind, OutcomeKind::Truncated);
    assert_eq!(report.outcome.message, "trace ended before the hand-over");
    assert_eq!(report.timeline.loader_ticks, 9000);
    assert_eq!(report.timeline.trace_output_ticks, None, "no event said");
    // Cut before the frequency: the times are ticks.
    assert_eq!(warning_kinds(&report), ["stream", "stream", "frequency"]);
    assert!(report
        .summary_line()
        .ends_with("; trace ended before the hand-over [TSC frequency unknown: ticks]"));
    assert!(report
        .render_text(false)
        .contains("9 events, 2 malformed frames, ends inside a frame"));
}

#[test]
fn qemus_stop_is_placed_before_or_after_the_hand_over() {
    use crate::decode::{QemuStop, StopKind};
    let stop = |kind| QemuStop {
        kind,
        at: None,
        registers: Some("RIP=0000000000801234 RFL=00000002 HLT=0".to_string()),
    };
    // A loader that hangs in its frequency measurement, and one stopped by Ctrl-C
    // there: the summary must not blame the kernel.
    let mut record = record(boot().into_iter().take(10).collect());
    for (kind, said) in [
        (
            StopKind::Hang {
                timeout: Duration::from_secs(3),
            },
            "; hung in the loader, before the hand-over",
        ),
        (
            StopKind::Interrupted,
            "; interrupted (Ctrl-C) in the loader, before the hand-over",
        ),
    ] {
        record.qemu_stop = Some(stop(kind));
        let report = Report::build(&record);
        assert!(report.summary_line().contains(said), "{}", report.summary);
        assert!(
            report
                .stop
                .as_ref()
                .unwrap()
                .message
                .ends_with("; the CPU was running"),
            "{:?}",
            report.stop
        );
    }
    let mut whole = super::tests::record(boot());
    whole.qemu_stop = Some(stop(StopKind::Interrupted));
    let report = Report::build(&whole);
    assert!(
        report
            .summary_line()
            .ends_with("; interrupted (Ctrl-C) after the hand-over"),
        "{}",
        report.summary
    );
    assert_eq!(report.outcome.kind, OutcomeKind::Interrupted);
}

#[test]
fn a_loader_tracing_only_errors_is_not_a_truncated_trace() {
    let mut record = BootRecord {
        errors_only: true,
        exit_status: Some(3),
        ..BootRecord::default()
    };
    let report = Report::build(&record);
    assert_eq!(report.outcome.kind, OutcomeKind::ErrorsOnly);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Without events there are no times, so no word about their unit either.
    assert_eq!(
        report.summary_line(),
        "boot: no loader events; no error (only errors are traced)"
    );
    // An error it does trace is reported as ever.
    record.events.push(ev(
        900,
        "Refused code=17 name=not-elf trace_ticks=90 text=the module is not an ELF file",
    ));
    record.exit_status = Some(35);
    assert_eq!(Report::build(&record).outcome.kind, OutcomeKind::Refused);
}

#[test]
fn no_events_at_all() {
    let report = Report::build(&BootRecord::default());
    assert_eq!(report.summary_line(), "boot: no loader events");
    assert_eq!(
        report.outcome.message,
        "no trace: no loader event arrived (the loader did not start, or this is not its output)"
    );
    assert!(report.timeline.stages.is_empty() && report.memory.is_empty());
}

#[test]
fn measured_ticks_longer_than_the_gap_are_cut_and_warned() {
    let events = with(
        boot(),
        "Relocated",
        ev(
            9500,
            "Relocated relative=3 abs64=0 glob_dat=0 weak_skipped=0 ticks=5000",
        ),
    );
    let report = Report::build(&record(events));
    let relocation = &report.timeline.stages[6];
    assert_eq!(relocation.id, "relocation");
    assert_eq!(
        (relocation.start_ticks, relocation.duration_ticks),
        (9000, 500)
    );
    assert_eq!(warning_kinds(&report), ["timeline"]);
}

#[test]
fn control_characters_are_escaped_everywhere() {
    let nasty = "boot\u{1b}[2J\u{7}\u{0} -- a\u{202e}b\tc\u{fffe}";
    let mut events = with(
        boot(),
        "CommandLine",
        ev(
            4000,
            &format!("CommandLine kernel_args_at=5 app_args_at=65535 text={nasty}"),
        ),
    );
    events.push(ev(
        15000,
        "Refused code=17 name=x\u{1b}y trace_ticks=90 text=<bad & \"worse\"> \u{8}",
    ));
    events.push(ev(15001, "Junk\u{1b}]0;title\u{7} a=b"));
    let report = Report::build(&record(events));

    let text = report.render_text(false);
    assert!(text.contains("boot\\x1b[2J\\x07\\x00 -- a\\u{202e}b\\x09c\\u{fffe}"));
    assert!(text.contains("refused (x\\x1by): <bad & \"worse\"> \\x08"));
    let bad = |c: char| (c.is_control() && c != '\n') || c == '\u{202e}';
    assert!(!text.chars().any(bad), "{text}");
    let colored = report.render_text(true);
    assert!(colored.contains("\u{1b}[1m"));
    // The only escape sequences are the colours this module writes.
    assert!(!colored.contains("\u{1b}[2J") && !colored.contains("\u{1b}]0"));

    let svg = report.to_svg();
    roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert!(!svg.chars().any(bad));
    assert!(svg.contains("&lt;bad &amp; &quot;worse&quot;&gt;"));

    // JSON keeps the text itself, with JSON's own escapes.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["loader"]["command_line"]["text"], nasty);
    assert_eq!(
        json["stream"]["unknown_events"][0],
        "Junk\u{1b}]0;title\u{7}"
    );
    let chrome = report.to_chrome_trace();
    assert!(!chrome.chars().any(bad));
    serde_json::from_str::<serde_json::Value>(&chrome).unwrap();
}

#[test]
fn text_fits_80_columns() {
    let long = "x ".repeat(100) + &"y".repeat(120);
    let events = with(
        boot(),
        "CommandLine",
        ev(
            4000,
            &format!("CommandLine kernel_args_at=5 app_args_at=65535 text={long}"),
        ),
    );
    let text = Report::build(&record(events)).render_text(false);
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
}

#[test]
fn a_stream_of_several_boots_reports_the_last() {
    let one = Report::build(&record(boot()));
    let mut events = boot();
    events.extend(boot());
    events.extend(boot());
    let three = Report::build(&record(events));
    assert_eq!(three.memory, one.memory, "regions of one boot, not three");
    assert_eq!(three.timeline.stages, one.timeline.stages);
    assert!(
        three.warnings.iter().any(|w| w.message.contains("3 boots")),
        "{:?}",
        three.warnings
    );
    assert!(!one.warnings.iter().any(|w| w.message.contains("boots")));
}

#[test]
fn the_boot_chart_in_ticks_keeps_labels_apart_and_bars_inside() {
    // Tick counts of a real boot at an unknown frequency: long numbers.
    let events: Vec<Event> = boot()
        .into_iter()
        .map(|e| Event {
            timestamp: e.timestamp * 1000,
            ..e
        })
        .filter(|e| e.name() != "Frequency")
        .collect();
    let svg = Report::build(&record(events)).to_svg();
    let document = roxmltree::Document::parse(&svg).unwrap();
    let number = |node: roxmltree::Node, name: &str| -> f64 {
        node.attribute(name).map_or(0.0, |v| v.parse().unwrap())
    };
    let width = number(document.root_element(), "width");
    // Each row of the label column: the name from the left margin, the duration
    // right-aligned; 6.6 px is the average glyph width the chart lays out with.
    let texts: Vec<roxmltree::Node> = document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .collect();
    let mut rows = 0;
    for duration in texts.iter().filter(|n| {
        n.attribute("text-anchor") == Some("end") && n.attribute("font-family").is_none()
    }) {
        let y = duration.attribute("y");
        let name = texts
            .iter()
            .find(|n| n.attribute("y") == y && n.attribute("text-anchor").is_none())
            .expect("a name beside each duration");
        let name_end = number(*name, "x") + name.text().unwrap().chars().count() as f64 * 6.6;
        let duration_start =
            number(*duration, "x") - duration.text().unwrap().chars().count() as f64 * 6.6;
        assert!(
            name_end < duration_start,
            "{:?} runs into {:?}",
            name.text(),
            duration.text()
        );
        assert!(!duration.text().unwrap().ends_with(" t"));
        rows += 1;
    }
    assert!(rows > 5, "{svg}");
    for rect in document.descendants().filter(|n| n.has_tag_name("rect")) {
        if rect.attribute("width") == Some("100%") {
            continue;
        }
        let right = number(rect, "x") + number(rect, "width");
        assert!(right <= width - 20.0, "a bar past the plot: {rect:?}");
    }
}

/// The boot, with `n` copies of one memory-map entry and `n` copies of one segment
/// that lies partly outside RAM: n²/2 overlapping pairs on each side.
fn crowded_boot(n: usize) -> Vec<Event> {
    use rusty_loader::wire::MapEntry;
    let low = MapEntry {
        start: 0,
        end: 0x9fc00,
        kind: 1,
    };
    let entry = MapEntry {
        start: 0x100000,
        end: 0x4000000,
        kind: 1,
    };
    let mut events = with(
        boot(),
        "MemoryMap",
        Event::new(
            3000,
            LoaderEvent::MemoryMap {
                regions: std::iter::once(low)
                    .chain(std::iter::repeat_n(entry, n))
                    .collect(),
            },
        ),
    );
    let segment = ev(
        8000,
        "SegmentLoaded addr=0x3fff000 filesz=0x1000 memsz=0x2000 flags=5 copy_ticks=600 zero_ticks=100",
    );
    let at = events
        .iter()
        .position(|e| e.name() == "SegmentLoaded")
        .unwrap();
    events.splice(at..at + 2, std::iter::repeat_n(segment, n));
    events
}

#[test]
fn a_crowded_memory_map_gives_a_report_of_linear_size() {
    let n = 4000;
    let report = Report::build(&record(crowded_boot(n)));
    let of_kind = |kind: &str| -> Vec<&Warning> {
        report.warnings.iter().filter(|w| w.kind == kind).collect()
    };
    // n entries nest in each other, as do n segments.
    let map_depths: Vec<u32> = report
        .memory
        .iter()
        .filter(|r| r.kind == RegionKind::Usable && r.start == 0x100000)
        .map(|r| r.depth)
        .collect();
    assert_eq!(map_depths, (0..n as u32).collect::<Vec<_>>());

    // Each side has n(n-1)/2 overlapping pairs (the segments lie above everything
    // else the loader placed).
    let pairs = n * (n - 1) / 2;
    let overlaps = of_kind("overlap");
    assert_eq!(overlaps.len(), memory::LISTED_WARNINGS + 1);
    let summary = overlaps.last().unwrap();
    assert_eq!(
        summary.message,
        format!(
            "… and {} more overlaps, not listed one by one",
            2 * pairs - memory::LISTED_WARNINGS
        )
    );
    // Every entry and every segment is in an unlisted pair, and named once.
    assert_eq!(summary.regions.len(), 2 * n);

    // Every segment sticks out of RAM: listed up to the limit, then counted.
    let outside = of_kind("outside-ram");
    assert_eq!(outside.len(), memory::LISTED_WARNINGS + 1);
    assert!(outside
        .last()
        .unwrap()
        .message
        .starts_with(&format!("… and {} more", n - memory::LISTED_WARNINGS)));

    // n segments each cut short by the one before: the timeline's warnings are
    // capped too.
    assert_eq!(of_kind("timeline").len(), memory::LISTED_WARNINGS + 1);

    // Every rendering grows with the regions and stages, not with their pairs: a
    // few hundred bytes per region and stage at most (listing every pair took 47 MB
    // of text at n = 1000).
    let items = report.memory.len() + 3 * n;
    for (what, size) in [
        ("text", report.render_text(false).len()),
        ("JSON", report.to_json().len()),
        ("Chrome trace", report.to_chrome_trace().len()),
        ("SVG", report.to_svg().len()),
    ] {
        assert!(size < 600 * items, "{what}: {size} bytes for {items} items");
    }
}
