//! `cargo xtask bench`: what tracing costs and how fast the pieces are, each measured
//! against a baseline in the same run and printed as a ratio (these machines are
//! noisy: only side-by-side figures mean anything).
//!
//! 1. Boot wall time of the demo app with the traced loader vs the loader built
//!    without tracing (alternating runs, medians): the tracing overhead.
//! 2. Bytes of the defmt trace vs the same events as a plain text log (one
//!    `[timestamp] message` line each, as a text-logging loader would print them).
//! 3. The loader's segment copy throughput (from its own `SegmentLoaded` ticks and
//!    the TSC frequency) vs the same copy done by `memcpy` on the host.
//! 4. rusty-trace's decoding throughput vs stock defmt-print on the same input.
//! 5. With `--baseline-rev` or `--baseline-loader`: loader phase and time to exit
//!    against another loader ([`crate::bench_loaders`]); with `--deterministic` only
//!    that comparison, in virtual time under `-icount`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rusty_loader::wire::LoaderEvent;

use anyhow::{Context, Result};
use trace_decoder::decode::{decode_recording, TraceTable};
use xshell::Shell;

use crate::bench_loaders::BaselineSource;
use crate::bench_table::{self, Row};
use crate::build::{self, Profile, TraceLevel};
use crate::qemu::{self, BootProtocol, QemuConfig};

/// `cargo xtask bench`: the options.
#[derive(clap::Args)]
// The field docs are the `--help` texts: `<commit>` is a placeholder, not HTML.
#[allow(rustdoc::invalid_html_tags)]
pub struct BenchArgs {
    /// Boots per variant for the wall-time comparison.
    #[arg(long, default_value_t = 10)]
    boots: usize,
    /// Copies of a recorded boot concatenated for the decoder comparison.
    #[arg(long, default_value_t = 2000)]
    decoder_copies: usize,
    /// Also compare loader phase and time to exit with the loader of this
    /// revision (built with its own `cargo xtask build --release` in
    /// target/bench/rev-<commit>).
    #[arg(long, value_name = "REV", conflicts_with = "baseline_loader")]
    baseline_rev: Option<String>,
    /// Also compare with this Multiboot loader image (another release, another
    /// loader).
    #[arg(long, value_name = "IMAGE")]
    baseline_loader: Option<PathBuf>,
    /// Only compare with the baseline, in virtual time under QEMU's `-icount
    /// shift=0,sleep=off` (one instruction = 1 ns, timer waits take the time they
    /// wait): figures that repeat exactly whatever the host does. Reads both
    /// loaders' traces, so the baseline must be a traced rusty-loader with its
    /// ELF beside it (`<image>.elf`).
    #[arg(long)]
    deterministic: bool,
    /// The entry this loader boots through in the comparison with the baseline
    /// (which always boots through Multiboot): with `--baseline-rev HEAD --boot
    /// pvh`, this build's PVH entry against its Multiboot entry.
    #[arg(long, value_enum, default_value = "multiboot")]
    boot: BootProtocol,
}

impl BenchArgs {
    /// `cargo xtask bench`: measures, then prints the table.
    pub fn run(self, sh: &Shell) -> Result<ExitCode> {
        let baseline = self
            .baseline_rev
            .map(BaselineSource::Revision)
            .or(self.baseline_loader.map(BaselineSource::Image));
        let rows = run(
            sh,
            &Options {
                boots: self.boots,
                decoder_copies: self.decoder_copies,
                baseline,
                deterministic: self.deterministic,
                boot: self.boot,
            },
        )?;
        bench_table::print(&rows);
        Ok(ExitCode::SUCCESS)
    }
}

/// What to measure.
pub struct Options {
    pub boots: usize,
    pub decoder_copies: usize,
    /// Another loader to compare with (see [`crate::bench_loaders`]).
    pub baseline: Option<BaselineSource>,
    /// Only the comparison with the baseline, in virtual time under `-icount`
    /// ([`crate::bench_loaders::compare_deterministic`]).
    pub deterministic: bool,
    /// Which entry this loader boots through in the comparison (the baseline boots
    /// through Multiboot).
    pub boot: BootProtocol,
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// The shortest: what the boot costs when the host does not get in the way.
fn best(values: &[Duration]) -> Duration {
    values.iter().copied().min().unwrap_or_default()
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn rate(bytes_per_second: f64) -> String {
    if bytes_per_second >= 1e9 {
        format!("{:.2} GB/s", bytes_per_second / 1e9)
    } else {
        format!("{:.1} MB/s", bytes_per_second / 1e6)
    }
}

pub fn run(sh: &Shell, options: &Options) -> Result<Vec<Row>> {
    if options.deterministic && options.baseline.is_none() {
        anyhow::bail!(
            "--deterministic compares with another loader: give --baseline-rev REV or \
             --baseline-loader IMAGE"
        );
    }
    if options.boot != BootProtocol::Multiboot && options.baseline.is_none() {
        anyhow::bail!(
            "--boot chooses the entry for the comparison with another loader: give \
             --baseline-rev REV or --baseline-loader IMAGE"
        );
    }
    if let Some(baseline) = &options.baseline {
        crate::bench_loaders::check(baseline, options.deterministic)?;
    }
    let qemu = qemu::find_qemu(None)?;
    let traced = build::build_loader(sh, Profile::Release, TraceLevel::Info)?;
    if options.deterministic {
        let kernels = build::build_test_kernels(sh, Profile::Release)?;
        let baseline =
            crate::bench_loaders::prepare(sh, options.baseline.as_ref().expect("checked above"))?;
        eprintln!(
            "comparing with {} under -icount shift=0,sleep=off",
            baseline.image.display()
        );
        return crate::bench_loaders::compare_deterministic(
            &qemu,
            (&traced.image, &traced.elf),
            options.boot,
            &baseline,
            &kernels,
        );
    }
    let untraced = build::build_loader(sh, Profile::Release, TraceLevel::Off)?;
    let kernels = build::build_test_kernels(sh, Profile::Release)?;
    // Built first: a baseline that does not build stops the bench before it boots.
    let baseline = options
        .baseline
        .as_ref()
        .map(|b| crate::bench_loaders::prepare(sh, b))
        .transpose()?;
    let app = &kernels.hello_dyn;
    let config = |loader: &Path| QemuConfig {
        qemu: qemu.clone(),
        append: Some("-freq 2800".to_string()),
        ..QemuConfig::new(loader, app)
    };
    let timeout = Duration::from_secs(60);

    // 1. Wall time, alternating so that drift on the machine hits both alike.
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let mut last_traced = None;
    for i in 0..options.boots {
        eprint!("\rbooting {}/{}...", i + 1, options.boots);
        let run = qemu::run_captured(&config(&traced.image), timeout)?;
        anyhow::ensure!(
            run.status == Some(3),
            "the traced boot failed: {}",
            qemu::describe_status(run.status)
        );
        with.push(run.wall);
        last_traced = Some(run);
        let run = qemu::run_captured(&config(&untraced.image), timeout)?;
        anyhow::ensure!(
            run.status == Some(3),
            "the untraced boot failed: {}",
            qemu::describe_status(run.status)
        );
        without.push(run.wall);
    }
    eprintln!();
    let (with_best, without_best) = (best(&with), best(&without));
    let (with, without) = (median(&mut with), median(&mut without));
    let mut rows = vec![Row {
        measure: "boot wall time, demo app",
        baseline: format!("untraced {}", millis(without_best)),
        ours: format!("traced {}", millis(with_best)),
        ratio: with_best.as_secs_f64() / without_best.as_secs_f64(),
        reading: format!(
            "median {:.3}x; tracing overhead: 1.00x = none",
            with.as_secs_f64() / without.as_secs_f64()
        ),
    }];

    // 2. Trace size vs a text log of the same events.
    let serial = last_traced.context("at least one boot")?.serial;
    let table = TraceTable::from_elf(&std::fs::read(&traced.elf)?)?;
    let decoded = decode_recording(&table, &serial)?;
    let trace_bytes = serial.len() - decoded.text.len();
    let text_log: usize = decoded
        .events
        .iter()
        .map(|e| format!("[{:>12}] {}\n", e.timestamp, e.message()).len())
        .sum();
    rows.push(Row {
        measure: "trace size, demo boot",
        baseline: format!("text log {text_log} B"),
        ours: format!("defmt {trace_bytes} B"),
        ratio: trace_bytes as f64 / text_log as f64,
        reading: "below 1: smaller than text".into(),
    });

    // 3. Segment copy throughput: the loader (under QEMU) vs memcpy on the host.
    let khz = decoded
        .events
        .iter()
        .find_map(|e| match e.kind {
            LoaderEvent::Frequency { khz, .. } => Some(u64::from(khz)),
            _ => None,
        })
        .filter(|&k| k > 0)
        .context("the trace has no TSC frequency")?;
    let segments: Vec<(u64, u64)> = decoded
        .events
        .iter()
        .filter_map(|e| match e.kind {
            LoaderEvent::SegmentLoaded {
                filesz, copy_ticks, ..
            } => Some((filesz, copy_ticks)),
            _ => None,
        })
        .collect();
    let copied: u64 = segments.iter().map(|s| s.0).sum();
    let ticks: u64 = segments.iter().map(|s| s.1).sum();
    let loader_rate = copied as f64 / (ticks as f64 / (khz as f64 * 1e3));
    let host_rate = host_memcpy_rate(&segments.iter().map(|s| s.0 as usize).collect::<Vec<_>>());
    rows.push(Row {
        measure: "segment copy throughput",
        baseline: format!("host memcpy {}", rate(host_rate)),
        ours: format!("loader {}", rate(loader_rate)),
        ratio: loader_rate / host_rate,
        reading: "the loader runs under TCG: expect far below 1".into(),
    });

    // 4. Decoding a long recording: rusty-trace vs stock defmt-print.
    let recording = crate::project_root().join("target/bench/demo-boot.bin");
    std::fs::create_dir_all(recording.parent().expect("a parent"))?;
    std::fs::write(&recording, &serial)?;
    let decoder = crate::bench_decoder::decoder_throughput(
        sh,
        &traced.elf,
        &recording,
        options.decoder_copies,
    )?;
    match (decoder.defmt_print, decoder.ratio) {
        (Some(stock), Some(ratio)) => rows.push(Row {
            measure: "decoder throughput",
            baseline: format!("defmt-print {:.2} MB/s", stock.mb_per_s),
            ours: format!("rusty-trace {:.2} MB/s", decoder.rusty_trace.mb_per_s),
            ratio,
            reading: "above 1: rusty-trace is faster".into(),
        }),
        _ => eprintln!(
            "decoder throughput: rusty-trace {:.2} MB/s; {}",
            decoder.rusty_trace.mb_per_s,
            decoder
                .note
                .as_deref()
                .unwrap_or("no defmt-print to compare with")
        ),
    }
    if let Some(baseline) = baseline {
        eprintln!("comparing with {}", baseline.image.display());
        rows.extend(crate::bench_loaders::compare(
            &qemu,
            &traced.image,
            options.boot,
            &baseline,
            &kernels,
            options.boots,
        )?);
    }
    Ok(rows)
}

/// Copies buffers of the segments' sizes on the host until at least 100 ms passed.
fn host_memcpy_rate(sizes: &[usize]) -> f64 {
    let sources: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0xA5; n]).collect();
    let mut targets: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0; n]).collect();
    let total: usize = sizes.iter().sum();
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < Duration::from_millis(100) {
        for (target, source) in targets.iter_mut().zip(&sources) {
            target.copy_from_slice(std::hint::black_box(source));
        }
        std::hint::black_box(&mut targets);
        rounds += 1;
    }
    (total as f64 * rounds as f64) / start.elapsed().as_secs_f64()
}
