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

/// What the `unsafe` check finds in one Rust file, read whole as Rust's lexer reads
/// it (comments and string literals are not code) with its test modules left out.
#[derive(Debug, Default, PartialEq)]
struct UnsafeScan {
    /// Whether `unsafe` (a block, a function, an impl, an extern block or an unsafe
    /// attribute) appears outside the test modules.
    uses_unsafe: bool,
    /// The test modules kept in files of their own (`#[cfg(test)] mod tests;`), as
    /// the path the file is at relative to the declaring file's module directory
    /// (`tests`, or a `#[path]` attribute's value).
    test_module_files: Vec<String>,
}

/// Scans a Rust source file for `unsafe`, leaving out its test modules: a
/// `#[cfg(test)] mod name { ... }` block wherever it stands, and a
/// `#[cfg(test)] mod name;`, whose file the caller leaves out. Any other item under
/// `#[cfg(test)]` (a helper function, an impl) is code like the rest.
fn scan_unsafe(source: &str) -> UnsafeScan {
    let tokens: proc_macro2::TokenStream = source.parse().expect("a Rust source file lexes");
    let mut scan = UnsafeScan::default();
    scan_tokens(tokens, &mut scan);
    scan
}

fn scan_tokens(tokens: proc_macro2::TokenStream, scan: &mut UnsafeScan) {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut at = 0;
    while at < tokens.len() {
        if let Some((skip, file)) = test_module(&tokens[at..]) {
            scan.test_module_files.extend(file);
            at += skip;
            continue;
        }
        match &tokens[at] {
            TokenTree::Ident(ident) if ident == "unsafe" => scan.uses_unsafe = true,
            TokenTree::Group(group) => scan_tokens(group.stream(), scan),
            _ => {}
        }
        at += 1;
    }
}

/// If `tokens` start with a test module (`#[cfg(test)]`, any other attributes, a
/// visibility, `mod name` and a block or `;`): how many tokens it spans, and for a
/// module in a file of its own, the file's path without `.rs`, or the `#[path]`.
fn test_module(tokens: &[proc_macro2::TokenTree]) -> Option<(usize, Option<String>)> {
    use proc_macro2::{Delimiter, TokenTree};
    let ident =
        |at: usize, word: &str| matches!(tokens.get(at), Some(TokenTree::Ident(i)) if i == word);
    // An outer attribute at `at`: its content.
    let attribute = |at: usize| match (tokens.get(at), tokens.get(at + 1)) {
        (Some(TokenTree::Punct(hash)), Some(TokenTree::Group(group)))
            if hash.as_char() == '#' && group.delimiter() == Delimiter::Bracket =>
        {
            Some(group.stream().into_iter().collect::<Vec<_>>())
        }
        _ => None,
    };
    let is_cfg_test = |content: &[TokenTree]| match content {
        [TokenTree::Ident(cfg), TokenTree::Group(args)] if cfg == "cfg" => {
            args.stream().to_string() == "test"
        }
        _ => false,
    };
    let path_of = |content: &[TokenTree]| match content {
        [TokenTree::Ident(path), TokenTree::Punct(eq), TokenTree::Literal(value)]
            if path == "path" && eq.as_char() == '=' =>
        {
            Some(value.to_string().trim_matches('"').to_string())
        }
        _ => None,
    };
    let mut at = 0;
    let (mut cfg_test, mut path) = (false, None);
    while let Some(content) = attribute(at) {
        cfg_test |= is_cfg_test(&content);
        path = path.or(path_of(&content));
        at += 2;
    }
    if !cfg_test {
        return None;
    }
    if ident(at, "pub") {
        at += 1;
        if matches!(tokens.get(at), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
        {
            at += 1;
        }
    }
    if !ident(at, "mod") {
        return None;
    }
    let Some(TokenTree::Ident(name)) = tokens.get(at + 1) else {
        return None;
    };
    match tokens.get(at + 2)? {
        TokenTree::Group(body) if body.delimiter() == Delimiter::Brace => Some((at + 3, None)),
        TokenTree::Punct(semicolon) if semicolon.as_char() == ';' => {
            Some((at + 3, Some(path.unwrap_or_else(|| name.to_string()))))
        }
        _ => None,
    }
}

#[test]
fn the_unsafe_scan_leaves_out_test_modules_and_nothing_else() {
    let cases: [(&str, &str, bool, &[&str]); 9] = [
        ("plain code", "fn f() { unsafe { g() } }", true, &[]),
        ("a comment", "// unsafe\n/* unsafe */ fn f() {}", false, &[]),
        ("a string", r#"const S: &str = "unsafe";"#, false, &[]),
        ("a lint name", "#![forbid(unsafe_code)]", false, &[]),
        (
            "an unsafe attribute",
            "#[unsafe(no_mangle)] fn f() {}",
            true,
            &[],
        ),
        (
            "an inline test module",
            "#[cfg(test)]\nmod tests { fn f() { unsafe { g() } } }\nfn h() {}",
            false,
            &[],
        ),
        (
            "code after a test module in a file of its own",
            "#[cfg(test)]\nmod tests;\nfn f() { unsafe { g() } }",
            true,
            &["tests"],
        ),
        (
            "a test module with a path, in a module",
            "mod a { #[cfg(test)] #[path = \"t.rs\"] pub(crate) mod t; }",
            false,
            &["t.rs"],
        ),
        (
            "a test-only item that is not a module",
            "#[cfg(test)]\nimpl S { fn f() { unsafe { g() } } }",
            true,
            &[],
        ),
    ];
    for (name, source, uses_unsafe, files) in cases {
        let expected = UnsafeScan {
            uses_unsafe,
            test_module_files: files.iter().map(|f| f.to_string()).collect(),
        };
        assert_eq!(scan_unsafe(source), expected, "{name}");
    }
}

/// The Rust files under `under` that use `unsafe`, whole files read, test modules
/// left out: inline ones by `scan_unsafe`, those in files of their own here (with
/// every file below them).
fn files_with_unsafe(under: &str) -> BTreeSet<String> {
    let files: Vec<String> = tracked_files()
        .into_iter()
        .filter(|f| f.starts_with(under) && f.ends_with(".rs"))
        .collect();
    let scans: Vec<(String, UnsafeScan)> = files
        .iter()
        .map(|f| (f.clone(), scan_unsafe(&read(f))))
        .collect();
    // A file's submodules live in its directory (`mod.rs`, `lib.rs`, `main.rs`) or
    // in the directory named after it.
    let module_dir = |file: &str| {
        let path = Path::new(file);
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let dir = path.parent().unwrap();
        if ["mod", "lib", "main"].contains(&stem) {
            dir.to_path_buf()
        } else {
            dir.join(stem)
        }
    };
    let mut test_files = Vec::new();
    for (file, scan) in &scans {
        for module in &scan.test_module_files {
            let at = module_dir(file).join(module);
            let candidates = if module.ends_with(".rs") {
                vec![at]
            } else {
                vec![at.with_extension("rs"), at.join("mod.rs")]
            };
            let found = candidates
                .iter()
                .map(|c| c.to_str().unwrap().to_string())
                .find(|c| files.contains(c))
                .unwrap_or_else(|| {
                    panic!("{file}: test module {module} not found: {candidates:?}")
                });
            test_files.push(found);
        }
    }
    let in_test_module = |file: &str| {
        test_files.iter().any(|test| {
            let below = module_dir(test).to_str().unwrap().to_string() + "/";
            file == test || file.starts_with(&below)
        })
    };
    scans
        .into_iter()
        .filter(|(file, scan)| scan.uses_unsafe && !in_test_module(file))
        .map(|(file, _)| file)
        .collect()
}

#[test]
fn unsafe_code_lives_only_where_the_architecture_says() {
    let doc = read("docs/ARCHITECTURE.md");
    // "the binary's `unsafe` is in `arch/`, `console.rs`, ... and `logger.rs`"
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

    let found: BTreeSet<String> = files_with_unsafe("loader/src/")
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix("loader/src/").unwrap();
            if relative.starts_with("arch/") {
                "arch/".to_string()
            } else {
                relative.to_string()
            }
        })
        .collect();
    assert_eq!(
        found, allowed,
        "files of loader/src with `unsafe` (left) against docs/ARCHITECTURE.md (right)"
    );

    // The test kernels keep theirs in `arch/` too.
    let outside: Vec<String> = files_with_unsafe("test-kernels/src/")
        .into_iter()
        .filter(|f| !f.starts_with("test-kernels/src/arch/"))
        .collect();
    assert!(
        outside.is_empty(),
        "unsafe outside test-kernels/src/arch/: {outside:?}"
    );
}

/// The paths a Rust source names through `crate::` (and `super::` where that leaves
/// `dir`), as the module or item that follows.
fn names_outside(source: &str, super_leaves: bool) -> Vec<String> {
    use proc_macro2::TokenTree;
    fn walk(tokens: proc_macro2::TokenStream, super_leaves: bool, names: &mut Vec<String>) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (at, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Group(group) => walk(group.stream(), super_leaves, names),
                TokenTree::Ident(root) if root == "crate" || (super_leaves && root == "super") => {
                    let path = |offset: usize| tokens.get(at + offset);
                    if let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)), Some(next)) =
                        (path(1), path(2), path(3))
                    {
                        if a.as_char() == ':' && b.as_char() == ':' {
                            names.push(next.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut names = Vec::new();
    walk(
        source.parse().expect("a Rust source file lexes"),
        super_leaves,
        &mut names,
    );
    names
}

#[test]
fn the_loaders_arch_is_a_leaf() {
    // `arch/` reports through what the binary hands it (the exception handler's
    // report function, the heap area) and returns what it measured: it names
    // nothing of the binary but the Rust entry its start-up code jumps to.
    let mut named = Vec::new();
    for file in tracked_files() {
        let Some(relative) = file.strip_prefix("loader/src/arch/") else {
            continue;
        };
        if !file.ends_with(".rs") {
            continue;
        }
        // The module root's `super` is the binary's root; a file beside it reaches
        // the root through `super::super`, which `crate::` covers as well.
        let is_root = relative.ends_with("x86_64/mod.rs");
        let source = read(&file);
        let mut names = names_outside(&source, is_root);
        if !is_root && source.contains("super::super") {
            names.push("super::super".into());
        }
        named.extend(
            names
                .into_iter()
                .filter(|name| name != "loader_main")
                .map(|name| format!("{relative}: {name}")),
        );
    }
    assert!(
        named.is_empty(),
        "loader/src/arch names the binary's modules: {named:?}"
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
