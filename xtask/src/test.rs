//! `cargo xtask test`: builds every bare-metal artifact the tests boot (the loader
//! in each build the tests use, the test kernels), one build after another, then
//! runs every test of the workspace: host unit tests, then the QEMU boots of
//! `xtask/tests`. The builds inside the tests then find everything built and stay
//! quiet ([`QUIET_BUILDS`]), so that no two builds print at once. It ends with one
//! line per step (passed or failed, and its time) and the total, whose last line
//! is `total: N passed, N failed`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::build::{self, Profile, TraceLevel};
use crate::step;

/// Set for the tests by `cargo xtask test`: the bare-metal builds were made before,
/// so a build a test asks for only checks, without a word ([`crate::build`]).
pub const QUIET_BUILDS: &str = "XTASK_QUIET_BUILDS";

/// How a step ended.
enum Outcome {
    Passed,
    Failed(String),
    NotRun,
}

/// One step's line of the summary.
struct StepResult {
    name: &'static str,
    outcome: Outcome,
    time: Duration,
    /// The tests' counts, for the step that runs them.
    counts: Option<Counts>,
}

/// Tests counted from cargo's `test result:` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Counts {
    /// Adds a line of libtest's, `test result: ok. 12 passed; 0 failed; 1 ignored;
    /// ...`; other lines change nothing.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(number), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                "ignored" => self.ignored += number,
                _ => {}
            }
        }
    }
}

type Build = fn(&Shell) -> Result<()>;

/// The builds, in order: everything a test boots or runs.
const BUILDS: &[(&str, Build)] = &[
    ("loader (debug)", |sh| {
        build::build_loader(sh, Profile::Debug, TraceLevel::Info).map(drop)
    }),
    ("loader without tracing (debug)", |sh| {
        build::build_loader(sh, Profile::Debug, TraceLevel::Off).map(drop)
    }),
    ("loader (release)", |sh| {
        build::build_loader(sh, Profile::Release, TraceLevel::Info).map(drop)
    }),
    ("loader at trace levels error, debug", |sh| {
        for level in [TraceLevel::Error, TraceLevel::Debug] {
            build::build_loader_to(sh, Profile::Debug, level, build::level_artifacts(level))?;
        }
        Ok(())
    }),
    ("loader with fault injection (debug)", |sh| {
        build::build_fault_loader(sh, Profile::Debug).map(drop)
    }),
    ("test kernels (debug)", |sh| {
        build::build_test_kernels(sh, Profile::Debug).map(drop)
    }),
];

const TESTS: &str = "cargo test --workspace";

pub fn run(sh: &Shell) -> Result<ExitCode> {
    let total = BUILDS.len() + 1;
    let start = Instant::now();
    let mut results = Vec::new();
    let mut failed = false;
    for (index, (name, build)) in BUILDS.iter().enumerate() {
        if failed {
            results.push(StepResult {
                name,
                outcome: Outcome::NotRun,
                time: Duration::ZERO,
                counts: None,
            });
            continue;
        }
        step(&format!("[{}/{total}] building {name}", index + 1));
        let begun = Instant::now();
        let outcome = match build(sh) {
            Ok(()) => Outcome::Passed,
            Err(error) => {
                eprintln!("error: {error:#}");
                failed = true;
                Outcome::Failed(String::new())
            }
        };
        results.push(StepResult {
            name,
            outcome,
            time: begun.elapsed(),
            counts: None,
        });
    }
    let mut counts = Counts::default();
    if failed {
        results.push(StepResult {
            name: TESTS,
            outcome: Outcome::NotRun,
            time: Duration::ZERO,
            counts: None,
        });
    } else {
        step(&format!(
            "[{total}/{total}] {TESTS}: host tests, then QEMU boots (several minutes)"
        ));
        let begun = Instant::now();
        let outcome = cargo_test(sh, &mut counts)?;
        failed = !matches!(outcome, Outcome::Passed);
        results.push(StepResult {
            name: TESTS,
            outcome,
            time: begun.elapsed(),
            counts: Some(counts),
        });
    }
    print!("{}", summary(&results, start.elapsed(), counts));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs the workspace's tests, every test binary even after a failure, passing
/// their output on as it comes and counting their results.
fn cargo_test(sh: &Shell, counts: &mut Counts) -> Result<Outcome> {
    let mut child = Command::new("cargo")
        .args(["test", "--workspace", "--no-fail-fast"])
        .current_dir(sh.current_dir())
        .env(QUIET_BUILDS, "1")
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start cargo test")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut ours = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        counts.add_line(&line);
        writeln!(ours, "{line}")?;
        ours.flush()?;
    }
    drop(ours);
    let status = child.wait().context("waiting for cargo test")?;
    Ok(if status.success() {
        Outcome::Passed
    } else if counts.failed > 0 {
        Outcome::Failed(format!("{} failed", counts.failed))
    } else {
        // A build error, or a test binary that crashed before its result line.
        Outcome::Failed(format!("cargo test ended with {status}"))
    })
}

/// The summary: a line per step, then the verdict and the total time, then the
/// tests' total in the plain form `total: N passed, N failed`.
fn summary(results: &[StepResult], elapsed: Duration, counts: Counts) -> String {
    let mut out = String::from("\ncargo xtask test: summary\n");
    let total = results.len();
    for (index, result) in results.iter().enumerate() {
        let (word, why) = match &result.outcome {
            Outcome::Passed => ("passed", ""),
            Outcome::Failed(why) => ("FAILED", why.as_str()),
            Outcome::NotRun => ("not run", ""),
        };
        let time = match result.outcome {
            Outcome::NotRun => String::new(),
            _ => duration(result.time),
        };
        let mut line = format!(
            "  [{}/{total}] {:<35} {word:<7} {time:>10}",
            index + 1,
            result.name
        );
        match result.counts {
            Some(counts) => line.push_str(&format!(
                "  {} passed, {} failed, {} ignored",
                counts.passed, counts.failed, counts.ignored
            )),
            None if !why.is_empty() => line.push_str(&format!("  {why}")),
            None => {}
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let failed_steps = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
        .count();
    let verdict = match failed_steps {
        0 => "every step passed".to_string(),
        1 => "1 step failed".to_string(),
        n => format!("{n} steps failed"),
    };
    out.push_str(&format!("  {verdict}, in {}\n", duration(elapsed)));
    out.push_str(&format!(
        "total: {} passed, {} failed\n",
        counts.passed, counts.failed
    ));
    out
}

/// A duration as a person reads it: `12.3 s`, `5 min 02 s`.
fn duration(time: Duration) -> String {
    let seconds = time.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else {
        let whole = time.as_secs();
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_counted() {
        let mut counts = Counts::default();
        for line in [
            "test result: ok. 93 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 4.23s",
            "running 3 tests",
            "test a_test_named_test_result ... ok",
            "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 8 filtered out; finished in 15.06s",
        ] {
            counts.add_line(line);
        }
        assert_eq!(
            counts,
            Counts {
                passed: 94,
                failed: 1,
                ignored: 2
            }
        );
    }

    #[test]
    fn the_summary_has_a_line_per_step_and_ends_with_the_total() {
        let counts = Counts {
            passed: 800,
            failed: 2,
            ignored: 1,
        };
        let step = |name, outcome, secs, counts| StepResult {
            name,
            outcome,
            time: Duration::from_secs(secs),
            counts,
        };
        let results = [
            step("loader (debug)", Outcome::Passed, 12, None),
            step(TESTS, Outcome::Failed("2 failed".into()), 301, Some(counts)),
        ];
        let text = summary(&results, Duration::from_secs(313), counts);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "cargo xtask test: summary");
        assert!(lines[2].starts_with("  [1/2] loader (debug) "), "{text}");
        assert!(lines[2].ends_with(" passed      12.0 s"), "{text}");
        assert!(lines.iter().all(|l| l.chars().count() <= 100), "{text}");
        assert!(
            lines[3].ends_with("FAILED  5 min 01 s  800 passed, 2 failed, 1 ignored"),
            "{text}"
        );
        assert_eq!(lines[4], "  1 step failed, in 5 min 13 s");
        assert_eq!(lines[5], "total: 800 passed, 2 failed");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn durations_read_as_a_person_reads_them() {
        assert_eq!(duration(Duration::from_millis(12_345)), "12.3 s");
        assert_eq!(duration(Duration::from_secs(302)), "5 min 02 s");
    }
}
