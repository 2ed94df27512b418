//! The Chrome trace-event rendering (JSON object format), which ui.perfetto.dev and
//! chrome://tracing open: one process for the boot, a "loader" thread whose stages
//! are complete events (`"ph": "X"`, `ts` and `dur` in microseconds) nested by time
//! inside one "loader total" event, with the trace's output after them,
//! a "host" thread with firmware and kernel times when the host measured them, an
//! instant event for a refusal or an exception, and the memory layout, outcome and
//! warnings as metadata.
//!
//! With an unknown TSC frequency the viewer still needs microseconds: one tick is
//! shown as one microsecond, and the thread name says so.

use serde_json::{json, Value};

use super::format::{escape_text, hex, round_ns, Clock};
use super::{OutcomeKind, Report, Stage};

/// The process and thread ids used.
const PID: u32 = 1;
const HOST_TID: u32 = 1;
const LOADER_TID: u32 = 2;
const KERNEL_TID: u32 = 3;

/// Where the loader's time lies on the viewer's microsecond axis.
#[derive(Clone, Copy)]
struct Axis {
    clock: Clock,
    /// With host times, the loader's time 0 sits after the firmware.
    offset: f64,
}

impl Axis {
    /// Ticks on the viewer's microsecond axis (one tick a microsecond when the
    /// frequency is unknown).
    fn span(self, ticks: u64) -> f64 {
        self.clock.us(ticks).unwrap_or(ticks as f64)
    }

    /// A time of the loader's, as a point of the axis.
    fn at(self, ticks: u64) -> f64 {
        self.offset + self.span(ticks)
    }
}

/// Renders the report; see [`Report::to_chrome_trace`].
pub fn render(report: &Report) -> String {
    let clock = report.clock();
    let axis = Axis {
        clock,
        offset: report
            .host
            .firmware_us
            .filter(|_| clock.known())
            .unwrap_or(0.0),
    };
    // The loader hands over once it wrote its trace too: the kernel's and the
    // host's times start after the loader total, not after its work alone.
    let loader_end = axis.at(report.timeline.total_ticks);
    let mut events = loader_thread(report, axis);
    events.extend(host_thread(report, loader_end));
    events.extend(kernel_thread(report, loader_end));
    let trace = json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "metadata": metadata(report),
    });
    serde_json::to_string_pretty(&trace).expect("a JSON value always serializes")
}

/// The process's and the loader thread's names, its stages nested by time, and a
/// refusal or an exception as an instant at its end.
fn loader_thread(report: &Report, axis: Axis) -> Vec<Value> {
    let loader_thread = if axis.clock.known() {
        format!("loader (TSC {} kHz)", report.frequency.khz)
    } else {
        "loader (TSC frequency unknown: 1 µs shown = 1 TSC tick)".to_string()
    };
    let mut events = vec![
        json!({"name": "process_name", "ph": "M", "pid": PID, "tid": LOADER_TID,
               "args": {"name": "rusty-loader boot"}}),
        json!({"name": "process_labels", "ph": "M", "pid": PID, "tid": LOADER_TID,
               "args": {"labels": escape_text(&report.outcome.message)}}),
        json!({"name": "thread_name", "ph": "M", "pid": PID, "tid": LOADER_TID,
               "args": {"name": loader_thread}}),
    ];
    fn add(events: &mut Vec<Value>, stage: &Stage, axis: Axis) {
        events.push(json!({
            "name": escape_text(&stage.name),
            "cat": stage.id,
            "ph": "X",
            "ts": round_ns(axis.at(stage.start_ticks)),
            "dur": round_ns(axis.span(stage.duration_ticks)),
            "pid": PID,
            "tid": LOADER_TID,
            "args": {
                "start_ticks": stage.start_ticks,
                "duration_ticks": stage.duration_ticks,
                "measured": stage.measured,
            },
        }));
        for child in &stage.children {
            add(events, child, axis);
        }
    }
    let timeline = &report.timeline;
    // The loader total (the text report's, the JSON's `timeline.total_us`) holds
    // the stages and the trace's output. The stages' times leave the output out
    // (the loader subtracts it), so it is shown as one span after them.
    if !timeline.stages.is_empty() {
        events.push(json!({
            "name": "loader total",
            "cat": "loader-total",
            "ph": "X",
            "ts": round_ns(axis.at(0)),
            "dur": round_ns(axis.span(timeline.total_ticks)),
            "pid": PID,
            "tid": LOADER_TID,
            "args": {
                "total_ticks": timeline.total_ticks,
                "work_ticks": timeline.loader_ticks,
                "trace_output_ticks": timeline.trace_output_ticks,
            },
        }));
    }
    for stage in &timeline.stages {
        add(&mut events, stage, axis);
    }
    if let Some(output) = timeline.trace_output_ticks.filter(|&t| t > 0) {
        events.push(json!({
            "name": format!("trace output ({} B, written between the stages)", timeline.trace_bytes),
            "cat": "trace-output",
            "ph": "X",
            "ts": round_ns(axis.at(timeline.loader_ticks)),
            "dur": round_ns(axis.span(output)),
            "pid": PID,
            "tid": LOADER_TID,
            "args": {"duration_ticks": output, "bytes": timeline.trace_bytes},
        }));
    }
    if matches!(
        report.outcome.kind,
        OutcomeKind::Refused | OutcomeKind::CpuException
    ) {
        events.push(json!({
            "name": escape_text(&report.outcome.message),
            "cat": "outcome",
            "ph": "i",
            "s": "p",
            "ts": round_ns(axis.at(report.timeline.loader_ticks)),
            "pid": PID,
            "tid": LOADER_TID,
        }));
    }
    events
}

/// The host's thread: the firmware before the loader and the kernel after it, when
/// the host measured them.
fn host_thread(report: &Report, loader_end: f64) -> Vec<Value> {
    let host = &report.host;
    let mut spans = Vec::new();
    if let Some(firmware) = host.firmware_us.filter(|_| report.clock().known()) {
        spans.push(("firmware", 0.0, firmware));
    }
    // Kernel times start at the hand-over on the loader's axis, so the two threads
    // line up; the host measured only their lengths.
    if report.outcome.hand_over.is_some() {
        if let Some(exit) = host.kernel_to_exit_us {
            spans.push(("kernel to exit", loader_end, exit));
        }
        if let Some(first) = host.kernel_to_first_output_us {
            spans.push(("kernel to first output", loader_end, first));
        }
    }
    if spans.is_empty() {
        return Vec::new();
    }
    let mut events = vec![
        json!({"name": "thread_name", "ph": "M", "pid": PID, "tid": HOST_TID,
                           "args": {"name": "host (measured on arrival)"}}),
    ];
    for (name, ts, dur) in spans {
        events.push(json!({
            "name": name, "cat": "host", "ph": "X",
            "ts": round_ns(ts), "dur": round_ns(dur.max(0.0)),
            "pid": PID, "tid": HOST_TID,
        }));
    }
    events
}

/// The kernel's thread: its lines, one instant each at its arrival, from the
/// hand-over on the loader's axis, the largest gaps between them, and QEMU's stop
/// (a triple fault, a hang) as one more instant.
fn kernel_thread(report: &Report, loader_end: f64) -> Vec<Value> {
    let kernel = &report.kernel_text;
    if kernel.instants.is_empty() && report.stop.is_none() {
        return Vec::new();
    }
    let mut events = vec![
        json!({"name": "thread_name", "ph": "M", "pid": PID, "tid": KERNEL_TID,
                           "args": {"name": "kernel (text lines, host arrival)"}}),
    ];
    for (at, line) in &kernel.instants {
        events.push(json!({
            "name": escape_text(line), "cat": "kernel", "ph": "i", "s": "t",
            "ts": round_ns(loader_end + at), "pid": PID, "tid": KERNEL_TID,
        }));
    }
    for gap in &kernel.gaps {
        if let Some(at) = gap.at_us {
            events.push(json!({
                "name": format!("gap before \"{}\"", escape_text(&gap.after)),
                "cat": "kernel-gap", "ph": "X",
                "ts": round_ns(loader_end + at), "dur": gap.length_us,
                "pid": PID, "tid": KERNEL_TID,
            }));
        }
    }
    if let Some(stop) = &report.stop {
        events.push(json!({
            "name": escape_text(&stop.message), "cat": "qemu", "ph": "i", "s": "p",
            "ts": round_ns(loader_end + stop.after_hand_over_us.unwrap_or(0.0)),
            "pid": PID, "tid": KERNEL_TID,
        }));
    }
    events
}

/// The trace's metadata: the summary, the clock, the outcome, the memory layout and
/// the warnings.
fn metadata(report: &Report) -> Value {
    let memory: Vec<Value> = report
        .memory
        .iter()
        .map(|r| {
            json!({
                "name": escape_text(&r.name),
                "kind": r.kind,
                "start": hex(r.start),
                "end": hex(r.end),
                "size": r.size,
            })
        })
        .collect();
    let warnings: Vec<String> = report
        .warnings
        .iter()
        .map(|w| escape_text(&w.message))
        .collect();
    let clock = report.clock();
    json!({
        "source": "rusty-trace",
        "summary": report.summary,
        "loader_total_us": report.timeline.total_us,
        "time_unit": if clock.known() { "us" } else { "ticks" },
        "tsc_khz": report.frequency.khz,
        "outcome": report.outcome.message,
        "memory_layout": memory,
        "warnings": warnings,
    })
}
