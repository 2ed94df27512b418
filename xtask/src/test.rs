//! `cargo xtask test`: builds the bare-metal artifacts the tests boot (the debug
//! loader with and without tracing, the test kernels), then runs every test of the
//! workspace: host unit tests, then the QEMU boots of `xtask/tests`.

use std::process::ExitCode;

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::build::{self, Profile, TraceLevel};
use crate::step;

pub fn run(sh: &Shell) -> Result<ExitCode> {
    step("[1/5] building the loader (debug)");
    build::build_loader(sh, Profile::Debug, TraceLevel::Info)?;
    step("[2/5] building the loader without tracing (debug)");
    build::build_loader(sh, Profile::Debug, TraceLevel::Off)?;
    step("[3/5] building the loader with fault injection (debug)");
    build::build_fault_loader(sh, Profile::Debug)?;
    step("[4/5] building the test kernels (debug)");
    build::build_test_kernels(sh, Profile::Debug)?;
    step("[5/5] cargo test --workspace: host tests, then QEMU boots (several minutes)");
    cmd!(sh, "cargo test --workspace").run()?;
    Ok(ExitCode::SUCCESS)
}
