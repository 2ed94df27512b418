//! `cargo xtask run` and `trace` as a user runs them, through the real xtask binary:
//! every way a boot ends gives the status of the one table
//! (`trace_decoder::report::ending`) and one line saying why; mistakes in the command line
//! are found before anything boots. Endings a real boot cannot be made to show on
//! demand (a reset, QEMU's own failure, a signal) come from a stand-in for QEMU
//! (`tests/fake-qemu/`).

mod common;

use std::process::Output;

use common::{shown, xtask};
use trace_decoder::report::ending::{help_table, EndingKind};

/// The `error: ` lines xtask wrote (QEMU's and cargo's own lines left aside).
fn error_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string)
        .collect()
}

/// Checks the status, that there is exactly one `error: ` line, that it says
/// `needle`, and that nothing panicked.
fn assert_ending(output: &Output, status: i32, needle: &str) {
    let all = shown(output);
    assert_eq!(output.status.code(), Some(status), "{all}");
    let errors = error_lines(output);
    assert_eq!(errors.len(), 1, "one line saying why: {all}");
    assert!(errors[0].contains(needle), "{needle:?} in {all}");
    assert!(
        errors[0].ends_with(&format!("exit status {status}")) || status == 2,
        "{all}"
    );
    assert!(
        !all.contains("panicked") && !all.contains("loader bug"),
        "{all}"
    );
}

fn fake_qemu() -> String {
    xtask::project_root()
        .join("xtask/tests/fake-qemu/qemu-system-x86_64")
        .display()
        .to_string()
}

#[test]
fn run_exits_0_when_the_app_succeeds_and_passes_it_the_words_after_dashes() {
    let output = xtask(&["run", "--", "hello", "world"]);
    let all = shown(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("tk: args=hello world"), "{all}");
    assert!(stdout.contains("tk: ok"), "{all}");
    // The app's text only: no binary trace frame.
    assert!(
        !output.stdout.windows(2).any(|w| w == [0xFF, 0x00]),
        "{all}"
    );
    assert!(error_lines(&output).is_empty(), "{all}");
}

#[test]
fn mistakes_are_found_before_anything_boots() {
    let fake = fake_qemu();
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    // The stand-in hangs when it is started: a check that let the boot happen would
    // end with 124 after the timeout, not 2.
    let boot = ["--qemu", &fake, "--append", "hang", "--timeout", "5"];
    let cases: [(&[&str], &str); 6] = [
        (
            &["run", "/nonexistent/app.elf"],
            "error: cannot read the application /nonexistent/app.elf: ",
        ),
        (
            &["trace", "/nonexistent/app.elf"],
            "error: cannot read the application /nonexistent/app.elf: ",
        ),
        (
            &["run", &dir_arg],
            "is a directory: give the Hermit application's ELF file",
        ),
        (
            &["trace", "--json", "/nonexistent/dir/x.json"],
            "error: --json /nonexistent/dir/x.json: the directory /nonexistent/dir does not exist",
        ),
        (
            &["trace", "--svg", &dir_arg],
            "it is a directory, not a file",
        ),
        (
            &["trace", "--baseline", "/missing.json"],
            "error: cannot read the baseline /missing.json",
        ),
    ];
    for (args, needle) in cases {
        let mut args = args.to_vec();
        args.extend(boot);
        let output = xtask(&args);
        assert_ending(&output, 2, needle);
        assert!(output.stdout.is_empty(), "{}", shown(&output));
    }
}

/// `bench` checks the loader it is to compare with before it builds or boots.
#[test]
fn bench_refuses_a_missing_baseline_before_building() {
    let output = xtask(&["bench", "--baseline-loader", "/nonexistent/loader"]);
    assert_ending(
        &output,
        2,
        "--baseline-loader /nonexistent/loader: no such file",
    );
    let output = xtask(&["bench", "--baseline-rev", "no-such-revision"]);
    assert_ending(
        &output,
        2,
        "--baseline-rev no-such-revision: not a commit of this repository",
    );
    let output = xtask(&["bench", "--deterministic"]);
    assert_ending(
        &output,
        2,
        "--deterministic compares with another loader: give --baseline-rev REV or \
         --baseline-loader IMAGE",
    );
    let output = xtask(&["bench", "--boot", "pvh"]);
    assert_ending(
        &output,
        2,
        "--boot chooses the entry for the comparison with another loader",
    );
    // Any file will do as an image here; what it lacks is the ELF beside it.
    let output = xtask(&[
        "bench",
        "--deterministic",
        "--baseline-loader",
        "Cargo.toml",
    ]);
    assert_ending(
        &output,
        2,
        "--deterministic reads each loader's own trace: Cargo.toml has no ELF beside it \
         (Cargo.toml.elf); compare with a traced rusty-loader build, or without \
         --deterministic",
    );
}

#[test]
fn a_bad_application_is_booted_and_the_loader_says_why() {
    let output = xtask(&["trace", "--color=never", "Cargo.toml"]);
    assert_ending(
        &output,
        35,
        "error: the loader refused to boot (not-elf): the module is not an ELF file (starts with",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The loader's own diagnosis: its event, its line and the report.
    assert!(
        stdout.contains("] Refused code=17 name=not-elf"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rusty-loader: error: the module is not an ELF file"),
        "{stdout}"
    );
    assert!(stdout.contains("Outcome    refused (not-elf)"), "{stdout}");
    let output = xtask(&["run", "Cargo.toml"]);
    assert_ending(&output, 35, "the loader refused to boot (not-elf)");
}

#[test]
fn endings_without_an_exit_code_have_their_own_statuses() {
    let fake = fake_qemu();
    let boot = |command: &str, mode: &str| xtask(&[command, "--qemu", &fake, "--append", mode]);
    for command in ["run", "trace"] {
        assert_ending(
            &boot(command, "reset"),
            4,
            "QEMU ended without an exit code: the guest reset (a triple fault) or powered off",
        );
        assert_ending(
            &boot(command, "qemu-error"),
            125,
            "error: QEMU failed: qemu-system-x86_64: could not load kernel 'rusty-loader': No such file or directory",
        );
        assert_ending(&boot(command, "signal"), 125, "QEMU was ended by a signal");
    }
    // A boot of several that does not succeed ends them with its own status.
    let output = xtask(&["trace", "--runs", "2", "--qemu", &fake, "--append", "reset"]);
    assert_ending(&output, 4, "boot 1 of 2: QEMU ended without an exit code");
}

#[test]
fn tiny_memory_ends_with_a_documented_status_and_one_line() {
    for profile in [None, Some("--release")] {
        for memory in ["1K", "1M", "2M", "3M", "5M", "7M"] {
            let mut args = vec!["run", "-m", memory, "--timeout", "30"];
            args.extend(profile);
            let output = xtask(&args);
            let all = shown(&output);
            match output.status.code() {
                // Too small to hold the loader itself: refused before the boot.
                Some(2) => assert_ending(&output, 2, &format!("error: -m {memory} is too small")),
                // The loader's own refusal, with its line on the serial port.
                Some(57) => {
                    assert_ending(
                        &output,
                        57,
                        "the loader refused to boot (not-enough-memory)",
                    );
                    assert!(
                        String::from_utf8_lossy(&output.stdout)
                            .contains("rusty-loader: error: not enough RAM: "),
                        "{all}"
                    );
                }
                _ => panic!("-m {memory} {profile:?}: {all}"),
            }
        }
    }
    let output = xtask(&["trace", "-m", "1K"]);
    assert_ending(&output, 2, "error: -m 1K is too small");
}

#[test]
fn both_help_texts_list_the_exit_statuses() {
    let table = help_table();
    for command in ["run", "trace"] {
        let output = xtask(&[command, "--help"]);
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains(&table), "{command} --help:\n{help}");
        assert!(
            help.contains(&format!("Usage: cargo xtask {command} ")),
            "{help}"
        );
    }
    // The table has a row for every kind of ending.
    assert!(EndingKind::ALL
        .iter()
        .all(|kind| table.contains(kind.meaning().split(' ').next().unwrap())));
    let version = xtask(&["-V"]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("cargo xtask "));
    let usage = xtask(&["--help"]);
    assert!(String::from_utf8_lossy(&usage.stdout).contains("Usage: cargo xtask <COMMAND>"));
}

/// The documented table (docs/exit-codes.md) is the code's.
#[test]
fn the_docs_list_the_same_statuses() {
    let doc = std::fs::read_to_string(xtask::project_root().join("docs/exit-codes.md")).unwrap();
    let section = doc
        .split("## Exit statuses of cargo xtask run and trace, and of rusty-trace")
        .nth(1)
        .expect("the section");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<(String, String)> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter(|l| !l.starts_with("status") && !l.starts_with("---"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_end_matches(" |").split(" | ").collect();
            (cells[0].to_string(), cells[1].to_string())
        })
        .collect();
    let code: Vec<(String, String)> = EndingKind::ALL
        .iter()
        .map(|k| (k.statuses().to_string(), k.meaning().to_string()))
        .collect();
    if rows != code {
        let table: Vec<String> = code
            .iter()
            .map(|(status, meaning)| format!("| {status} | {meaning} |"))
            .collect();
        panic!(
            "docs/exit-codes.md differs from trace_decoder::report::ending; the rows:\n{}",
            table.join("\n")
        );
    }
}
