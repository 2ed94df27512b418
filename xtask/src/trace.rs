//! `cargo xtask trace`: boot an application with the loader, decode the trace live,
//! print the reports; `--runs` repeats the boot and prints per-stage statistics;
//! `--baseline` compares with an earlier run and fails on a regression. QEMU runs
//! through [`crate::qemu::run`], its serial output goes through the decoder library's
//! live consumer ([`trace_decoder::consumer`]), and the statistics are the library's
//! ([`trace_decoder::profile`]).

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use trace_decoder::consumer::{Console, ConsoleStyle, LiveConsumer};
use trace_decoder::decode::TraceTable;
use trace_decoder::live::{LineStyle, Session};
use trace_decoder::pump::Arrival;
use trace_decoder::qemu_state::{QemuStop, StopKind};
use trace_decoder::report::BootRecord;

use crate::qemu::{self, Finished, QemuConfig, QemuStderr};
use crate::qmp::{MachineStop, StopReason};

/// One traced boot.
pub struct TracedRun {
    pub record: BootRecord,
    /// QEMU's exit status (None: killed, e.g. after the timeout).
    pub status: Option<i32>,
    pub timed_out: bool,
    /// Ctrl-C stopped the boot (see [`trace_decoder::pump::stop_on_ctrl_c`]).
    pub interrupted: bool,
    /// How the run ended, and `cargo xtask`'s exit status for it.
    pub ending: Ending,
    /// Every byte QEMU wrote to the serial port.
    pub raw: Vec<u8>,
}

/// How a live run is shown.
pub struct Live<'a> {
    pub out: &'a mut dyn Write,
    /// Colours, and wrapping of long lists on a terminal (as rusty-trace does).
    pub style: LineStyle,
}

/// Refuses, before QEMU starts, a file the loader would refuse too: the same checks
/// as the loader's (the `rusty_loader` library is the loader's own code).
pub fn check_app(app: &Path) -> Result<()> {
    let bytes = std::fs::read(app).with_context(|| format!("cannot read {}", app.display()))?;
    rusty_loader::elf::inspect(&bytes).map(|_| ()).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a Hermit application the loader can boot: {e}",
            app.display()
        )
    })
}

/// Boots once, feeding the serial stream through a decoding session as it arrives;
/// with `live`, the application's text and each event are shown as they come, and
/// the stream's warnings go to stderr. Without it nothing is shown.
pub fn trace_once(
    config: &QemuConfig,
    table: &TraceTable,
    timeout: Duration,
    live: Option<Live>,
) -> Result<TracedRun> {
    let quiet = ConsoleStyle {
        live_on_stdout: true,
        events: false,
        line: LineStyle::default(),
        warning_prefix: String::new(),
        warning_color: false,
    };
    let console: Console<Box<dyn Write>, Box<dyn Write>> = match live {
        Some(live) => Console::new(
            Box::new(live.out),
            Box::new(io::stderr()),
            ConsoleStyle {
                events: true,
                line: live.style,
                ..quiet
            },
        ),
        None => Console::new(Box::new(io::sink()), Box::new(io::sink()), quiet),
    };
    // Host times count from now: QEMU starts right away.
    let start = Instant::now();
    let mut consumer = LiveConsumer::new(Session::with_start(table, start), console);
    let mut raw = Vec::new();
    let finished = qemu::run(config, timeout, QemuStderr::PassOn, |arrival| {
        if let Arrival::Bytes(bytes) = arrival {
            raw.extend_from_slice(bytes);
        }
        consumer.take(arrival)
    })?;
    if finished.kvm_failed {
        bail!("KVM failed to run the guest (see QEMU's message above); run again without --kvm to use TCG");
    }
    // When QEMU stopped the guest (a reset, a power-off, the timeout), the monitor
    // ended QEMU: its exit status is the monitor's doing, not the guest's.
    let guest_status = finished.status.filter(|_| finished.stop.is_none());
    let mut record = consumer.finish(guest_status).record;
    record.qemu_stop = finished
        .stop
        .as_ref()
        .map(|stop| qemu_stop(stop, finished.triple_fault_logged, timeout, start));
    Ok(TracedRun {
        record,
        status: finished.status,
        timed_out: finished.timed_out,
        interrupted: finished.interrupted,
        ending: ending(&finished),
        raw,
    })
}

/// QEMU's stop as the decoder's record holds it, on the session's clock.
fn qemu_stop(stop: &MachineStop, logged: bool, timeout: Duration, start: Instant) -> QemuStop {
    QemuStop {
        kind: match &stop.reason {
            StopReason::GuestReset if logged => StopKind::TripleFault,
            StopReason::GuestReset => StopKind::GuestReset,
            StopReason::Shutdown(reason) => StopKind::Shutdown(reason.clone()),
            StopReason::Timeout => StopKind::Hang { timeout },
        },
        at: stop.at.checked_duration_since(start),
        registers: stop.registers.clone(),
    }
}

/// How a run of `cargo xtask run` or `trace` ended, and the exit status for it:
/// the one table of docs/exit-codes.md ("cargo xtask run and trace").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ending {
    /// `cargo xtask`'s exit status.
    pub status: u8,
    /// One sentence for people; None when the guest's own exit code says it all.
    pub problem: Option<String>,
}

/// The guest reset: a triple fault (or a reset QEMU gave no cause for).
pub const STATUS_GUEST_RESET: u8 = 122;
/// The guest shut down without an exit code (powered off).
pub const STATUS_SHUTDOWN: u8 = 123;
/// Still running at the timeout: a hang.
pub const STATUS_TIMEOUT: u8 = 124;
/// QEMU failed by itself: it could not start or run the guest.
pub const STATUS_QEMU_ERROR: u8 = 125;

/// The ending of a finished QEMU run: QEMU's stop (with a monitor) and error come
/// first, then the guest's exit code (passed through: 0 for the application's
/// success, 1 for its failure, the loader's and the test kernels' odd codes).
pub fn ending(finished: &Finished) -> Ending {
    let problem = |status, text: String| Ending {
        status,
        problem: Some(text),
    };
    if let Some(stop) = &finished.stop {
        return match &stop.reason {
            StopReason::Timeout => problem(STATUS_TIMEOUT, "the guest hung: still running at the timeout, stopped by QEMU".into()),
            StopReason::GuestReset if finished.triple_fault_logged => {
                problem(STATUS_GUEST_RESET, "the guest triple-faulted (QEMU: Triple fault)".into())
            }
            StopReason::GuestReset => problem(
                STATUS_GUEST_RESET,
                "the guest reset (QEMU: guest-reset; under KVM QEMU logs no cause: a triple fault, or a reset the kernel asked for)".into(),
            ),
            StopReason::Shutdown(reason) => problem(
                STATUS_SHUTDOWN,
                format!("the guest shut down without an exit code (QEMU: {reason})"),
            ),
        };
    }
    if finished.timed_out {
        return problem(
            STATUS_TIMEOUT,
            "QEMU did not finish within the timeout and was stopped".into(),
        );
    }
    if finished.kvm_failed {
        return problem(
            STATUS_QEMU_ERROR,
            "KVM failed to run the guest (see QEMU's message above); run again without --kvm to use TCG".into(),
        );
    }
    match (finished.status, &finished.qemu_error) {
        // QEMU's own failures end with status 1, like a kernel's: its message tells.
        (Some(1) | None, Some(error)) => problem(STATUS_QEMU_ERROR, format!("QEMU failed: {error}")),
        (Some(3), _) => Ending {
            status: 0,
            problem: None,
        },
        (Some(0), _) => problem(
            STATUS_SHUTDOWN,
            "QEMU ended without an exit code from the guest (a reset or power-off QEMU was not asked about)".into(),
        ),
        (Some(status), _) => Ending {
            status: status.clamp(0, 255) as u8,
            problem: None,
        },
        (None, None) => problem(STATUS_QEMU_ERROR, "QEMU was ended by a signal".into()),
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
    fn every_ending_status_is_documented() {
        let doc =
            std::fs::read_to_string(crate::project_root().join("docs/exit-codes.md")).unwrap();
        for status in [
            STATUS_GUEST_RESET,
            STATUS_SHUTDOWN,
            STATUS_TIMEOUT,
            STATUS_QEMU_ERROR,
        ] {
            assert!(
                doc.lines()
                    .any(|line| line.starts_with(&format!("| {status} |"))),
                "docs/exit-codes.md has no row for status {status}"
            );
        }
    }

    fn finished(status: Option<i32>) -> Finished {
        Finished {
            status,
            timed_out: false,
            kvm_failed: false,
            interrupted: false,
            stderr: String::new(),
            qemu_error: None,
            stop: None,
            triple_fault_logged: false,
            wall: Duration::ZERO,
        }
    }

    #[test]
    fn one_status_per_ending() {
        let status = |f: &Finished| ending(f).status;
        assert_eq!(status(&finished(Some(3))), 0);
        assert_eq!(status(&finished(Some(1))), 1);
        assert_eq!(status(&finished(Some(157))), 157, "CPU exception 14");
        assert_eq!(status(&finished(Some(35))), 35, "a refusal");
        assert_eq!(status(&finished(Some(0))), STATUS_SHUTDOWN);
        assert_eq!(status(&finished(None)), STATUS_QEMU_ERROR);
        let failed = Finished {
            qemu_error: Some("could not load kernel".into()),
            ..finished(Some(1))
        };
        assert_eq!(status(&failed), STATUS_QEMU_ERROR);
        let stop = |reason| MachineStop {
            reason,
            at: Instant::now(),
            registers: None,
        };
        let reset = Finished {
            stop: Some(stop(StopReason::GuestReset)),
            triple_fault_logged: true,
            ..finished(None)
        };
        assert_eq!(status(&reset), STATUS_GUEST_RESET);
        assert!(ending(&reset).problem.unwrap().contains("Triple fault"));
        let hang = Finished {
            stop: Some(stop(StopReason::Timeout)),
            timed_out: true,
            ..finished(None)
        };
        assert_eq!(status(&hang), STATUS_TIMEOUT);
        let off = Finished {
            stop: Some(stop(StopReason::Shutdown("guest-shutdown".into()))),
            ..finished(Some(0))
        };
        assert_eq!(status(&off), STATUS_SHUTDOWN);
    }

    #[test]
    fn qemu_errors_are_told_from_warnings() {
        assert_eq!(
            crate::qemu::qemu_error("qemu-system-x86_64: -kernel x: No such file\n").as_deref(),
            Some("-kernel x: No such file")
        );
        assert_eq!(
            crate::qemu::qemu_error("qemu-system-x86_64: warning: host lacks x"),
            None
        );
        assert_eq!(crate::qemu::qemu_error("tk: ok"), None);
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
