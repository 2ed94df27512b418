//! The human report: a summary, the facts of the boot, the timeline with a small
//! bar chart, the memory map and the warnings, laid out for an 80-column terminal.
//!
//! Every string from the trace goes through [`escape_text`], so a hostile command
//! line cannot move the cursor or recolour the terminal; colour codes are added only
//! when asked for, and only around text this module wrote.

use std::fmt::Write as _;

use super::format::{escape_text, hex, hex_padded, human_size, human_us, truncate, wrap, Clock};
use super::terminal::Paint;
use super::{OutcomeKind, Report, Stage};

/// The width everything is laid out for.
const WIDTH: usize = super::terminal::TERMINAL_WIDTH;
/// Where values start in the facts block.
const LABEL_WIDTH: usize = 11;
/// Cells in a timeline bar.
const BAR_CELLS: usize = 20;

/// Renders the report; see [`Report::render_text`].
pub fn render(report: &Report, color: bool) -> String {
    let paint = Paint { on: color };
    let mut out = String::new();
    out += &paint.bold("rusty-trace boot report");
    out.push('\n');
    for line in wrap(&report.summary, WIDTH) {
        out += &line;
        out.push('\n');
    }
    out.push('\n');
    facts(report, paint, &mut out);
    out.push('\n');
    if let Some(crash) = &report.crash {
        crash_section(crash, paint, &mut out);
        out.push('\n');
    }
    if let Some(stop) = &report.stop {
        stop_section(stop, paint, &mut out);
        out.push('\n');
    }
    if kernel_text_section(report, paint, &mut out) {
        out.push('\n');
    }
    timeline(report, paint, &mut out);
    out.push('\n');
    memory(report, paint, &mut out);
    out.push('\n');
    warnings(report, paint, &mut out);
    out
}

/// Writes `label` and a value wrapped to the width, continuation lines indented.
fn fact(out: &mut String, paint: Paint, label: &str, value: &str) {
    painted_fact(out, paint, label, value, &|line| line.to_string());
}

/// [`fact`], each line of the value painted by `style`.
fn painted_fact(
    out: &mut String,
    paint: Paint,
    label: &str,
    value: &str,
    style: &dyn Fn(&str) -> String,
) {
    let lines = wrap(value, WIDTH - LABEL_WIDTH);
    for (i, line) in lines.iter().enumerate() {
        let label = if i == 0 { label } else { "" };
        let padded = format!("{label:LABEL_WIDTH$}");
        let _ = writeln!(out, "{}{}", paint.bold(&padded), style(line));
    }
}

/// How a fact's value is painted.
#[derive(Clone, Copy)]
enum Tone {
    Plain,
    /// By how the boot ended: green handed over, yellow cut short, red failed.
    Outcome,
}

/// A fact's value, written from the report; none: the line is left out.
type FactValue = fn(&Report) -> Option<String>;

/// The facts block, in order: each fact's label, its value and how it is painted.
const FACTS: [(&str, FactValue, Tone); 14] = [
    ("Loader", loader_fact, Tone::Plain),
    ("UEFI", uefi_fact, Tone::Plain),
    ("App from", uefi_application_fact, Tone::Plain),
    ("UEFI map", uefi_map_fact, Tone::Plain),
    ("ACPI RSDP", uefi_rsdp_fact, Tone::Plain),
    ("Command", command_fact, Tone::Plain),
    ("Clock", clock_fact, Tone::Plain),
    ("Kernel", kernel_fact, Tone::Plain),
    ("Relocated", relocations_fact, Tone::Plain),
    ("Paging", paging_fact, Tone::Plain),
    ("Host", host_fact, Tone::Plain),
    (
        "Outcome",
        |r| Some(r.outcome.message.clone()),
        Tone::Outcome,
    ),
    ("Exit", exit_fact, Tone::Plain),
    ("Stream", stream_fact, Tone::Plain),
];

fn facts(report: &Report, paint: Paint, out: &mut String) {
    for (label, value, tone) in FACTS {
        let Some(value) = value(report) else {
            continue;
        };
        match tone {
            Tone::Plain => fact(out, paint, label, &value),
            Tone::Outcome => {
                let style = |line: &str| match report.outcome.kind {
                    OutcomeKind::HandedOver => paint.green(line),
                    OutcomeKind::Truncated | OutcomeKind::Interrupted => paint.yellow(line),
                    OutcomeKind::ErrorsOnly => line.to_string(),
                    OutcomeKind::Refused
                    | OutcomeKind::CpuException
                    | OutcomeKind::TripleFault
                    | OutcomeKind::GuestReset
                    | OutcomeKind::Shutdown
                    | OutcomeKind::Hang => paint.red(line),
                };
                painted_fact(out, paint, label, &value, &style);
            }
        }
    }
}

/// The trace format, build, entry and the MBI (or start info).
fn loader_fact(report: &Report) -> Option<String> {
    let loader = &report.loader;
    let mut identity = Vec::new();
    if let Some(format) = loader.format {
        identity.push(format!("trace format {format}"));
    }
    if let Some(build) = loader.build {
        identity.push(format!("build {build:#010x}"));
    }
    if let Some(entry) = &loader.entry {
        identity.push(format!("entry {}", escape_text(entry)));
    }
    if let Some(mbi) = loader.mbi {
        match loader.entry.as_deref() {
            Some("pvh") => identity.push(format!("start info at {}", hex(mbi))),
            // The firmware's pointers are not sent; the UEFI lines say what it gave.
            Some("uefi") => {}
            _ => identity.push(format!("MBI at {}", hex(mbi))),
        }
    }
    if let Some(built) = &loader.mbi_built {
        identity.push(format!(
            "MBI written at {} ({} B)",
            hex(built.addr),
            built.size
        ));
    }
    (!identity.is_empty()).then(|| identity.join(", "))
}

/// After a UEFI entry: the firmware and its time before the loader by the TSC.
fn uefi_fact(report: &Report) -> Option<String> {
    let uefi = report.loader.uefi.as_ref()?;
    let time = uefi.firmware_us.map_or(
        format!("TSC {} at the loader's entry", uefi.tsc_at_entry),
        |us| format!("{} from reset to the loader by the TSC", human_us(us)),
    );
    Some(format!(
        "{} (UEFI {}), {time}",
        escape_text(&uefi.vendor),
        super::uefi::revision_text(uefi.revision)
    ))
}

/// After a UEFI entry: where the application came from.
fn uefi_application_fact(report: &Report) -> Option<String> {
    let (source, path) = report.loader.uefi.as_ref()?.application.as_ref()?;
    Some(if path.is_empty() {
        escape_text(source)
    } else {
        format!("{} {}", escape_text(source), escape_text(path))
    })
}

/// After a UEFI entry: the firmware's memory map per type, largest first.
fn uefi_map_fact(report: &Report) -> Option<String> {
    let uefi = report.loader.uefi.as_ref()?;
    if uefi.memory_types.is_empty() {
        return None;
    }
    let mut types = uefi.memory_types.clone();
    types.sort_by_key(|t| std::cmp::Reverse(t.bytes));
    let descriptors: u64 = types.iter().map(|t| t.descriptors).sum();
    let parts: Vec<String> = types
        .iter()
        .map(|t| format!("{} {} ({})", t.name, human_size(t.bytes), t.descriptors))
        .collect();
    Some(format!("{descriptors} descriptors: {}", parts.join(", ")))
}

/// After a UEFI entry: the RSDP and where the loader copied it.
fn uefi_rsdp_fact(report: &Report) -> Option<String> {
    let rsdp = report.loader.uefi.as_ref()?.rsdp.as_ref()?;
    Some(if rsdp.firmware == 0 {
        "none in the configuration table".to_string()
    } else if rsdp.heap == 0 {
        format!("{} is not a valid RSDP: not copied", hex(rsdp.firmware))
    } else {
        let ebda = if rsdp.ebda == 0 {
            "no room for an EBDA".to_string()
        } else {
            format!("EBDA copy at {} (segment at 0x40e)", hex(rsdp.ebda))
        };
        format!(
            "{} revision {}; {ebda}, heap copy at {} (/hermit,rsdp)",
            hex(rsdp.firmware),
            rsdp.revision,
            hex(rsdp.heap)
        )
    })
}

fn command_fact(report: &Report) -> Option<String> {
    let line = report.loader.command_line.as_ref()?;
    Some(escape_text(&line.text))
}

/// The TSC frequency and where it came from, or why times are in ticks.
fn clock_fact(report: &Report) -> Option<String> {
    let frequency = &report.frequency;
    let source = frequency.source.as_deref().map(escape_text);
    if !report.clock().known() {
        let from = source.map_or(String::new(), |s| format!(" (source {s})"));
        return Some(format!(
            "TSC frequency unknown{from}: times are in TSC ticks"
        ));
    }
    let window = frequency
        .window_us
        .map_or(String::new(), |us| format!(" over {}", human_us(us as f64)));
    let from = source.map_or(String::new(), |s| format!(", from {s}{window}"));
    let rate = if frequency.khz >= 1_000_000 {
        format!("{:.3} GHz", frequency.khz as f64 / 1_000_000.0)
    } else {
        format!("{:.3} MHz", frequency.khz as f64 / 1000.0)
    };
    Some(format!("TSC {rate} ({} kHz{from})", frequency.khz))
}

/// A number, or `?`.
fn number(value: Option<u64>) -> String {
    value.map_or("?".to_string(), |v| v.to_string())
}

/// An address, or `?`.
fn address(value: Option<u64>) -> String {
    value.map_or("?".to_string(), hex)
}

fn kernel_fact(report: &Report) -> Option<String> {
    let k = report.kernel.as_ref()?;
    // Kernels before 0.10 have no ABI-tag note; the loader sends 0.0.0 for them.
    let version = if k.version == "0.0.0" {
        "no version note".to_string()
    } else {
        format!("Hermit {}", escape_text(&k.version))
    };
    Some(format!(
        "{}, {version} (generation {}), entry version {}, {} segments, base {}, entry {}",
        escape_text(&k.kind),
        escape_text(&k.generation),
        number(k.entry_version),
        number(k.segments),
        address(k.base),
        address(k.entry),
    ))
}

fn relocations_fact(report: &Report) -> Option<String> {
    let r = report.relocations.as_ref()?;
    Some(format!(
        "{} relative, {} 64-bit, {} GLOB_DAT, {} weak skipped",
        number(r.relative),
        number(r.abs64),
        number(r.glob_dat),
        number(r.weak_skipped),
    ))
}

fn paging_fact(report: &Report) -> Option<String> {
    let p = report.page_tables.as_ref()?;
    let mut text = format!(
        "{}, {} tables at {}",
        escape_text(&p.contract),
        number(p.tables),
        address(p.pml4),
    );
    if let (Some(small), Some(large)) = (p.bytes_4k, p.bytes_2m) {
        text += &format!(
            ", 4K pages {}, 2M pages {}",
            human_size(small),
            human_size(large)
        );
    }
    Some(text)
}

/// What the host timed, or why it timed nothing.
fn host_fact(report: &Report) -> Option<String> {
    let host = &report.host;
    if !host.live {
        return Some("times unknown: the stream did not arrive as the loader sent it (a recording, or output that arrived in one burst: buffered before it was read, or read by a busy host)".to_string());
    }
    let parts: Vec<String> = [
        ("firmware", host.firmware_us),
        ("kernel to first output", host.kernel_to_first_output_us),
        ("kernel to exit", host.kernel_to_exit_us),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some(format!("{name} {}", human_us(value?))))
    .collect();
    let mut parts = parts;
    if host.hand_over_us.is_some() && host.first_kernel_output_us == host.hand_over_us {
        parts.push(
            "the kernel's first output came in the hand-over's read (too soon to time)".to_string(),
        );
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn exit_fact(report: &Report) -> Option<String> {
    let exit = report.outcome.exit.as_ref()?;
    Some(format!("QEMU status {}: {}", exit.status, exit.meaning))
}

fn stream_fact(report: &Report) -> Option<String> {
    let stream = &report.stream;
    let ending = if stream.truncated {
        "ends inside a frame"
    } else {
        "complete"
    };
    Some(format!(
        "{} events, {} malformed frames, {ending}, {} bytes of text",
        stream.events, stream.malformed_frames, stream.text_bytes
    ))
}

/// The crash: registers, what RIP and CR2 are, the return addresses on the stack
/// ([`super::crash::Crash::lines`], which the SVG shows too).
fn crash_section(crash: &super::crash::Crash, paint: Paint, out: &mut String) {
    let _ = writeln!(out, "{}", paint.bold("Crash"));
    for (label, text) in crash.lines() {
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("  {label}")
        };
        fact(out, paint, &label, &escape_text(&text));
    }
}

/// What QEMU said about the guest's end.
fn stop_section(stop: &super::after::StopReport, paint: Paint, out: &mut String) {
    let _ = writeln!(out, "{}", paint.bold("QEMU"));
    fact(out, paint, "  stop", &escape_text(&stop.message));
    if let Some(line) = &stop.last_line {
        fact(out, paint, "  last", &format!("\"{}\"", escape_text(line)));
    }
    if let Some(r) = &stop.registers {
        let show = |name: &str, v: Option<u64>| v.map(|v| format!("{name} {}", hex(v)));
        let parts: Vec<String> = [
            show("RIP", r.rip),
            show("RSP", r.rsp),
            show("RFLAGS", r.rflags),
            show("CR2", r.cr2),
            show("CR3", r.cr3),
            show("IDT", r.idt_base),
            show("limit", r.idt_limit),
        ]
        .into_iter()
        .flatten()
        .collect();
        fact(out, paint, "  CPU", &parts.join(", "));
    }
}

/// The kernel's lines over time: milestones and the largest gaps. Returns whether
/// it wrote anything.
fn kernel_text_section(report: &Report, paint: Paint, out: &mut String) -> bool {
    let text = &report.kernel_text;
    if text.lines == 0 {
        return false;
    }
    let when = |us: Option<f64>| us.map_or(String::new(), |us| format!("+{} ", human_us(us)));
    let lines = match text.lines {
        1 => "1 line".to_string(),
        n => format!("{n} lines"),
    };
    let origin = if report.outcome.hand_over.is_some() {
        "after the hand-over"
    } else {
        "from the first byte"
    };
    let heading = if text.live {
        format!("Kernel text ({lines}; host arrival times {origin})")
    } else {
        format!("Kernel text ({lines})")
    };
    let _ = writeln!(out, "{}", paint.bold(&heading));
    for m in &text.milestones {
        let text = if m.line.is_empty() {
            format!("{}{}", when(m.after_hand_over_us), m.name)
        } else {
            format!(
                "{}{}: \"{}\"",
                when(m.after_hand_over_us),
                m.name,
                escape_text(&truncate(&m.line, 60))
            )
        };
        fact(out, paint, "", &text);
    }
    if !text.gaps.is_empty() {
        let _ = writeln!(out, "  largest gaps between lines:");
        for gap in &text.gaps {
            fact(
                out,
                paint,
                "",
                &format!(
                    "{:>9} after \"{}\", before \"{}\"",
                    human_us(gap.length_us),
                    escape_text(&truncate(&gap.before, 28)),
                    escape_text(&truncate(&gap.after, 28))
                ),
            );
        }
    }
    for note in &text.notes {
        fact(out, paint, "", &format!("({note})"));
    }
    true
}

/// The cells of a bar for `[start, end)` on an axis of `total` ticks.
fn bar(start: u64, duration: u64, total: u64) -> String {
    if total == 0 {
        return String::new();
    }
    let cell = |t: u64| (u128::from(t) * BAR_CELLS as u128 / u128::from(total)) as usize;
    let first = cell(start).min(BAR_CELLS - 1);
    let end = start.saturating_add(duration);
    // The last cell the stage touches, so a short stage still shows as one cell.
    let last = if duration == 0 {
        first
    } else {
        cell(end - 1).clamp(first, BAR_CELLS - 1)
    };
    (0..BAR_CELLS)
        .map(|i| {
            if (first..=last).contains(&i) {
                '█'
            } else {
                '·'
            }
        })
        .collect()
}

/// One row of the timeline table.
struct Row {
    depth: usize,
    name: String,
    start: String,
    duration: String,
    bar: String,
    dim: bool,
}

/// The rows of a stage and its parts, depth first.
fn stage_rows(
    rows: &mut Vec<Row>,
    stage: &Stage,
    depth: usize,
    clock: Clock,
    total: u64,
    parent: &str,
) {
    // A child's name repeats its parent's ("segment 2 copy"): show the rest.
    let name = stage
        .name
        .strip_prefix(parent)
        .map(str::trim_start)
        .filter(|rest| !rest.is_empty())
        .unwrap_or(&stage.name);
    rows.push(Row {
        depth,
        name: escape_text(name),
        start: clock.column(stage.start_ticks),
        duration: clock.column(stage.duration_ticks),
        bar: bar(stage.start_ticks, stage.duration_ticks, total),
        dim: depth > 0,
    });
    for child in &stage.children {
        stage_rows(rows, child, depth + 1, clock, total, &stage.name);
    }
}

/// Every row of the timeline: the stages, then the loader's time outside them, the
/// trace's output and the total.
fn timeline_rows(report: &Report) -> Vec<Row> {
    let clock = report.clock();
    let t = &report.timeline;
    let mut rows = Vec::new();
    for stage in &t.stages {
        stage_rows(&mut rows, stage, 0, clock, t.loader_ticks, "");
    }
    let mut totals = vec![("other".to_string(), t.other_ticks, true)];
    if let Some(output) = t.trace_output_ticks {
        let name = format!("trace output ({})", human_size(t.trace_bytes as u64));
        totals.push((name, output, true));
    }
    totals.push(("loader total".to_string(), t.total_ticks, false));
    for (name, ticks, dim) in totals {
        rows.push(Row {
            depth: 0,
            name,
            start: String::new(),
            duration: clock.column(ticks),
            bar: String::new(),
            dim,
        });
    }
    rows
}

fn timeline(report: &Report, paint: Paint, out: &mut String) {
    let unit = if report.clock().known() {
        "ms from the loader's entry"
    } else {
        "TSC ticks from the loader's entry"
    };
    let _ = writeln!(out, "{} ({unit})", paint.bold("Timeline"));
    if report.timeline.stages.is_empty() {
        let _ = writeln!(out, "  no stages: the trace has too few events");
        return;
    }
    // Rows: indent, name, start, duration, bar; widths from the contents.
    let rows = timeline_rows(report);
    let width = |column: fn(&Row) -> &String, least: usize| {
        rows.iter()
            .map(|r| column(r).chars().count())
            .max()
            .unwrap_or(0)
            .max(least)
    };
    let start_w = width(|r| &r.start, 5);
    let dur_w = width(|r| &r.duration, 8);
    // The name column takes what the numbers and the bar leave of the width (absurd
    // tick counts may push the line past it rather than squeeze names to nothing).
    let name_w = WIDTH
        .saturating_sub(2 + 2 + start_w + 2 + dur_w + 2 + BAR_CELLS)
        .max(10);
    let _ = writeln!(
        out,
        "  {:name_w$}  {:>start_w$}  {:>dur_w$}",
        "stage", "start", "duration"
    );
    for row in rows {
        let indented = format!("{}{}", "  ".repeat(row.depth), row.name);
        let name = truncate(&indented, name_w);
        let name = format!("{name:name_w$}");
        let name = if row.dim { paint.dim(&name) } else { name };
        let bar = if row.bar.is_empty() {
            String::new()
        } else {
            format!("  {}", paint.cyan(&row.bar))
        };
        let line = format!(
            "  {name}  {:>start_w$}  {:>dur_w$}{bar}",
            row.start, row.duration
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn memory(report: &Report, paint: Paint, out: &mut String) {
    let _ = writeln!(
        out,
        "{} (sorted by address, end exclusive)",
        paint.bold("Memory map")
    );
    if report.memory.is_empty() {
        let _ = writeln!(out, "  no regions: the trace has no memory events");
        return;
    }
    let warned = super::warned_regions(report);
    let digits = report
        .memory
        .iter()
        .map(|r| format!("{:x}", r.end).len())
        .max()
        .unwrap_or(1)
        .max(6);
    let sizes: Vec<String> = report.memory.iter().map(|r| human_size(r.size)).collect();
    let size_w = sizes
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let addr_w = digits + 2;
    let name_w = WIDTH
        .saturating_sub(2 + addr_w + 2 + addr_w + 2 + size_w + 2)
        .max(12);
    let _ = writeln!(
        out,
        "  {:addr_w$}  {:addr_w$}  {:>size_w$}  region",
        "start", "end", "size"
    );
    for (i, region) in report.memory.iter().enumerate() {
        let indent = "  ".repeat((region.depth as usize).min(4));
        let mark = if warned[i] { "! " } else { "" };
        let name = truncate(
            &format!("{indent}{mark}{}", escape_text(&region.name)),
            name_w,
        );
        let name = if warned[i] { paint.yellow(&name) } else { name };
        let line = format!(
            "  {}  {}  {:>size_w$}  {name}",
            hex_padded(region.start, digits),
            hex_padded(region.end, digits),
            sizes[i],
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn warnings(report: &Report, paint: Paint, out: &mut String) {
    if report.warnings.is_empty() {
        let _ = writeln!(out, "{} none", paint.bold("Warnings:"));
        return;
    }
    let _ = writeln!(out, "{}", paint.bold("Warnings"));
    for warning in &report.warnings {
        // Messages are built from escaped parts; escaping is idempotent, so doing it
        // again here costs nothing and guards the terminal against any slip.
        let text = escape_text(&warning.message);
        for (i, line) in wrap(&text, WIDTH - 4).iter().enumerate() {
            let prefix = if i == 0 { "  ! " } else { "    " };
            let _ = writeln!(out, "{prefix}{}", paint.yellow(line));
        }
    }
}
