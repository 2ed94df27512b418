//! The decoder's fuzz targets (`stream`, `frames`, `report`), replayed on stable:
//! every input of `fuzz/regressions/<target>/` (crashes and slow inputs the fuzzers
//! found, and the known hostile cases) and of `fuzz/seeds/<target>/` runs through the
//! same check as the target, which is included here by path, after checking the
//! directory against `fuzz/regressions/manifest.txt` both ways. The checks assert
//! everything the targets do except time; the work those inputs once blew up is
//! pinned by counts (here, and in the unit tests).
//!
//! The seeds are made from the recordings; when a change to the targets' input
//! format or the recordings changes them, rewrite them and review the diff:
//!
//! ```text
//! UPDATE_SEEDS=1 cargo test -p trace-decoder --test regressions
//! ```

#[allow(dead_code)]
#[path = "../../fuzz/src/corpus.rs"]
mod corpus;
#[allow(dead_code)]
#[path = "../../fuzz/src/decoding.rs"]
mod decoding;
#[allow(dead_code)]
#[path = "../../fuzz/src/frames.rs"]
mod frames;
#[allow(dead_code)]
#[path = "../../fuzz/src/input.rs"]
mod input;
#[allow(dead_code)]
#[path = "../../fuzz/src/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "../../fuzz/src/stream.rs"]
mod stream;

use corpus::{check_files, replay};
use rusty_loader::wire::{LoaderEvent, MapEntry};
use trace_decoder::decode::{decode_recording, Event};
use trace_decoder::report::memory::work;
use trace_decoder::report::Report;

/// Every recorded boot's events, by recording name.
fn recorded_boots() -> Vec<(String, Vec<Event>)> {
    stream::seeds()
        .into_iter()
        .map(|(name, input)| {
            let decoded = decode_recording(decoding::table(), &input[1..]).unwrap();
            (name, decoded.events)
        })
        .collect()
}

#[test]
fn seeds_are_current() {
    check_files("seeds", "stream", &stream::seeds());
    let boots = recorded_boots();
    let frames: Vec<(String, Vec<u8>)> = boots
        .iter()
        .map(|(name, events)| (name.clone(), frames::choices_for(events, "hello\n")))
        .collect();
    check_files("seeds", "frames", &frames);
    let reports: Vec<(String, Vec<u8>)> = boots
        .iter()
        .map(|(name, events)| (name.clone(), report::choices_for(events)))
        .collect();
    check_files("seeds", "report", &reports);
}

#[test]
fn seeds_make_the_recorded_boots() {
    // The seeds reach deep only if the targets read them back as the boots they
    // were made from.
    for (name, events) in recorded_boots() {
        let stream = frames::write_stream(&mut input::Input::new(
            &frames::choices_for(&events, "hello\n")[1..],
        ));
        let decoded = decode_recording(decoding::table(), &stream).unwrap();
        assert_eq!(decoded.events, events, "frames seed of {name}");
        assert_eq!(decoded.text, b"hello\n");
        let record = report::read_record(&mut input::Input::new(&report::choices_for(&events)));
        assert_eq!(record.events, events, "report seed of {name}");
    }
}

/// The known hostile inputs, as corpus files.
fn known_cases() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut cases = Vec::new();
    // The 11-byte stream that aborted rusty-trace (for the ELF of the day, where
    // `MemoryMap` had index 9), after the chunk-size byte.
    let eleven = [
        0xff, 0x00, 0x09, 0xff, 0x3e, 0xff, 0xff, 0xff, 0x28, 0x70, 0x00,
    ];
    cases.push((
        "stream",
        "abort-11-bytes".to_string(),
        [&[0u8][..], &eleven].concat(),
    ));
    // The same frame for the recordings' ELF: a MemoryMap claiming 2^32 - 2 entries.
    let index = decoding::table().index_of("MemoryMap").unwrap();
    let mut raw = index.to_le_bytes().to_vec();
    raw.extend_from_slice(&0x1234u32.to_le_bytes());
    raw.extend_from_slice(&0xffff_fffeu32.to_le_bytes());
    raw.extend_from_slice(&[0x28, 0x70]);
    let frame = [
        &[0u8, 0xff, 0x00][..],
        &trace_decoder::decode::frame::rzcobs_encode(&raw),
        &[0],
    ]
    .concat();
    cases.push(("stream", "memory-map-claiming-billions".to_string(), frame));

    // A recorded boot whose memory map holds 4000 identical entries (the report
    // compared every pair of regions: 46 s and 3 GB of text), for the report and as
    // frames. They come in two MemoryMap events, as the loader splits a long map (a
    // frame of 4000 entries would be longer than any the decoder accepts).
    let mut events = recorded_boots().remove(0).1;
    let entry = MapEntry {
        start: 0x10_0000,
        end: 0x400_0000,
        kind: 1,
    };
    let at = events
        .iter()
        .position(|e| matches!(e.kind, LoaderEvent::MemoryMap { .. }))
        .unwrap();
    let half = Event::new(
        events[at].timestamp,
        LoaderEvent::MemoryMap {
            regions: vec![entry; 2000],
        },
    );
    events.splice(at..=at, [half.clone(), half]);
    let name = "memory-map-4000-identical".to_string();
    cases.push(("report", name.clone(), report::choices_for(&events)));
    cases.push(("frames", name, frames::choices_for(&events, "")));

    cases.push((
        "report",
        "quadratic-overlaps-found-from-seeds".to_string(),
        report::choices_for(&quadratic_boot()),
    ));
    cases
}

/// The memory map the `report` target found from its seeds when the report compared
/// every pair of regions, in a recorded boot: 3329 copies of one entry of an unknown
/// kind, inside a usable entry that covers all of them (and the loader, and the
/// kernel), beside the first entries of QEMU's map and two more the fuzzer made up.
/// 5.5 million pairs overlap. (The file it found meant this map in the input format
/// of its day; made from events here, it keeps meaning it.)
fn quadratic_boot() -> Vec<Event> {
    let entry = |start, end, kind| MapEntry { start, end, kind };
    let mut regions = vec![
        entry(0, 0x9_fc00, 1),
        entry(0x9_fc00, 0xa_0000, 2),
        entry(0xf_0000, 0x10_0000, 0),
        entry(0x1_0000_0000, 0, 0),
        entry(0, 0x200_0001_0000_0000, 1),
        entry(0x2cf6_4800_0000_0000, 0x4_0000_0000, 0),
    ];
    regions.extend(std::iter::repeat_n(
        entry(0xf_f000, 0xff00_0000, 0),
        QUADRATIC_COPIES,
    ));
    let mut events = recorded_boots().remove(0).1;
    let at = events
        .iter()
        .position(|e| matches!(e.kind, LoaderEvent::MemoryMap { .. }))
        .unwrap();
    events[at].kind = LoaderEvent::MemoryMap { regions };
    events
}

/// How many copies of one entry [`quadratic_boot`]'s map holds.
const QUADRATIC_COPIES: usize = 3329;

#[test]
fn known_cases_are_in_the_corpus() {
    for (target, name, bytes) in known_cases() {
        check_files("regressions", target, &[(name, bytes)]);
    }
}

#[test]
fn stream_regressions() {
    assert!(replay("stream", stream::check).len() >= 2);
}

#[test]
fn frames_regressions() {
    let replayed = replay("frames", frames::check);
    // The map of 4000 entries reaches the report whole: 4000 regions and more.
    assert!(replayed
        .iter()
        .any(|(name, items)| name == "memory-map-4000-identical" && *items > 4000));
}

/// The report on the quadratic map does work in proportion to n log n for its n
/// regions, counted by the report's memory checks themselves
/// (`report::memory::work`): a count of comparisons and visits, the same on any
/// machine, far below the n²/2 pairs that overlap.
#[test]
fn the_quadratic_map_costs_n_log_n_steps() {
    let data = std::fs::read(
        corpus::fuzz_dir().join("regressions/report/quadratic-overlaps-found-from-seeds"),
    )
    .expect("the corpus file");
    let record = report::read_record(&mut input::Input::new(&data));
    let before = work::steps();
    let built = Report::build(&record);
    let steps = work::steps() - before;

    // The input still is what its name says: thousands of regions, millions of
    // overlapping pairs (the report counts them without listing them).
    let n = built.memory.len();
    assert!(n > QUADRATIC_COPIES, "{n} regions");
    let summary = built
        .warnings
        .iter()
        .rfind(|w| w.kind == "overlap")
        .expect("overlap warnings");
    let unlisted: u64 = summary
        .message
        .strip_prefix("… and ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("a count of the unlisted overlaps: {}", summary.message));
    assert!(unlisted > 5_000_000, "{}", summary.message);

    // Sorting, nesting, the overlap sweep and the RAM check each take a few steps
    // per region and level of a binary search; 16 n log2 n leaves room for them all
    // and is a hundredth of the pairs.
    let log = u64::from(usize::BITS - n.leading_zeros());
    let bound = 16 * n as u64 * log;
    eprintln!("{n} regions: {steps} steps (bound {bound}, {unlisted} overlapping pairs)");
    assert!(
        steps <= bound,
        "the report on {n} regions took {steps} steps, more than {bound} (16 n log2 n)"
    );
}

#[test]
fn report_regressions() {
    let replayed = replay("report", report::check);
    assert!(replayed
        .iter()
        .any(|(name, items)| name == "memory-map-4000-identical" && *items > 4000));
}

#[test]
fn the_map_of_4000_entries_reaches_the_report_whole() {
    // The corpus files say what they are meant to: the frames decode to a map of
    // 4000 entries, and the report's warnings about them are capped.
    let (_, _, frames_input) = known_cases()
        .into_iter()
        .find(|(target, name, _)| *target == "frames" && name.contains("4000"))
        .unwrap();
    let mut input = input::Input::new(&frames_input[1..]);
    let stream = frames::write_stream(&mut input);
    let decoded = decode_recording(decoding::table(), &stream).unwrap();
    let entries = trace_decoder::decode::memory_map(&decoded.events).len();
    assert_eq!(entries, 4000);
}
