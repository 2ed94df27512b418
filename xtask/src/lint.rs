//! `cargo xtask lint`: rustfmt and clippy with warnings denied, on the host crates,
//! the fuzz crate (a workspace of its own, docs/fuzzing.md) and the bare-metal
//! binaries with their real flags ([`crate::build::lint_bare_metal`]).

use std::process::ExitCode;

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::{build, step};

pub fn run(sh: &Shell) -> Result<ExitCode> {
    step("[1/3] rustfmt");
    cmd!(sh, "cargo fmt --all --check").run()?;
    cmd!(
        sh,
        "cargo fmt --manifest-path fuzz/Cargo.toml --all --check"
    )
    .run()?;
    step("[2/3] clippy on the host crates");
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --quiet -- -D warnings"
    )
    .run()?;
    step("[3/3] clippy on the bare-metal binaries");
    build::lint_bare_metal(sh)?;
    println!("lint: clean");
    Ok(ExitCode::SUCCESS)
}
