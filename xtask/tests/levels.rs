//! The trace levels (`cargo xtask build --trace-level`): what each leaves in the
//! stream. `info` (the default) is checked event by event in `trace.rs`; here the
//! levels around it: `error` keeps only the error events, `debug` adds one `Mapping`
//! per page-table mapping.

mod common;

use common::{artifacts, boot, config, KernelReport};
use rusty_loader::wire::LoaderEvent;
use trace_decoder::decode::Session;
use trace_decoder::decode::{decode_recording, Decoded, TraceTable};
use trace_decoder::report::{OutcomeKind, Report};
use xshell::Shell;
use xtask::build::{self, LoaderArtifacts, Profile, TraceLevel};
use xtask::qemu::QemuConfig;

/// The debug-profile loader built at `level`, beside the others in its own folder
/// (built already under `cargo xtask test`).
fn loader_at(level: TraceLevel) -> LoaderArtifacts {
    let sh = Shell::new().unwrap();
    sh.change_dir(xtask::project_root());
    build::build_loader_to(&sh, Profile::Debug, level, build::level_artifacts(level))
        .expect("the loader builds")
}

/// Boots `app`; returns QEMU's status, the decoded stream and the report of it.
fn boot_with(loader: &LoaderArtifacts, app: &std::path::Path) -> (Option<i32>, Decoded, Report) {
    let config = QemuConfig {
        append: Some("-freq 2800".to_string()),
        ..QemuConfig::new(&loader.image, app)
    };
    let run = boot(&config);
    let table = TraceTable::from_elf(&std::fs::read(&loader.elf).unwrap()).unwrap();
    let decoded = decode_recording(&table, &run.serial).expect("the stream decodes");
    assert_eq!(decoded.malformed_frames, 0);
    assert!(!decoded.truncated);
    let mut session = Session::new(&table);
    session.feed(&run.serial, &mut |_| {});
    let report = Report::build(&session.finish(run.status, &mut |_| {}));
    (run.status, decoded, report)
}

#[test]
fn error_level_sends_only_error_events() {
    let loader = loader_at(TraceLevel::Error);
    // A good boot: no event at all, the kernel's text untouched.
    let (status, decoded, report) = boot_with(&loader, &artifacts().kernels.hello_dyn);
    assert_eq!(status, Some(3));
    assert!(decoded.events.is_empty(), "{:?}", decoded.events);
    let text = String::from_utf8_lossy(&decoded.text);
    assert_eq!(KernelReport::parse(&text).verdict.as_deref(), Some("ok"));
    // The report knows from the ELF that no event is normal here.
    assert_eq!(report.outcome.kind, OutcomeKind::ErrorsOnly);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // A refusal: its error event alone, timed from the Multiboot entry.
    let not_elf = xtask::project_root().join("target/test-inputs/levels-not-an-elf");
    std::fs::create_dir_all(not_elf.parent().unwrap()).unwrap();
    std::fs::write(&not_elf, b"#!/bin/sh\necho not a kernel\n").unwrap();
    let (status, decoded, report) = boot_with(&loader, &not_elf);
    assert_eq!(status, Some(35));
    let names: Vec<&str> = decoded.events.iter().map(|e| e.name()).collect();
    assert_eq!(names, ["Refused"]);
    let refused = &decoded.events[0];
    assert!(
        matches!(&refused.kind, LoaderEvent::Refused { name, .. } if name == "not-elf"),
        "{refused:?}"
    );
    assert!(refused.timestamp > 0);
    assert_eq!(report.outcome.kind, OutcomeKind::Refused);
}

#[test]
fn debug_level_adds_one_event_per_mapping() {
    let loader = loader_at(TraceLevel::Debug);
    let (status, decoded, report) = boot_with(&loader, &artifacts().kernels.hello_dyn);
    assert_eq!(status, Some(3));
    assert_eq!(report.outcome.kind, OutcomeKind::HandedOver);
    let events = &decoded.events;

    // Everything `info` sends is there too, in the same order.
    let info = boot(&QemuConfig {
        append: Some("-freq 2800".to_string()),
        ..config(&artifacts().kernels.hello_dyn)
    });
    let info_table =
        TraceTable::from_elf(&std::fs::read(&artifacts().loader.elf).unwrap()).unwrap();
    let info_names: Vec<String> = decode_recording(&info_table, &info.serial)
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.name().to_string())
        .collect();
    let without_mappings: Vec<&str> = events
        .iter()
        .map(|e| e.name())
        .filter(|&n| n != "Mapping")
        .collect();
    assert_eq!(without_mappings, info_names);

    // The mappings, sent right before PageTables, add up to its byte counts and to
    // what the kernel found when it walked the tables.
    // (start, end, page size in KiB, writable) of each mapping.
    let mappings: Vec<(u64, u64, u32, bool)> = events
        .iter()
        .filter_map(|e| match e.kind {
            LoaderEvent::Mapping {
                start,
                end,
                page_kib,
                writable,
            } => Some((start, end, page_kib, writable)),
            _ => None,
        })
        .collect();
    assert!(mappings.len() >= 3, "{mappings:?}");
    let bytes = |kib: u32| -> u64 {
        mappings
            .iter()
            .filter(|m| m.2 == kib)
            .map(|m| m.1 - m.0)
            .sum()
    };
    let (bytes_4k, bytes_2m) = events
        .iter()
        .find_map(|e| match e.kind {
            LoaderEvent::PageTables {
                bytes_4k, bytes_2m, ..
            } => Some((bytes_4k, bytes_2m)),
            _ => None,
        })
        .unwrap();
    assert_eq!(bytes(4), bytes_4k);
    assert_eq!(bytes(2048), bytes_2m);
    let report = KernelReport::parse(&String::from_utf8_lossy(&decoded.text));
    let walk = report.one("page-tables");
    assert!(
        walk.contains(&format!("pages-4k={}", bytes(4) / 4096))
            && walk.contains(&format!("pages-2m={}", bytes(2048) >> 21)),
        "kernel: {walk}, traced: {} + {}",
        bytes(4),
        bytes(2048)
    );
    let writable = mappings.iter().filter(|m| m.3).count();
    assert!(
        writable >= 1 && writable < mappings.len(),
        "the MBI page is read-only"
    );
}
