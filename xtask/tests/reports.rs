//! What the reports say, checked on real boots of the test kernels through the real
//! `cargo xtask trace`, and on the streams it saved through `rusty-trace`: the
//! application's first line for each kernel generation (after a log shaped like a
//! real Hermit kernel's), the loader total as one number in every output, a crashed
//! boot's SVG, and a replay that ends as the live run did.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::shown;
use serde_json::Value;
use trace_decoder::report::format::human_us;

/// One traced boot's outputs.
struct Traced {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    shown: String,
    json: Value,
    dir: PathBuf,
}

impl Traced {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// `cargo xtask trace` of the test kernel `kernel` with every output written to a
/// directory of its own (`report.json`, `chrome.json`, `boot.svg`, `boot.bin` and
/// its `boot.status`).
fn trace(name: &str, kernel: &str, extra: &[&str]) -> Traced {
    let dir = xtask::project_root()
        .join("target/test-inputs/reports")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = |file: &str| dir.join(file).to_str().unwrap().to_string();
    let kernel = xtask::build::test_kernel_dir(xtask::build::Profile::Debug).join(kernel);
    let mut args = vec![
        "trace".to_string(),
        "--color=never".to_string(),
        "--json".to_string(),
        path("report.json"),
        "--chrome-trace".to_string(),
        path("chrome.json"),
        "--svg".to_string(),
        path("boot.svg"),
        "--save".to_string(),
        path("boot.bin"),
        kernel.to_str().unwrap().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .current_dir(xtask::project_root())
        .output()
        .expect("xtask runs");
    let shown = shown(&output);
    let json = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON report ({e})\n{shown}"));
    Traced {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        shown,
        json,
        dir,
    }
}

/// `rusty-trace --format json` replaying a saved stream (with its `.status` file
/// beside it): its exit status, its JSON report and its stderr.
fn replay(raw: &Path) -> (Option<i32>, Value, String) {
    let loader = xtask::build::loader_artifacts(
        xtask::build::Profile::Debug,
        xtask::build::TraceLevel::Info,
    );
    let output = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "trace-decoder",
            "--bin",
            "rusty-trace",
            "--",
        ])
        .args(["--elf", loader.elf.to_str().unwrap()])
        .args(["--format", "json", "--quiet"])
        .arg(raw)
        .current_dir(xtask::project_root())
        .output()
        .expect("rusty-trace runs");
    let shown = shown(&output);
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e})\n{shown}"));
    (
        output.status.code(),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The line of the milestone `name` in a JSON report.
fn milestone<'a>(report: &'a Value, name: &str) -> Option<&'a str> {
    report["kernel_text"]["milestones"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)?["line"]
        .as_str()
}

#[test]
fn each_generations_first_application_line_follows_a_real_shaped_kernel_log() {
    for (kernel, machine, greeting) in [
        (
            "hello-dyn",
            "pc",
            "Hello from hello-dyn, a Hermit-ABI test kernel!",
        ),
        (
            "legacy-dyn",
            "microvm",
            "Hello from legacy-dyn, a Hermit-ABI test kernel of the older generation!",
        ),
    ] {
        let extra: &[&str] = if machine == "microvm" {
            &["--microvm"]
        } else {
            &[]
        };
        let run = trace(&format!("milestones-{kernel}"), kernel, extra);
        assert_eq!(run.status, Some(0), "{}", run.shown);
        // The log came first: the kernel's records (coloured, timed, multi-line)
        // passed through, and none of them was taken for the application's.
        assert!(run.stdout.contains("] Welcome to Hermit "), "{}", run.shown);
        assert!(run.stdout.contains("    TlsInfo {\n"), "{}", run.shown);
        let (replayed, recorded, _) = replay(&run.file("boot.bin"));
        assert_eq!(replayed, Some(0));
        for (how, report) in [("live", &run.json), ("recorded", &recorded)] {
            assert_eq!(
                milestone(report, "first line"),
                Some(format!("tk: kernel={kernel}").as_str()),
                "{kernel} {how}: {:#}",
                report["kernel_text"]
            );
            assert_eq!(
                milestone(report, "first application line"),
                Some(greeting),
                "{kernel} {how}: {:#}",
                report["kernel_text"]
            );
        }
    }
}

#[test]
fn the_loader_total_is_one_number_in_text_json_svg_and_chrome_trace() {
    let run = trace("loader-total", "hello-dyn", &[]);
    assert_eq!(run.status, Some(0), "{}", run.shown);
    let total_us = run.json["timeline"]["total_us"].as_f64().expect("a total");
    let work_us = run.json["timeline"]["loader_us"].as_f64().unwrap();
    let output_us = run.json["timeline"]["trace_output_us"].as_f64().unwrap();
    assert!((work_us + output_us - total_us).abs() < 0.01, "{total_us}");
    // The text report: its row, three decimals of milliseconds.
    let row = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("loader total"))
        .unwrap_or_else(|| panic!("no loader total row\n{}", run.shown));
    assert!(
        row.ends_with(&format!("{:.3} ms", total_us / 1000.0)),
        "{row} vs {total_us} µs"
    );
    // The SVG: the summary in its header, and the chart's row.
    let svg = std::fs::read_to_string(run.file("boot.svg")).unwrap();
    let human = human_us(total_us);
    assert!(svg.contains(&format!(" {human} loader")), "{human}\n{svg}");
    let chart_row = svg
        .split_once(">loader total</text>\n")
        .and_then(|(_, rest)| rest.lines().next())
        .unwrap_or_else(|| panic!("no loader total row in the chart\n{svg}"));
    assert!(
        chart_row.ends_with(&format!(">{human}</text>")),
        "{chart_row}"
    );
    assert!(
        svg.contains(">trace output ("),
        "the chart's trace output row"
    );
    // The Chrome trace: the span, and its metadata.
    let chrome: Value =
        serde_json::from_slice(&std::fs::read(run.file("chrome.json")).unwrap()).unwrap();
    let span = chrome["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "loader total")
        .expect("a loader total span");
    assert!((span["dur"].as_f64().unwrap() - total_us).abs() < 0.001);
    assert_eq!(chrome["metadata"]["loader_total_us"], total_us);
}

#[test]
fn a_crashed_boots_svg_shows_the_crash_and_its_replay_ends_as_the_live_run() {
    let run = trace("crash", "crashing", &["--", "page-fault"]);
    let status = 129 + 2 * 14;
    assert_eq!(run.status, Some(status), "{}", run.shown);
    let svg = std::fs::read_to_string(run.file("boot.svg")).unwrap();
    for needle in [
        ">Crash</text>",
        ">RIP</text>",
        "test_kernels::arch::faults::read_unmapped",
        ">CR2</text>",
        "unmapped-above-kernel",
        ">stack</text>",
        "test_kernels::crash::run::run",
        "blue tick: a line&apos;s arrival",
    ] {
        assert!(svg.contains(needle), "{needle:?} in\n{svg}");
    }
    // The replay ends with the live run's status and line.
    let line = |stderr: &str| -> String {
        stderr
            .lines()
            .find_map(|l| {
                l.strip_prefix("error: ")
                    .or_else(|| l.strip_prefix("rusty-trace: error: "))
                    .map(str::to_string)
            })
            .unwrap_or_default()
    };
    let (replayed, _, stderr) = replay(&run.file("boot.bin"));
    assert_eq!(replayed, Some(status), "{stderr}");
    assert_eq!(line(&stderr), line(&run.stderr), "{stderr}\n{}", run.shown);

    // A hang stopped at the timeout: no QEMU status, kept as `timeout 3`.
    let hang = trace("hang", "crashing", &["--timeout", "3", "--", "hang"]);
    assert_eq!(hang.status, Some(124), "{}", hang.shown);
    let beside = std::fs::read_to_string(hang.file("boot.status")).unwrap();
    assert!(beside.starts_with("timeout 3\n"), "{beside}");
    let (replayed, _, stderr) = replay(&hang.file("boot.bin"));
    assert_eq!(replayed, Some(124), "{stderr}");
    assert_eq!(
        line(&stderr),
        line(&hang.stderr),
        "{stderr}\n{}",
        hang.shown
    );
}
