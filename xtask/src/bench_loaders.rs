//! `cargo xtask bench --baseline-rev REV` (or `--baseline-loader IMAGE`): this loader
//! against another one, booting the same applications on the same machine in one
//! run, alternating boot by boot so that whatever else the host does hits both
//! alike. Wall-clock times measured on the host; the ratio is of the best boots
//! (the loader's work is the same every time: anything above the best is the host
//! being busy, which a shared machine is), the median ratio is shown beside it:
//!
//! - **loader phase**: from the first byte on the serial port to the application's
//!   first line, for the demo app and for `big-dyn` (a kernel of realistic size).
//!   Both ends are seen by the host, so it needs nothing from either loader: it
//!   works for any Multiboot loader, traced or not. (A loader that prints before
//!   the hand-over starts its phase later than one that prints nothing until then.)
//! - **to exit**: from QEMU's start to its end, for the `calibrating` kernel given
//!   no `-freq`: what a user of a Hermit 0.6 application waits for in all, with the
//!   kernel's own TSC calibration (30 ms of PIT) when the loader does not spare it.
//!
//! No `-append` anywhere: each loader finds the frequency its own way, as it would
//! for a user who passes none.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use trace_decoder::pump::Arrival;
use xshell::{cmd, Shell};

use crate::bench::Row;
use crate::build::TestKernels;
use crate::qemu::{self, QemuConfig, QemuStderr};

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

/// Checks that the baseline exists (the file, or the revision in this repository)
/// before anything is built or booted: a mistake costs nothing.
pub fn check(baseline: &BaselineSource) -> Result<()> {
    match baseline {
        BaselineSource::Image(image) if !image.is_file() => {
            bail!("--baseline-loader {}: no such file", image.display())
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
            check(baseline)?;
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
    /// First serial byte to the application's first line; None if it never came.
    phase: Option<Duration>,
    /// QEMU's start to its end.
    wall: Duration,
    status: Option<i32>,
}

/// The first line every test kernel prints: the demo app's greeting, or the first
/// report line of the others.
const FIRST_LINES: [&[u8]; 2] = [b"Hello from ", b"tk: "];

fn time_boot(config: &QemuConfig) -> Result<Timing> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let (mut first, mut line) = (None, None);
    let finished = qemu::run(
        config,
        Duration::from_secs(60),
        QemuStderr::Capture,
        |arrival| {
            if let Arrival::Bytes(bytes) = arrival {
                let now = Instant::now();
                first.get_or_insert(now);
                if line.is_none() {
                    seen.extend_from_slice(bytes);
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
    Ok(Timing {
        phase: first.zip(line).map(|(first, line)| line - first),
        wall: start.elapsed(),
        status: finished.status,
    })
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
        let config = |loader: &Path| QemuConfig {
            qemu: qemu_binary.to_path_buf(),
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
                let loader = if is_ours { ours } else { &baseline.image };
                let timing = time_boot(&config(loader))?;
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
            ours: format!("ours {}", millis(mine)),
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

/// The baseline's name as it fits a table cell.
fn short_label(label: &str) -> &str {
    let first = label.split_whitespace().next().unwrap_or(label);
    &first[..first.len().min(12)]
}
