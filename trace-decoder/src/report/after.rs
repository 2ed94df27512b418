//! What happened after the hand-over, from the host's side: the kernel's text over
//! time (its milestones and the largest gaps between its lines, for a kernel with
//! no timestamps of its own) and, when QEMU was asked, how the guest stopped (a
//! triple fault, a reset, a power-off, a hang) with QEMU's registers. Pure: the
//! record's lines and QEMU's stop in, the report's sections out.

use std::time::Duration;

use serde::Serialize;

use super::crash::{self, CodeAddress};
use super::format::{hex, human_us, micros};
use super::registers::Registers;
use super::symbols::AppSymbols;
use crate::decode::text_lines::{TextLine, TextLines};
use crate::decode::{Event, HostTimes, QemuStop, StopKind};

/// One milestone of the kernel's text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Milestone {
    /// `first line`, `first application line`, `last line`, `end of the stream`.
    pub name: &'static str,
    /// The line (empty for `end`).
    pub line: String,
    /// Its arrival, in µs after the hand-over's (None when not live).
    pub after_hand_over_us: Option<f64>,
}

/// A pause between two consecutive lines of the kernel's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineGap {
    /// Its length in µs.
    pub length_us: f64,
    /// When it began (the end of `before`), in µs after the hand-over.
    pub at_us: Option<f64>,
    /// The line before it and the line after it.
    pub before: String,
    pub after: String,
}

/// The kernel's text over time.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KernelText {
    /// The stream was read as QEMU sent it: the lines have arrival times.
    pub live: bool,
    /// Lines of text after the hand-over (all lines when there was none).
    pub lines: usize,
    /// The kernel's log prefix, as recognised in its first line (normalized: digits
    /// `0`, letters in brackets `A`); None when its first line has none. Which lines
    /// are the kernel's: `crate::decode::text_lines`.
    pub kernel_prefix: Option<String>,
    /// First line, first application line, last line, end of the stream.
    pub milestones: Vec<Milestone>,
    /// The largest gaps between consecutive lines, longest first (live only).
    pub gaps: Vec<LineGap>,
    /// What could not be said and why.
    pub notes: Vec<String>,
    /// Every kept line with its arrival in µs after the hand-over, for the Chrome
    /// trace's kernel track (not in the JSON report).
    #[serde(skip)]
    pub instants: Vec<(f64, String)>,
}

/// The kernel's text over time. Times count from the hand-over's arrival (from the
/// stream's start without one); `live` says whether the host saw the stream as QEMU
/// sent it (the report's `host.live`): without it arrival times say nothing.
pub fn kernel_text(lines: &TextLines, host: &HostTimes, live: bool) -> KernelText {
    let origin = host.hand_over.or(host.first_byte).unwrap_or_default();
    let live = live && lines.kept.iter().any(|l| l.start.is_some());
    let since = |at: Option<Duration>| {
        at.filter(|_| live)
            .map(|at| micros(at.saturating_sub(origin)))
    };
    let mut report = KernelText {
        live,
        lines: if host.hand_over.is_some() {
            lines
                .total
                .saturating_sub(lines.kept.iter().take_while(|l| !l.after_hand_over).count())
        } else {
            lines.total
        },
        kernel_prefix: lines.kernel_prefix.clone(),
        ..KernelText::default()
    };
    milestones(lines, host, &since, &mut report);
    report.gaps = lines
        .gaps
        .iter()
        .filter(|_| live)
        .map(|gap| LineGap {
            length_us: micros(gap.length),
            at_us: since(gap.before.end),
            before: gap.before.text.clone(),
            after: gap.after.text.clone(),
        })
        .collect();
    if !live && lines.total > 0 {
        report.notes.push(
            "no arrival times: the stream is a recording, or it arrived in one burst (buffered before it was read, or read by a busy host), so no gaps".to_string(),
        );
    }
    if lines.total > lines.kept.len() {
        report.notes.push(format!(
            "{} lines; the first {} are kept for the Chrome trace",
            lines.total,
            lines.kept.len()
        ));
    }
    report.instants = lines
        .kept
        .iter()
        .filter(|l| l.after_hand_over || host.hand_over.is_none())
        .filter_map(|l| Some((since(l.start)?, l.text.clone())))
        .collect();
    report
}

/// The milestones of the kernel's text (its first line, the application's first,
/// its last, the end of the stream), or notes on why one cannot be told; `since`
/// turns an arrival into microseconds after the hand-over.
fn milestones(
    lines: &TextLines,
    host: &HostTimes,
    since: &dyn Fn(Option<Duration>) -> Option<f64>,
    report: &mut KernelText,
) {
    let milestone = |name, line: &TextLine| Milestone {
        name,
        line: line.text.clone(),
        after_hand_over_us: since(line.start),
    };
    if let Some(first) = &lines.first_kernel {
        report.milestones.push(milestone("first line", first));
    }
    let kernel_lines = lines.kept.iter().filter(|l| l.after_hand_over).count();
    match &lines.first_application {
        Some(line) => report
            .milestones
            .push(milestone("first application line", line)),
        None if kernel_lines > 0 && lines.kernel_unrecognised() => report.notes.push(
            "the kernel's first line is no Hermit log record and has no log prefix ([...] or word:), so its lines cannot be told from the application's".to_string(),
        ),
        None if kernel_lines > 0 => report.notes.push(
            "every line is the kernel's (log records, their continuation lines, its prefix): no application line".to_string(),
        ),
        None => {}
    }
    if let Some(last) = lines.last.as_ref().filter(|l| l.after_hand_over) {
        report.milestones.push(milestone("last line", last));
    }
    if let Some(end) = host.end.filter(|_| report.live) {
        report.milestones.push(Milestone {
            name: "end of the stream",
            line: String::new(),
            after_hand_over_us: since(Some(end)),
        });
    }
}

/// How the guest stopped, as QEMU said it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StopReport {
    /// `triple-fault`, `guest-reset`, `shutdown`, `hang` or `interrupted`.
    pub kind: &'static str,
    /// One sentence for people: what, when, where.
    pub message: String,
    /// When it happened, in µs after the hand-over's arrival (live runs).
    pub after_hand_over_us: Option<f64>,
    /// The last line of text before it.
    pub last_line: Option<String>,
    /// QEMU's registers then (None when QEMU did not answer).
    pub registers: Option<Registers>,
    /// Where RIP lies in the code.
    pub rip: Option<CodeAddress>,
}

/// The stop QEMU reported, for the report.
pub fn stop_report(
    stop: &QemuStop,
    events: &[Event],
    loader_image: Option<(u64, u64)>,
    host: &HostTimes,
    lines: &TextLines,
    app: Option<&AppSymbols>,
) -> StopReport {
    let registers = stop.registers.as_deref().map(Registers::parse);
    let rip = registers
        .as_ref()
        .and_then(|r| r.rip)
        .map(|rip| crash::locate(rip, events, loader_image, app));
    let after_hand_over_us = match (stop.at, host.hand_over) {
        (Some(at), Some(hand_over)) => Some(micros(at.saturating_sub(hand_over))),
        _ => None,
    };
    let (kind, what) = match &stop.kind {
        StopKind::TripleFault => ("triple-fault", "triple fault".to_string()),
        StopKind::GuestReset => (
            "guest-reset",
            "the guest reset (QEMU logged no cause: a triple fault, or a reset the kernel asked for)".to_string(),
        ),
        StopKind::Shutdown(reason) => ("shutdown", format!("the guest shut down (QEMU: {reason})")),
        StopKind::Hang { timeout } => (
            "hang",
            format!(
                "hang: still running after the {} s timeout, stopped by QEMU",
                timeout.as_secs()
            ),
        ),
        StopKind::Interrupted => (
            "interrupted",
            "interrupted (Ctrl-C): the guest was still running and QEMU stopped it".to_string(),
        ),
    };
    let mut message = what;
    match (after_hand_over_us, host.hand_over) {
        (Some(us), _) => message += &format!(" {} after the hand-over", human_us(us)),
        (None, None) => message += " (before any hand-over)",
        (None, Some(_)) => {}
    }
    if let (Some(rip), Some(located)) = (registers.as_ref().and_then(|r| r.rip), &rip) {
        message += &format!(" at RIP {} {}", hex(rip), located.described);
    } else if stop.registers.is_none() {
        message += "; QEMU did not give its registers";
    }
    if let Some(r) = &registers {
        if r.idt_limit == Some(0) {
            message += "; the IDT was empty (limit 0)";
        }
        match r.halted {
            Some(true) => message += "; the CPU was halted (HLT)",
            Some(false) => message += "; the CPU was running",
            None => {}
        }
    }
    StopReport {
        kind,
        message,
        after_hand_over_us,
        last_line: lines.last.as_ref().map(|l| l.text.clone()),
        registers,
        rip,
    }
}
