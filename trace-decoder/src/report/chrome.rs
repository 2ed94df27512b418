//! The Chrome trace-event rendering (JSON object format), which ui.perfetto.dev and
//! chrome://tracing open: one process for the boot, a "loader" thread whose stages
//! are complete events (`"ph": "X"`, `ts` and `dur` in microseconds) nested by time,
//! a "host" thread with firmware and kernel times when the host measured them, an
//! instant event for a refusal or an exception, and the memory layout, outcome and
//! warnings as metadata.
//!
//! With an unknown TSC frequency the viewer still needs microseconds: one tick is
//! shown as one microsecond, and the thread name says so.

use serde_json::{json, Value};

use super::format::{escape_text, hex, round_ns};
use super::{OutcomeKind, Report, Stage};

/// The process and thread ids used.
const PID: u32 = 1;
const HOST_TID: u32 = 1;
const LOADER_TID: u32 = 2;
const KERNEL_TID: u32 = 3;

/// Renders the report; see [`Report::to_chrome_trace`].
pub fn render(report: &Report) -> String {
    let clock = report.clock();
    // Ticks on the viewer's microsecond axis.
    let axis = |ticks: u64| clock.us(ticks).unwrap_or(ticks as f64);
    // With host times, the loader's time 0 sits after the firmware.
    let offset = report
        .host
        .firmware_us
        .filter(|_| clock.known())
        .unwrap_or(0.0);

    let loader_thread = if clock.known() {
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

    fn add(events: &mut Vec<Value>, stage: &Stage, axis: &dyn Fn(u64) -> f64, offset: f64) {
        events.push(json!({
            "name": escape_text(&stage.name),
            "cat": stage.id,
            "ph": "X",
            "ts": round_ns(offset + axis(stage.start_ticks)),
            "dur": round_ns(axis(stage.duration_ticks)),
            "pid": PID,
            "tid": LOADER_TID,
            "args": {
                "start_ticks": stage.start_ticks,
                "duration_ticks": stage.duration_ticks,
                "measured": stage.measured,
            },
        }));
        for child in &stage.children {
            add(events, child, axis, offset);
        }
    }
    for stage in &report.timeline.stages {
        add(&mut events, stage, &axis, offset);
    }

    let loader_end = offset + axis(report.timeline.loader_ticks);
    if matches!(
        report.outcome.kind,
        OutcomeKind::Refused | OutcomeKind::CpuException
    ) {
        events.push(json!({
            "name": escape_text(&report.outcome.message),
            "cat": "outcome",
            "ph": "i",
            "s": "p",
            "ts": round_ns(loader_end),
            "pid": PID,
            "tid": LOADER_TID,
        }));
    }

    let host = &report.host;
    let mut host_spans = Vec::new();
    if let Some(firmware) = host.firmware_us.filter(|_| clock.known()) {
        host_spans.push(("firmware", 0.0, firmware));
    }
    // Kernel times start at the hand-over on the loader's axis, so the two threads
    // line up; the host measured only their lengths.
    if report.outcome.hand_over.is_some() {
        if let Some(exit) = host.kernel_to_exit_us {
            host_spans.push(("kernel to exit", loader_end, exit));
        }
        if let Some(first) = host.kernel_to_first_output_us {
            host_spans.push(("kernel to first output", loader_end, first));
        }
    }
    if !host_spans.is_empty() {
        events.push(
            json!({"name": "thread_name", "ph": "M", "pid": PID, "tid": HOST_TID,
                           "args": {"name": "host (measured on arrival)"}}),
        );
        for (name, ts, dur) in host_spans {
            events.push(json!({
                "name": name, "cat": "host", "ph": "X",
                "ts": round_ns(ts), "dur": round_ns(dur.max(0.0)),
                "pid": PID, "tid": HOST_TID,
            }));
        }
    }

    // The kernel's lines, one instant each at its arrival, from the hand-over on
    // the loader's axis; QEMU's stop (a triple fault, a hang) as one more.
    let kernel = &report.kernel_text;
    if !kernel.instants.is_empty() || report.stop.is_some() {
        events.push(
            json!({"name": "thread_name", "ph": "M", "pid": PID, "tid": KERNEL_TID,
                           "args": {"name": "kernel (text lines, host arrival)"}}),
        );
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
    }

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
    let trace = json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "metadata": {
            "source": "rusty-trace",
            "summary": report.summary,
            "time_unit": if clock.known() { "us" } else { "ticks" },
            "tsc_khz": report.frequency.khz,
            "outcome": report.outcome.message,
            "memory_layout": memory,
            "warnings": warnings,
        },
    });
    serde_json::to_string_pretty(&trace).expect("a JSON value always serializes")
}
