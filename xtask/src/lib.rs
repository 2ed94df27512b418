//! The project's build and run automation, as a library so that the QEMU
//! integration tests (`xtask/tests`) build and boot exactly as `cargo xtask` does.

pub mod bench;
pub mod bench_decoder;
pub mod bench_loaders;
pub mod build;
pub mod census;
pub mod debug;
pub mod fuzz;
pub mod preflight;
pub mod qemu;
pub mod qmp;
pub mod record;
pub mod trace;

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate's directory).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
