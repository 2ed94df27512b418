//! The report's four renderings of every recorded boot in `tests/recordings/`,
//! compared with golden files in `tests/snapshots/`, and checked for form: the JSON
//! against `docs/report-schema.json` (with the `jsonschema` crate), the Chrome trace
//! for its event structure, the SVG for well-formed XML with a sized root.
//!
//! After a deliberate change to a rendering, regenerate the golden files and review
//! the diff before committing it:
//!
//! ```text
//! UPDATE_SNAPSHOTS=1 cargo test -p trace-decoder --test report_recordings
//! ```
//!
//! The update lists each file it changes on stderr and then checks the files like
//! any other run; any other value of `UPDATE_SNAPSHOTS` is an error.
//!
//! Snapshots are deterministic: recordings carry no host times, text is rendered
//! without colour, and nothing depends on where the repository lives.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use similar::TextDiff;
use trace_decoder::decode::{decode_recording, TraceTable};
use trace_decoder::decode::{BootRecord, HostTimes};
use trace_decoder::report::Report;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn recordings_dir() -> PathBuf {
    manifest_dir().join("tests/recordings")
}

fn snapshots_dir() -> PathBuf {
    manifest_dir().join("tests/snapshots")
}

/// Every recorded stream's name (`hello-dyn-pc` for `hello-dyn-pc.bin`), sorted.
fn recording_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(recordings_dir())
        .expect("tests/recordings exists")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".bin")?.to_string())
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no recordings in tests/recordings");
    names
}

/// A recorded boot as the command line would see it: events, stream health, the
/// QEMU status next to it, and the loader image from the ELF.
fn record(name: &str) -> BootRecord {
    let dir = recordings_dir();
    let elf = fs::read(dir.join("rusty-loader.elf")).expect("the recorded loader ELF");
    let table = TraceTable::from_elf(&elf).expect("a defmt table in the ELF");
    let stream = fs::read(dir.join(format!("{name}.bin"))).expect("the recording");
    let decoded = decode_recording(&table, &stream).expect("the recording decodes");
    let exit_status = fs::read_to_string(dir.join(format!("{name}.status")))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    BootRecord {
        events: decoded.events,
        earlier_boots: decoded.earlier_boots,
        exit_status,
        malformed_frames: decoded.malformed_frames,
        truncated: decoded.truncated,
        trace_bytes: decoded.trace_bytes,
        loader_image: table.loader_image(),
        text_bytes: decoded.text.len(),
        ..BootRecord::default()
    }
}

/// Whether to rewrite the golden files: `UPDATE_SNAPSHOTS=1`. Any other value (`0`,
/// `yes`, empty) is refused rather than read either way.
fn update_requested() -> bool {
    match std::env::var_os("UPDATE_SNAPSHOTS") {
        None => false,
        Some(value) if value == "1" => true,
        Some(value) => panic!(
            "UPDATE_SNAPSHOTS={value:?}: set UPDATE_SNAPSHOTS=1 to rewrite tests/snapshots/, or unset it"
        ),
    }
}

/// The renderings compared with golden files, by file suffix.
fn renderings(report: &Report) -> [(&'static str, String); 4] {
    [
        ("txt", report.render_text(false)),
        ("json", report.to_json()),
        ("chrome.json", report.to_chrome_trace()),
        ("svg", report.to_svg()),
    ]
}

#[test]
fn renderings_match_the_snapshots() {
    let update = update_requested();
    let dir = snapshots_dir();
    fs::create_dir_all(&dir).expect("create tests/snapshots");
    let mut expected_files = Vec::new();
    let mut failures = Vec::new();
    for name in recording_names() {
        let report = Report::build(&record(&name));
        for (suffix, actual) in renderings(&report) {
            let file = format!("{name}.{suffix}");
            let path = dir.join(&file);
            expected_files.push(file.clone());
            if update {
                let before = fs::read_to_string(&path).unwrap_or_default();
                if before != actual {
                    // Straight to the terminal: cargo test captures `eprintln!` of a
                    // passing test, and a rewrite must not go unnoticed.
                    let _ = writeln!(
                        std::io::stderr(),
                        "rewrote snapshots/{file}: {} -> {} bytes",
                        before.len(),
                        actual.len()
                    );
                }
                // Checked below like any other run: the file must now say `actual`.
                fs::write(&path, &actual).expect("write the snapshot");
            }
            let expected = fs::read_to_string(&path).unwrap_or_default();
            if expected != actual {
                let diff = TextDiff::from_lines(&expected, &actual)
                    .unified_diff()
                    .context_radius(2)
                    .header(&format!("snapshots/{file}"), "actual")
                    .to_string();
                failures.push(diff);
            }
        }
    }
    // A snapshot whose recording is gone would never be checked again.
    let orphans: Vec<String> = fs::read_dir(&dir)
        .expect("tests/snapshots exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| !expected_files.contains(f))
        .collect();
    assert!(
        orphans.is_empty(),
        "snapshots without a recording (delete them): {orphans:?}"
    );
    assert!(
        failures.is_empty(),
        "{} rendering(s) differ from their snapshots; if the change is intended, run\n  \
         UPDATE_SNAPSHOTS=1 cargo test -p trace-decoder --test report_recordings\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Reports on hand-made records, for the parts the recordings do not reach: host
/// times, an unknown frequency, an exception in the kernel, hostile text.
fn synthetic_reports() -> Vec<(&'static str, Report)> {
    let ev = |t, m: &str| trace_decoder::decode::fixtures::event(t, m);
    let boot = || {
        vec![
            ev(0, "LoaderStart format=3 build=0x1 mbi=0x9500"),
            ev(500, "PagingEnabled"),
            ev(700, "LongModeEntered"),
            ev(3000, "MemoryMap regions=[0x0-0x4000000:1]"),
            ev(4000, "CommandLine kernel_args_at=65535 app_args_at=65535 text=k\u{1b}[2J\u{0}<&>"),
            ev(4100, "Module start=0x200000 end=0x300000"),
            ev(7000, "Kernel kind=dyn entry_version=4 version=0.13.0 generation=0.11+ segments=1 base=0x800000 entry=0x800000"),
            ev(8000, "SegmentLoaded addr=0x800000 filesz=0x1000 memsz=0x1000 flags=5 copy_ticks=600 zero_ticks=100"),
            ev(9500, "Relocated relative=3 abs64=0 glob_dat=0 weak_skipped=0 ticks=300"),
            ev(9800, "Frequency khz=1000 source=pit window_us=9800"),
            ev(12000, "DeviceTree addr=0x150000 size=400 ticks=2000"),
            ev(13000, "Mapping start=0x0 end=0x200000 page_kib=4 writable=true"),
            ev(14000, "PageTables contract=universal pml4=0x2f0000 tables=4 bytes_4k=0x100000 bytes_2m=0x800000 ticks=1500"),
            ev(14700, "HandOver entry=0x800000 rdi=0x150400 rsp=0x1a0000 trace_ticks=1200"),
        ]
    };
    let host = HostTimes {
        first_byte: Some(Duration::from_millis(2)),
        loader_start: Some(Duration::from_millis(42)),
        first_timed_event: Some(Duration::from_millis(43)),
        hand_over: Some(Duration::from_millis(60)),
        first_kernel_output: Some(Duration::from_millis(72)),
        end: Some(Duration::from_millis(90)),
    };
    let mut unknown_clock = boot();
    unknown_clock[9] = ev(9800, "Frequency khz=0 source=unknown window_us=0");
    let mut exception = boot();
    exception.push(ev(
        15000,
        "CpuException vector=13 error_code=0x0 rip=0x800010 cr2=0x0 in_kernel=true trace_ticks=1300 rsp=0x10bfd8 rflags=0x10046 cr3=0x134000 stack=[]",
    ));
    let overlapping = vec![
        ev(1, "MemoryMap regions=[0x0-0x100000:1]"),
        ev(2, "Module start=0x80000 end=0x180000"),
        ev(3, "Tls start=0x90000 filesz=0x10 memsz=0x20 align=0x8"),
        ev(
            4,
            "Refused code=27 name=layout-overlap trace_ticks=50 text=the kernel would overlap \u{7}the module",
        ),
    ];
    let record = |events, host: HostTimes, exit_status, loader_image| BootRecord {
        events,
        host,
        exit_status,
        loader_image,
        ..BootRecord::default()
    };
    vec![
        (
            "host times",
            record(boot(), host.clone(), Some(3), Some((0x100000, 0x1f0000))),
        ),
        ("unknown clock", record(unknown_clock, host, None, None)),
        (
            "exception",
            record(exception, HostTimes::default(), Some(155), None),
        ),
        (
            "overlaps",
            record(overlapping, HostTimes::default(), Some(55), None),
        ),
        ("nothing", BootRecord::default()),
    ]
    .into_iter()
    .map(|(name, record)| (name, Report::build(&record)))
    .collect()
}

/// Every report the format checks look at: recordings and hand-made ones.
fn all_reports() -> Vec<(String, Report)> {
    let mut reports: Vec<(String, Report)> = recording_names()
        .into_iter()
        .map(|name| {
            let report = Report::build(&record(&name));
            (name, report)
        })
        .collect();
    reports.extend(
        synthetic_reports()
            .into_iter()
            .map(|(name, report)| (name.to_string(), report)),
    );
    reports
}

fn schema_validator() -> jsonschema::Validator {
    let path = manifest_dir().join("../docs/report-schema.json");
    let schema: Value = serde_json::from_str(&fs::read_to_string(path).expect("the schema"))
        .expect("the schema is JSON");
    assert!(
        jsonschema::meta::is_valid(&schema),
        "docs/report-schema.json is not a valid JSON Schema"
    );
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

#[test]
fn json_reports_follow_the_schema() {
    let validator = schema_validator();
    for (name, report) in all_reports() {
        let json: Value = serde_json::from_str(&report.to_json()).expect("the report is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        assert_eq!(json["schema"], "rusty-trace/report");
        assert_eq!(json["version"], trace_decoder::report::SCHEMA_VERSION);
    }
}

#[test]
fn the_schema_doc_names_every_field() {
    // Every property of the JSON Schema appears in docs/report-schema.md, so the
    // prose cannot fall behind the schema.
    fn properties(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|v| properties(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| properties(v, out)),
            _ => {}
        }
    }
    let docs = manifest_dir().join("../docs");
    let schema: Value =
        serde_json::from_str(&fs::read_to_string(docs.join("report-schema.json")).unwrap())
            .unwrap();
    let prose = fs::read_to_string(docs.join("report-schema.md")).expect("the schema doc");
    let mut names = Vec::new();
    properties(&schema, &mut names);
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !prose.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "fields not in docs/report-schema.md: {missing:?}"
    );
}

#[test]
fn chrome_traces_have_complete_events() {
    for (name, report) in all_reports() {
        let trace: Value =
            serde_json::from_str(&report.to_chrome_trace()).expect("the trace is JSON");
        let events = trace["traceEvents"].as_array().expect("traceEvents");
        let complete: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(
            !complete.is_empty(),
            !report.timeline.stages.is_empty(),
            "{name}: complete events exactly when there are stages"
        );
        for event in &complete {
            assert!(event["name"].is_string(), "{name}: {event}");
            for key in ["ts", "dur"] {
                let value = event[key].as_f64().unwrap_or(-1.0);
                assert!(value >= 0.0, "{name}: {key} of {event}");
            }
            assert!(
                event["pid"].is_u64() && event["tid"].is_u64(),
                "{name}: {event}"
            );
        }
        assert!(trace["metadata"]["memory_layout"].is_array(), "{name}");
    }
}

#[test]
fn svgs_are_well_formed_and_sized() {
    for (name, report) in all_reports() {
        let svg = report.to_svg();
        let doc = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("{name}: the SVG is not well-formed XML: {e}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg", "{name}");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        let number = |attr: &str| {
            root.attribute(attr)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name}: <svg {attr}> is not a number"))
        };
        let (width, height) = (number("width"), number("height"));
        assert!(width > 0.0 && height > 0.0, "{name}");
        assert_eq!(
            root.attribute("viewBox"),
            Some(format!("0 0 {width} {height}").as_str()),
            "{name}"
        );
    }
}

#[test]
fn text_reports_fit_the_terminal() {
    for (name, report) in all_reports() {
        let text = report.render_text(false);
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{name}: too wide: {line:?}");
            assert!(!line.chars().any(char::is_control), "{name}: {line:?}");
        }
        assert!(
            text.lines().nth(1).is_some_and(|l| l.starts_with("boot: ")),
            "{name}"
        );
    }
}

#[test]
fn recorded_boots_end_as_their_status_says() {
    // The whole summary line, known for each recording: the loader's time and its
    // three largest parts, then the ending unless it handed over (no host times: a
    // recording has none).
    let summaries = [
        (
            "hello-dyn-pc",
            "boot: 6.0 ms loader (ELF 1.9 ms, trace output 1.1 ms, start-up 867 µs)",
        ),
        (
            "hello-exec-pc",
            "boot: 9.1 ms loader (ELF 2.5 ms, trace output 1.7 ms, start-up 1.3 ms)",
        ),
        (
            "legacy-dyn-microvm",
            "boot: 8.0 ms loader (ELF 2.5 ms, trace output 1.2 ms, start-up 1.2 ms)",
        ),
        (
            "legacy-dyn-pc-measured",
            "boot: 6.7 ms loader (ELF 1.9 ms, trace output 1.1 ms, start-up 907 µs)",
        ),
        (
            "not-an-elf",
            "boot: 2.6 ms loader (start-up 941 µs, until failure 810 µs, trace output 678 µs); refused: not-elf",
        ),
    ];
    for (name, summary) in summaries {
        let report = Report::build(&record(name));
        assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
        assert_eq!(report.summary_line(), summary, "{name}");
        let exit = report.outcome.exit.as_ref().expect("a status file");
        let expected = if name == "not-an-elf" {
            (35, "loader")
        } else {
            (3, "kernel")
        };
        assert_eq!((exit.status, exit.by), expected, "{name}");
    }
    assert_eq!(
        recording_names().len(),
        summaries.len(),
        "a summary for each"
    );
}
