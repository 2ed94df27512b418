//! One boot as `cargo xtask run` and `cargo xtask trace` see it: QEMU runs through
//! [`crate::qemu::run`], its serial output goes through the decoder library's live
//! consumer ([`trace_decoder::host::consumer`]) as it arrives, and the boot's end becomes
//! an exit status and a one-line reason through [`trace_decoder::report::ending`]. `--runs`
//! statistics and baselines are the library's ([`trace_decoder::report::profile`]).

use std::io::{self, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use trace_decoder::decode::stream::{Demux, Piece};
use trace_decoder::decode::BootRecord;
use trace_decoder::decode::Session;
use trace_decoder::decode::TraceTable;
use trace_decoder::decode::{QemuStop, StopKind};
use trace_decoder::host::consumer::{Console, ConsoleStyle, LiveConsumer};
use trace_decoder::host::event_line::LineStyle;
use trace_decoder::host::pump::Arrival;
use trace_decoder::report::symbols::AppSymbols;
use trace_decoder::report::Report;

use crate::qemu::{self, Finished, QemuConfig, QemuStderr};
use crate::qmp::{MachineStop, StopReason};
use trace_decoder::report::ending::{Ending, QemuEnd, TraceSeen};

/// One boot.
pub struct TracedRun {
    /// What the trace said; None when the loader was built without tracing.
    pub record: Option<BootRecord>,
    /// How QEMU ended.
    pub qemu: QemuEnd,
    /// QEMU's last error message (all its lines), if it printed one.
    pub qemu_error: Option<String>,
    /// What QEMU said when it stopped the guest (a reset, a power-off, a hang), when
    /// it was asked ([`QemuConfig::monitor`]); also in the record, when there is one.
    pub stop: Option<QemuStop>,
    /// Every byte QEMU wrote to the serial port.
    pub raw: Vec<u8>,
}

impl TracedRun {
    /// How the boot ended: its exit status and reason.
    pub fn ending(&self) -> Ending {
        let seen = match &self.record {
            Some(record) => TraceSeen::of(record, self.raw.len()),
            None => TraceSeen::undecoded(self.raw.len()),
        };
        Ending::of(&self.qemu, self.qemu_error.as_deref(), &seen)
    }

    /// What QEMU said when it stopped the guest, in one sentence: from the report
    /// (RIP named from the application's `symbols`) when the boot was traced, else
    /// its RIP alone.
    pub fn qemu_said(&self, symbols: Option<&AppSymbols>) -> Option<String> {
        let stop = self.stop.as_ref()?;
        if let Some(record) = &self.record {
            return Report::build_with_app(record, symbols)
                .stop
                .map(|s| s.message);
        }
        let rip = stop
            .registers
            .as_deref()
            .map(trace_decoder::report::registers::Registers::parse)
            .and_then(|registers| registers.rip)
            .map_or(String::new(), |rip| format!(" at RIP {rip:#x}"));
        Some(format!("the guest stopped{rip}"))
    }

    /// QEMU's exit status, when it exited by itself.
    pub fn status(&self) -> Option<i32> {
        self.qemu.status()
    }
}

/// How a live boot is shown.
pub struct Live<'a> {
    pub out: &'a mut dyn Write,
    /// Colours, and wrapping of long lists on a terminal (as rusty-trace does).
    pub style: LineStyle,
    /// Whether the loader's events are shown (`trace`) or only the text (`run`).
    pub events: bool,
}

/// Boots once. With a table the serial stream goes through a decoding session as it
/// arrives; with `live`, the application's text (and with `events`, each event) is
/// shown as it comes, and the stream's warnings go to stderr when events are shown.
/// Without a table (a loader built without tracing) the text is shown, the frames
/// left out. Without `live` nothing is shown.
pub fn boot(
    config: &QemuConfig,
    table: Option<&TraceTable>,
    timeout: Duration,
    live: Option<Live>,
) -> Result<TracedRun> {
    boot_until(config, table, timeout, live, Arc::default())
}

/// [`boot`], also ended as soon as `stop` is set ([`qemu::run_until`]).
pub fn boot_until(
    config: &QemuConfig,
    table: Option<&TraceTable>,
    timeout: Duration,
    live: Option<Live>,
    stop: Arc<AtomicBool>,
) -> Result<TracedRun> {
    let mut raw = Vec::new();
    // Host times count from now: QEMU starts right away.
    let start = Instant::now();
    let silence = live
        .as_ref()
        .filter(|_| io::stderr().is_terminal())
        .map(|live| SilenceNotice::start(start, silence_notice(timeout, live.events)));
    let heard = |bytes: &[u8]| {
        if let Some(silence) = &silence {
            silence.heard(start, bytes);
        }
    };
    let (finished, record) = match table {
        Some(table) => {
            let quiet = ConsoleStyle {
                live_on_stdout: true,
                events: false,
                line: LineStyle::default(),
                warning_prefix: String::new(),
                warning_color: false,
            };
            let console: Console<Box<dyn Write>, Box<dyn Write>> = match live {
                Some(live) => {
                    let warnings: Box<dyn Write> = if live.events {
                        Box::new(io::stderr())
                    } else {
                        Box::new(io::sink())
                    };
                    Console::new(
                        Box::new(live.out),
                        warnings,
                        ConsoleStyle {
                            events: live.events,
                            line: live.style,
                            ..quiet
                        },
                    )
                }
                None => Console::new(Box::new(io::sink()), Box::new(io::sink()), quiet),
            };
            let mut consumer = LiveConsumer::new(Session::with_start(table, start), console);
            let finished = qemu::run_until(config, timeout, QemuStderr::PassOn, stop, |arrival| {
                if let Arrival::Bytes(bytes) = arrival {
                    heard(bytes);
                    raw.extend_from_slice(bytes);
                }
                consumer.take(arrival)
            })?;
            // When QEMU stopped the guest (a reset, a power-off, the timeout), the
            // monitor ended QEMU: its exit status is the monitor's doing, not the
            // guest's.
            let guest_status = finished.status.filter(|_| finished.stop.is_none());
            let record = consumer.finish(guest_status).record;
            (finished, Some(record))
        }
        None => {
            let mut out: Box<dyn Write> = match live {
                Some(live) => Box::new(live.out),
                None => Box::new(io::sink()),
            };
            let mut demux = Demux::new();
            let finished = qemu::run_until(config, timeout, QemuStderr::PassOn, stop, |arrival| {
                match arrival {
                    Arrival::Bytes(bytes) => {
                        heard(bytes);
                        raw.extend_from_slice(bytes);
                        demux.feed(bytes, &mut |piece| write_text(&mut out, piece));
                    }
                    // Text without a line break (a prompt) shows up as soon as QEMU
                    // pauses.
                    Arrival::CaughtUp | Arrival::Stalled => {
                        let _ = out.flush();
                    }
                }
                ControlFlow::Continue(())
            })?;
            demux.finish(&mut |piece| write_text(&mut out, piece));
            let _ = out.flush();
            (finished, None)
        }
    };
    if let Some(silence) = silence {
        silence.end();
    }
    let stop = finished
        .stop
        .as_ref()
        .map(|stop| qemu_stop(stop, finished.triple_fault_logged, timeout, start));
    let record = record.map(|record| BootRecord {
        qemu_stop: stop.clone(),
        ..record
    });
    Ok(TracedRun {
        record,
        qemu: qemu_end(&finished, timeout),
        qemu_error: finished.error_message,
        stop,
        raw,
    })
}

/// How long a live boot on a terminal may be silent before it is said what goes on.
pub const SILENCE: Duration = Duration::from_secs(5);

/// What is said once after [`SILENCE`]: what happens at the timeout, and that
/// Ctrl-C need not wait for it (`trace` still prints the report then).
fn silence_notice(timeout: Duration, events: bool) -> String {
    let report = if events {
        ", and the report covers what arrived"
    } else {
        ""
    };
    format!(
        "cargo xtask: no output for {} s; stopping at {} s (--timeout), when QEMU says where the CPU is; Ctrl-C stops now{report}",
        SILENCE.as_secs(),
        timeout.as_secs()
    )
}

/// Says [`silence_notice`] once, from a thread of its own, when nothing arrived
/// for [`SILENCE`]: a hang is not silent until the timeout.
struct SilenceNotice {
    /// When the last byte arrived, in milliseconds after the start.
    last: Arc<AtomicU64>,
    /// Whether the last byte ended a line (the notice then needs no line break).
    at_line_start: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl SilenceNotice {
    fn start(start: Instant, notice: String) -> SilenceNotice {
        let last = Arc::new(AtomicU64::new(0));
        let at_line_start = Arc::new(AtomicBool::new(true));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (last, at_line_start, done) = (last.clone(), at_line_start.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let silent = start
                        .elapsed()
                        .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
                    if silent >= SILENCE && !done.load(Ordering::Relaxed) {
                        let newline = if at_line_start.load(Ordering::Relaxed) {
                            ""
                        } else {
                            "\n"
                        };
                        eprintln!("{newline}{notice}");
                        return;
                    }
                }
            })
        };
        SilenceNotice {
            last,
            at_line_start,
            done,
            thread,
        }
    }

    /// Bytes arrived.
    fn heard(&self, start: Instant, bytes: &[u8]) {
        if let Some(&last) = bytes.last() {
            let millis = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last.store(millis, Ordering::Relaxed);
            self.at_line_start.store(last == b'\n', Ordering::Relaxed);
        }
    }

    /// The boot is over: nothing more is said.
    fn end(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// QEMU's stop as the decoder's record holds it, on the session's clock.
fn qemu_stop(stop: &MachineStop, logged: bool, timeout: Duration, start: Instant) -> QemuStop {
    QemuStop {
        kind: match &stop.reason {
            StopReason::GuestReset if logged => StopKind::TripleFault,
            StopReason::GuestReset => StopKind::GuestReset,
            StopReason::Shutdown(reason) => StopKind::Shutdown(reason.clone()),
            StopReason::Timeout => StopKind::Hang { timeout },
            StopReason::Interrupted => StopKind::Interrupted,
        },
        at: stop.at.checked_duration_since(start),
        registers: stop.registers.clone(),
    }
}

/// Writes the text of the serial stream; frames are left out.
fn write_text(out: &mut impl Write, piece: Piece) {
    if let Piece::Text(text) = piece {
        let _ = out.write_all(&text);
    }
}

/// How the runner saw QEMU end.
fn qemu_end(finished: &Finished, timeout: Duration) -> QemuEnd {
    if finished.interrupted {
        QemuEnd::Interrupted
    } else if finished.timed_out {
        QemuEnd::TimedOut {
            seconds: timeout.as_secs(),
        }
    } else if finished.kvm_failed {
        QemuEnd::KvmFailed
    } else {
        match finished.status {
            Some(status) => QemuEnd::Exited(status),
            None => QemuEnd::Killed,
        }
    }
}

/// Whether to use KVM when it was asked for: yes when it can run the loader here,
/// else no, with a warning saying why (the boot then falls back to TCG).
pub fn kvm_or_warn() -> bool {
    match kvm_usable() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("warning: not using KVM: {why}; falling back to TCG");
            false
        }
    }
}

/// Whether KVM can run the loader here; when not, why (the caller warns and falls
/// back to TCG).
pub fn kvm_usable() -> Result<(), String> {
    kvm_usable_with(Path::new("/dev/kvm"), Path::new("/sys/module"))
}

fn kvm_usable_with(device: &Path, modules: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map_err(|e| format!("{} cannot be opened ({e})", device.display()))?;
    // PVM ("pagetable-based virtual machine") is a KVM back-end for hosts that are
    // themselves virtual machines without nested virtualisation. It runs PVM-aware
    // guest kernels only; any other guest code goes through KVM's instruction
    // emulator, which stops with "KVM internal error ... emulation failure" at the
    // first SSE instruction (the loader's, or a Hermit kernel's).
    if modules.join("kvm_pvm").exists() {
        return Err(
            "this host's KVM is PVM (module kvm_pvm), which runs only PVM-aware guest kernels; the loader and Hermit kernels would stop at their first SSE instruction in KVM's emulator".to_string(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_stops_become_the_records_stop_kinds() {
        let start = Instant::now();
        let timeout = Duration::from_secs(3);
        let stop = |reason| MachineStop {
            reason,
            at: start + Duration::from_millis(5),
            registers: Some("RIP=0000000000801234".into()),
        };
        let kind = |reason, logged| qemu_stop(&stop(reason), logged, timeout, start).kind;
        assert_eq!(kind(StopReason::GuestReset, true), StopKind::TripleFault);
        assert_eq!(kind(StopReason::GuestReset, false), StopKind::GuestReset);
        assert_eq!(kind(StopReason::Timeout, false), StopKind::Hang { timeout });
        assert_eq!(
            kind(StopReason::Shutdown("guest-shutdown".into()), false),
            StopKind::Shutdown("guest-shutdown".into())
        );
        let recorded = qemu_stop(&stop(StopReason::Timeout), false, timeout, start);
        assert_eq!(recorded.at, Some(Duration::from_millis(5)));
    }

    #[test]
    fn kvm_is_refused_without_the_device_or_under_pvm() {
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("kvm");
        let modules = dir.path().join("module");
        std::fs::create_dir(&modules).unwrap();
        let missing = super::kvm_usable_with(&device, &modules).unwrap_err();
        assert!(missing.contains("cannot be opened"), "{missing}");
        std::fs::write(&device, b"").unwrap();
        assert_eq!(super::kvm_usable_with(&device, &modules), Ok(()));
        std::fs::create_dir(modules.join("kvm_pvm")).unwrap();
        let pvm = super::kvm_usable_with(&device, &modules).unwrap_err();
        assert!(pvm.contains("PVM"), "{pvm}");
    }
}
