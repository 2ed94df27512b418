//! The project's build and run automation, as a library so that the QEMU
//! integration tests (`xtask/tests`) build and boot exactly as `cargo xtask` does.

pub mod bench;
pub mod bench_decoder;
pub mod bench_loaders;
pub mod bench_table;
pub mod build;
pub mod census;
pub mod debug;
pub mod efi_image;
pub mod fuzz;
pub mod lint;
pub mod memory_plan;
pub mod preflight;
pub mod qemu;
pub mod qmp;
pub mod record;
pub mod test;
pub mod trace;
pub mod traced_boot;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// A line saying what comes next, on a terminal only: long steps are not silent, and
/// a pipe gets nothing but results.
pub fn step(message: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("cargo xtask: {message}");
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
