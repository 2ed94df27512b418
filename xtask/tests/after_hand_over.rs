//! Failures after the hand-over, each committed on purpose by the `crashing` test
//! kernel and checked end to end on both machine types: through `cargo xtask trace`
//! (the real xtask binary, QEMU asked through QMP) and through `rusty-trace --app`
//! on the stream it saved. The report must name the function that failed (the test
//! kernel has symbols and DWARF), classify the faulting address, and end with the
//! documented exit status (docs/exit-codes.md).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::shown;
use serde_json::Value;

/// Where the `crashing` kernel is: `cargo xtask test` builds it.
fn crashing() -> PathBuf {
    xtask::build::test_kernel_dir(xtask::build::Profile::Debug).join("crashing")
}

/// One boot of the crashing kernel in `mode`: the exit status, the JSON report,
/// the text output, and the saved raw stream.
struct Run {
    status: Option<i32>,
    report: Value,
    shown: String,
    raw: PathBuf,
}

fn trace(mode: &str, microvm: bool, extra: &[&str]) -> Run {
    let machine = if microvm { "microvm" } else { "pc" };
    let dir = xtask::project_root()
        .join("target/test-inputs/after-hand-over")
        .join(format!("{mode}-{machine}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, raw) = (dir.join("report.json"), dir.join("boot.bin"));
    let _ = std::fs::remove_file(&json);
    let kernel = crashing();
    let mut args = vec![
        "trace",
        "--color=never",
        "--json",
        json.to_str().unwrap(),
        "--save",
        raw.to_str().unwrap(),
        kernel.to_str().unwrap(),
    ];
    if microvm {
        args.push("--microvm");
    }
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", mode]);
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .current_dir(xtask::project_root())
        .output()
        .expect("xtask runs");
    let shown = shown(&output);
    let report = serde_json::from_slice(&std::fs::read(&json).unwrap_or_default())
        .unwrap_or_else(|e| panic!("no JSON report ({e})\n{shown}"));
    Run {
        status: output.status.code(),
        report,
        shown,
        raw,
    }
}

/// `rusty-trace --app` on a saved stream, given QEMU's `status`: the JSON report.
/// The replay ends with the exit status `cargo xtask trace` gives that ending.
fn rusty_trace(raw: &Path, status: i32) -> (Value, String) {
    let loader = xtask::build::loader_artifacts(
        xtask::build::Profile::Debug,
        xtask::build::TraceLevel::Info,
    );
    // The real command line, built as any user would run it.
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
        .args(["--app", crashing().to_str().unwrap()])
        .args([
            "--status",
            &status.to_string(),
            "--format",
            "json",
            "--quiet",
        ])
        .arg(raw)
        .current_dir(xtask::project_root())
        .output()
        .expect("rusty-trace runs");
    let shown = shown(&output);
    let replayed = match status {
        3 => 0,
        0 => 4,
        other => other,
    };
    assert_eq!(output.status.code(), Some(replayed), "{shown}");
    (serde_json::from_slice(&output.stdout).unwrap(), shown)
}

/// A CPU exception the loader's handler catches: status, the function at RIP, the
/// faulting address's class; the same through rusty-trace --app.
fn exception(mode: &str, vector: i32, function: &str, cr2_class: Option<&str>) {
    for microvm in [false, true] {
        let run = trace(mode, microvm, &[]);
        let status = 129 + 2 * vector;
        assert_eq!(run.status, Some(status), "{}", run.shown);
        for (report, shown) in [
            (run.report.clone(), run.shown.clone()),
            rusty_trace(&run.raw, status),
        ] {
            let crash = &report["crash"];
            assert_eq!(
                crash["rip"]["function"].as_str(),
                Some(function),
                "{mode}: {crash:#}\n{shown}"
            );
            assert!(
                crash["rip"]["line"]
                    .as_str()
                    .is_some_and(|l| l.contains(".rs:")),
                "{mode}: file:line from DWARF: {crash:#}"
            );
            assert_eq!(
                crash["cr2"]["class"].as_str(),
                cr2_class,
                "{mode}: {crash:#}"
            );
            assert_eq!(report["outcome"]["kind"], "cpu-exception");
        }
        assert!(run.shown.contains(function), "{}", run.shown);
    }
}

#[test]
fn a_page_fault_above_the_kernel_is_named_and_classified() {
    exception(
        "page-fault",
        14,
        "test_kernels::arch::faults::read_unmapped",
        Some("unmapped-above-kernel"),
    );
}

#[test]
fn a_null_pointer_is_classified_as_the_null_page() {
    exception(
        "null-pointer",
        14,
        "test_kernels::arch::faults::read_unmapped",
        Some("null-page"),
    );
}

#[test]
fn a_fault_on_the_recursive_slot_is_named() {
    exception(
        "recursive-slot",
        14,
        "test_kernels::arch::faults::walk_without_recursive_entry",
        Some("recursive-slot"),
    );
}

#[test]
fn an_invalid_opcode_is_named() {
    exception(
        "invalid-opcode",
        6,
        "test_kernels::arch::faults::invalid_opcode",
        None,
    );
}

#[test]
fn a_general_protection_fault_is_named() {
    exception(
        "general-protection",
        13,
        "test_kernels::arch::faults::read_non_canonical",
        None,
    );
}

#[test]
fn a_stack_overflow_hits_the_guard_page() {
    exception(
        "stack-overflow",
        14,
        "test_kernels::crash::run::overflow_stack",
        Some("stack-overflow"),
    );
}

#[test]
fn the_stack_dump_names_the_caller() {
    // The page fault's function is called from `run`: its return address is on the
    // stack, read through the loader's own tables.
    let run = trace("page-fault", false, &[]);
    let stack = run.report["crash"]["stack"].as_array().unwrap();
    assert!(!stack.is_empty() && stack.len() <= 16, "{}", run.shown);
    assert!(
        stack
            .iter()
            .any(|w| w["code"]["function"] == "test_kernels::crash::run::run"),
        "{:#}",
        run.report["crash"]
    );
}

#[test]
fn a_triple_fault_is_reported_from_qemu() {
    for microvm in [false, true] {
        let run = trace("triple-fault", microvm, &[]);
        // The table's status for a reset without an exit code (docs/exit-codes.md).
        assert_eq!(run.status, Some(4), "{}", run.shown);
        let stop = &run.report["stop"];
        assert_eq!(stop["kind"], "triple-fault", "{}", run.shown);
        assert_eq!(
            stop["rip"]["function"], "test_kernels::arch::faults::triple_fault",
            "{stop:#}"
        );
        assert_eq!(stop["registers"]["idt_limit"], "0x0", "{stop:#}");
        assert!(stop["after_hand_over_us"].as_f64().is_some(), "{stop:#}");
        assert_eq!(run.report["outcome"]["kind"], "triple-fault");
        assert!(
            run.shown.contains("QEMU: triple fault") && run.shown.contains("after the hand-over"),
            "{}",
            run.shown
        );
        // rusty-trace, which reads the stream and not QEMU, says what the status
        // says and no more.
        let (report, _) = rusty_trace(&run.raw, 0);
        assert_eq!(report["outcome"]["kind"], "handed-over");
        assert!(report["stop"].is_null());
    }
}

#[test]
fn a_hang_says_where_the_cpu_was() {
    for microvm in [false, true] {
        // The timeout only has to leave the boot time to print its last line,
        // also on a busy host; what is checked is where the CPU was, not when.
        let run = trace("hang", microvm, &["--timeout", "10"]);
        assert_eq!(run.status, Some(124), "{}", run.shown);
        let stop = &run.report["stop"];
        assert_eq!(stop["kind"], "hang", "{}", run.shown);
        assert_eq!(
            stop["rip"]["function"], "test_kernels::arch::faults::halt_forever",
            "{stop:#}"
        );
        assert_eq!(stop["last_line"], "tk: waiting for ever", "{stop:#}");
        assert_eq!(stop["registers"]["halted"], true, "{stop:#}");
        // Host times, in their order (a busy host moves each of them by any amount,
        // so none is compared with a number): the stop came after the last line.
        let after = stop["after_hand_over_us"].as_f64().unwrap();
        let last_line = milestone(&run.report, "last line");
        assert!(
            last_line <= after,
            "stopped at {after} µs, before the last line ({last_line} µs)"
        );
    }
}

/// A milestone's arrival after the hand-over, in µs.
fn milestone(report: &Value, name: &str) -> f64 {
    let text = &report["kernel_text"];
    text["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["after_hand_over_us"].as_f64())
        .unwrap_or_else(|| panic!("no {name:?} milestone with a time: {text:#}"))
}

#[test]
fn a_gap_between_two_lines_is_found_with_its_lines() {
    for microvm in [false, true] {
        let run = trace("gap", microvm, &[]);
        assert_eq!(run.status, Some(0), "{}", run.shown);
        let text = &run.report["kernel_text"];
        assert_eq!(text["live"], true, "{text:#}");
        // The kernel's five lines make four gaps, all kept: the one it made is
        // found between the right lines. Its length is the host's arrival times,
        // which a busy host moves either way by any amount (the kernel's 50 ms of
        // TSC may arrive as 10 ms or as a second): it is only checked to lie
        // within the stream, and the gaps to come longest first.
        let gaps = text["gaps"].as_array().unwrap();
        let gap = gaps
            .iter()
            .find(|g| g["before"] == "tk: waiting 50 ms")
            .unwrap_or_else(|| panic!("no gap after the waiting line: {text:#}"));
        assert!(
            gap["after"].as_str().unwrap().starts_with("tk: waited "),
            "{text:#}"
        );
        let lengths: Vec<f64> = gaps
            .iter()
            .map(|g| g["length_us"].as_f64().unwrap())
            .collect();
        assert!(lengths.windows(2).all(|w| w[0] >= w[1]), "{lengths:?}");
        let (length, at) = (
            gap["length_us"].as_f64().unwrap(),
            gap["at_us"].as_f64().unwrap(),
        );
        let end = milestone(&run.report, "end of the stream");
        assert!(
            length > 0.0 && at >= 0.0 && at + length <= end + 0.001,
            "a gap of {length} µs at {at} µs, the stream ended at {end} µs"
        );
        let milestones: Vec<&str> = text["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(milestones.contains(&"first application line"), "{text:#}");
        // After a kernel log shaped like Hermit 0.6's: its records, a record of
        // several lines, blank records, banners, a C runtime line.
        let first_application = |text: &Value| -> String {
            text["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == "first application line")
                .map(|m| m["line"].as_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            first_application(text),
            "Hello from the application after the gap"
        );
        // A recording has no arrival times, and the report says so.
        let (report, _) = rusty_trace(&run.raw, 3);
        assert_eq!(
            first_application(&report["kernel_text"]),
            "Hello from the application after the gap"
        );
        assert_eq!(report["kernel_text"]["live"], false);
        assert!(report["kernel_text"]["gaps"].as_array().unwrap().is_empty());
        assert!(report["kernel_text"]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("no arrival times")));
    }
}
