//! The stored inputs of the fuzz targets, for the stable tests that replay them
//! (`loader/tests/regressions.rs`, `trace-decoder/tests/regressions.rs`, which
//! include this file by path): `fuzz/regressions/<target>/` and
//! `fuzz/seeds/<target>/`.

use std::path::{Path, PathBuf};

/// `fuzz/`, from the including crate's directory (a sibling of it).
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted (none when it does not exist).
pub fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every regression input and seed of `target`; returns the file
/// names with what `check` returned for each.
pub fn replay<T>(target: &str, mut check: impl FnMut(&[u8]) -> T) -> Vec<(String, T)> {
    let mut replayed = Vec::new();
    for kind in ["regressions", "seeds"] {
        for file in inputs(&fuzz_dir().join(kind).join(target)) {
            eprintln!("{}", file.display());
            let result = check(&std::fs::read(&file).expect("a corpus file"));
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            replayed.push((name, result));
        }
    }
    replayed
}

/// Checks that the files of `fuzz/<kind>/<target>/` named in `expected` hold
/// exactly those bytes, or writes them with `UPDATE_SEEDS=1`.
pub fn check_files<N: AsRef<str>>(kind: &str, target: &str, expected: &[(N, Vec<u8>)]) {
    let dir = fuzz_dir().join(kind).join(target);
    let update = std::env::var_os("UPDATE_SEEDS").is_some_and(|v| v == "1");
    for (name, bytes) in expected {
        let path = dir.join(name.as_ref());
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, bytes).unwrap();
            continue;
        }
        let actual = std::fs::read(&path).unwrap_or_default();
        assert!(
            actual == *bytes,
            "{} is not current: UPDATE_SEEDS=1 cargo test -p {} --test regressions",
            path.display(),
            env!("CARGO_PKG_NAME")
        );
    }
}
