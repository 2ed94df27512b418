//! One boot as `cargo xtask run` and `cargo xtask trace` see it: QEMU runs through
//! [`crate::qemu::run`], its serial output goes through the decoder library's live
//! consumer ([`trace_decoder::consumer`]) as it arrives, and the boot's end becomes
//! an exit status and a one-line reason through [`trace_decoder::ending`]. `--runs`
//! statistics and baselines are the library's ([`trace_decoder::profile`]).

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use trace_decoder::consumer::{Console, ConsoleStyle, LiveConsumer};
use trace_decoder::decode::TraceTable;
use trace_decoder::ending::{Ending, QemuEnd, TraceSeen};
use trace_decoder::live::{LineStyle, Session};
use trace_decoder::pump::Arrival;
use trace_decoder::report::BootRecord;
use trace_decoder::stream::{Demux, Piece};

use crate::qemu::{self, Finished, QemuConfig, QemuStderr};

/// One boot.
pub struct TracedRun {
    /// What the trace said; None when the loader was built without tracing.
    pub record: Option<BootRecord>,
    /// How QEMU ended.
    pub qemu: QemuEnd,
    /// The last error line QEMU printed, if any.
    pub qemu_error: Option<String>,
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

    /// QEMU's exit status, when it exited by itself.
    pub fn status(&self) -> Option<i32> {
        match self.qemu {
            QemuEnd::Exited(status) => Some(status),
            _ => None,
        }
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
    let mut raw = Vec::new();
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
            // Host times count from now: QEMU starts right away.
            let mut consumer = LiveConsumer::new(Session::new(table), console);
            let finished = qemu::run(config, timeout, QemuStderr::PassOn, |arrival| {
                if let Arrival::Bytes(bytes) = arrival {
                    raw.extend_from_slice(bytes);
                }
                consumer.take(arrival)
            })?;
            let record = consumer.finish(finished.status).record;
            (finished, Some(record))
        }
        None => {
            let mut out: Box<dyn Write> = match live {
                Some(live) => Box::new(live.out),
                None => Box::new(io::sink()),
            };
            let mut demux = Demux::new();
            let finished = qemu::run(config, timeout, QemuStderr::PassOn, |arrival| {
                match arrival {
                    Arrival::Bytes(bytes) => {
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
    Ok(TracedRun {
        record,
        qemu: qemu_end(&finished, timeout),
        qemu_error: finished.error_line,
        raw,
    })
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
