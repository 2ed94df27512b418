//! `cargo xtask debug`, driven as a user would drive it in CI: `--batch`, gdb without
//! a terminal. Each test boots a test kernel under gdb and checks where it stopped
//! (the application's symbols at the address it runs at, in an ET_DYN and an ET_EXEC
//! kernel; a loader stage; the faulting frame of a crash), how a session that never
//! stops ends (the boot ended first, the timeout), the checks before anything boots
//! (no gdb, an unknown WHERE), `--serve` with another gdb attached through the
//! session's script, and the stage table against both loader builds.
//!
//! The test kernels have no `hermit::boot_processor_main`; their counterpart, the
//! Rust function their entry stub calls once the stack is set up, is
//! `test_kernels::checks::start`, named the same way in every kernel.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{artifacts, shown, xtask};
use xshell::Shell;
use xtask::build::{self, Profile, TraceLevel};
use xtask::debug::{self, Stop, Where, STAGES};
use xtask::qemu::BootProtocol;

/// `cargo xtask debug --batch` with a script file of the test's own.
fn debug_batch(app: &Path, args: &[&str], app_args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("session.gdb");
    let mut all = vec![
        "debug",
        app.to_str().unwrap(),
        "--batch",
        "--script",
        script.to_str().unwrap(),
    ];
    all.extend(args);
    if !app_args.is_empty() {
        all.push("--");
        all.extend(app_args);
    }
    let output = xtask(&all);
    // The script was written for reuse, whatever happened after.
    let text = std::fs::read_to_string(&script).unwrap_or_default();
    assert!(
        text.contains("target remote ") && text.ends_with("continue\n"),
        "the session's script:\n{text}\n{}",
        shown(&output)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The part of the output after the session's `label` line (`backtrace:`,
/// `registers:`) up to the next blank line, without the kernel's lines (`tk: `),
/// which may arrive between gdb's.
fn section(text: &str, label: &str) -> String {
    let gdb: Vec<&str> = text.lines().filter(|l| !l.starts_with("tk: ")).collect();
    let gdb = gdb.join("\n");
    let start = gdb
        .find(&format!("[cargo xtask debug] {label}\n"))
        .unwrap_or_else(|| panic!("no {label} in\n{text}"));
    let rest = &gdb[start..];
    let rest = &rest[rest.find('\n').unwrap() + 1..];
    rest.split("\n\n").next().unwrap().to_string()
}

/// The bias the session read at the hand-over.
fn bias(text: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("[cargo xtask debug] hand-over:"))
        .unwrap_or_else(|| panic!("no hand-over line in\n{text}"));
    let at = line.find("symbols at bias ").unwrap() + "symbols at bias ".len();
    let value = line[at..].split(' ').next().unwrap();
    if value == "0" {
        0
    } else {
        common::parse_hex(value)
    }
}

/// An application function, in a kernel of each type: gdb stops there, names it
/// from the application's symbols, shows the way from `_start` and the registers.
#[test]
fn an_application_function_stops_et_dyn_and_et_exec_kernels() {
    let kernels = &artifacts().kernels;
    for (app, relocatable) in [(&kernels.hello_dyn, true), (&kernels.hello_exec, false)] {
        let output = debug_batch(app, &["--break", "test_kernels::checks::start"], &[]);
        assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
        let text = stdout(&output);
        // gdb's own line for the stop: `Breakpoint <n>, test_kernels::checks::start (`.
        assert!(
            text.lines()
                .any(|l| l.starts_with("Breakpoint ")
                    && l.contains(", test_kernels::checks::start (")),
            "{}",
            shown(&output)
        );
        assert!(text.contains("[cargo xtask debug] reached test_kernels::checks::start\n"));
        let stop = section(&text, "stopped at:");
        assert!(
            stop.starts_with("#0  test_kernels::checks::start (")
                && stop.contains("at test-kernels/src/checks/mod.rs:"),
            "{stop}"
        );
        let backtrace = section(&text, "backtrace:");
        assert!(
            backtrace.contains("#0  test_kernels::checks::start (")
                && backtrace.contains(" in _start ()"),
            "{backtrace}"
        );
        let registers = section(&text, "registers:");
        assert!(
            registers.contains("<test_kernels::checks::start+") && registers.contains("\ncr3 "),
            "{registers}"
        );
        // Where the kernel runs: the loader's choice for an ET_DYN kernel (above its
        // own image, 2 MiB-aligned), the link address of an ET_EXEC one.
        let bias = bias(&text);
        if relocatable {
            assert!(
                bias > 0 && bias.is_multiple_of(0x20_0000),
                "bias {bias:#x}\n{text}"
            );
            assert!(
                text.contains("(ET_DYN: at the bias the loader chose)"),
                "{text}"
            );
        } else {
            assert_eq!(bias, 0, "{text}");
            assert!(text.contains("(ET_EXEC: at its link address)"), "{text}");
        }
        // gdb stopped the kernel there: it never finished its checks.
        assert!(!text.contains("tk: ok"), "{text}");
    }
}

/// The default WHERE: the kernel's first instruction, named from its symbols.
#[test]
fn without_break_the_session_stops_at_the_kernels_entry() {
    let output = debug_batch(&artifacts().kernels.hello_dyn, &[], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let text = stdout(&output);
    assert!(
        text.contains("[cargo xtask debug] reached entry: the kernel's first instruction\n"),
        "{text}"
    );
    assert!(
        section(&text, "stopped at:").contains(" in _start ()"),
        "{text}"
    );
    // Nothing of the kernel's ran: not a line from it.
    assert!(!text.contains("tk: "), "{text}");
}

/// A loader stage, named as the trace names it: gdb stops in the loader's code for
/// it with a backtrace down to the 64-bit entry; through PVH, the loader's first
/// instruction is PVH's entry.
#[test]
fn a_loader_stage_stops_the_loader() {
    let app = &artifacts().kernels.hello_dyn;
    let output = debug_batch(app, &["--break", "stage:relocation"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let text = stdout(&output);
    assert!(
        text.contains("[cargo xtask debug] reached stage:relocation\n"),
        "{text}"
    );
    let stop = section(&text, "stopped at:");
    assert!(
        stop.starts_with("#0  rusty_loader::elf::Kernel::relocate (")
            && stop.contains("loader/src/elf/reloc.rs:"),
        "{stop}"
    );
    let backtrace = section(&text, "backtrace:");
    for caller in [
        "rusty_loader::boot::load ",
        "rusty_loader::loader_main ",
        " in start64 ()",
    ] {
        assert!(backtrace.contains(caller), "no {caller} in\n{backtrace}");
    }
    // Before the hand-over: no application symbols yet.
    assert!(!text.contains("hand-over:"), "{text}");

    let output = debug_batch(app, &["--break", "stage:mode switch", "--boot", "pvh"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let stop = section(&stdout(&output), "stopped at:");
    assert!(stop.contains(" in pvh_start32 ()"), "{}", shown(&output));
}

/// `crash`: the page fault of `crashing -- page-fault`, stopped before the loader's
/// handler reports it, in the function that faulted.
#[test]
fn crash_stops_at_the_faulting_function() {
    let output = debug_batch(
        &artifacts().kernels.crashing,
        &["--break", "crash"],
        &["page-fault"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let text = stdout(&output);
    assert!(
        text.contains("[cargo xtask debug] reached crash: CPU exception 14 (#PF page fault), error code 0; the faulting frame:\n"),
        "{}",
        shown(&output)
    );
    // The faulting frame (the faulting load is inlined into `read_unmapped`).
    let stop = section(&text, "stopped at:");
    assert!(
        stop.starts_with("#1  test_kernels::arch::faults::load ")
            && stop.contains("test-kernels/src/arch/faults.rs:"),
        "{stop}"
    );
    let backtrace = section(&text, "backtrace:");
    assert!(
        backtrace.starts_with("#0  <signal handler called>\n"),
        "{backtrace}"
    );
    for frame in [
        "test_kernels::arch::faults::read_unmapped ",
        "test_kernels::crash::run::run ",
        " in _start ()",
    ] {
        assert!(backtrace.contains(frame), "no {frame} in\n{backtrace}");
    }
    // The faulting frame's registers: RIP in the function that faulted.
    let registers = section(&text, "registers:");
    assert!(
        registers.contains("<test_kernels::arch::faults::read_unmapped+"),
        "{registers}"
    );
    // The loader's handler has not reported the exception.
    assert!(!text.contains("rusty-loader: error"), "{text}");
}

/// A WHERE the boot never reaches: the boot's own end, in `run`'s words, and the
/// session's status for it; a hang ends at the timeout.
#[test]
fn a_where_never_reached_says_how_the_boot_ended() {
    let kernels = &artifacts().kernels;
    // A passing kernel never fails a check.
    let output = debug_batch(
        &kernels.hello_dyn,
        &["--break", "test_kernels::checks::verdict::fail"],
        &[],
    );
    assert_eq!(output.status.code(), Some(6), "{}", shown(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\nerror: never stopped at test_kernels::checks::verdict::fail: the boot ended first: the application reported success (QEMU status 3), for which cargo xtask run exits with status 0; exit status 6\n"),
        "{}",
        shown(&output)
    );
    assert!(stdout(&output).contains("tk: ok"), "{}", shown(&output));

    let output = debug_batch(
        &kernels.crashing,
        &[
            "--break",
            "test_kernels::checks::verdict::fail",
            "--timeout",
            "5",
        ],
        &["hang"],
    );
    assert_eq!(output.status.code(), Some(124), "{}", shown(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\nerror: never stopped at test_kernels::checks::verdict::fail: QEMU did not end within 5 s and was stopped: the boot hangs after the hand-over, in the application; exit status 124\n"),
        "{}",
        shown(&output)
    );
    assert!(
        stderr.contains("\nQEMU: hang: still running after the 5 s timeout"),
        "{}",
        shown(&output)
    );
}

/// No gdb: status 2 and one line saying how to install it, before anything is
/// built or booted; the same for a gdb not on PATH.
#[test]
fn a_missing_gdb_is_one_line_saying_how_to_install_it() {
    let output = xtask(&["debug", "--gdb", "/nonexistent/gdb", "--batch"]);
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: /nonexistent/gdb not found: install gdb (Debian/Ubuntu: sudo apt-get install gdb; Fedora: sudo dnf install gdb) or give one with --gdb\n"
    );
    assert!(output.stdout.is_empty(), "{}", shown(&output));

    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["debug", "--batch"])
        .env("PATH", empty.path())
        .current_dir(xtask::project_root())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: gdb not found: install gdb (Debian/Ubuntu: sudo apt-get install gdb;"
        ),
        "{stderr}"
    );
}

/// A WHERE neither the application nor the loader has, or a stage the trace does
/// not name: status 2, before anything boots.
#[test]
fn an_unknown_where_is_refused_before_the_boot() {
    let output = xtask(&["debug", "--batch", "--break", "stage:unpacking"]);
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: --break stage:unpacking: no such loader stage; the stages are mode-switch, paging,"),
        "{stderr}"
    );

    let app = artifacts().kernels.hello_dyn.to_str().unwrap().to_string();
    let output = xtask(&["debug", &app, "--batch", "--break", "no_such::function"]);
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(
            "error: --break no_such::function: neither the application nor the loader has it (gdb on the application: Function \"no_such::function\" not defined.)"
        ),
        "{}",
        shown(&output)
    );
    assert!(
        !stdout(&output).contains("tk: "),
        "nothing booted: {}",
        shown(&output)
    );
}

/// `--serve`: QEMU waits for another debugger, which attaches with the session's
/// script; the boot then goes on to its end, whose status the session gives.
#[test]
fn another_debugger_attaches_with_the_sessions_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ide.gdb");
    let app = artifacts().kernels.hello_dyn.clone();
    let mut session = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["debug", app.to_str().unwrap(), "--serve", "--script"])
        .arg(&script)
        .current_dir(xtask::project_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(session.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the session ended without waiting for a debugger:\n{said}");
        }
        said += &line;
        if line.starts_with("QEMU waits for a debugger: gdb -x ") {
            break;
        }
    }
    let gdb = Command::new("gdb")
        .args(["-nx", "-batch", "-x"])
        .arg(&script)
        .args(["-ex", "bt"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let gdb_out = String::from_utf8_lossy(&gdb.stdout);
    assert!(
        gdb_out.contains("[cargo xtask debug] reached entry: the kernel's first instruction\n")
            && gdb_out.contains("#0  0x")
            && gdb_out.contains(" in _start ()"),
        "{}",
        shown(&gdb)
    );
    // gdb detached at its end: the kernel runs its checks to success.
    let output = session.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{said}{}", shown(&output));
    assert!(stdout(&output).contains("tk: ok"), "{}", shown(&output));
}

/// Every stage's place resolves in the loader as both builds have it (a release
/// build inlines most of the loader: gdb finds the inlined code by its debug
/// information), through either entry; and the internal stops' symbols exist.
#[test]
fn every_stage_is_found_in_both_loader_builds() {
    let gdb = debug::find_gdb(None).expect("gdb is installed (.ci/run installs it)");
    let sh = Shell::new().unwrap();
    sh.change_dir(xtask::project_root());
    let debug_loader = &artifacts().loader;
    let release_loader = build::build_loader(&sh, Profile::Release, TraceLevel::Info)
        .expect("the release loader builds");
    let wheres: Vec<Where> = STAGES.iter().map(Where::Stage).collect();
    for loader in [debug_loader, &release_loader] {
        for boot in [BootProtocol::Multiboot, BootProtocol::Pvh] {
            let stops = debug::resolve(&gdb, &wheres, &loader.elf, None, boot)
                .unwrap_or_else(|e| panic!("{} {boot:?}: {e:#}", loader.elf.display()));
            // The hand-over is a stop of its own; every other stage a location.
            assert_eq!(stops.len(), STAGES.len(), "{stops:?}");
            assert!(stops.contains(&Stop::HandOver));
        }
        let internal = [
            Where::Location(debug::HAND_OVER_SYMBOL.to_string()),
            Where::Location(debug::EXCEPTION_ENTRY_SYMBOL.to_string()),
        ];
        let stops = debug::resolve(&gdb, &internal, &loader.elf, None, BootProtocol::Multiboot)
            .unwrap_or_else(|e| panic!("{}: {e:#}", loader.elf.display()));
        assert!(
            stops.iter().all(|s| matches!(s, Stop::Loader { .. })),
            "{stops:?}"
        );
    }
}

/// `--help` lists the stages and the session's statuses; docs/exit-codes.md lists
/// the same statuses as the code.
#[test]
fn the_help_and_the_docs_list_the_statuses() {
    let output = xtask(&["debug", "--help"]);
    let help = stdout(&output);
    assert!(help.contains("Usage: cargo xtask debug "), "{help}");
    assert!(help.contains(&debug::help_statuses()), "{help}");
    for stage in STAGES {
        assert!(
            help.contains(&format!("\n  {:<15}{}", stage.id, stage.stops_at)),
            "{help}"
        );
    }

    let doc = std::fs::read_to_string(xtask::project_root().join("docs/exit-codes.md")).unwrap();
    let section = doc
        .split("## Exit statuses of cargo xtask debug")
        .nth(1)
        .expect("the section");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| status") && !l.starts_with("| ---"))
        .map(str::to_string)
        .collect();
    let code: Vec<String> = debug::statuses()
        .iter()
        .map(|(status, meaning)| format!("| {status} | {meaning} |"))
        .collect();
    assert_eq!(
        rows,
        code,
        "docs/exit-codes.md differs from xtask::debug::statuses; the rows:\n{}",
        code.join("\n")
    );
}
