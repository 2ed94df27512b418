//! Long steps are not silent on a terminal, and a pipe gets only results: xtask lets
//! cargo show its progress when its standard error is a terminal (util-linux's
//! `script` gives it one here) and keeps cargo quiet otherwise.

use std::process::{Command, Stdio};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

#[test]
fn a_pipe_gets_only_the_results() {
    let output = Command::new(XTASK)
        .arg("build")
        .current_dir(xtask::project_root())
        .output()
        .expect("xtask runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("Finished") && !stderr.contains("Compiling"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("loader:"));
}

#[test]
fn a_terminal_sees_cargo_at_work() {
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!("{XTASK} build"))
        .arg("/dev/null")
        // As a user runs it, not as `cargo xtask test` runs the tests.
        .env_remove(xtask::test::QUIET_BUILDS)
        .current_dir(xtask::project_root())
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    // The terminal merges both streams into script's output.
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("Finished"), "cargo's own lines: {shown}");
    assert!(shown.contains("loader:"), "{shown}");
}

/// A boot that goes silent on a terminal is not silent until the timeout: after
/// five seconds xtask says once what is going on. In a pipe it says nothing.
#[test]
fn a_silent_boot_on_a_terminal_says_what_goes_on_once() {
    let fake = xtask::project_root().join("xtask/tests/fake-qemu/qemu-system-x86_64");
    // The stand-in prints a line and hangs; the timeout ends it.
    let command = format!(
        "{XTASK} run --qemu {} --append hang --timeout 8",
        fake.display()
    );
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .current_dir(xtask::project_root())
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(124), "{shown}");
    let notice = "cargo xtask: no output for 5 s; stopping at 8 s (--timeout), when QEMU says \
                  where the CPU is; Ctrl-C stops now\r\n";
    assert_eq!(shown.matches(notice).count(), 1, "{shown}");
    // After the application's line, before the end.
    let at = shown.find(notice).unwrap();
    assert!(shown[..at].contains("started\r\n"), "{shown}");
    assert!(
        shown[at..].contains("error: QEMU did not end within 8 s"),
        "{shown}"
    );

    let piped = Command::new(XTASK)
        .args(["run", "--qemu"])
        .arg(&fake)
        .args(["--append", "hang", "--timeout", "7"])
        .current_dir(xtask::project_root())
        .output()
        .expect("xtask runs");
    assert_eq!(piped.status.code(), Some(124));
    assert!(
        !String::from_utf8_lossy(&piped.stderr).contains("no output for"),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
}

/// Inside the tests `cargo xtask test` runs, which built everything first, a build
/// a test asks for says nothing, even on a terminal: no two builds print at once.
#[test]
fn builds_inside_the_test_run_are_quiet_on_a_terminal() {
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!("{XTASK} build"))
        .arg("/dev/null")
        .env(xtask::test::QUIET_BUILDS, "1")
        .current_dir(xtask::project_root())
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(!shown.contains("Finished"), "{shown}");
    assert!(shown.contains("loader:"), "{shown}");
}

/// A first `cargo xtask` on a fresh `target/` is not silent (a fresh build is too
/// slow to test here, so its parts are checked): the alias runs the launcher, which
/// has no dependencies to build first, and the launcher shows cargo's build of
/// xtask on a terminal (its own tests: which of cargo's lines it shows).
#[test]
fn the_alias_runs_a_launcher_that_builds_in_a_second() {
    let root = xtask::project_root();
    let config = std::fs::read_to_string(root.join(".cargo/config.toml")).unwrap();
    let alias = config
        .lines()
        .find_map(|line| line.strip_prefix("xtask = "))
        .expect("the xtask alias");
    assert_eq!(alias, "\"run --quiet --package xtask-launcher --\"");
    let manifest = std::fs::read_to_string(root.join("xtask/launcher/Cargo.toml")).unwrap();
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] section");
    assert!(
        dependencies
            .lines()
            .take_while(|line| !line.starts_with('['))
            .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')),
        "the launcher has no dependencies:\n{manifest}"
    );
    assert!(!manifest.contains("[build-dependencies]"), "{manifest}");
}
