//! What the decoder targets share: the recordings' loader table, running a live
//! session over a stream in some chunking, and the checks on what comes out and on
//! the report built from it.

use std::sync::OnceLock;

use rusty_loader::wire::LoaderEvent;
use trace_decoder::decode::stream::text_only;
use trace_decoder::decode::BootRecord;
use trace_decoder::decode::{Event, TraceTable};
use trace_decoder::decode::{Output, Session, TraceStatus};
use trace_decoder::report::memory::LISTED_WARNINGS;
use trace_decoder::report::Report;

/// The loader ELF that made the decoder's recordings (its table names the events
/// the structured targets write).
const LOADER_ELF: &[u8] = include_bytes!("../../trace-decoder/tests/recordings/rusty-loader.elf");

/// The recordings' table, read once.
pub fn table() -> &'static TraceTable {
    static TABLE: OnceLock<TraceTable> = OnceLock::new();
    TABLE.get_or_init(|| TraceTable::from_elf(LOADER_ELF).expect("the recordings' loader ELF"))
}

/// The raw table of the same ELF (interned strings and element formats by index).
pub fn raw_table() -> &'static trace_decoder::decode::table::Table {
    static TABLE: OnceLock<trace_decoder::decode::table::Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        trace_decoder::decode::table::Table::from_elf(LOADER_ELF)
            .expect("the recordings' loader ELF")
    })
}

/// One output of a session, owned; text pieces in a row are merged (how text is cut
/// depends on the chunking, its bytes do not).
#[derive(Clone, Debug, PartialEq)]
pub enum Said {
    Text(Vec<u8>),
    Event(Event, Option<f64>),
    Warning(String),
}

/// What a session said and recorded.
pub struct Run {
    pub said: Vec<Said>,
    pub record: BootRecord,
    pub status: TraceStatus,
}

/// Runs a session over `stream` cut into pieces of the sizes in `chunks` (cycled;
/// empty: one piece).
pub fn run(table: &TraceTable, stream: &[u8], chunks: &[usize]) -> Run {
    let mut said: Vec<Said> = Vec::new();
    let mut take = |output: Output| match output {
        Output::Text(text) => match said.last_mut() {
            Some(Said::Text(before)) => before.extend_from_slice(text),
            _ => said.push(Said::Text(text.to_vec())),
        },
        Output::Event(event, micros) => said.push(Said::Event(event.clone(), micros)),
        Output::Warning(warning) => said.push(Said::Warning(warning)),
    };
    let mut session = Session::new(table);
    let mut sizes = chunks.iter().copied().cycle();
    let mut rest = stream;
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        session.feed(chunk, &mut take);
        rest = tail;
    }
    let status = session.status();
    let record = session.finish(None, &mut take);
    Run {
        said,
        record,
        status,
    }
}

/// Decodes `stream` whole and in `chunks`: the same text, events and warnings in
/// the same order, the same record; the text is the stream without its frames; the
/// record holds one boot; and the report on it passes [`check_report_text`].
/// Returns the work the stream asked for: events and regions (see
/// [`super::bounded`]).
pub fn check_stream(stream: &[u8], chunks: &[usize]) -> usize {
    let table = table();
    let whole = run(table, stream, &[]);
    let chunked = run(table, stream, chunks);
    assert_eq!(whole.said, chunked.said, "whole vs chunks {chunks:?}");
    assert_eq!(whole.status, chunked.status);
    let (a, b) = (&whole.record, &chunked.record);
    assert_eq!(a.events, b.events);
    assert_eq!(
        (
            a.earlier_boots,
            a.malformed_frames,
            a.truncated,
            a.text_bytes,
            a.trace_bytes
        ),
        (
            b.earlier_boots,
            b.malformed_frames,
            b.truncated,
            b.text_bytes,
            b.trace_bytes
        )
    );

    let text: Vec<u8> = whole
        .said
        .iter()
        .filter_map(|s| match s {
            Said::Text(t) => Some(t.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    assert_eq!(text, text_only(stream));
    assert_eq!(a.text_bytes, text.len());

    // Only the last boot is kept: a `LoaderStart`, if any, comes first.
    let is_start = |e: &Event| matches!(e.kind, LoaderEvent::LoaderStart { .. });
    assert!(a.events.iter().skip(1).all(|e| !is_start(e)));
    let shown = whole
        .said
        .iter()
        .filter(|s| matches!(s, Said::Event(..)))
        .count();
    assert!(a.events.len() <= shown);

    // The report of what was decoded; its other renderings are the `report`
    // target's (they cost far more than decoding, and would slow this target down
    // to a few hundred inputs a second).
    let report = check_report_text(a);
    shown + report.memory.len()
}

/// Builds the report and renders it as text: no panic, warnings of each listed
/// kind capped, every region a warning names exists, no control character in the
/// text.
pub fn check_report_text(record: &BootRecord) -> Report {
    let report = Report::build(record);
    for kind in ["overlap", "outside-ram", "timeline"] {
        let count = report.warnings.iter().filter(|w| w.kind == kind).count();
        assert!(count <= LISTED_WARNINGS + 1, "{count} {kind} warnings");
    }
    for warning in &report.warnings {
        assert!(
            warning.regions.iter().all(|&i| i < report.memory.len()),
            "{warning:?}"
        );
    }
    let plain = report.render_text(false);
    assert!(
        !plain.chars().any(|c| c.is_control() && c != '\n'),
        "a control character in the text report"
    );
    report
}

/// [`check_report_text`], and the coloured text, the JSON, the Chrome trace and
/// the SVG well-formed. Returns the work the record asked for: events and regions
/// (see [`super::bounded`]).
pub fn check_report(record: &BootRecord) -> usize {
    let report = check_report_text(record);
    let colored = report.render_text(true);
    assert!(!colored
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\x1b'));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON report");
    assert!(json.is_object());
    let chrome: serde_json::Value =
        serde_json::from_str(&report.to_chrome_trace()).expect("Chrome trace");
    assert!(chrome["traceEvents"].is_array());
    let svg = report.to_svg();
    roxmltree::Document::parse(&svg).expect("well-formed SVG");
    record.events.len() + report.memory.len()
}
