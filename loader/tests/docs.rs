//! Keeps the documentation in step with the code: the exit-code table and the
//! trace-event table must list exactly what the code defines.

use std::path::Path;

use rusty_loader::error::ExitCode;
use rusty_loader::wire::EVENTS;

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
    for (row, &code) in table.iter().zip(ExitCode::ALL) {
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

#[test]
fn trace_format_table_matches_the_code() {
    let doc = read("../docs/trace-format.md");
    let table = rows(&doc, |c| {
        c.starts_with('`') && c.chars().nth(1).is_some_and(|ch| ch.is_ascii_uppercase())
    });
    // The meaning is the event's doc comment, its lines joined.
    let code: Vec<(String, &str, String)> = EVENTS
        .iter()
        .map(|spec| {
            let meaning = spec
                .doc
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            (format!("`{}`", spec.format), spec.level.name(), meaning)
        })
        .collect();
    let matches = table.len() == code.len()
        && table
            .iter()
            .zip(&code)
            .all(|(row, (format, level, meaning))| {
                row[0] == *format && row[1] == *level && row[2] == *meaning
            });
    if !matches {
        // The rows as the code defines them, to paste into the table.
        let rows: Vec<String> = code
            .iter()
            .map(|(format, level, meaning)| format!("| {format} | {level} | {meaning} |"))
            .collect();
        panic!(
            "docs/trace-format.md's event table differs from the wire contract (loader/src/wire.rs); the code's rows:\n{}",
            rows.join("\n")
        );
    }
}
