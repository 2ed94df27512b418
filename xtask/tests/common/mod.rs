//! Shared pieces of the QEMU integration tests: building the artifacts once per test
//! binary, booting, and reading what a test kernel reported.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use xshell::Shell;
use xtask::build::{self, LoaderArtifacts, Profile, TestKernels, TraceLevel};
use xtask::qemu::{self, BootProtocol, Captured, Machine, QemuConfig};

/// Long enough for a TCG boot on a loaded two-core machine; a hang still ends.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Artifacts {
    pub loader: LoaderArtifacts,
    /// The loader built without tracing.
    pub loader_notrace: LoaderArtifacts,
    pub kernels: TestKernels,
}

/// Builds the loader and the test kernels once (a no-op when `cargo xtask test`
/// built them already).
pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        let sh = Shell::new().expect("a shell");
        sh.change_dir(xtask::project_root());
        Artifacts {
            loader_notrace: build::build_loader(&sh, Profile::Debug, TraceLevel::Off)
                .expect("the loader builds without tracing"),
            loader: build::build_loader(&sh, Profile::Debug, TraceLevel::Info)
                .expect("the loader builds"),
            kernels: build::build_test_kernels(&sh, Profile::Debug)
                .expect("the test kernels build"),
        }
    })
}

/// The debug loader built with fault injection (`cargo xtask run --inject`), built
/// once per test binary that asks for it.
pub fn fault_loader() -> &'static LoaderArtifacts {
    static LOADER: OnceLock<LoaderArtifacts> = OnceLock::new();
    LOADER.get_or_init(|| {
        let sh = Shell::new().expect("a shell");
        sh.change_dir(xtask::project_root());
        build::build_fault_loader(&sh, Profile::Debug)
            .expect("the loader builds with fault injection")
    })
}

/// A config for booting `app` with the fault-injection loader, injecting `fault`.
pub fn fault_config(app: impl Into<PathBuf>, fault: rusty_loader::faults::Fault) -> QemuConfig {
    QemuConfig {
        fault: Some(fault.name().to_string()),
        ..QemuConfig::new(&fault_loader().image, app)
    }
}

/// A config for booting `app` with the debug loader.
pub fn config(app: impl Into<PathBuf>) -> QemuConfig {
    QemuConfig::new(&artifacts().loader.image, app)
}

/// Both entries of the loader on both machine types: every way QEMU boots it.
pub const ENTRIES: [(BootProtocol, Machine); 4] = [
    (BootProtocol::Multiboot, Machine::Pc),
    (BootProtocol::Pvh, Machine::Pc),
    (BootProtocol::Pvh, Machine::Microvm),
    (BootProtocol::Multiboot, Machine::Microvm),
];

/// `config` booted through `boot` on `machine`.
pub fn entered(mut config: QemuConfig, boot: BootProtocol, machine: Machine) -> QemuConfig {
    config.boot = boot;
    config.machine = machine;
    config
}

/// The command line a kernel of 0.6-0.10 gets when it was given no `-freq`: QEMU's,
/// with ` -freq <MHz>` after the file name.
pub fn with_inserted_freq(command_line: &str, mhz: u64) -> String {
    let at = command_line.find(' ').unwrap_or(command_line.len());
    format!("{} -freq {mhz}{}", &command_line[..at], &command_line[at..])
}

pub fn boot(config: &QemuConfig) -> Captured {
    let run = qemu::run_captured(config, BOOT_TIMEOUT).expect("QEMU starts");
    assert!(
        !run.timed_out,
        "QEMU timed out\ncommand: {}\nserial:\n{}",
        config.display(),
        run.serial_text()
    );
    run
}

/// What a test kernel printed: `tk: key=value` facts and its verdict.
pub struct KernelReport {
    pub facts: Vec<(String, String)>,
    pub verdict: Option<String>,
}

impl KernelReport {
    pub fn parse(serial: &str) -> KernelReport {
        let mut facts = Vec::new();
        let mut verdict = None;
        for line in serial.lines() {
            let Some(rest) = line.strip_prefix("tk: ") else {
                continue;
            };
            match rest.split_once('=') {
                Some((key, value)) if !key.contains(' ') => {
                    facts.push((key.to_string(), value.to_string()))
                }
                _ => verdict = Some(rest.to_string()),
            }
        }
        KernelReport { facts, verdict }
    }

    /// The value of a fact that must appear exactly once.
    pub fn one(&self, key: &str) -> &str {
        let values = self.all(key);
        assert_eq!(
            values.len(),
            1,
            "fact {key} should appear once, got {values:?}"
        );
        values[0]
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.facts
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses `<hex>-<hex>` (with or without 0x).
pub fn parse_range(text: &str) -> (u64, u64) {
    let (a, b) = text
        .split_once('-')
        .unwrap_or_else(|| panic!("not a range: {text}"));
    (parse_hex(a), parse_hex(b))
}

pub fn parse_hex(text: &str) -> u64 {
    u64::from_str_radix(text.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("not hex: {text}"))
}

/// Runs the real xtask binary from the project root, as a user would.
pub fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(xtask::project_root())
        .output()
        .expect("xtask runs")
}

/// A finished command's status and both outputs, for assertion messages.
pub fn shown(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
pub mod mutants;
