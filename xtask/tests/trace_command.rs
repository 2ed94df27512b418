//! `cargo xtask trace` end to end, through the real xtask binary: a traced boot of the
//! demo app with its reports, `--runs` statistics, and `--baseline` catching a
//! slowdown. The slowdown is injected for real: QEMU's `-icount shift=N` makes every
//! guest instruction take 2^N ns of virtual time, so a larger shift makes every loader
//! stage slower in TSC ticks, deterministically.

use std::path::Path;
use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(xtask::project_root())
        .output()
        .expect("xtask runs")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn trace_boots_the_demo_app_and_writes_every_report() {
    let dir = xtask::project_root().join("target/test-inputs/trace-command");
    std::fs::create_dir_all(&dir).unwrap();
    let (json, chrome, svg, raw) = (
        dir.join("report.json"),
        dir.join("chrome.json"),
        dir.join("boot.svg"),
        dir.join("boot.bin"),
    );
    let output = xtask(&[
        "trace",
        "--color=never",
        "--json",
        json.to_str().unwrap(),
        "--chrome-trace",
        chrome.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--save",
        raw.to_str().unwrap(),
        "--",
        "hello",
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Live: the app's own text and the loader's events; then the reports.
    assert!(stdout.contains("Hello from hello-dyn"), "{shown}");
    assert!(stdout.contains("tk: args=hello"), "{shown}");
    assert!(stdout.contains("SegmentLoaded"), "{shown}");
    assert!(stdout.contains("Timeline"), "{shown}");
    assert!(stdout.contains("Memory map"), "{shown}");
    assert!(stdout.contains("boot: "), "{shown}");
    for file in [&json, &chrome] {
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert!(value.is_object(), "{}", file.display());
    }
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    assert!(
        std::fs::read(&raw)
            .unwrap()
            .windows(2)
            .any(|w| w == [0xFF, 0x00]),
        "raw stream kept"
    );
}

#[test]
fn trace_refuses_a_non_hermit_file_before_qemu_starts() {
    let output = xtask(&["trace", "Cargo.toml"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not a Hermit application"),
        "{}",
        text(&output)
    );
}

fn profile(runs: &str, shift: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "trace",
        "--release",
        "--runs",
        runs,
        "--append=-freq 2800",
        "--qemu-arg=-icount",
        shift,
    ];
    args.extend_from_slice(extra);
    xtask(&args)
}

#[test]
fn runs_print_statistics_and_a_baseline_catches_a_slowdown() {
    let dir = xtask::project_root().join("target/test-inputs/trace-profile");
    std::fs::create_dir_all(&dir).unwrap();
    let baseline = dir.join("baseline.json");
    let baseline_arg = baseline.to_str().unwrap();

    let output = profile("3", "--qemu-arg=shift=1", &["--json", baseline_arg]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for column in [
        "stage",
        "min",
        "median",
        "max",
        "spread",
        "loader total",
        "page tables",
    ] {
        assert!(stdout.contains(column), "{column} missing:\n{shown}");
    }
    assert!(Path::new(&baseline).exists());

    // The same machine: within the threshold.
    let output = profile("2", "--qemu-arg=shift=1", &["--baseline", baseline_arg]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // Every instruction 8 times slower: every stage regresses.
    let output = profile(
        "2",
        "--qemu-arg=shift=4",
        &["--baseline", baseline_arg, "--max-regression", "10%"],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(3), "{shown}");
    assert!(shown.contains("REGRESSION"), "{shown}");
    assert!(shown.contains("slower than the baseline"), "{shown}");
}

#[test]
fn trace_explains_how_to_install_a_missing_qemu() {
    let output = xtask(&["trace", "--qemu", "/nonexistent/qemu-system-x86_64"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/qemu-system-x86_64 not found"),
        "{shown}"
    );
    assert!(
        stderr.contains("apt-get install qemu-system-x86"),
        "{shown}"
    );
}
