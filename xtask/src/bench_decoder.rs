//! rusty-trace's decoding throughput against stock `defmt-print`, on the same input
//! in the same run: a recorded serial stream repeated many times into one file, fed
//! to each decoder's standard input with its output thrown away. Each runs three
//! times and its best run counts, which filters out a busy machine's noise better
//! than a mean. Both tools are the release builds a user would run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::project_root;

/// Runs per tool; the fastest counts.
const RUNS: usize = 3;

/// One tool's figures.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// The best of the runs.
    pub best: Duration,
    /// Input megabytes (10^6 bytes) per second in that run.
    pub mb_per_s: f64,
}

/// The comparison.
#[derive(Clone, Debug)]
pub struct DecoderBench {
    /// Bytes of input each tool read.
    pub input_bytes: u64,
    /// Copies of the recording in the input.
    pub copies: usize,
    pub rusty_trace: Throughput,
    /// None when defmt-print is not installed (see `note`).
    pub defmt_print: Option<Throughput>,
    /// rusty-trace's throughput divided by defmt-print's: above 1 is faster.
    pub ratio: Option<f64>,
    /// Why a figure is missing, for the reader.
    pub note: Option<String>,
}

/// Times `rusty-trace --elf <loader_elf> --quiet --no-report` and
/// `defmt-print -e <loader_elf>` on `copies` copies of `recording`.
pub fn decoder_throughput(
    sh: &Shell,
    loader_elf: &Path,
    recording: &Path,
    copies: usize,
) -> Result<DecoderBench> {
    let rusty_trace = build_rusty_trace(sh)?;
    let stream = std::fs::read(recording)
        .with_context(|| format!("reading the recording {}", recording.display()))?;
    if stream.is_empty() || copies == 0 {
        bail!("nothing to decode: the recording is empty or no copies were asked for");
    }
    let dir = sh.create_temp_dir()?;
    let input = dir.path().join("stream.bin");
    std::fs::write(&input, stream.repeat(copies)).context("writing the benchmark input")?;
    let input_bytes = (stream.len() * copies) as u64;

    let mut ours = Command::new(&rusty_trace);
    ours.arg("--elf")
        .arg(loader_elf)
        .args(["--quiet", "--no-report", "--color", "never"]);
    let ours = best_of(&mut ours, &input, input_bytes, "rusty-trace")?;

    let (theirs, note) = match find_defmt_print() {
        Some(defmt_print) => {
            let mut theirs = Command::new(defmt_print);
            theirs.arg("-e").arg(loader_elf);
            (
                Some(best_of(&mut theirs, &input, input_bytes, "defmt-print")?),
                None,
            )
        }
        None => (
            None,
            Some(
                "defmt-print is not installed (cargo install defmt-print): no comparison"
                    .to_string(),
            ),
        ),
    };
    Ok(DecoderBench {
        input_bytes,
        copies,
        ratio: theirs.as_ref().map(|t| ours.mb_per_s / t.mb_per_s),
        rusty_trace: ours,
        defmt_print: theirs,
        note,
    })
}

/// Builds the release rusty-trace and returns its path.
fn build_rusty_trace(sh: &Shell) -> Result<PathBuf> {
    cmd!(
        sh,
        "cargo build --quiet --release -p trace-decoder --bin rusty-trace"
    )
    .run()
    .context("building rusty-trace")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    Ok(target.join("release/rusty-trace"))
}

/// defmt-print from PATH, or where `cargo install` puts it.
fn find_defmt_print() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    std::iter::once(PathBuf::from("defmt-print"))
        .chain(cargo_home.map(|home| home.join("bin/defmt-print")))
        .find(|candidate| {
            Command::new(candidate)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Runs `command` `RUNS` times with `input` as standard input and keeps the fastest.
fn best_of(command: &mut Command, input: &Path, bytes: u64, name: &str) -> Result<Throughput> {
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let stdin = File::open(input)?;
        let start = Instant::now();
        let status = command
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {name}"))?;
        let elapsed = start.elapsed();
        if !status.success() {
            bail!("{name} failed on the benchmark input ({status})");
        }
        best = best.min(elapsed);
    }
    Ok(Throughput {
        best,
        mb_per_s: bytes as f64 / 1e6 / best.as_secs_f64(),
    })
}
