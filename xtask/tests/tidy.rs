//! Tidy checks: rules the architecture states, checked against the tree, so that
//! docs/ARCHITECTURE.md cannot drift from the code it describes.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Every file the repository tracks, relative to its root.
fn tracked_files() -> Vec<String> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git lists the repository's files");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter(|p| !p.is_empty() && root().join(p).exists())
        .map(str::to_string)
        .collect()
}

/// A tracked file as text (binary files, such as recordings, read lossily).
fn read(relative: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(root().join(relative)).unwrap()).into_owned()
}

/// `a.{rs,s}` → `a.rs`, `a.s`; `elf/{mod,notes}.rs` → `elf/mod.rs`, `elf/notes.rs`.
fn expand_braces(token: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (token.find('{'), token.find('}')) else {
        return vec![token.to_string()];
    };
    token[open + 1..close]
        .split(',')
        .flat_map(|part| expand_braces(&format!("{}{part}{}", &token[..open], &token[close + 1..])))
        .collect()
}

/// The backticked words of `text` that name a file or directory of the tree.
fn path_tokens(text: &str) -> Vec<String> {
    const EXTENSIONS: [&str; 8] = [".rs", ".s", ".ld", ".md", ".json", ".toml", ".sh", ".x"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.contains(' ') && !t.contains("::") && !t.contains('<') && !t.contains('*'))
        .flat_map(expand_braces)
        .filter(|t| t.ends_with('/') || EXTENSIONS.iter().any(|e| t.ends_with(e)))
        .collect()
}

#[test]
fn every_path_in_the_architecture_exists() {
    let files = tracked_files();
    let doc = read("docs/ARCHITECTURE.md");
    let tokens = path_tokens(&doc);
    assert!(
        tokens.len() > 40,
        "the code map names its files: {tokens:?}"
    );
    let missing: Vec<&String> = tokens
        .iter()
        .filter(|token| {
            // Paths are written relative to the section's directory: a tracked file
            // must end with the path (a directory: contain it).
            !files.iter().any(|file| {
                let file = format!("/{file}");
                if token.ends_with('/') {
                    file.contains(&format!("/{token}"))
                } else {
                    file.ends_with(&format!("/{token}"))
                }
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}

/// Whether the Rust source uses `unsafe` (a block, a function, an impl or an unsafe
/// attribute) outside comments and outside its `#[cfg(test)]` module.
fn uses_unsafe(source: &str) -> bool {
    let code = source.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .any(|line| {
            line.split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|word| word == "unsafe")
        })
}

#[test]
fn unsafe_code_lives_only_where_the_architecture_says() {
    let doc = read("docs/ARCHITECTURE.md");
    // "the binary's `unsafe` is in `arch/`, `console.rs`, ... and `mbi.rs`"
    let sentence = doc
        .split("the\n  binary's `unsafe` is in ")
        .nth(1)
        .and_then(|rest| rest.split("**").next())
        .expect("the unsafe invariant in docs/ARCHITECTURE.md");
    let allowed: BTreeSet<String> = sentence
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(allowed.contains("arch/"), "{allowed:?}");

    let mut found = BTreeSet::new();
    for file in tracked_files() {
        let Some(relative) = file.strip_prefix("loader/src/") else {
            continue;
        };
        if !file.ends_with(".rs") || !uses_unsafe(&read(&file)) {
            continue;
        }
        found.insert(if relative.starts_with("arch/") {
            "arch/".to_string()
        } else {
            relative.to_string()
        });
    }
    assert_eq!(
        found, allowed,
        "files of loader/src with `unsafe` (left) against docs/ARCHITECTURE.md (right)"
    );

    // The test kernels keep theirs in `arch/` too.
    let outside: Vec<String> = tracked_files()
        .into_iter()
        .filter(|f| f.starts_with("test-kernels/src/") && f.ends_with(".rs"))
        .filter(|f| !f.starts_with("test-kernels/src/arch/"))
        .filter(|f| uses_unsafe(&read(f)))
        .collect();
    assert!(
        outside.is_empty(),
        "unsafe outside test-kernels/src/arch/: {outside:?}"
    );
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let undocumented: Vec<String> = tracked_files()
        .into_iter()
        .filter(|f| f.ends_with(".rs") && f.contains("/src/"))
        .filter(|f| !read(f).trim_start().starts_with("//!"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "source files without a `//!` comment at the top: {undocumented:?}"
    );
}

#[test]
fn the_repository_stands_on_its_own() {
    // The team's shared notes are not part of a clone.
    let citing: Vec<String> = tracked_files()
        .into_iter()
        .filter(|f| !f.ends_with("tidy.rs"))
        .filter(|f| {
            let text = read(f);
            text.contains("shared/docs") || text.contains("../shared")
        })
        .collect();
    assert!(
        citing.is_empty(),
        "files citing what a clone does not have: {citing:?}"
    );
}

#[test]
fn bare_metal_build_flags_are_defined_once() {
    // The flags that make the freestanding builds work: only xtask's build code
    // sets them (docs may explain them).
    for flag in ["relocation-model=", "nostartfiles", "crt-static"] {
        let places: Vec<String> = tracked_files()
            .into_iter()
            .filter(|f| !f.ends_with(".md") && !f.ends_with("tidy.rs"))
            .filter(|f| read(f).contains(flag))
            .collect();
        assert_eq!(places, ["xtask/src/build.rs"], "where {flag} is set");
    }
}
