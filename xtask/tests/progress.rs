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
