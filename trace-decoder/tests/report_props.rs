//! Property test: building a report and rendering it four ways never panics, on
//! any event list — every event of the contract with random, extreme or nonsensical
//! values of its field types, events of unknown kinds, control characters anywhere
//! text goes — and on any
//! stream health, exit status, host times and loader image. Beyond not panicking,
//! every rendering keeps its form: the JSON follows docs/report-schema.json, the
//! Chrome trace is JSON, the SVG is well-formed XML, and the text carries no control
//! character but its line breaks.

use std::sync::OnceLock;
use std::time::Duration;

use proptest::option;
use proptest::prelude::*;
use rusty_loader::wire::{FieldType, LoaderEvent, Value as WireValue, EVENTS};
use serde_json::Value;
use trace_decoder::decode::Event;
use trace_decoder::decode::{BootRecord, HostTimes};
use trace_decoder::report::Report;

/// A memory-map entry: plausible ranges most of the time, anything else too.
fn map_entry() -> impl Strategy<Value = Vec<WireValue>> {
    prop_oneof![
        4 => (0u64..0x1_0000_0000, 0u64..0x1_0000_0000, 0u64..8),
        1 => (any::<u64>(), any::<u64>(), 0u64..256),
    ]
    .prop_map(|(start, end, kind)| {
        vec![
            WireValue::Unsigned(start),
            WireValue::Unsigned(end),
            WireValue::Unsigned(kind),
        ]
    })
}

/// Text as the stream may carry it: names, control characters, markup, anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[a-z0-9_.+-]{0,12}",
        1 => "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{202e}\\u{fffe}<>&\"' a-z0-9\\\\]{0,12}",
        1 => any::<String>(),
    ]
}

/// A value of one field type: plausible numbers most of the time, extremes too.
fn field_value(ty: FieldType) -> BoxedStrategy<WireValue> {
    let unsigned = |max: u64| {
        prop_oneof![
            4 => (0..=max.min(100_000)).prop_map(WireValue::Unsigned),
            1 => (0..=max).prop_map(WireValue::Unsigned),
            1 => Just(WireValue::Unsigned(max)),
        ]
        .boxed()
    };
    match ty {
        FieldType::U8 => unsigned(u64::from(u8::MAX)),
        FieldType::U16 => unsigned(u64::from(u16::MAX)),
        FieldType::U32 => unsigned(u64::from(u32::MAX)),
        FieldType::U64 => prop_oneof![
            3 => unsigned(u64::MAX),
            2 => (0u64..0x1_0000_0000).prop_map(WireValue::Unsigned),
        ]
        .boxed(),
        FieldType::Bool => any::<bool>().prop_map(WireValue::Bool).boxed(),
        FieldType::Str | FieldType::IStr => text().prop_map(WireValue::Str).boxed(),
        FieldType::MemoryMap => prop::collection::vec(map_entry(), 0..6)
            .prop_map(WireValue::List)
            .boxed(),
        FieldType::Words => prop::collection::vec(any::<u64>(), 0..17)
            .prop_map(|words| {
                WireValue::List(
                    words
                        .into_iter()
                        .map(|w| vec![WireValue::Unsigned(w)])
                        .collect(),
                )
            })
            .boxed(),
    }
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

/// Any event of the contract with any values of its field types, or an event the
/// contract does not know (from a newer loader) with junk in it.
fn event() -> impl Strategy<Value = Event> {
    let known = (0..EVENTS.len(), timestamp()).prop_flat_map(|(index, t)| {
        let spec = &EVENTS[index];
        let values: Vec<BoxedStrategy<WireValue>> =
            spec.fields.iter().map(|f| field_value(f.ty)).collect();
        values.prop_map(move |values| {
            let kind =
                LoaderEvent::from_values(spec.name, &values).expect("values of the field types");
            Event::new(t, kind)
        })
    });
    let unknown = (timestamp(), junk(), text()).prop_map(|(timestamp, name, message)| {
        Event::new(timestamp, LoaderEvent::Unknown { name, message })
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
        (
            any::<usize>(),
            any::<bool>(),
            any::<usize>(),
            any::<bool>(),
            any::<usize>(),
        ),
        option::of((any::<u64>(), any::<u64>())),
        any::<usize>(),
    )
        .prop_map(
            |(events, host, exit_status, health, loader_image, earlier_boots)| BootRecord {
                events,
                earlier_boots,
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
                trace_bytes: health.4,
                ..BootRecord::default()
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
