//! `cargo xtask trace`: boot an application with the loader, decode the trace live,
//! print the reports; `--runs` repeats the boot and prints per-stage statistics;
//! `--baseline` compares with an earlier run and fails on a regression.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use trace_decoder::decode::TraceTable;
use trace_decoder::live::{Output, Session};
use trace_decoder::report::BootRecord;

use crate::qemu::QemuConfig;

/// One traced boot.
pub struct TracedRun {
    pub record: BootRecord,
    /// QEMU's exit status (None: killed, e.g. after the timeout).
    pub status: Option<i32>,
    pub timed_out: bool,
    /// Every byte QEMU wrote to the serial port.
    pub raw: Vec<u8>,
}

/// How a live run is shown.
pub struct Live<'a> {
    pub out: &'a mut dyn Write,
    /// Colours, and wrapping of long lists on a terminal (as rusty-trace does).
    pub style: trace_decoder::live::LineStyle,
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

/// Boots once, feeding the serial stream through a decoding session as it arrives.
pub fn trace_once(
    config: &QemuConfig,
    table: &TraceTable,
    timeout: Duration,
    mut live: Option<Live>,
) -> Result<TracedRun> {
    let start = Instant::now();
    let mut child = config
        .command()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", config.display()))?;
    let mut serial = child.stdout.take().expect("stdout is piped");
    // QEMU's own messages go on to our stderr. One of them needs acting on: after a
    // "KVM internal error" QEMU stops the guest but keeps running, so the run would
    // otherwise sit there until the timeout.
    let kvm_failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stderr_watch = {
        let kvm_failed = kvm_failed.clone();
        let stderr = child.stderr.take().expect("stderr is piped");
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("{line}");
                if line.contains("KVM internal error") {
                    kvm_failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let (sender, chunks) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = serial.read(&mut buffer) {
            if sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });

    let mut session = Session::with_start(table, start);
    let mut raw = Vec::new();
    let mut printer = Printer {
        live: live.as_mut(),
        at_line_start: true,
    };
    let deadline = start + timeout;
    let mut timed_out = false;
    loop {
        match chunks.recv_timeout(Duration::from_millis(50)) {
            Ok(chunk) => {
                raw.extend_from_slice(&chunk);
                session.feed(&chunk, &mut |o| printer.show(o));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => session.idle(&mut |o| printer.show(o)),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break;
        }
        if kvm_failed.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = stderr_watch.join();
            bail!("KVM failed to run the guest (see QEMU's message above); run again without --kvm to use TCG");
        }
    }
    let status = child.wait().context("waiting for QEMU")?.code();
    let _ = stderr_watch.join();
    let _ = reader.join();
    // Whatever arrived between the timeout and the kill still counts.
    while let Ok(chunk) = chunks.try_recv() {
        raw.extend_from_slice(&chunk);
        session.feed(&chunk, &mut |o| printer.show(o));
    }
    let record = session.finish(status, &mut |o| printer.show(o));
    printer.end_line();
    Ok(TracedRun {
        record,
        status: if timed_out { None } else { status },
        timed_out,
        raw,
    })
}

/// Shows live output: text as it comes, each event as one dim line.
struct Printer<'l, 'a> {
    live: Option<&'l mut Live<'a>>,
    at_line_start: bool,
}

impl Printer<'_, '_> {
    fn show(&mut self, output: Output) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        match output {
            Output::Text(text) => {
                let _ = live.out.write_all(text);
                if let Some(&last) = text.last() {
                    self.at_line_start = last == b'\n';
                }
            }
            Output::Event(event, micros) => {
                if !self.at_line_start {
                    let _ = live.out.write_all(b"\n");
                    self.at_line_start = true;
                }
                let mut line = String::new();
                trace_decoder::live::push_event_line(&mut line, event, micros, live.style);
                let _ = writeln!(live.out, "{line}");
            }
            Output::Warning(warning) => eprintln!("warning: {warning}"),
        }
        let _ = live.out.flush();
    }

    fn end_line(&mut self) {
        if let Some(live) = self.live.as_mut() {
            if !self.at_line_start {
                let _ = live.out.write_all(b"\n");
            }
        }
    }
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

/// Reads the loader ELF's table, with a clear error when it is not a traced build.
pub fn load_table(elf: &Path) -> Result<TraceTable> {
    let bytes = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    TraceTable::from_elf(&bytes).with_context(|| format!("{} cannot decode traces", elf.display()))
}

/// Writes `contents` to `path`, naming the file in the error.
pub fn write_file(path: &PathBuf, contents: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
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

/// Parses `10%` or `10` as a fraction (0.10).
pub fn parse_percent(text: &str) -> Result<f64> {
    let number = text.trim().trim_end_matches('%');
    let value: f64 = number
        .parse()
        .with_context(|| format!("not a percentage: {text}"))?;
    if !(0.0..=10_000.0).contains(&value) {
        bail!("percentage out of range: {text}");
    }
    Ok(value / 100.0)
}

/// The duration of every stage of a report (sub-stages too, as `stage / sub-stage`),
/// in microseconds, or in ticks when the TSC frequency is unknown; plus the whole
/// loader as `loader total`.
pub fn stage_times(
    report: &trace_decoder::report::Report,
) -> (crate::profile::StageTimes, &'static str) {
    let timeline = &report.timeline;
    let in_us = timeline.loader_us.is_some();
    let amount = |us: Option<f64>, ticks: u64| {
        if in_us {
            us.unwrap_or(0.0)
        } else {
            ticks as f64
        }
    };
    let mut times = Vec::new();
    for stage in &timeline.stages {
        times.push((
            stage.name.clone(),
            amount(stage.duration_us, stage.duration_ticks),
        ));
        for child in &stage.children {
            // Some sub-stages name their parent already ("segment 1 copy").
            let name = if child.name.starts_with(&stage.name) {
                child.name.clone()
            } else {
                format!("{} / {}", stage.name, child.name)
            };
            times.push((name, amount(child.duration_us, child.duration_ticks)));
        }
    }
    times.push((
        "loader total".to_string(),
        amount(timeline.loader_us, timeline.loader_ticks),
    ));
    (times, if in_us { "us" } else { "ticks" })
}

/// A duration for the statistics table.
pub fn format_amount(value: f64, unit: &str) -> String {
    match unit {
        "us" if value >= 1000.0 => format!("{:.2} ms", value / 1000.0),
        "us" => format!("{value:.1} us"),
        _ => format!("{value:.0} tk"),
    }
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
