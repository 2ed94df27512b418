//! The SVG rendering, written by hand: the summary, a crashed boot's crash section
//! (as the text report has it), a boot chart (one row per stage on a time axis,
//! sub-stages drawn inside their stage, then the text report's totals: the time
//! between stages, the trace's output, the loader total) and a memory-layout
//! picture, the kernel's text over time, followed by the warnings. It needs no script, font or stylesheet beyond what every browser
//! has, and every bar and region carries a `<title>` tooltip with its numbers.
//!
//! Physical addresses span from 0 to beyond 1 TiB while the interesting regions are
//! a few KiB, so the memory picture is not to scale: each range between two region
//! boundaries gets one band of fixed height, low addresses at the top, nested
//! regions in lanes to the right of what contains them.

use std::fmt::Write as _;

use super::crash::Crash;
use super::format::{hex, hex_padded, human_size, truncate, wrap, xml_escape, Clock};
use super::stages;
use super::{Region, RegionKind, Report, Stage};

const WIDTH: f64 = 960.0;
const MARGIN: f64 = 20.0;
/// The boot chart's label column and plot area.
const LABEL_WIDTH: f64 = 250.0;
const PLOT_X: f64 = MARGIN + LABEL_WIDTH + 20.0;
const PLOT_WIDTH: f64 = WIDTH - MARGIN - PLOT_X;
const ROW: f64 = 22.0;
/// The memory picture's address column and lane area.
const LANES_X: f64 = 170.0;
const LANES_WIDTH: f64 = WIDTH - MARGIN - LANES_X;
const BAND: f64 = 20.0;
const GAP_BAND: f64 = 14.0;
/// An average glyph width at 12 px, for shortening labels to fit.
const CHAR_WIDTH: f64 = 6.6;

/// A stage's colour, as [`STAGES`](super::stages::STAGES) gives it.
fn stage_color(id: &str) -> &'static str {
    stages::kind(id).map_or(stages::OTHER_COLOR, |kind| kind.color)
}

fn region_color(kind: RegionKind) -> &'static str {
    match kind {
        RegionKind::Usable => "#e5f5e0",
        RegionKind::Reserved => "#d9d9d9",
        RegionKind::Acpi => "#efe3c8",
        RegionKind::Nvs => "#ead1c6",
        RegionKind::Bad => "#f4a6a6",
        RegionKind::UnknownKind => "#eeeeee",
        RegionKind::Loader => "#9ecae1",
        RegionKind::Mbi => "#c7b9e0",
        RegionKind::Module => "#fdd0a2",
        RegionKind::Segment => "#74c476",
        RegionKind::Tls => "#c7e9c0",
        RegionKind::PageTables => "#6baed6",
        RegionKind::Fdt => "#bcbddc",
        RegionKind::BootInfo => "#fdae6b",
        RegionKind::Stack => "#fd8d3c",
    }
}

/// A number with at most three decimals, for coordinates.
fn n(value: f64) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    if rounded == rounded.trunc() {
        format!("{rounded:.0}")
    } else {
        format!("{rounded}")
    }
}

/// A grid step of 1, 2 or 5 times a power of ten that gives at most `max` steps.
fn nice_step(total: f64, max: f64) -> f64 {
    let raw = (total / max).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * power)
}

/// Renders the report; see [`Report::to_svg`].
pub fn render(report: &Report) -> String {
    let mut body = String::new();
    let mut y = MARGIN + 16.0;
    let _ = writeln!(
        body,
        r#"<text x="{}" y="{}" font-size="18" font-weight="bold">rusty-loader boot</text>"#,
        n(MARGIN),
        n(y)
    );
    y += 22.0;
    let outcome = format!("outcome: {}", report.outcome.message);
    for line in wrap(&report.summary, 130)
        .into_iter()
        .chain(wrap(&outcome, 130))
    {
        let _ = writeln!(
            body,
            r#"<text x="{}" y="{}">{}</text>"#,
            n(MARGIN),
            n(y),
            xml_escape(&line)
        );
        y += 16.0;
    }
    y += 12.0;
    if let Some(crash) = &report.crash {
        y = crash_section(crash, &mut body, y);
        y += 24.0;
    }
    y = boot_chart(report, &mut body, y);
    y += 24.0;
    y = memory_picture(report, &mut body, y);
    y += 24.0;
    if report.kernel_text.lines > 0 || report.stop.is_some() {
        y = kernel_text(report, &mut body, y);
        y += 24.0;
    }
    y = warnings(report, &mut body, y);
    let height = y + MARGIN;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
        w = n(WIDTH),
        h = n(height)
    );
    let _ = writeln!(out, "<title>{}</title>", xml_escape(&report.summary));
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    out += &body;
    out += "</svg>\n";
    out
}

/// The kernel's text after the hand-over: a strip with one tick per line at its
/// arrival and the largest gaps as red bars, QEMU's stop as a red mark, then the
/// milestones and gaps in words. Returns the next free y.
fn kernel_text(report: &Report, out: &mut String, mut y: f64) -> f64 {
    let text = &report.kernel_text;
    section_heading(out, y, "Kernel text (host arrival, from the hand-over)");
    y += 8.0;
    let stop_at = report.stop.as_ref().and_then(|s| s.after_hand_over_us);
    let end_us = text
        .instants
        .iter()
        .map(|(at, _)| *at)
        .chain(stop_at)
        .chain(text.milestones.iter().filter_map(|m| m.after_hand_over_us))
        .fold(0.0f64, f64::max);
    if end_us > 0.0 {
        y = kernel_strip(report, out, y + 10.0, end_us);
    }
    for line in kernel_text_lines(report).iter().flat_map(|l| wrap(l, 130)) {
        y += 16.0;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            n(MARGIN),
            n(y),
            xml_escape(&line)
        );
    }
    y + 8.0
}

/// The strip of the kernel's lines at `strip_y`, from the hand-over to `end_us`;
/// returns the next free y.
fn kernel_strip(report: &Report, out: &mut String, strip_y: f64, end_us: f64) -> f64 {
    let text = &report.kernel_text;
    let x_of = |us: f64| PLOT_X + us / end_us * PLOT_WIDTH;
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" fill="#555555">0 to {:.1} ms, one tick per line</text>"##,
        n(MARGIN),
        n(strip_y + 12.0),
        end_us / 1000.0
    );
    let _ = writeln!(
        out,
        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#f7f7f7" stroke="#cccccc"/>"##,
        n(PLOT_X),
        n(strip_y),
        n(PLOT_WIDTH),
        n(ROW)
    );
    for gap in &text.gaps {
        if let Some(at) = gap.at_us {
            let _ = writeln!(
                out,
                r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#f4a6a6"><title>{}</title></rect>"##,
                n(x_of(at)),
                n(strip_y),
                n((gap.length_us / end_us * PLOT_WIDTH).max(1.0)),
                n(ROW),
                xml_escape(&format!(
                    "{:.3} ms between \"{}\" and \"{}\"",
                    gap.length_us / 1000.0,
                    gap.before,
                    gap.after
                ))
            );
        }
    }
    for (at, line) in &text.instants {
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#3182bd"><title>{}</title></line>"##,
            n(strip_y + 2.0),
            n(strip_y + ROW - 2.0),
            xml_escape(&format!("+{:.3} ms {line}", at / 1000.0)),
            x = n(x_of(*at))
        );
    }
    let stop = report.stop.as_ref();
    if let Some((at, stop)) = stop.and_then(|s| Some((s.after_hand_over_us?, s))) {
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#cb181d" stroke-width="3"><title>{}</title></line>"##,
            n(strip_y - 4.0),
            n(strip_y + ROW + 4.0),
            xml_escape(&stop.message),
            x = n(x_of(at))
        );
    }
    // The strip's legend: what each mark is.
    let mut legend = vec!["blue tick: a line's arrival"];
    if text.gaps.iter().any(|g| g.at_us.is_some()) {
        legend.push("red band: one of the largest gaps between lines");
    }
    if stop.and_then(|s| s.after_hand_over_us).is_some() {
        legend.push("thick red mark: QEMU stopped the guest");
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" font-size="10" fill="#555555">{}</text>"##,
        n(PLOT_X),
        n(strip_y + ROW + 14.0),
        xml_escape(&legend.join("; "))
    );
    strip_y + ROW + 22.0
}

/// The kernel's milestones, gaps, QEMU's stop and the notes, in words.
fn kernel_text_lines(report: &Report) -> Vec<String> {
    let text = &report.kernel_text;
    let when = |us: Option<f64>| us.map_or(String::new(), |us| format!("+{:.3} ms ", us / 1000.0));
    let mut lines: Vec<String> = text
        .milestones
        .iter()
        .map(|m| {
            let line = if m.line.is_empty() {
                String::new()
            } else {
                format!(": \"{}\"", m.line)
            };
            format!("{}{}{line}", when(m.after_hand_over_us), m.name)
        })
        .collect();
    lines.extend(text.gaps.iter().map(|g| {
        format!(
            "gap {:.3} ms after \"{}\", before \"{}\"",
            g.length_us / 1000.0,
            g.before,
            g.after
        )
    }));
    if let Some(stop) = &report.stop {
        lines.push(format!("QEMU: {}", stop.message));
    }
    lines.extend(text.notes.iter().map(|note| format!("({note})")));
    lines
}

/// The boot chart; returns the next free y.
fn boot_chart(report: &Report, out: &mut String, mut y: f64) -> f64 {
    let clock = report.clock();
    let timeline = &report.timeline;
    let heading = if clock.known() {
        "Boot chart (time from the loader's entry)"
    } else {
        "Boot chart (TSC ticks from the loader's entry: frequency unknown)"
    };
    section_heading(out, y, heading);
    y += 8.0;
    if timeline.stages.is_empty() || timeline.loader_ticks == 0 {
        y += 16.0;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">no stages: the trace has too few events</text>"#,
            n(MARGIN),
            n(y)
        );
        return y + 8.0;
    }
    let total = timeline.loader_ticks as f64;
    let x_of = |ticks: u64| PLOT_X + ticks as f64 / total * PLOT_WIDTH;
    y = time_axis(report, out, y + 16.0);
    for stage in &timeline.stages {
        chart_label(
            out,
            y,
            &stage.name,
            &clock.human(stage.duration_ticks),
            false,
        );
        bar(out, stage, clock, &x_of, y + 3.0);
        for child in &stage.children {
            bar(out, child, clock, &x_of, y + 3.0);
        }
        y += ROW;
    }
    // The rows after the stages are the text report's (`other`, the trace's
    // output, the loader total): the same figures, from the same fields.
    let mut totals = vec![("other (between stages)".to_string(), timeline.other_ticks)];
    if let Some(output) = timeline.trace_output_ticks {
        totals.push((
            format!("trace output ({})", human_size(timeline.trace_bytes as u64)),
            output,
        ));
    }
    totals.push(("loader total".to_string(), timeline.total_ticks));
    for (name, ticks) in totals {
        chart_label(out, y, &name, &clock.human(ticks), true);
        y += ROW;
    }
    let mut legend = vec![
        "solid: measured by the loader; pale: between two events; segments: copy green, zero yellow".to_string(),
    ];
    if let Some(output) = timeline.trace_output_ticks {
        legend.push(format!(
            "The axis is the loader's work ({}); writing the trace took {} more, between the stages: the loader total is both.",
            clock.human(timeline.loader_ticks),
            clock.human(output)
        ));
    }
    for line in legend {
        y += 14.0;
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" font-size="10" fill="#555555">{}</text>"##,
            n(MARGIN),
            n(y),
            xml_escape(&line)
        );
    }
    y
}

/// The crash section, as the text report has it ([`Crash::lines`]): a heading and
/// one line per fact, wrapped; returns the next free y.
fn crash_section(crash: &Crash, out: &mut String, mut y: f64) -> f64 {
    section_heading(out, y, "Crash");
    for (label, text) in crash.lines() {
        for (i, line) in wrap(&text, 118).into_iter().enumerate() {
            y += 16.0;
            if i == 0 && !label.is_empty() {
                let _ = writeln!(
                    out,
                    r#"<text x="{}" y="{}" font-weight="bold">{label}</text>"#,
                    n(MARGIN),
                    n(y)
                );
            }
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{}" fill="#b03000">{}</text>"##,
                n(MARGIN + 70.0),
                n(y),
                xml_escape(&line)
            );
        }
    }
    y + 8.0
}

/// The time axis on baseline `axis_y` with its grid down the chart, in
/// milliseconds, or in ticks (which the heading names: tick counts are long, and a
/// unit after each would run the labels into each other). Returns the y of the
/// first row.
fn time_axis(report: &Report, out: &mut String, axis_y: f64) -> f64 {
    let timeline = &report.timeline;
    let rows = timeline.stages.len() as f64
        + if timeline.trace_output_ticks.is_some() {
            3.0
        } else {
            2.0
        };
    let grid_bottom = axis_y + 6.0 + rows * ROW;
    // A run too short to show in milliseconds falls back to ticks.
    let (units, unit) = match report.clock().us(timeline.loader_ticks) {
        Some(us) if us > 0.0 => (us / 1000.0, " ms"),
        _ => (timeline.loader_ticks as f64, ""),
    };
    let step = nice_step(units, 8.0);
    let decimals = if step < 1.0 {
        (-step.log10()).ceil() as usize
    } else {
        0
    };
    let mut k = 0.0;
    while k * step <= units * 1.000_001 {
        let x = PLOT_X + k * step / units * PLOT_WIDTH;
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#e0e0e0"/>"##,
            n(axis_y + 4.0),
            n(grid_bottom),
            x = n(x)
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#555555">{:.decimals$}{unit}</text>"##,
            n(x),
            n(axis_y),
            k * step
        );
        k += 1.0;
    }
    axis_y + 6.0
}

/// A row's name and duration in the label column; a total's (`total`) in grey,
/// its name as written here.
fn chart_label(out: &mut String, y: f64, name: &str, duration: &str, total: bool) {
    let name = truncate(name, name_room(duration));
    if total {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" fill="#555555">{name}</text>"##,
            n(MARGIN),
            n(y + 15.0),
        );
    } else {
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            n(MARGIN),
            n(y + 15.0),
            xml_escape(&name)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="end" fill="#555555">{}</text>"##,
        n(MARGIN + LABEL_WIDTH),
        n(y + 15.0),
        xml_escape(duration)
    );
}

/// How many characters of a stage's name fit before its duration, both in the label
/// column (a duration in ticks takes more room than one in milliseconds).
fn name_room(duration: &str) -> usize {
    let free = LABEL_WIDTH - (duration.chars().count() as f64 + 2.0) * CHAR_WIDTH;
    ((free / CHAR_WIDTH) as usize).clamp(8, 30)
}

/// One bar with its tooltip, kept inside the plot (a stage that ends at the last
/// event ends at its right edge, its minimum width included).
fn bar(out: &mut String, stage: &Stage, clock: Clock, x_of: &dyn Fn(u64) -> f64, y: f64) {
    let right = PLOT_X + PLOT_WIDTH;
    let x = x_of(stage.start_ticks).min(right - 1.0);
    let width = (x_of(stage.end_ticks()).min(right) - x).max(1.0);
    let opacity = if stage.measured { "1" } else { "0.55" };
    let _ = writeln!(
        out,
        r##"<rect x="{}" y="{}" width="{}" height="16" fill="{}" fill-opacity="{opacity}" stroke="#555555" stroke-width="0.5"><title>{}: start {}, {}{}</title></rect>"##,
        n(x),
        n(y),
        n(width),
        stage_color(stage.id),
        xml_escape(&stage.name),
        xml_escape(&clock.human(stage.start_ticks)),
        xml_escape(&clock.human(stage.duration_ticks)),
        if stage.measured {
            " (measured)"
        } else {
            " (between events)"
        },
    );
}

/// The memory picture; returns the next free y.
fn memory_picture(report: &Report, out: &mut String, mut y: f64) -> f64 {
    section_heading(
        out,
        y,
        "Memory layout (not to scale: one band per range between boundaries)",
    );
    y += 12.0;
    let regions: Vec<(usize, &Region)> = report
        .memory
        .iter()
        .enumerate()
        .filter(|(_, r)| r.size > 0)
        .collect();
    if regions.is_empty() {
        y += 16.0;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">no regions: the trace has no memory events</text>"#,
            n(MARGIN),
            n(y)
        );
        return y + 8.0;
    }
    let bands = Bands::of(&regions, y);
    bands.draw_boundaries(out);
    region_boxes(report, &regions, &bands, out);
    bands.bottom + 8.0
}

/// The picture's vertical axis: each region boundary's y, the ranges covered by a
/// region a full band, uncovered gaps a thin one.
struct Bands {
    /// The boundaries, ascending.
    bounds: Vec<u64>,
    /// The y of each boundary.
    ys: Vec<f64>,
    /// The y of the last boundary.
    bottom: f64,
}

impl Bands {
    fn of(regions: &[(usize, &Region)], top: f64) -> Bands {
        let mut bounds: Vec<u64> = regions.iter().flat_map(|(_, r)| [r.start, r.end]).collect();
        bounds.sort_unstable();
        bounds.dedup();
        // How many regions cover the range from each boundary to the next: +1 where a
        // region starts, -1 where it ends, summed up (asking every region about every
        // range would cost their product).
        let mut opened = vec![0i64; bounds.len()];
        for (_, r) in regions {
            opened[bounds.partition_point(|&b| b < r.start)] += 1;
            opened[bounds.partition_point(|&b| b < r.end)] -= 1;
        }
        let mut ys = Vec::with_capacity(bounds.len());
        let mut at = top;
        let mut covering = 0i64;
        for (i, opened) in opened.iter().enumerate() {
            ys.push(at);
            covering += opened;
            if i + 1 < bounds.len() {
                at += if covering > 0 { BAND } else { GAP_BAND };
            }
        }
        Bands {
            bounds,
            ys,
            bottom: at,
        }
    }

    /// The y of a boundary address.
    fn y_of(&self, address: u64) -> f64 {
        self.ys[self.bounds.partition_point(|&b| b < address)]
    }

    /// Each boundary's address and a line across the picture.
    fn draw_boundaries(&self, out: &mut String) {
        let digits = self
            .bounds
            .iter()
            .map(|b| format!("{b:x}").len())
            .max()
            .unwrap_or(1)
            .max(6);
        for (&b, &by) in self.bounds.iter().zip(&self.ys) {
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{}" font-family="monospace" font-size="10" text-anchor="end" fill="#555555">{}</text>"##,
                n(LANES_X - 8.0),
                n(by + 4.0),
                hex_padded(b, digits)
            );
            let _ = writeln!(
                out,
                r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#eeeeee"/>"##,
                n(LANES_X - 4.0),
                n(WIDTH - MARGIN),
                y = n(by)
            );
        }
    }
}

/// Each region as a box in its lane (nested regions to the right of what holds
/// them), outlined red when a warning names it.
fn region_boxes(report: &Report, regions: &[(usize, &Region)], bands: &Bands, out: &mut String) {
    // The memory map keeps the first lane to itself: a placed region that sticks out
    // of RAM (and so is contained in nothing) must not hide the RAM it overlaps.
    let has_map = regions.iter().any(|(_, r)| r.kind.is_memory_map());
    let lane_of = |r: &Region| {
        let depth = r.depth as usize;
        if has_map && !r.kind.is_memory_map() {
            depth.max(1)
        } else {
            depth
        }
    };
    let lanes = regions
        .iter()
        .map(|(_, r)| lane_of(r) + 1)
        .max()
        .unwrap_or(1)
        .min(4);
    let lane_width = LANES_WIDTH / lanes as f64;
    let warned_regions = super::warned_regions(report);
    for &(index, region) in regions {
        let lane = lane_of(region).min(lanes - 1);
        let x = LANES_X + lane as f64 * lane_width;
        let top = bands.y_of(region.start);
        let height = bands.y_of(region.end) - top;
        let (stroke, stroke_width) = if warned_regions[index] {
            ("#d62728", "2")
        } else {
            ("#555555", "0.5")
        };
        let label = format!("{} ({})", region.name, human_size(region.size));
        let _ = writeln!(
            out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="{stroke}" stroke-width="{stroke_width}"><title>{}: [{}, {}), {}</title></rect>"##,
            n(x + 2.0),
            n(top),
            n(lane_width - 6.0),
            n(height),
            region_color(region.kind),
            xml_escape(&region.name),
            hex(region.start),
            hex(region.end),
            human_size(region.size),
        );
        if height >= 12.0 {
            let chars = ((lane_width - 14.0) / CHAR_WIDTH).max(4.0) as usize;
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" font-size="11">{}</text>"#,
                n(x + 8.0),
                n(top + 14.0),
                xml_escape(&truncate(&label, chars))
            );
        }
    }
}

/// The warnings as lines of text; returns the next free y.
fn warnings(report: &Report, out: &mut String, mut y: f64) -> f64 {
    let heading = if report.warnings.is_empty() {
        "Warnings: none"
    } else {
        "Warnings"
    };
    section_heading(out, y, heading);
    for warning in &report.warnings {
        for line in wrap(&warning.message, 130) {
            y += 16.0;
            let _ = writeln!(
                out,
                r##"<text x="{}" y="{}" fill="#b03000">{}</text>"##,
                n(MARGIN),
                n(y),
                xml_escape(&line)
            );
        }
    }
    y
}

/// A section's heading at the left margin, on baseline `y`.
fn section_heading(out: &mut String, y: f64, text: &str) {
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="14" font-weight="bold">{text}</text>"#,
        n(MARGIN),
        n(y)
    );
}
