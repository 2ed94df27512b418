//! `cargo xtask trace`: boot an application with the loader, decode the trace live,
//! print the reports; `--runs` repeats the boot and prints per-stage statistics;
//! `--baseline` compares with an earlier run and fails on a regression. QEMU runs
//! through [`crate::qemu::run`], its serial output goes through the decoder library's
//! live consumer ([`trace_decoder::consumer`]), and the statistics are the library's
//! ([`trace_decoder::profile`]).

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use trace_decoder::consumer::{Console, ConsoleStyle, LiveConsumer};
use trace_decoder::decode::TraceTable;
use trace_decoder::live::{LineStyle, Session};
use trace_decoder::pump::Arrival;
use trace_decoder::report::BootRecord;

use crate::qemu::{self, QemuConfig, QemuStderr};

/// One traced boot.
pub struct TracedRun {
    pub record: BootRecord,
    /// QEMU's exit status (None: killed, e.g. after the timeout).
    pub status: Option<i32>,
    pub timed_out: bool,
    /// Ctrl-C stopped the boot (see [`trace_decoder::pump::stop_on_ctrl_c`]).
    pub interrupted: bool,
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
    let mut consumer = LiveConsumer::new(Session::new(table), console);
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
    let record = consumer.finish(finished.status).record;
    Ok(TracedRun {
        record,
        status: finished.status,
        timed_out: finished.timed_out,
        interrupted: finished.interrupted,
        raw,
    })
}

/// The exit status of `cargo xtask trace` for a QEMU status (see `--help`).
pub fn exit_status(status: Option<i32>, timed_out: bool) -> u8 {
    match (status, timed_out) {
        (_, true) => 124,
        (Some(3), _) => 0,
        (Some(1), _) => 1,
        (Some(s), _) => s.clamp(0, 255) as u8,
        (None, _) => 1,
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
