//! `cargo xtask bench --baseline-rev REV` (or `--baseline-loader IMAGE`): this loader
//! against another one, booting the same applications on the same machine in one
//! run, alternating boot by boot so that whatever else the host does hits both
//! alike. Wall-clock times measured on the host; the ratio is of the best boots
//! (the loader's work is the same every time: anything above the best is the host
//! being busy, which a shared machine is), the median ratio is shown beside it:
//!
//! - **loader phase**: from the first byte on the serial port to the application's
//!   first line, for the demo app and for `big-dyn` (a kernel of realistic size).
//!   Both ends are timed by QEMU as the guest writes them (`-trace serial_write`
//!   with `-msg timestamp=on`: host microseconds from the vCPU thread; the times
//!   the host read the bytes are used when QEMU logs no such events), so it needs
//!   nothing from either loader: it works for any Multiboot loader, traced or not.
//!   (A loader that prints nothing before the hand-over starts its phase later.)
//! - **to exit**: from QEMU's start to its end, for the `calibrating` kernel given
//!   no `-freq`: what a user of a Hermit 0.6 application waits for in all, with the
//!   kernel's own TSC calibration (30 ms of PIT) when the loader does not spare it.
//!
//! No `-append` anywhere: each loader finds the frequency its own way, as it would
//! for a user who passes none. The baseline boots through Multiboot; this loader
//! through the entry `--boot` names (so `--baseline-rev HEAD --boot pvh` compares
//! this build's two entries).
//!
//! With `--deterministic` ([`compare_deterministic`]) both loaders run under QEMU's
//! `-icount shift=0,sleep=off`, where every guest instruction takes one nanosecond
//! of virtual time and a wait on a timer takes the virtual time it waits: figures
//! that do not depend on the host, read from each loader's own trace (so both must
//! be traced rusty-loader builds with their ELF beside the image).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use trace_decoder::decode::TraceTable;
use trace_decoder::host::pump::Arrival;
use trace_decoder::report::Report;
use xshell::{cmd, Shell};

use crate::bench_table::Row;
use crate::build::TestKernels;
use crate::qemu::{self, BootProtocol, QemuConfig, QemuStderr};
use crate::traced_boot;

/// Where the loader to compare with comes from.
#[derive(Clone, Debug)]
pub enum BaselineSource {
    /// A revision of this repository, built with its own `cargo xtask build
    /// --release` in `target/bench/rev-<commit>` (kept for the next run).
    Revision(String),
    /// A Multiboot loader image built elsewhere (another release, another loader).
    Image(PathBuf),
}

/// The baseline's image and how the table names it.
pub struct BaselineLoader {
    pub image: PathBuf,
    pub label: String,
}

impl BaselineLoader {
    /// The unstripped ELF with the defmt table, where `cargo xtask build` puts it:
    /// beside the image as `<image>.elf`. Only a traced rusty-loader has one.
    pub fn elf(&self) -> PathBuf {
        elf_of(&self.image)
    }
}

/// `<image>.elf`.
fn elf_of(image: &Path) -> PathBuf {
    let mut elf = image.as_os_str().to_owned();
    elf.push(".elf");
    PathBuf::from(elf)
}

/// Checks that the baseline exists (the file, or the revision in this repository),
/// and for a deterministic comparison that an image has its ELF beside it, before
/// anything is built or booted: a mistake costs nothing.
pub fn check(baseline: &BaselineSource, deterministic: bool) -> Result<()> {
    match baseline {
        BaselineSource::Image(image) if !image.is_file() => {
            bail!("--baseline-loader {}: no such file", image.display())
        }
        BaselineSource::Image(image) if deterministic && !elf_of(image).is_file() => {
            bail!(
                "--deterministic reads each loader's own trace: {} has no ELF beside it \
                 ({}); compare with a traced rusty-loader build, or without --deterministic",
                image.display(),
                elf_of(image).display()
            )
        }
        BaselineSource::Image(_) => Ok(()),
        BaselineSource::Revision(rev) => resolve_revision(rev).map(drop),
    }
}

/// The commit `rev` names in this repository.
fn resolve_revision(rev: &str) -> Result<String> {
    let out = std::process::Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
        .current_dir(crate::project_root())
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!("--baseline-rev {rev}: not a commit of this repository");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds (or finds) the baseline loader.
pub fn prepare(sh: &Shell, baseline: &BaselineSource) -> Result<BaselineLoader> {
    match baseline {
        BaselineSource::Image(image) => {
            check(baseline, false)?;
            Ok(BaselineLoader {
                image: image.clone(),
                label: image
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "baseline".into()),
            })
        }
        BaselineSource::Revision(rev) => build_revision(sh, rev),
    }
}

/// Exports `rev` (with `git archive`: no second worktree to prune later) and builds
/// its release loader with that revision's own xtask, so the baseline is exactly what
/// the revision produced.
fn build_revision(sh: &Shell, rev: &str) -> Result<BaselineLoader> {
    let root = crate::project_root();
    let _dir = sh.push_dir(&root);
    let commit = resolve_revision(rev)?;
    let short = &commit[..12.min(commit.len())];
    let tree = root.join("target/bench").join(format!("rev-{short}"));
    let image = tree.join("target/x86_64/release/rusty-loader");
    if !image.is_file() {
        if !tree.join("Cargo.toml").is_file() {
            eprintln!("bench: exporting {rev} ({short}) to {}", tree.display());
            std::fs::create_dir_all(&tree)?;
            let archive = tree.with_extension("tar");
            cmd!(sh, "git archive --format=tar -o {archive} {commit}")
                .quiet()
                .run()?;
            cmd!(sh, "tar -xf {archive} -C {tree}").quiet().run()?;
            std::fs::remove_file(&archive)?;
        }
        eprintln!("bench: building the release loader of {rev} ({short})");
        // Its output goes to stderr, like all progress: stdout is for the table.
        let status = std::process::Command::new("cargo")
            .args(["xtask", "build", "--release"])
            .current_dir(&tree)
            .stdout(std::io::stderr())
            .status()
            .context("running cargo")?;
        if !status.success() {
            bail!(
                "{rev} did not build with `cargo xtask build --release`; build its loader \
                 yourself and pass it with --baseline-loader"
            );
        }
        if !image.is_file() {
            bail!(
                "{rev} built, but not to {}; pass its loader with --baseline-loader",
                image.display()
            );
        }
    }
    Ok(BaselineLoader {
        image,
        label: format!("{rev} ({short})"),
    })
}

/// What one boot showed.
struct Timing {
    /// First serial byte (under UEFI: the loader's first frame, after the firmware's
    /// own text) to the application's first line; None if it never came.
    phase: Option<Duration>,
    /// QEMU's start to its end.
    wall: Duration,
    status: Option<i32>,
}

/// The first line every test kernel prints: the demo app's greeting, or the first
/// report line of the others.
const FIRST_LINES: [&[u8]; 2] = [b"Hello from ", b"tk: "];

/// The bytes before every trace frame (`rusty_loader::wire::FRAME_MARKER`).
const FRAME_MARKER: [u8; 2] = rusty_loader::wire::FRAME_MARKER;

/// QEMU arguments that make it log every write to a UART register with the host
/// time, taken in the vCPU thread as the guest writes (`-trace serial_write`, with
/// `-msg timestamp=on` for the times).
const SERIAL_WRITE_LOG: [&str; 4] = ["-msg", "timestamp=on", "-trace", "serial_write"];

fn time_boot(config: &QemuConfig) -> Result<Timing> {
    let mut config = config.clone();
    config.extra_args.extend(SERIAL_WRITE_LOG.map(Into::into));
    // OVMF writes its own text before the loader runs: a UEFI boot's loader phase
    // starts at the loader's first frame marker.
    let from_frame = config.boot == BootProtocol::Uefi;
    let start = Instant::now();
    let mut seen = Vec::new();
    let (mut first, mut line) = (None, None);
    let finished = qemu::run(
        &config,
        Duration::from_secs(60),
        QemuStderr::Capture,
        |arrival| {
            if let Arrival::Bytes(bytes) = arrival {
                let now = Instant::now();
                if line.is_none() {
                    seen.extend_from_slice(bytes);
                    if !from_frame || seen.windows(2).any(|w| w == FRAME_MARKER) {
                        first.get_or_insert(now);
                    }
                    if FIRST_LINES
                        .iter()
                        .any(|m| seen.windows(m.len()).any(|w| w == *m))
                    {
                        line = Some(now);
                    }
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    if finished.timed_out {
        bail!("{} did not finish within 60 s", config.display());
    }
    // QEMU's own times when it logged them; the times the host read the bytes
    // otherwise (which a reader scheduled late at the first byte shortens).
    let phase = if finished.stderr.contains(":serial_write ") {
        // None when the first line never came.
        phase_from_serial_log(&finished.stderr, from_frame)
    } else {
        warn_once_without_serial_log();
        first.zip(line).map(|(first, line)| line - first)
    };
    Ok(Timing {
        phase,
        wall: start.elapsed(),
        status: finished.status,
    })
}

fn warn_once_without_serial_log() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        eprintln!(
            "warning: this QEMU logs no `serial_write` trace events: the loader phase \
             is timed by when the host read the bytes, which is noisier"
        )
    });
}

/// The loader phase from QEMU's log of UART register writes: from the first byte
/// written to the transmit register (`from_frame`: the first byte of the first
/// frame marker, `FF 00`) to the byte that completes one of [`FIRST_LINES`]. The times are QEMU's, taken as the guest wrote, so a reader that
/// is scheduled late does not shorten the phase. Writes to register 0 while the
/// line control register's DLAB bit is set are the baud divisor, not data.
fn phase_from_serial_log(log: &str, from_frame: bool) -> Option<Duration> {
    let mut dlab = false;
    let mut stream = Vec::new();
    let mut first = None;
    let mut previous_at = Duration::ZERO;
    for line in log.lines() {
        // `<pid>@<seconds>.<micros>:serial_write write addr 0x<reg> val 0x<value>`
        let Some((stamp, event)) = line.split_once(":serial_write write addr 0x") else {
            continue;
        };
        let (_, time) = stamp.split_once('@')?;
        let (seconds, micros) = time.split_once('.')?;
        let at = Duration::from_secs(seconds.parse().ok()?)
            + Duration::from_micros(micros.parse().ok()?);
        let (register, value) = event.split_once(" val 0x")?;
        let register = u8::from_str_radix(register, 16).ok()?;
        let value = u8::from_str_radix(value.trim(), 16).ok()?;
        match register {
            3 => dlab = value & 0x80 != 0,
            0 if !dlab => {
                stream.push(value);
                if !from_frame {
                    first.get_or_insert(at);
                } else if first.is_none() && stream.ends_with(&FRAME_MARKER) {
                    first = Some(previous_at);
                }
                previous_at = at;
                if let Some(first) = first {
                    if FIRST_LINES.iter().any(|m| stream.ends_with(m)) {
                        return Some(at.saturating_sub(first));
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The best and the median of `values`.
fn best_and_median(mut values: Vec<Duration>) -> Option<(Duration, Duration)> {
    values.sort();
    Some((*values.first()?, values[values.len() / 2]))
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// One comparison: `boots` boots of each loader, alternating.
struct Pairing<'a> {
    measure: &'static str,
    app: &'a Path,
    /// Which figure of a boot counts.
    figure: fn(&Timing) -> Option<Duration>,
    reading: &'static str,
}

/// Boots every application with both loaders and returns the rows.
pub fn compare(
    qemu_binary: &Path,
    ours: &Path,
    our_boot: BootProtocol,
    baseline: &BaselineLoader,
    kernels: &TestKernels,
    boots: usize,
) -> Result<Vec<Row>> {
    let pairings = [
        Pairing {
            measure: "loader phase, demo app",
            app: &kernels.hello_dyn,
            figure: |t| t.phase,
            reading: "below 1: ours is faster",
        },
        Pairing {
            measure: "loader phase, big-dyn",
            app: &kernels.big_dyn,
            figure: |t| t.phase,
            reading: "576 KiB copied, 2304 relocations",
        },
        Pairing {
            measure: "to exit, calibrating, no -freq",
            app: &kernels.calibrating,
            figure: |t| Some(t.wall),
            reading: "QEMU start to exit",
        },
    ];
    let mut rows = Vec::new();
    for pairing in &pairings {
        let config = |loader: &Path, boot: BootProtocol| QemuConfig {
            qemu: qemu_binary.to_path_buf(),
            boot,
            ..QemuConfig::new(loader, pairing.app)
        };
        let (mut theirs, mut mine) = (Vec::new(), Vec::new());
        let mut statuses = (None, None);
        for i in 0..boots {
            eprint!("\r{}: boot {}/{boots} of each...", pairing.measure, i + 1);
            // Alternate which loader goes first, too.
            let order: [bool; 2] = if i % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for is_ours in order {
                let (loader, boot) = if is_ours {
                    (ours, our_boot)
                } else {
                    (baseline.image.as_path(), BootProtocol::Multiboot)
                };
                let timing = time_boot(&config(loader, boot))?;
                let figure = (pairing.figure)(&timing).with_context(|| {
                    format!(
                        "{} never printed its first line with {}",
                        pairing.app.display(),
                        loader.display()
                    )
                })?;
                if is_ours {
                    mine.push(figure);
                    statuses.1 = timing.status;
                } else {
                    theirs.push(figure);
                    statuses.0 = timing.status;
                }
            }
        }
        eprintln!();
        for (who, status) in [("the baseline", statuses.0), ("rusty-loader", statuses.1)] {
            if status != Some(3) {
                eprintln!(
                    "warning: with {who}, {} ended with QEMU status {status:?}, not 3 \
                     (its checks failed): compare with care",
                    pairing.app.display()
                );
            }
        }
        let (theirs, theirs_median) = best_and_median(theirs).context("at least one boot")?;
        let (mine, mine_median) = best_and_median(mine).context("at least one boot")?;
        rows.push(Row {
            measure: pairing.measure,
            baseline: format!("{} {}", short_label(&baseline.label), millis(theirs)),
            ours: format!("{} {}", ours_label(our_boot), millis(mine)),
            ratio: mine.as_secs_f64() / theirs.as_secs_f64(),
            reading: format!(
                "median {:.3}x; {}",
                mine_median.as_secs_f64() / theirs_median.as_secs_f64(),
                pairing.reading
            ),
        });
    }
    Ok(rows)
}

/// How the table names this loader: `ours`, or `ours/pvh` / `ours/uefi` when it boots
/// through PVH or UEFI.
fn ours_label(boot: BootProtocol) -> &'static str {
    match boot {
        BootProtocol::Multiboot => "ours",
        BootProtocol::Pvh => "ours/pvh",
        BootProtocol::Uefi => "ours/uefi",
    }
}

/// The baseline's name as it fits a table cell.
fn short_label(label: &str) -> &str {
    let first = label.split_whitespace().next().unwrap_or(label);
    &first[..first.len().min(12)]
}

/// What one deterministic boot showed, in virtual nanoseconds (instructions).
struct VirtualTiming {
    /// The loader's entry to its hand-over, trace output included: the report's
    /// `loader total`.
    loader: u64,
    /// The kernel's own TSC calibration (`calibration_us=` of the `calibrating`
    /// kernel), when it printed one.
    calibration: Option<u64>,
}

fn virtual_boot(config: &QemuConfig, table: &TraceTable) -> Result<VirtualTiming> {
    let run = traced_boot::boot(config, Some(table), Duration::from_secs(120), None)?;
    let record = run
        .record
        .with_context(|| format!("{}: no trace", config.display()))?;
    let report = Report::build(&record);
    let loader = report.timeline.total_ticks;
    if loader == 0 {
        bail!(
            "{}: the trace has no loader times (was it cut short?)",
            config.display()
        );
    }
    let text = String::from_utf8_lossy(&run.raw);
    let calibration = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("tk: calibration_us="))
        .and_then(|us| us.trim().parse::<u64>().ok())
        .map(|us| us * 1000);
    Ok(VirtualTiming {
        loader,
        calibration,
    })
}

fn virtual_millis(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

/// The deterministic comparison: for the demo app and `big-dyn`, the loader's work
/// from its entry to the hand-over; for the `calibrating` kernel without `-freq`,
/// that plus the kernel's own calibration (the part of a boot to exit that depends
/// on the loader). Each boot twice: the second must repeat the first exactly.
pub fn compare_deterministic(
    qemu_binary: &Path,
    ours: (&Path, &Path),
    our_boot: BootProtocol,
    baseline: &BaselineLoader,
    kernels: &TestKernels,
) -> Result<Vec<Row>> {
    let baseline_elf = baseline.elf();
    if !baseline_elf.is_file() {
        bail!(
            "--deterministic reads each loader's own trace: {} has no ELF beside it ({}); \
             compare with a traced rusty-loader build, or without --deterministic",
            baseline.image.display(),
            baseline_elf.display()
        );
    }
    let read_table = |elf: &Path| -> Result<TraceTable> {
        TraceTable::from_elf(
            &std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?,
        )
        .with_context(|| format!("{}: not a traced loader ELF", elf.display()))
    };
    let tables = [read_table(&baseline_elf)?, read_table(ours.1)?];
    let images = [
        (baseline.image.as_path(), BootProtocol::Multiboot),
        (ours.0, our_boot),
    ];
    type Figure = fn(&VirtualTiming) -> Option<u64>;
    // (measure, app, -append, figure, reading)
    let pairings: [(&'static str, &Path, Option<&str>, Figure, &'static str); 4] = [
        (
            "loader work, demo app",
            &kernels.hello_dyn,
            None,
            |t| Some(t.loader),
            "entry to hand-over; 1 ns = 1 instruction",
        ),
        (
            "loader work, big-dyn",
            &kernels.big_dyn,
            None,
            |t| Some(t.loader),
            "576 KiB copied, 2304 relocations",
        ),
        (
            "loader work, demo app, -freq 1000",
            &kernels.hello_dyn,
            Some("-freq 1000"),
            |t| Some(t.loader),
            "no loader measures or waits: instructions alone",
        ),
        (
            "loader + calibration, no -freq",
            &kernels.calibrating,
            None,
            |t| Some(t.loader + t.calibration?),
            "calibrating kernel: its 30 ms PIT wait unless given -freq",
        ),
    ];
    let mut rows = Vec::new();
    for (measure, app, append, figure, reading) in pairings {
        eprintln!("{measure}: two deterministic boots of each...");
        let mut figures = [0u64; 2];
        for (who, ((image, boot), table)) in images.iter().zip(&tables).enumerate() {
            let config = QemuConfig {
                qemu: qemu_binary.to_path_buf(),
                boot: *boot,
                deterministic: true,
                append: append.map(str::to_string),
                ..QemuConfig::new(*image, app)
            };
            let first = virtual_boot(&config, table)?;
            let again = virtual_boot(&config, table)?;
            let value = figure(&first).with_context(|| {
                format!(
                    "{}: the kernel printed no calibration_us= with {}",
                    app.display(),
                    image.display()
                )
            })?;
            if figure(&again) != Some(value) {
                eprintln!(
                    "warning: {measure} with {} did not repeat exactly ({value} then {:?} ns)",
                    image.display(),
                    figure(&again)
                );
            }
            figures[who] = value;
        }
        rows.push(Row {
            measure,
            baseline: format!(
                "{} {}",
                short_label(&baseline.label),
                virtual_millis(figures[0])
            ),
            ours: format!("{} {}", ours_label(our_boot), virtual_millis(figures[1])),
            ratio: figures[1] as f64 / figures[0] as f64,
            reading: format!("virtual time; {reading}"),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(micros: u64, register: u8, value: u8) -> String {
        format!(
            "4242@1796149099.{micros:06}:serial_write write addr 0x{register:02x} val 0x{value:02x}\n"
        )
    }

    #[test]
    fn the_phase_runs_from_the_first_data_byte_to_the_first_line() {
        let mut log = String::from("qemu-system-x86_64: some warning\n");
        // The baud divisor (DLAB set) is not data.
        log += &write(100, 3, 0x80);
        log += &write(110, 0, 0x0c);
        log += &write(120, 1, 0x00);
        log += &write(130, 3, 0x03);
        log += &write(1000, 0, 0xff);
        log += &write(1010, 0, 0x00);
        for (i, byte) in b"Hello from the app".iter().enumerate() {
            log += &write(5000 + i as u64, 0, *byte);
        }
        // The line is complete at "Hello from " (11 bytes): 5010 us.
        assert_eq!(
            phase_from_serial_log(&log, false),
            Some(Duration::from_micros(4010))
        );
        assert_eq!(phase_from_serial_log("no trace here\n", false), None);
        assert_eq!(phase_from_serial_log(&write(1000, 0, 0xff), false), None);
    }

    #[test]
    fn under_uefi_the_phase_starts_at_the_first_frame() {
        // The firmware's text first, then the loader's frame marker at 2000 us.
        let mut log = String::new();
        for (i, byte) in b"\x1b[2J".iter().enumerate() {
            log += &write(100 + i as u64, 0, *byte);
        }
        log += &write(2000, 0, 0xff);
        log += &write(2001, 0, 0x00);
        for (i, byte) in b"tk: ok".iter().enumerate() {
            log += &write(3000 + i as u64, 0, *byte);
        }
        assert_eq!(
            phase_from_serial_log(&log, true),
            Some(Duration::from_micros(1003))
        );
        assert_eq!(
            phase_from_serial_log(&log, false),
            Some(Duration::from_micros(2903))
        );
    }
}
