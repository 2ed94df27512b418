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
    let cases: [(&[&str], &str); 9] = [
        (
            &["trace", "--runs", "2", "--json", "profile.json"],
            "error: --json writes the report of one boot; with --runs, --baseline or \
             --save-profile the result is a boot profile: give --save-profile FILE",
        ),
        (
            &["run", "-m", "64Q"],
            "error: -m 64Q: not a size: give a number",
        ),
        (
            &["trace", "-m", "size=64M,foo=1"],
            "error: -m size=64M,foo=1: unknown option \"foo\"",
        ),
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
    // One line, the loader's, for a file that is not an ELF at all (no warning
    // that its symbols cannot be read), an empty one too.
    for file in ["Cargo.toml", "/dev/null"] {
        let output = xtask(&["run", file]);
        assert_ending(&output, 35, "the loader refused to boot (not-elf)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{}", shown(&output));
    }
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
        // A message of several lines, whole.
        assert_ending(
            &boot(command, "qemu-error-lines"),
            125,
            "error: QEMU failed: qemu-system-x86_64: -m 64Q: Parameter 'size' expects a \
             non-negative number below 2^64 Optional suffix k, M, G, T, P or E means kilo-, \
             mega-, giga-, tera-, peta- and exabytes, respectively.; exit status 125",
        );
    }
    // A boot of several that does not succeed ends them with its own status.
    let output = xtask(&["trace", "--runs", "2", "--qemu", &fake, "--append", "reset"]);
    assert_ending(&output, 4, "boot 1 of 2: QEMU ended without an exit code");
}

/// The size in `error: -m X is too small: this application needs at least -m NM`.
fn least_memory(output: &Output) -> u64 {
    let errors = error_lines(output);
    let all = shown(output);
    let at_least = errors
        .first()
        .and_then(|e| e.split("needs at least -m ").nth(1))
        .unwrap_or_else(|| panic!("no size named: {all}"));
    at_least
        .split_once('M')
        .and_then(|(mib, _)| mib.parse().ok())
        .unwrap_or_else(|| panic!("no size named: {all}"))
}

#[test]
fn too_little_memory_is_refused_before_the_boot_with_the_size_that_boots() {
    for profile in [None, Some("--release")] {
        let mut least = None;
        for memory in ["1K", "1M", "2M", "3M", "5M", "7M", "0x8M"] {
            let mut args = vec!["run", "-m", memory, "--timeout", "30"];
            args.extend(profile);
            let output = xtask(&args);
            assert_ending(
                &output,
                2,
                &format!("error: -m {memory} is too small: this application needs at least -m "),
            );
            // The same size whatever was asked for.
            let mib = least_memory(&output);
            assert_eq!(*least.get_or_insert(mib), mib, "{}", shown(&output));
        }
    }
    let output = xtask(&["trace", "-m", "1K"]);
    assert_ending(&output, 2, "error: -m 1K is too small");
}

/// The size xtask names is the one that boots: with it the loader hands over
/// (through each entry, on each machine), and with 1 MiB less xtask refuses before
/// QEMU starts, and the loader itself, booted that way all the same, refuses too and
/// names a size no larger than xtask's.
#[test]
fn the_least_memory_named_boots_and_one_mib_less_does_not() {
    let kernels = &common::artifacts().kernels;
    let apps = [
        ("hello-dyn", kernels.hello_dyn.clone()),
        ("big-dyn", kernels.big_dyn.clone()),
    ];
    for (name, app) in apps {
        for (boot, machine) in common::ENTRIES {
            let app_arg = app.display().to_string();
            let mut args = vec![
                "trace".to_string(),
                app_arg.clone(),
                "--color=never".to_string(),
                "--timeout".to_string(),
                "60".to_string(),
            ];
            if boot == xtask::qemu::BootProtocol::Pvh {
                args.extend(["--boot".to_string(), "pvh".to_string()]);
            }
            if machine == xtask::qemu::Machine::Microvm {
                args.push("--microvm".to_string());
            }
            let with = |memory: String| {
                let mut args = args.clone();
                args.extend(["-m".to_string(), memory]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                xtask(&args)
            };
            let refused = with("1M".to_string());
            let least = least_memory(&refused);
            let at = format!("{name} {boot:?} {machine:?} -m {least}M");
            let booted = with(format!("{least}M"));
            let stdout = String::from_utf8_lossy(&booted.stdout);
            assert!(
                stdout.contains("Outcome    handed over to the kernel"),
                "{at}: {}",
                shown(&booted)
            );
            let below = with(format!("{}M", least - 1));
            assert_ending(
                &below,
                2,
                &format!("this application needs at least -m {least}M"),
            );
            assert!(below.stdout.is_empty(), "{at}: {}", shown(&below));
            // The model is tight: the loader refuses one MiB less as well.
            let config = xtask::qemu::QemuConfig {
                memory: format!("{}M", least - 1),
                ..common::entered(common::config(&app), boot, machine)
            };
            let run = common::boot(&config);
            let serial = run.serial_text();
            assert_eq!(run.status, Some(57), "{at}: {serial}");
            let line = serial
                .lines()
                .find(|l| l.starts_with("rusty-loader: error: not enough RAM: "))
                .unwrap_or_else(|| panic!("{at}: {serial}"));
            let loader_says: u64 = line
                .rsplit_once(": -m ")
                .and_then(|(_, size)| size.split_once("M at least"))
                .and_then(|(mib, _)| mib.parse().ok())
                .unwrap_or_else(|| panic!("{at}: no size in {line}"));
            assert!(loader_says <= least, "{at}: {line}");
        }
    }
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

/// Any file name boots: a space, a comma, quotes and non-ASCII letters, in the
/// application's name and its directory's, through both entries; `-v` says that
/// QEMU got the file under another name.
#[test]
fn any_file_name_boots() {
    let dir = tempfile::tempdir().unwrap();
    let odd_dir = dir.path().join("dir, with 'space'");
    std::fs::create_dir(&odd_dir).unwrap();
    let app = odd_dir.join("my app,1 \"ü\".elf");
    std::fs::copy(&common::artifacts().kernels.hello_dyn, &app).unwrap();
    let app = app.display().to_string();
    // Multiboot, with a loader option in the module string after the file's name.
    let output = xtask(&["run", &app, "--keep-cmdline", "--", "hello", "world"]);
    let all = shown(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("tk: args=hello world"),
        "{all}"
    );
    let output = xtask(&["trace", &app, "--boot", "pvh", "-v", "--color=never"]);
    let all = shown(&output);
    assert_eq!(output.status.code(), Some(0), "{all}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("goes to QEMU as a link, <run>/my_app_1____.elf"),
        "{all}"
    );
}
