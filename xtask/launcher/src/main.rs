//! What the `cargo xtask` alias runs (`.cargo/config.toml`): builds xtask, then
//! runs it with the same arguments.
//!
//! The alias could run xtask itself (`cargo run --quiet --package xtask`), but then
//! the build of xtask and its dependencies on a fresh `target/`, half a minute or
//! more, would be silent: `--quiet` hides cargo's progress, and without it cargo
//! prints two lines of its own on every run. This crate has no dependencies, so it
//! builds in about a second; it then builds xtask and passes cargo's lines on as
//! they come (`Compiling ...`, warnings, errors), except when there was nothing to
//! build, where it leaves out cargo's `Finished` line: a terminal sees the work from
//! the first second, and an up-to-date xtask starts without a word. Into a pipe
//! cargo is asked to be quiet, as xtask is there.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let terminal = std::io::stderr().is_terminal();
    let mut build = Command::new(cargo);
    build.args(["build", "--package", "xtask", "--bin", "xtask"]);
    if terminal {
        // Piped, cargo would drop its colours.
        build.arg("--color=always");
    } else {
        build.arg("--quiet");
    }
    let status = match pass_on_build(build) {
        Ok(status) => status,
        Err(error) => {
            eprintln!("cargo xtask: could not build xtask: {error}");
            return ExitCode::from(2);
        }
    };
    if !status.success() {
        eprintln!("cargo xtask: the build of xtask failed ({status})");
        return ExitCode::from(2);
    }
    // The alias builds this crate with the same profile and target directory as
    // xtask: the two binaries lie side by side.
    let xtask = match std::env::current_exe() {
        Ok(launcher) => launcher.with_file_name("xtask"),
        Err(error) => {
            eprintln!("cargo xtask: where is this program? {error}");
            return ExitCode::from(2);
        }
    };
    let error = Command::new(&xtask)
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!(
        "cargo xtask: could not run {}: {error}",
        PathBuf::from(&xtask).display()
    );
    ExitCode::from(2)
}

/// Runs the build, passing cargo's lines on as they come but holding back the
/// `Finished` line, which is passed on only after other lines (work was done).
fn pass_on_build(mut build: Command) -> std::io::Result<std::process::ExitStatus> {
    let mut child = build.stderr(Stdio::piped()).spawn()?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut filter = Filter::default();
    let mut ours = std::io::stderr().lock();
    for line in BufReader::new(stderr).split(b'\n') {
        let line = line?;
        if let Some(shown) = filter.line(line) {
            ours.write_all(&shown)?;
            ours.write_all(b"\n")?;
        }
    }
    child.wait()
}

/// Which of cargo's lines are shown: all but a `Finished` line that is all cargo
/// said.
#[derive(Default)]
struct Filter {
    /// Whether a line has been shown.
    shown_any: bool,
}

impl Filter {
    /// The lines to show now, for this line of cargo's.
    fn line(&mut self, line: Vec<u8>) -> Option<Vec<u8>> {
        let finished = without_colours(&String::from_utf8_lossy(&line))
            .trim_start()
            .starts_with("Finished ");
        if finished && !self.shown_any {
            return None;
        }
        self.shown_any = true;
        Some(line)
    }
}

/// `text` without its colour escape sequences (`ESC [ ... m`).
fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Up to and with the sequence's final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(lines: &[&str]) -> Vec<String> {
        let mut filter = Filter::default();
        lines
            .iter()
            .filter_map(|line| filter.line(line.as_bytes().to_vec()))
            .map(|line| String::from_utf8(line).unwrap())
            .collect()
    }

    #[test]
    fn an_up_to_date_build_says_nothing() {
        let finished = "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.12s";
        assert!(shown(&[finished]).is_empty());
        let coloured = "\u{1b}[1m\u{1b}[92m    Finished\u{1b}[0m `dev` profile";
        assert!(shown(&[coloured]).is_empty());
    }

    #[test]
    fn work_is_shown_as_it_comes_and_its_end_too() {
        let lines = [
            "   Compiling clap v4.5.0",
            "   Compiling xtask v0.1.0 (/work/xtask)",
            "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 31.02s",
        ];
        assert_eq!(shown(&lines), lines);
    }
}
