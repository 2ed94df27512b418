//! Keeps the documentation in step with the code: the exit-code table and the
//! trace-event table must list exactly what the code defines.

use std::path::Path;

use rusty_loader::error::ExitCode;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cells of every table row whose first cell matches `first`.
fn rows(markdown: &str, first: impl Fn(&str) -> bool) -> Vec<Vec<String>> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix('|'))
        .map(|line| {
            line.split('|')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|cells| cells.first().is_some_and(|c| first(c)))
        .collect()
}

#[test]
fn exit_code_table_matches_the_code() {
    let doc = read("../docs/exit-codes.md");
    let table = rows(&doc, |c| c.starts_with("0x"));
    assert_eq!(table.len(), ExitCode::ALL.len(), "one row per exit code");
    for (row, code) in table.iter().zip(ExitCode::ALL) {
        let value = if code == ExitCode::CpuException {
            "0x40 + n".to_string()
        } else {
            format!("{:#x}", code.port_value())
        };
        assert_eq!(row[0], value, "value of {code:?}");
        if code != ExitCode::CpuException {
            assert_eq!(row[1], code.qemu_status().to_string(), "status of {code:?}");
        }
        assert_eq!(row[2], code.name(), "name of {code:?}");
    }
}

/// `(name, level, format string, doc comment)` of every `event!` in the loader's
/// trace module.
fn events_in_code() -> Vec<(String, String, String, String)> {
    let source = read("src/trace.rs");
    let mut events = Vec::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find("event!(") {
        rest = &rest[at + "event!(".len()..];
        let end = rest.find("\n);").expect("event! closes");
        let body: String = rest[..end]
            .lines()
            .filter(|l| !l.trim_start().starts_with("///"))
            .collect::<Vec<_>>()
            .join(" ");
        let doc: String = rest[..end]
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("///"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let mut words = body.split_whitespace();
        let level = words.next().expect("a level").to_string();
        let name = words
            .next()
            .expect("a name")
            .split('(')
            .next()
            .unwrap()
            .to_string();
        let format = body
            .split("=> \"")
            .nth(1)
            .expect("a format string")
            .trim_end()
            .trim_end_matches('"')
            .to_string();
        events.push((name, level, format, doc));
        rest = &rest[end..];
    }
    events
}

#[test]
fn trace_format_table_matches_the_code() {
    let doc = read("../docs/trace-format.md");
    let table = rows(&doc, |c| {
        c.starts_with('`') && c.chars().nth(1).is_some_and(|ch| ch.is_ascii_uppercase())
    });
    let code = events_in_code();
    assert!(
        code.len() >= 16,
        "expected the whole event set, found {}",
        code.len()
    );
    let matches = table.len() == code.len()
        && table
            .iter()
            .zip(&code)
            .all(|(row, (_, level, format, doc))| {
                row[0] == format!("`{format}`") && row[1] == *level && row[2] == *doc
            });
    if !matches {
        // The rows as the code defines them (the meaning is the doc comment), to
        // paste into the table.
        let rows: Vec<String> = code
            .iter()
            .map(|(_, level, format, doc)| format!("| `{format}` | {level} | {doc} |"))
            .collect();
        panic!(
            "docs/trace-format.md's event table differs from loader/src/trace.rs; the code's rows:\n{}",
            rows.join("\n")
        );
    }
}
