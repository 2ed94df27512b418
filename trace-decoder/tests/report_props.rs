//! Property test: building a report and rendering it four ways never panics, on
//! any event list — known event names with random, missing, huge or non-numeric
//! field values, junk names and keys, control characters anywhere — and on any
//! stream health, exit status, host times and loader image. Beyond not panicking,
//! every rendering keeps its form: the JSON follows docs/report-schema.json, the
//! Chrome trace is JSON, the SVG is well-formed XML, and the text carries no control
//! character but its line breaks.

use std::sync::OnceLock;
use std::time::Duration;

use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;
use trace_decoder::decode::Event;
use trace_decoder::report::{BootRecord, HostTimes, Report};

/// Every event of docs/trace-format.md with its field names.
const EVENTS: &[(&str, &[&str])] = &[
    ("LoaderStart", &["format", "build", "mbi"]),
    ("PagingEnabled", &[]),
    ("LongModeEntered", &[]),
    ("MemoryMap", &["regions"]),
    ("CommandLine", &["kernel_args_at", "app_args_at", "text"]),
    ("Frequency", &["khz", "source"]),
    ("Module", &["start", "end"]),
    (
        "Kernel",
        &[
            "kind",
            "entry_version",
            "version",
            "generation",
            "segments",
            "base",
            "entry",
        ],
    ),
    (
        "SegmentLoaded",
        &[
            "addr",
            "filesz",
            "memsz",
            "flags",
            "copy_ticks",
            "zero_ticks",
        ],
    ),
    (
        "Relocated",
        &["relative", "abs64", "glob_dat", "weak_skipped", "ticks"],
    ),
    ("Tls", &["start", "filesz", "memsz", "align"]),
    ("Mapping", &["start", "end", "page_kib", "writable"]),
    (
        "PageTables",
        &[
            "contract", "pml4", "tables", "bytes_4k", "bytes_2m", "ticks",
        ],
    ),
    ("DeviceTree", &["addr", "size", "ticks"]),
    ("HandOver", &["entry", "rdi", "rsp"]),
    ("Refused", &["code", "name", "text"]),
    (
        "CpuException",
        &["vector", "error_code", "rip", "cr2", "in_kernel"],
    ),
];

/// A displayed list of memory-map entries (`[start-end:kind, ...]`), some of them
/// junk.
fn map_entries() -> impl Strategy<Value = String> {
    let entry = prop_oneof![
        4 => (0u64..0x1_0000_0000, any::<u64>(), 0u64..8)
            .prop_map(|(start, end, kind)| format!("{start:#x}-{end:#x}:{kind}")),
        1 => "[-:0-9a-x\\[\\] ]{0,8}",
    ];
    prop::collection::vec(entry, 0..6).prop_map(|entries| format!("[{}]", entries.join(", ")))
}

/// A displayed field value: plausible numbers most of the time, anything else too.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => map_entries(),
        4 => (0u64..100_000).prop_map(|v| v.to_string()),
        4 => (0u64..0x1_0000_0000).prop_map(|v| format!("{v:#x}")),
        2 => any::<u64>().prop_map(|v| v.to_string()),
        2 => any::<u64>().prop_map(|v| format!("{v:#x}")),
        1 => select(vec!["true", "false", "", "-1", "0x", "1e9", "99999999999999999999"])
            .prop_map(str::to_string),
        1 => "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{202e}\\u{fffe}<>&\"' a-z0-9\\\\]{0,12}",
        1 => any::<String>(),
    ]
}

/// Junk text for names and keys.
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_]{0,10}",
        "[\\x00-\\x1f\\u{1b}\\u{7f}a-z\\[\\];]{0,10}",
        any::<String>()
    ]
}

fn timestamp() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..50_000_000, 1 => any::<u64>()]
}

fn event() -> impl Strategy<Value = Event> {
    let known = (0..EVENTS.len(), timestamp()).prop_flat_map(|(index, t)| {
        let (name, keys) = EVENTS[index];
        (
            prop::collection::vec(option::weighted(0.85, value()), keys.len()),
            prop::collection::vec((junk(), value()), 0..2),
        )
            .prop_map(move |(values, extra)| {
                let mut fields: Vec<(String, String)> = keys
                    .iter()
                    .zip(values)
                    .filter_map(|(k, v)| Some((k.to_string(), v?)))
                    .collect();
                fields.extend(extra);
                Event {
                    timestamp: t,
                    level: "info".to_string(),
                    name: name.to_string(),
                    fields,
                }
            })
    });
    let unknown = (
        timestamp(),
        junk(),
        prop::collection::vec((junk(), value()), 0..4),
    )
        .prop_map(|(timestamp, name, fields)| Event {
            timestamp,
            level: "info".to_string(),
            name,
            fields,
        });
    prop_oneof![6 => known, 1 => unknown]
}

fn duration() -> impl Strategy<Value = Option<Duration>> {
    option::of(prop_oneof![
        (0u64..10_000_000).prop_map(Duration::from_micros),
        any::<u64>().prop_map(Duration::from_nanos),
    ])
}

fn record() -> impl Strategy<Value = BootRecord> {
    (
        prop::collection::vec(event(), 0..40),
        (duration(), duration(), duration(), duration(), duration()),
        option::of(any::<i32>()),
        (any::<usize>(), any::<bool>(), any::<usize>(), any::<bool>()),
        option::of((any::<u64>(), any::<u64>())),
    )
        .prop_map(
            |(events, host, exit_status, health, loader_image)| BootRecord {
                events,
                host: HostTimes {
                    first_byte: host.0,
                    loader_start: host.1,
                    first_timed_event: host.1.map(|t| t + Duration::from_micros(300)),
                    hand_over: host.2,
                    first_kernel_output: host.3,
                    end: host.4,
                },
                exit_status,
                malformed_frames: health.0,
                truncated: health.1,
                loader_image,
                text_bytes: health.2,
                errors_only: health.3,
            },
        )
}

fn schema() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report-schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_events_give_a_well_formed_report(record in record()) {
        let report = Report::build(&record);

        let text = report.render_text(false);
        prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{}", text);
        let colored = report.render_text(true);
        prop_assert!(colored.starts_with("\x1b[1m"), "colour codes");
        prop_assert!(!report.summary_line().chars().any(char::is_control));

        let json: Value = serde_json::from_str(&report.to_json()).expect("report JSON");
        let errors: Vec<String> = schema().iter_errors(&json).map(|e| e.to_string()).collect();
        prop_assert!(errors.is_empty(), "{:?}", errors);

        let chrome: Value = serde_json::from_str(&report.to_chrome_trace()).expect("trace JSON");
        for event in chrome["traceEvents"].as_array().expect("traceEvents") {
            if event["ph"] == "X" {
                prop_assert!(event["ts"].as_f64().is_some_and(|t| t >= 0.0), "{}", event);
                prop_assert!(event["dur"].as_f64().is_some_and(|d| d >= 0.0), "{}", event);
            }
        }

        let svg = report.to_svg();
        let doc = roxmltree::Document::parse(&svg);
        prop_assert!(doc.is_ok(), "{:?}", doc.err());
        // Every coordinate is a finite, non-negative number.
        for node in doc.unwrap().descendants().filter(|n| n.is_element()) {
            for attr in ["x", "y", "x1", "y1", "x2", "y2", "width", "height"] {
                if let Some(v) = node.attribute(attr).filter(|v| !v.ends_with('%')) {
                    let number = v.parse::<f64>();
                    prop_assert!(
                        number.as_ref().is_ok_and(|n| n.is_finite() && *n >= 0.0),
                        "{}={:?} on <{}>", attr, v, node.tag_name().name()
                    );
                }
            }
        }
    }
}
