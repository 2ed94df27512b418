//! The library's three layers import only downward (src/lib.rs): `decode` names
//! nothing of `report` or `host`, and `report` nothing of `host`. Checked on the
//! source files, so that a path that climbs a layer fails here rather than growing
//! a circle again: every `crate::` path and every `super::` chain that reaches the
//! crate's root, in `use` lines and in code, comments and strings left out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first, each with the layers above it that it must not name.
const RULES: [(&str, &[&str]); 2] = [("decode", &["report", "host"]), ("report", &["host"])];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `dir`, with its path relative to `src/`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path.strip_prefix(src()).unwrap().to_path_buf());
        }
    }
    files.sort();
    files
}

/// How many `super::` lead from the file's module to the crate's root:
/// `decode/mod.rs` 1, `decode/session.rs` 2, `decode/trace_table/tests.rs` 3.
fn depth(relative: &Path) -> usize {
    let parts = relative.components().count();
    if relative.file_name().is_some_and(|n| n == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// The source without comments, string and character literals (each replaced by a
/// space), so that only code is read.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        match chars[i] {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                out.push(' ');
            }
            '/' if next == Some('*') => {
                let mut open = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        open += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        open -= 1;
                        i += 2;
                        if open == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            'r' if matches!(next, Some('"' | '#')) && (i == 0 || !is_ident(chars[i - 1])) => {
                // A raw string: r"..." or r#"..."#.
                let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
                let closing: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let body = i + 2 + hashes;
                let rest: String = chars[body.min(chars.len())..].iter().collect();
                let end = rest.find(&closing).map_or(chars.len(), |at| {
                    body + rest[..at].chars().count() + closing.chars().count()
                });
                i = end;
                out.push(' ');
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                out.push(' ');
            }
            // A character literal ('a', '\n', '\''), not a lifetime ('a).
            '\'' if chars.get(i + 2) == Some(&'\'') || next == Some('\\') => {
                i += if next == Some('\\') { 4 } else { 3 };
                while i < chars.len() && chars[i - 1] != '\'' {
                    i += 1;
                }
                out.push(' ');
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The crate-level modules the code names: the first segment after each `crate::`,
/// after each `super::` chain that reaches the root from a module `depth` deep, and
/// inside their groups (`crate::{decode, report::Report}`). A glob of the root
/// (`crate::*`) names every module.
fn root_modules(code: &str, depth: usize) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let at_word = i == 0 || !(is_ident(bytes[i - 1]) || bytes[i - 1] == '$');
        let rest: String = bytes[i..bytes.len().min(i + 64)].iter().collect();
        if at_word && rest.starts_with("crate") && after_separator(&bytes, i + 5).is_some() {
            let start = after_separator(&bytes, i + 5).unwrap();
            first_segments(&bytes, start, &mut named);
            i = start;
            continue;
        }
        if at_word && rest.starts_with("super") {
            // Count the chain `super::super::...`.
            let mut at = i;
            let mut supers = 0;
            while bytes[at..].iter().collect::<String>().starts_with("super") {
                match after_separator(&bytes, at + 5) {
                    Some(next) => {
                        supers += 1;
                        at = next;
                    }
                    None => break,
                }
            }
            if supers >= depth && supers > 0 {
                first_segments(&bytes, at, &mut named);
            }
            i = at.max(i + 5);
            continue;
        }
        i += 1;
    }
    named
}

/// The position after `::` (spaces allowed around it) at `at`, if it is there.
fn after_separator(chars: &[char], mut at: usize) -> Option<usize> {
    while chars.get(at).is_some_and(|c| c.is_whitespace()) {
        at += 1;
    }
    if chars.get(at) == Some(&':') && chars.get(at + 1) == Some(&':') {
        at += 2;
        while chars.get(at).is_some_and(|c| c.is_whitespace()) {
            at += 1;
        }
        Some(at)
    } else {
        None
    }
}

/// The first segment of the path at `at`, or of each path in the group there.
fn first_segments(chars: &[char], at: usize, named: &mut BTreeSet<String>) {
    match chars.get(at) {
        Some('{') => {
            // Each path of the group starts after the brace or after a comma at the
            // group's own depth.
            let mut level = 0;
            let mut i = at;
            while i < chars.len() {
                match chars[i] {
                    '{' => {
                        level += 1;
                        if level == 1 {
                            first_segments(chars, skip_space(chars, i + 1), named);
                        }
                    }
                    ',' if level == 1 => first_segments(chars, skip_space(chars, i + 1), named),
                    '}' => {
                        level -= 1;
                        if level == 0 {
                            return;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        Some('*') => {
            named.insert("*".to_string());
        }
        _ => {
            let name: String = chars[at..].iter().take_while(|&&c| is_ident(c)).collect();
            if !name.is_empty() && name != "self" {
                named.insert(name);
            }
        }
    }
}

fn skip_space(chars: &[char], mut at: usize) -> usize {
    while chars.get(at).is_some_and(|c| c.is_whitespace()) {
        at += 1;
    }
    at
}

/// The paths of `layer`'s files that name a layer it must not, with what they name.
fn violations(layer: &str, above: &[&str]) -> Vec<String> {
    let files = rust_files(&src().join(layer));
    assert!(
        files.len() > 3,
        "src/{layer}/ holds the layer's files: {files:?}"
    );
    let mut found = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(src().join(&file)).unwrap();
        let named = root_modules(&code_only(&source), depth(&file));
        for name in named {
            if name == "*" || above.contains(&name.as_str()) {
                found.push(format!("src/{} names crate::{name}", file.display()));
            }
        }
    }
    found
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    for (layer, above) in RULES {
        let found = violations(layer, above);
        assert!(
            found.is_empty(),
            "the {layer} layer must not depend on {above:?} (src/lib.rs):\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn the_library_is_the_three_layers() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    for layer in ["decode", "report", "host"] {
        assert!(
            lib.contains(&format!("pub mod {layer};")),
            "src/lib.rs declares the {layer} layer"
        );
        assert!(src().join(layer).join("mod.rs").is_file());
    }
}

#[test]
fn the_reader_finds_every_way_to_name_a_layer() {
    let names = |code: &str, depth: usize| -> Vec<String> {
        root_modules(&code_only(code), depth).into_iter().collect()
    };
    assert_eq!(names("use crate::report::Report;", 2), ["report"]);
    assert_eq!(
        names(
            "use crate::{\n    decode::Event,\n    host::{pump, color},\n};",
            2
        ),
        ["decode", "host"]
    );
    assert_eq!(names("let r = crate :: host::pump::STALL;", 2), ["host"]);
    assert_eq!(names("use super::super::report::Report;", 2), ["report"]);
    assert_eq!(names("use super::report::Report;", 1), ["report"]);
    // `super::` within the layer reaches no other layer.
    assert!(names("use super::event::Event;", 2).is_empty());
    assert_eq!(names("use super::*;", 1), ["*"]);
    // Comments, doc comments and strings do not count.
    assert!(names(
        "// crate::report\n/// [`crate::host`]\n/* crate::host */ let s = \"crate::host\"; let r = r#\"crate::report\"#; let c = '\"';",
        2
    )
    .is_empty());
    assert!(names("let x = 'a'; fn f<'a>(s: &'a str) {} use crate::decode;", 2) == ["decode"]);
}
