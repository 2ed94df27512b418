//! The loader's instruction budget, checked on every test run: a slower loader fails
//! the build here, never in a timed test.
//!
//! Under `-icount shift=0,sleep=off` every guest instruction takes one nanosecond of
//! virtual time and the TSC counts them, so each stage's ticks are the number of
//! instructions the release loader ran for it: the same on every host, loaded or
//! not. `xtask/tests/budget.json` holds the counts measured when the loader last
//! changed on purpose, with the compiler `rust-toolchain.toml` pins (another compiler
//! alone moves them); a stage may exceed its count by [`SLACK_PERCENT`] at most.
//! After a deliberate change, rewrite the file and review the diff:
//!
//! ```text
//! UPDATE_BUDGET=1 cargo test -p xtask --test budget
//! ```
//!
//! The update prints every count it raises, with its size, and the test then checks
//! the file it wrote like any other run; any other value of `UPDATE_BUDGET` is an
//! error.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use common::{artifacts, boot, BOOT_TIMEOUT};
use trace_decoder::decode::BootRecord;
use trace_decoder::decode::{decode_recording, TraceTable};
use trace_decoder::report::{Report, Stage};
use xshell::Shell;
use xtask::build::{self, LoaderArtifacts, Profile, TraceLevel};
use xtask::qemu::{Machine, QemuConfig};

/// How much a stage may grow before it counts as a regression. The counts repeat
/// exactly; the slack only spares small, deliberate changes a budget update.
const SLACK_PERCENT: u64 = 2;
/// A stage this small may double without notice (a few instructions moved around).
const FLOOR: u64 = 2_000;

fn budget_file() -> PathBuf {
    xtask::project_root().join("xtask/tests/budget.json")
}

/// The release loader: what users time and what the budget is about.
fn release_loader() -> &'static LoaderArtifacts {
    static LOADER: OnceLock<LoaderArtifacts> = OnceLock::new();
    LOADER.get_or_init(|| {
        let sh = Shell::new().expect("a shell");
        sh.change_dir(xtask::project_root());
        build::build_loader(&sh, Profile::Release, TraceLevel::Info)
            .expect("the release loader builds")
    })
}

/// Every stage's instructions (sub-stages as `stage / sub-stage`), the trace's own
/// output and the whole loader.
fn instructions(app: &std::path::Path, machine: Machine) -> BTreeMap<String, u64> {
    let loader = release_loader();
    // Paths relative to the project root: the loader reads its command line (the
    // loader's path first) and the module's string (the application's path), so
    // absolute paths would make the counts depend on where the checkout lies.
    let root = xtask::project_root();
    let relative = |path: &std::path::Path| path.strip_prefix(&root).unwrap_or(path).to_path_buf();
    let config = QemuConfig {
        machine,
        deterministic: true,
        working_dir: Some(root.clone()),
        // A given frequency: the budget is about work, not about how long the loader
        // polls its reference counter when there was too little work to measure.
        append: Some("-freq 1000 -- budget".to_string()),
        ..QemuConfig::new(relative(&loader.image), relative(app))
    };
    let run = boot(&config);
    assert_eq!(run.status, Some(3), "{}", run.serial_text());
    let table = TraceTable::from_elf(&std::fs::read(&loader.elf).unwrap()).unwrap();
    let decoded = decode_recording(&table, &run.serial).unwrap();
    let report = Report::build(&BootRecord {
        events: decoded.events,
        trace_bytes: decoded.trace_bytes,
        ..BootRecord::default()
    });
    let mut counts = BTreeMap::new();
    fn add(counts: &mut BTreeMap<String, u64>, stage: &Stage, parent: Option<&str>) {
        let name = match parent {
            Some(parent) if !stage.name.starts_with(parent) => format!("{parent} / {}", stage.name),
            _ => stage.name.clone(),
        };
        counts.insert(name.clone(), stage.duration_ticks);
        for child in &stage.children {
            add(counts, child, Some(&name));
        }
    }
    for stage in &report.timeline.stages {
        add(&mut counts, stage, None);
    }
    let timeline = &report.timeline;
    counts.insert("other".into(), timeline.other_ticks);
    counts.insert(
        "trace output".into(),
        timeline.trace_output_ticks.expect("HandOver says"),
    );
    counts.insert("loader total".into(), timeline.total_ticks);
    counts
}

#[test]
fn the_loader_stays_within_its_instruction_budget() {
    let _ = BOOT_TIMEOUT;
    // A wrong UPDATE_BUDGET fails before the boots.
    let update = update_requested();
    let kernels = &artifacts().kernels;
    let cases = [
        ("hello-dyn on pc", kernels.hello_dyn.clone(), Machine::Pc),
        ("big-dyn on pc", kernels.big_dyn.clone(), Machine::Pc),
    ];
    let mut measured = Counts::new();
    for (name, app, machine) in cases {
        // Deterministic means deterministic: two boots count the same.
        let first = instructions(&app, machine);
        assert_eq!(first, instructions(&app, machine), "{name}: counts differ");
        measured.insert(name.to_string(), first);
    }

    if update {
        let before = read_budget().unwrap_or_default();
        for line in increases(&before, &measured) {
            // Straight to the terminal: cargo test captures `eprintln!` of a passing
            // test, and a budget raised without notice is what this guards against.
            let _ = writeln!(std::io::stderr(), "budget raised: {line}");
        }
        let json = serde_json::to_string_pretty(&measured).unwrap();
        std::fs::write(budget_file(), json + "\n").unwrap();
    }
    // Checked after an update too: the file just written must hold what it should.
    let budget = read_budget().expect("xtask/tests/budget.json is a budget");
    let over = over_budget(&budget, &measured);
    assert!(
        over.is_empty(),
        "the loader got slower:\n  {}\nIf this is deliberate, run UPDATE_BUDGET=1 cargo test -p xtask --test budget and commit xtask/tests/budget.json.",
        over.join("\n  ")
    );
}

type Counts = BTreeMap<String, BTreeMap<String, u64>>;

/// Whether to rewrite the budget: `UPDATE_BUDGET=1`. Any other value (`0`, `yes`,
/// empty) is refused rather than read either way.
fn update_requested() -> bool {
    match std::env::var_os("UPDATE_BUDGET") {
        None => false,
        Some(value) if value == "1" => true,
        Some(value) => panic!(
            "UPDATE_BUDGET={value:?}: set UPDATE_BUDGET=1 to rewrite xtask/tests/budget.json, or unset it"
        ),
    }
}

fn read_budget() -> Result<Counts, String> {
    let text = std::fs::read_to_string(budget_file()).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Each count of `measured` above its budget (the slack included), one line each.
fn over_budget(budget: &Counts, measured: &Counts) -> Vec<String> {
    let mut over = Vec::new();
    for (case, stages) in measured {
        let Some(allowed) = budget.get(case) else {
            over.push(format!("{case}: no budget (UPDATE_BUDGET=1 writes one)"));
            continue;
        };
        for (stage, &count) in stages {
            let Some(&limit) = allowed.get(stage) else {
                over.push(format!("{case}: {stage}: {count} instructions, no budget"));
                continue;
            };
            let limit = (limit + limit * SLACK_PERCENT / 100).max(FLOOR);
            if count > limit {
                over.push(format!(
                    "{case}: {stage}: {count} instructions, budget {limit} (+{SLACK_PERCENT} % included)"
                ));
            }
        }
    }
    over
}

/// Each count of `measured` above the one in `before` (or new), with its size: what
/// an update of the budget lets through.
fn increases(before: &Counts, measured: &Counts) -> Vec<String> {
    let mut lines = Vec::new();
    for (case, stages) in measured {
        for (stage, &count) in stages {
            match before.get(case).and_then(|b| b.get(stage)) {
                Some(&old) if count > old => lines.push(format!(
                    "{case}: {stage}: {old} -> {count} instructions (+{}, +{:.1} %)",
                    count - old,
                    (count - old) as f64 * 100.0 / old.max(1) as f64
                )),
                Some(_) => {}
                None => lines.push(format!("{case}: {stage}: new, {count} instructions")),
            }
        }
    }
    lines
}

#[test]
fn increases_are_named_with_their_size() {
    let counts = |pairs: &[(&str, u64)]| -> Counts {
        let stages = pairs.iter().map(|&(s, n)| (s.to_string(), n)).collect();
        BTreeMap::from([("case".to_string(), stages)])
    };
    let before = counts(&[("copy", 1000), ("zero", 500)]);
    let after = counts(&[("copy", 1100), ("zero", 400), ("new stage", 7)]);
    assert_eq!(
        increases(&before, &after),
        [
            "case: copy: 1000 -> 1100 instructions (+100, +10.0 %)",
            "case: new stage: new, 7 instructions"
        ]
    );
    // The slack and the floor: 2 % over a count passes, more does not.
    let budget = counts(&[("copy", 100_000), ("zero", 500)]);
    assert!(over_budget(&budget, &counts(&[("copy", 102_000), ("zero", 2_000)])).is_empty());
    assert_eq!(
        over_budget(&budget, &counts(&[("copy", 102_001), ("zero", 2_001)])),
        [
            "case: copy: 102001 instructions, budget 102000 (+2 % included)",
            "case: zero: 2001 instructions, budget 2000 (+2 % included)"
        ]
    );
}
