//! The live session on the recorded streams: the same text and events as decoding the
//! whole recording at once, in any chunking; times, host times and every way a stream
//! can go wrong (another build, cut short, corrupted, no trace at all); and property
//! tests that no input, however mangled or chunked, makes it panic.

mod common;

use common::frames;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use trace_decoder::decode::stream::text_only;
use trace_decoder::decode::BootRecord;
use trace_decoder::decode::{decode_recording, TraceTable};
use trace_decoder::decode::{Output, Session, TraceStatus};

fn recordings() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recordings")
}

/// The recordings' table, parsed once: the property tests use it hundreds of times.
fn table() -> &'static TraceTable {
    static TABLE: OnceLock<TraceTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let elf = std::fs::read(recordings().join("rusty-loader.elf")).unwrap();
        TraceTable::from_elf(&elf).unwrap()
    })
}

fn recording(name: &str) -> Vec<u8> {
    std::fs::read(recordings().join(format!("{name}.bin"))).unwrap()
}

const RECORDINGS: [&str; 4] = [
    "hello-dyn-pc",
    "hello-exec-pc",
    "legacy-dyn-microvm",
    "not-an-elf",
];

/// What a session said, owned, with adjacent text merged (how text is cut into
/// pieces depends on the chunking; its bytes do not).
#[derive(Debug, Default, PartialEq)]
struct Said {
    text: Vec<u8>,
    /// Event names with their time in µs, in order.
    events: Vec<(String, Option<f64>)>,
    warnings: Vec<String>,
    /// Everything in order, text as `T`, events as `E`, warnings as `W`.
    order: String,
}

impl Said {
    fn take(&mut self, output: Output) {
        match output {
            Output::Text(text) => {
                self.text.extend_from_slice(text);
                if !self.order.ends_with('T') {
                    self.order.push('T');
                }
            }
            Output::Event(event, micros) => {
                self.events.push((event.name().to_string(), micros));
                self.order.push('E');
            }
            Output::Warning(warning) => {
                self.warnings.push(warning);
                self.order.push('W');
            }
        }
    }
}

/// Runs a session over `stream` cut into pieces of the given sizes (cycled).
fn run(table: &TraceTable, stream: &[u8], chunks: &[usize]) -> (Said, BootRecord, TraceStatus) {
    let mut said = Said::default();
    let mut session = Session::new(table);
    let mut rest = stream;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        session.feed(chunk, &mut |o| said.take(o));
        rest = tail;
    }
    let status = session.status();
    let record = session.finish(Some(3), &mut |o| said.take(o));
    (said, record, status)
}

#[test]
fn same_text_and_events_as_whole_decoding() {
    let table = table();
    for name in RECORDINGS {
        let stream = recording(name);
        let whole = decode_recording(table, &stream).unwrap();
        let (said, record, status) = run(table, &stream, &[stream.len()]);
        assert_eq!(said.text, whole.text, "{name}");
        assert_eq!(record.events, whole.events, "{name}");
        let names: Vec<&str> = said.events.iter().map(|(n, _)| n.as_str()).collect();
        let expected: Vec<&str> = whole.events.iter().map(|e| e.name()).collect();
        assert_eq!(
            names, expected,
            "{name}: every event is shown once, in order"
        );
        assert_eq!(status, TraceStatus::Decoded { verified: true }, "{name}");
        assert!(said.warnings.is_empty(), "{name}: {:?}", said.warnings);
        assert_eq!(record.malformed_frames, 0);
        assert!(!record.truncated);
        assert_eq!(record.text_bytes, whole.text.len());
        assert_eq!(record.exit_status, Some(3));
        assert_eq!(record.loader_image, table.loader_image());
    }
}

#[test]
fn any_chunking_says_the_same() {
    let table = table();
    let stream = recording("hello-dyn-pc");
    let (whole, _, _) = run(table, &stream, &[stream.len()]);
    let (bytewise, _, _) = run(table, &stream, &[1]);
    assert_eq!(bytewise, whole);
    for split in (0..stream.len()).step_by(7) {
        let (said, _, _) = run(table, &stream, &[split.max(1), stream.len()]);
        assert_eq!(said, whole, "split at {split}");
    }
}

#[test]
fn events_carry_their_time_once_the_frequency_is_known() {
    let table = table();
    let stream = recording("hello-dyn-pc");
    let (said, record, _) = run(table, &stream, &[16]);
    // Events before `Frequency` wait for it, so every one has a time.
    for ((name, micros), event) in said.events.iter().zip(&record.events) {
        let expected = event.timestamp as f64 * 1000.0 / 2_800_000.0;
        let got = micros.unwrap_or_else(|| panic!("{name} has no time"));
        assert!((got - expected).abs() < 1e-6, "{name}: {got} != {expected}");
    }
    // And they are shown before the text that follows them on the wire.
    assert_eq!(said.order, format!("{}T", "E".repeat(record.events.len())));
}

#[test]
fn idle_shows_held_back_events_without_time() {
    let table = table();
    let stream = recording("hello-dyn-pc");
    let frames = frames(&stream);
    // Up to the end of the second frame: LoaderStart and PagingEnabled, no Frequency.
    let cut = frames[1].end + 1;
    let mut said = Said::default();
    let mut session = Session::new(table);
    session.feed(&stream[..cut], &mut |o| said.take(o));
    assert!(
        said.events.is_empty(),
        "held back until the frequency is known"
    );
    session.idle(&mut |o| said.take(o));
    assert_eq!(
        said.events,
        vec![
            ("LoaderStart".to_string(), None),
            ("PagingEnabled".to_string(), None)
        ]
    );
    session.feed(&stream[cut..], &mut |o| said.take(o));
    session.finish(None, &mut |o| said.take(o));
    assert_eq!(said.events.len(), 17, "nothing is shown twice");
    assert!(said.events[2..].iter().all(|(_, t)| t.is_some()));
}

#[test]
fn host_times_are_in_order() {
    let table = table();
    let stream = recording("hello-dyn-pc");
    let (_, record, _) = run(table, &stream, &[40]);
    let host = &record.host;
    let times = [
        host.first_byte,
        host.loader_start,
        host.first_timed_event,
        host.hand_over,
        host.first_kernel_output,
        host.end,
    ];
    assert!(times.iter().all(Option::is_some), "{host:?}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{host:?}");

    let (_, refused, _) = run(table, &recording("not-an-elf"), &[40]);
    assert!(refused.host.loader_start.is_some());
    assert_eq!(refused.host.hand_over, None);
    assert_eq!(refused.host.first_kernel_output, None);
}

#[test]
fn a_stream_from_another_build_is_refused_naming_both() {
    let table = table();
    let mut stream = recording("hello-dyn-pc");
    let id = table.build_id();
    // rzcobs copies non-zero bytes as they are, so the build identity's bytes can be
    // found in the first frame; changing one non-zero byte into another keeps the
    // frame valid and changes the identity it carries.
    let bytes = id.to_le_bytes();
    let first = frames(&stream)[0].clone();
    let at = stream[first.clone()]
        .windows(2)
        .position(|w| w == &bytes[..2])
        .expect("the build identity's first bytes are in LoaderStart")
        + first.start
        + 1;
    stream[at] ^= 0x01;
    let other = id ^ 0x100;

    let (said, record, status) = run(table, &stream, &[64]);
    assert_eq!(
        status,
        TraceStatus::OtherBuild {
            stream: other,
            elf: id
        }
    );
    assert!(record.events.is_empty(), "no garbage events");
    assert_eq!(said.text, text_only(&stream), "text still passes through");
    let warning = said.warnings.join("\n");
    assert!(warning.contains(&format!("{other:#010x}")), "{warning}");
    assert!(warning.contains(&format!("{id:#010x}")), "{warning}");
}

#[test]
fn a_truncated_stream_is_flagged() {
    let table = table();
    let stream = recording("hello-dyn-pc");
    let frame = frames(&stream)[5].clone();
    let cut = &stream[..frame.start + 3];
    let (said, record, status) = run(table, cut, &[100]);
    assert!(record.truncated);
    assert_eq!(record.events.len(), 5);
    assert_eq!(status, TraceStatus::Decoded { verified: true });
    assert!(
        said.warnings.iter().any(|w| w.contains("truncated")),
        "{:?}",
        said.warnings
    );
}

#[test]
fn a_corrupted_frame_is_skipped_and_decoding_goes_on() {
    let table = table();
    let mut stream = recording("hello-dyn-pc");
    let frame = frames(&stream)[3].clone();
    // 0xFE announces 133 more bytes than the frame has: it cannot decode.
    stream[frame].fill(0xFE);
    let (said, record, _) = run(table, &stream, &[33]);
    assert_eq!(record.malformed_frames, 1);
    assert_eq!(record.events.len(), 16);
    assert_eq!(record.events.last().unwrap().name(), "HandOver");
    assert_eq!(said.warnings.len(), 1, "{:?}", said.warnings);
    assert!(
        said.warnings[0].contains("after LongModeEntered"),
        "{:?}",
        said.warnings
    );
}

/// The fuzzing campaign's 11-byte stream (`ff00 09ff 3eff ffff 2870 00` for the ELF
/// of the day, where `MemoryMap` had index 9): a `MemoryMap` frame whose list claims
/// ~2^32 entries. defmt-decoder 1.2.0 sizes a vector from that count and aborts the
/// process (171 GB); the session must refuse the frame and go on.
#[test]
fn a_frame_claiming_billions_of_entries_is_skipped() {
    let index = table().index_of("MemoryMap").unwrap();
    let mut raw = index.to_le_bytes().to_vec();
    raw.extend_from_slice(&0x1234u32.to_le_bytes()); // timestamp
    raw.extend_from_slice(&0xffff_fffeu32.to_le_bytes()); // element count
    raw.extend_from_slice(&[0x28, 0x70]); // the element format's index
    let mut stream = vec![0xff, 0x00];
    stream.extend(trace_decoder::decode::frame::rzcobs_encode(&raw));
    stream.push(0x00);
    for chunks in [&[stream.len()][..], &[1]] {
        let (said, record, _) = run(table(), &stream, chunks);
        assert_eq!(record.malformed_frames, 1);
        assert!(record.events.is_empty());
        assert!(
            said.warnings[0].contains("a count that cannot fit its bytes"),
            "{:?}",
            said.warnings
        );
    }
}

#[test]
fn a_saturated_gap_is_warned_about() {
    let table = table();
    let mut stream = recording("hello-dyn-pc");
    // PagingEnabled with the largest timestamp a frame can carry, as the loader
    // sends a gap longer than u32::MAX ticks: raw <index> 00 ff ff ff ff.
    let index = table.index_of("PagingEnabled").unwrap();
    let paging = frames(&stream)[1].clone();
    assert_eq!(
        u16::from(stream[paging.start]),
        index,
        "the second frame is PagingEnabled"
    );
    let raw = [index as u8, 0, 0xff, 0xff, 0xff, 0xff];
    stream.splice(paging, trace_decoder::decode::frame::rzcobs_encode(&raw));
    let (said, record, _) = run(table, &stream, &[4096]);
    assert_eq!(record.malformed_frames, 0);
    assert_eq!(record.events[1].name(), "PagingEnabled");
    assert_eq!(record.events[1].timestamp, u64::from(u32::MAX));
    assert_eq!(said.warnings.len(), 1, "{:?}", said.warnings);
    assert!(
        said.warnings[0].starts_with("PagingEnabled came at least 4294967295 ticks after"),
        "{:?}",
        said.warnings
    );
}

#[test]
fn input_without_a_trace() {
    let table = table();
    for input in [
        &b""[..],
        b"hello, just text\n",
        b"\xff\xfe\x01 binary \x00\x00 junk",
    ] {
        let (said, record, status) = run(table, input, &[3]);
        assert_eq!(status, TraceStatus::NotFound, "{input:?}");
        assert!(record.events.is_empty());
        assert_eq!(said.text, text_only(input));
    }
}

#[test]
fn concatenated_boots_are_each_checked() {
    let table = table();
    let mut stream = recording("hello-dyn-pc");
    stream.extend(recording("not-an-elf"));
    let (said, record, status) = run(table, &stream, &[512]);
    assert_eq!(status, TraceStatus::Decoded { verified: true });
    // Every event of both boots was shown; the record keeps the last boot's.
    assert_eq!(said.events.len(), 17 + 8);
    assert!(said.events.iter().all(|(_, t)| t.is_some()));
    assert!(said.warnings.is_empty(), "{:?}", said.warnings);
    assert_eq!(record.events.len(), 8);
    assert_eq!(record.events[0].name(), "LoaderStart");
    assert_eq!(record.earlier_boots, 1);
    let report = trace_decoder::report::Report::build(&record);
    assert!(report
        .warnings
        .iter()
        .any(|w| w.message == "the stream holds 2 boots; this report covers the last one"));
}

#[test]
fn a_stream_of_many_boots_keeps_the_events_of_one() {
    let table = table();
    let boot = recording("hello-dyn-pc");
    let boots = 2000;
    let stream = boot.repeat(boots);
    let mut session = Session::new(table);
    let mut shown = 0;
    let mut most_kept = 0;
    for chunk in stream.chunks(700) {
        session.feed(chunk, &mut |o| {
            shown += usize::from(matches!(o, Output::Event(..)))
        });
        most_kept = most_kept.max(session.record().events.len());
    }
    let record = session.finish(None, &mut |_| {});
    assert_eq!(shown, 17 * boots, "every event is still shown");
    // The session holds one boot's events at a time, however long the stream.
    assert_eq!(most_kept, 17);
    assert_eq!(record.events.len(), 17);
    assert_eq!(record.earlier_boots, boots - 1);
    // The record of a boot is the same as if the stream held only it.
    let alone = decode_recording(table, &boot).unwrap();
    assert_eq!(record.events, alone.events);
    assert_eq!(record.trace_bytes, alone.trace_bytes);
    let report = trace_decoder::report::Report::build(&record);
    assert!(report
        .warnings
        .iter()
        .any(|w| w.message == "the stream holds 2000 boots; this report covers the last one"));
}

#[test]
fn events_before_the_first_boot_are_dropped_without_counting_as_one() {
    let table = table();
    let boot = recording("hello-dyn-pc");
    // The stream starts in the middle of a boot: from its second frame.
    let second_frame = boot
        .windows(2)
        .enumerate()
        .filter(|(_, w)| *w == [0xff, 0x00])
        .nth(1)
        .map(|(at, _)| at)
        .unwrap();
    let mut stream = boot[second_frame..].to_vec();
    stream.extend(&boot);
    let (said, record, _) = run(table, &stream, &[64]);
    assert_eq!(said.events.len(), 16 + 17);
    assert_eq!(record.events.len(), 17);
    assert_eq!(record.earlier_boots, 0);
}

/// Whatever happens, text passes through exactly as the demultiplexer cuts it.
fn check_no_panic(table: &TraceTable, stream: &[u8], chunks: &[usize]) {
    let (said, record, _) = run(table, stream, chunks);
    assert_eq!(said.text, text_only(stream));
    assert_eq!(record.text_bytes, said.text.len());
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        (
            any::<usize>(),
            prop_oneof![Just(0u8), Just(0xFF), any::<u8>()]
        )
            .prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Delete { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(stream: &mut Vec<u8>, mutation: &Mutation) {
    if stream.is_empty() {
        return;
    }
    match *mutation {
        Mutation::Flip { at, bits } => {
            let len = stream.len();
            stream[at % len] ^= bits;
        }
        Mutation::Insert { at, byte } => stream.insert(at % (stream.len() + 1), byte),
        Mutation::Delete { at } => {
            let len = stream.len();
            stream.remove(at % len);
        }
        Mutation::Truncate { at } => stream.truncate(at % stream.len()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(
            prop_oneof![Just(0u8), Just(0xFF), any::<u8>()], 0..4096),
        chunks in prop::collection::vec(1..300usize, 1..8),
    ) {
        check_no_panic(table(), &bytes, &chunks);
    }

    #[test]
    fn mutated_recordings_never_panic(
        which in 0..RECORDINGS.len(),
        mutations in prop::collection::vec(mutation(), 1..12),
        chunks in prop::collection::vec(1..200usize, 1..8),
    ) {
        let mut stream = recording(RECORDINGS[which]);
        for m in &mutations {
            apply(&mut stream, m);
        }
        check_no_panic(table(), &stream, &chunks);
    }

    #[test]
    fn frames_of_random_bytes_never_panic(
        frames in prop::collection::vec(
            prop::collection::vec(1..=255u8, 1..40), 1..20),
        chunks in prop::collection::vec(1..64usize, 1..8),
    ) {
        // Well-framed garbage reaches the defmt decoder itself, not just the
        // demultiplexer.
        let mut stream = recording("hello-dyn-pc")[..frames.len().min(3)].to_vec();
        for frame in &frames {
            stream.extend_from_slice(&[0xFF, 0]);
            stream.extend_from_slice(frame);
            stream.push(0);
        }
        check_no_panic(table(), &stream, &chunks);
    }
}
