//! `cargo xtask fuzz [TARGET] [--time SECONDS]`: runs one or every fuzz target of
//! `fuzz/` for a bounded time each (docs/fuzzing.md). The targets are cargo-fuzz's
//! (libFuzzer, nightly Rust); this only checks that the tools are there, says how to
//! install them when they are not, and runs each target on its working corpus
//! (`fuzz/corpus/<target>`, grown by every run), its seeds and its regressions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

/// `cargo xtask fuzz`: the options.
#[derive(clap::Args)]
pub struct FuzzArgs {
    /// One target (`cargo +nightly fuzz list` in fuzz/); default: every target.
    target: Option<String>,
    /// Seconds per target.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    time: u64,
}

impl FuzzArgs {
    /// `cargo xtask fuzz`: see [`run`].
    pub fn run(self) -> Result<ExitCode> {
        run(&crate::project_root(), self.target.as_deref(), self.time)
    }
}

/// How to get what the fuzz targets need.
pub const INSTALL: &str =
    "install them with `rustup toolchain install nightly` and `cargo install cargo-fuzz`";

/// What is missing to run the fuzz targets, if anything: nightly Rust, then
/// cargo-fuzz.
pub fn missing_tools() -> Option<&'static str> {
    let works = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if !works(&["+nightly", "--version"]) {
        Some("nightly Rust")
    } else if !works(&["+nightly", "fuzz", "--version"]) {
        Some("cargo-fuzz")
    } else {
        None
    }
}

/// The targets `fuzz/Cargo.toml` defines, as cargo-fuzz lists them.
pub fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let out = Command::new("cargo")
        .args(["+nightly", "fuzz", "list"])
        .current_dir(fuzz_dir)
        .output()
        .context("running cargo fuzz list")?;
    if !out.status.success() {
        bail!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect())
}

/// The targets to run: `chosen`, which must be one of `all`, or all of them.
pub fn select(all: &[String], chosen: Option<&str>) -> Result<Vec<String>> {
    match chosen {
        None => Ok(all.to_vec()),
        Some(name) if all.iter().any(|t| t == name) => Ok(vec![name.to_string()]),
        Some(name) => bail!("no fuzz target {name:?}; the targets: {}", all.join(", ")),
    }
}

/// The arguments of `cargo` that run `target` for `seconds`: optimised, with debug
/// assertions (overflow checks), on the working corpus first (where new inputs go),
/// then the seeds and the regressions; an input running 10 s counts as a hang
/// (the targets themselves fail past 1 s).
pub fn run_arguments(target: &str, seconds: u64, fuzz_dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["+nightly", "fuzz", "run", "--release", "--debug-assertions"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(target.to_string());
    args.push(format!("corpus/{target}"));
    for kind in ["seeds", "regressions"] {
        if fuzz_dir.join(kind).join(target).is_dir() {
            args.push(format!("{kind}/{target}"));
        }
    }
    args.push("--".to_string());
    args.push(format!("-max_total_time={seconds}"));
    args.push("-timeout=10".to_string());
    args
}

/// The files in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

/// Runs the chosen targets, each for `seconds`. Exit status 0 when none failed, 1
/// when one found a failing input (named, with what to do next), 2 when the tools
/// are missing, the target is unknown, or a run failed without finding anything (a
/// build error, a full disk: libFuzzer leaves an input in `fuzz/artifacts/` for
/// every finding, so a failure without one is not a finding).
pub fn run(root: &Path, chosen: Option<&str>, seconds: u64) -> Result<ExitCode> {
    if let Some(missing) = missing_tools() {
        eprintln!(
            "error: {missing} is missing; fuzzing needs nightly Rust and cargo-fuzz: {INSTALL}"
        );
        return Ok(ExitCode::from(2));
    }
    let fuzz_dir = root.join("fuzz");
    let all = targets(&fuzz_dir)?;
    let chosen = match select(&all, chosen) {
        Ok(chosen) => chosen,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut failed = Vec::new();
    for target in &chosen {
        std::fs::create_dir_all(fuzz_dir.join("corpus").join(target))?;
        let artifacts = fuzz_dir.join("artifacts").join(target);
        let before = files_in(&artifacts);
        eprintln!("fuzz: {target} for {seconds} s");
        let status = Command::new("cargo")
            .args(run_arguments(target, seconds, &fuzz_dir))
            .current_dir(&fuzz_dir)
            .status()
            .context("running cargo fuzz")?;
        if !status.success() {
            let found: Vec<PathBuf> = files_in(&artifacts).difference(&before).cloned().collect();
            if found.is_empty() {
                eprintln!(
                    "error: `cargo +nightly fuzz run {target}` failed ({status}) without \
                     leaving an input in fuzz/artifacts/{target}/: not a finding (see its \
                     output above: a build error, a full disk?)"
                );
                return Ok(ExitCode::from(2));
            }
            for file in &found {
                eprintln!("fuzz: {target} left {}", file.display());
            }
            failed.push(target.clone());
        }
    }
    if failed.is_empty() {
        eprintln!(
            "fuzz: {} ran {seconds} s each, nothing found",
            chosen.join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    for target in &failed {
        eprintln!(
            "fuzz: {target} found a failing input in fuzz/artifacts/{target}/: reproduce it with `cargo +nightly fuzz run {target} <file>` in fuzz/, fix the library, then add the file to fuzz/regressions/{target}/ (docs/fuzzing.md)"
        );
    }
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_chosen_by_name_or_all_run() {
        let all: Vec<String> = ["loading", "stream"].map(String::from).to_vec();
        assert_eq!(select(&all, None).unwrap(), all);
        assert_eq!(select(&all, Some("stream")).unwrap(), ["stream"]);
        let error = select(&all, Some("nope")).unwrap_err().to_string();
        assert_eq!(
            error,
            "no fuzz target \"nope\"; the targets: loading, stream"
        );
    }

    #[test]
    fn a_run_is_bounded_and_reads_seeds_and_regressions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("seeds/stream")).unwrap();
        let args = run_arguments("stream", 30, dir.path());
        assert_eq!(
            args,
            [
                "+nightly",
                "fuzz",
                "run",
                "--release",
                "--debug-assertions",
                "stream",
                "corpus/stream",
                "seeds/stream",
                "--",
                "-max_total_time=30",
                "-timeout=10"
            ]
        );
    }
}
