//! The stored inputs of the fuzz targets, for the stable tests that replay them
//! (`loader/tests/regressions.rs`, `trace-decoder/tests/regressions.rs`, which
//! include this file by path): `fuzz/regressions/<target>/`, each file listed in
//! `fuzz/regressions/manifest.txt`, and `fuzz/seeds/<target>/`.

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

/// The regression inputs `fuzz/regressions/manifest.txt` lists for `target`, by file
/// name, in its order.
pub fn listed(target: &str) -> Vec<String> {
    let path = fuzz_dir().join("regressions/manifest.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut names = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (file, what) = line.split_once(' ').unwrap_or((line, ""));
        assert!(
            !what.trim().is_empty(),
            "{}: {file} says nothing about what it is",
            path.display()
        );
        let (file_target, name) = file
            .split_once('/')
            .unwrap_or_else(|| panic!("{}: {file} is not <target>/<file>", path.display()));
        if file_target == target {
            names.push(name.to_string());
        }
    }
    names
}

/// Checks `fuzz/regressions/<target>/` against the manifest both ways: every listed
/// file is there (a lost input fails), every file there is listed (an input added
/// without a word on what it is fails).
pub fn check_manifest(target: &str) {
    let listed = listed(target);
    let dir = fuzz_dir().join("regressions").join(target);
    let present: Vec<String> = inputs(&dir)
        .iter()
        .map(|file| file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let missing: Vec<&String> = listed.iter().filter(|n| !present.contains(n)).collect();
    let unlisted: Vec<&String> = present.iter().filter(|n| !listed.contains(n)).collect();
    assert!(
        missing.is_empty() && unlisted.is_empty(),
        "fuzz/regressions/{target}/ and fuzz/regressions/manifest.txt differ: listed but \
         missing {missing:?}, present but not listed {unlisted:?} (restore a lost input \
         from git; list a new one with what it is)"
    );
}

/// Runs `check` on every regression input of `target` (after [`check_manifest`]),
/// then on every seed; returns the file names with what `check` returned for each.
pub fn replay<T>(target: &str, mut check: impl FnMut(&[u8]) -> T) -> Vec<(String, T)> {
    check_manifest(target);
    let regressions = fuzz_dir().join("regressions").join(target);
    let files = listed(target)
        .into_iter()
        .map(|name| regressions.join(name))
        .chain(inputs(&fuzz_dir().join("seeds").join(target)));
    let mut replayed = Vec::new();
    for file in files {
        eprintln!("{}", file.display());
        let result = check(&std::fs::read(&file).expect("a corpus file"));
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        replayed.push((name, result));
    }
    replayed
}

/// Whether to rewrite the generated corpus files: `UPDATE_SEEDS=1`. Any other value
/// (`0`, `yes`, empty) is refused rather than read either way.
pub fn update_requested() -> bool {
    match std::env::var_os("UPDATE_SEEDS") {
        None => false,
        Some(value) if value == "1" => true,
        Some(value) => panic!(
            "UPDATE_SEEDS={value:?}: set UPDATE_SEEDS=1 to rewrite the generated corpus files, or unset it"
        ),
    }
}

/// Checks that the files of `fuzz/<kind>/<target>/` named in `expected` hold
/// exactly those bytes; with `UPDATE_SEEDS=1` writes them first (saying which it
/// changed), then checks them all the same.
pub fn check_files<N: AsRef<str>>(kind: &str, target: &str, expected: &[(N, Vec<u8>)]) {
    use std::io::Write;
    let dir = fuzz_dir().join(kind).join(target);
    let update = update_requested();
    for (name, bytes) in expected {
        let path = dir.join(name.as_ref());
        if update && std::fs::read(&path).ok().as_ref() != Some(bytes) {
            // Straight to the terminal: cargo test captures `eprintln!` of a passing
            // test, and a rewritten input must not go unnoticed.
            let _ = writeln!(
                std::io::stderr(),
                "rewrote {} ({} bytes)",
                path.display(),
                bytes.len()
            );
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, bytes).unwrap();
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
