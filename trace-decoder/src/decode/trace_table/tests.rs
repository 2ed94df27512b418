//! The frame decoder on hand-written bytes: a table built from the contract's own
//! format strings, frames written field by field (a comment per field), and the
//! hostile frames a fuzzing campaign found.

use rusty_loader::wire::{LoaderEvent, MapEntry, EVENTS, MAP_ENTRY_FORMAT, WORD_FORMAT};

use super::*;
use crate::decode::frame::{rzcobs_encode, Table, Tag};

/// Interned strings and element formats of the hand-built table.
const SEQUENCE: u16 = 100;
const MAP_ENTRY: u16 = 101;
const NAME_DYN: u16 = 102;
const WORD: u16 = 103;

/// The contract's events at indices 1, 2, ... (in `EVENTS` order), a u32 timestamp,
/// the format-sequence tag and the map entry's format, and one interned name.
fn table() -> TraceTable {
    let mut entries: Vec<(u16, Tag, String)> = EVENTS
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            (
                i as u16 + 1,
                Tag::Level(spec.level),
                spec.format.to_string(),
            )
        })
        .collect();
    entries.push((SEQUENCE, Tag::Str, "{=__internal_FormatSequence}".into()));
    entries.push((MAP_ENTRY, Tag::Other, MAP_ENTRY_FORMAT.into()));
    entries.push((NAME_DYN, Tag::Str, "dyn".into()));
    entries.push((WORD, Tag::Other, WORD_FORMAT.into()));
    let entries: Vec<(u16, Tag, &str)> = entries
        .iter()
        .map(|(i, t, s)| (*i, *t, s.as_str()))
        .collect();
    TraceTable::new(Table::from_entries(Some("{=u32}"), &entries), 0x1234).unwrap()
}

/// The table index of an event of the contract.
fn index(name: &str) -> u16 {
    EVENTS.iter().position(|s| s.name == name).unwrap() as u16 + 1
}

/// One frame: the index, the timestamp, then the argument bytes; rzcobs-encoded.
fn frame(name: &str, ticks: u32, args: &[u8]) -> Vec<u8> {
    let mut bytes = index(name).to_le_bytes().to_vec();
    bytes.extend_from_slice(&ticks.to_le_bytes());
    bytes.extend_from_slice(args);
    rzcobs_encode(&bytes)
}

#[test]
fn rzcobs_round_trips_and_reads_the_documented_example() {
    for data in [
        &[][..],
        &[0],
        &[1, 2, 3],
        &[0, 0, 0, 0, 0, 0, 0, 0, 9],
        &[7; 20],
        &[7; 300],
    ] {
        let encoded = rzcobs_encode(data);
        assert!(!encoded.contains(&0), "{data:?}");
        let decoded = frame::rzcobs_decode(&encoded).unwrap();
        // The last group may stand for zeros past the end: they come out at the end.
        assert_eq!(&decoded[..data.len()], data);
        assert!(decoded[data.len()..].iter().all(|&b| b == 0));
    }
    // docs/trace-format.md's example: LoaderStart (index 7), timestamp 0, format 2,
    // build 0x6a109c9e, mbi 0x9500.
    let example = [0x07, 0x02, 0x3e, 0x9e, 0x9c, 0x10, 0x6a, 0x95, 0x50, 0x7f];
    let decoded = frame::rzcobs_decode(&example).unwrap();
    assert_eq!(
        &decoded[..15],
        [7, 0, 0, 0, 0, 0, 2, 0x9e, 0x9c, 0x10, 0x6a, 0, 0x95, 0, 0]
    );
    assert_eq!(frame::rzcobs_decode(&[0x05, 0]), Err(FrameError::Encoding));
    assert_eq!(frame::rzcobs_decode(&[0x85]), Err(FrameError::Encoding));
}

#[test]
fn decodes_every_kind_of_field() {
    let table = table();
    let mut decoder = table.frame_decoder();

    let mut args = vec![2]; // format
    args.extend_from_slice(&0x6a10_9c9e_u32.to_le_bytes()); // build
    args.extend_from_slice(&0x9500_u32.to_le_bytes()); // mbi
    let event = decoder.decode(&frame("LoaderStart", 0, &args)).unwrap();
    assert_eq!(
        event.kind,
        LoaderEvent::LoaderStart {
            format: 2,
            build: 0x6a10_9c9e,
            mbi: 0x9500
        }
    );
    assert_eq!(
        event.message(),
        "LoaderStart format=2 build=0x6a109c9e mbi=0x9500"
    );

    // A list of two map entries: the count, the element format (a format sequence),
    // then per element one nested format (index, start, end, kind) and the
    // sequence's closing 0.
    let mut args = 2u32.to_le_bytes().to_vec();
    args.extend_from_slice(&SEQUENCE.to_le_bytes());
    for (start, end, kind) in [(0u64, 0x9fc00u64, 1u8), (0x100000, 0x4000000, 1)] {
        args.extend_from_slice(&MAP_ENTRY.to_le_bytes());
        args.extend_from_slice(&start.to_le_bytes());
        args.extend_from_slice(&end.to_le_bytes());
        args.push(kind);
        args.extend_from_slice(&0u16.to_le_bytes());
    }
    let event = decoder.decode(&frame("MemoryMap", 1000, &args)).unwrap();
    assert_eq!(
        event.timestamp, 1000,
        "ticks since the previous frame add up"
    );
    assert_eq!(
        event.kind,
        LoaderEvent::MemoryMap {
            regions: vec![
                MapEntry {
                    start: 0,
                    end: 0x9fc00,
                    kind: 1
                },
                MapEntry {
                    start: 0x100000,
                    end: 0x4000000,
                    kind: 1
                },
            ]
        }
    );
    assert_eq!(
        event.message(),
        "MemoryMap regions=[0x0-0x9fc00:1, 0x100000-0x4000000:1]"
    );

    // A string (length, bytes) and an interned name; a bool.
    let mut args = vec![17]; // code
    args.extend_from_slice(&NAME_DYN.to_le_bytes()); // name
    args.extend_from_slice(&90u64.to_le_bytes()); // trace_ticks
    args.extend_from_slice(&3u32.to_le_bytes()); // text: length
    args.extend_from_slice(b"a b"); // text: bytes
    let event = decoder.decode(&frame("Refused", 5, &args)).unwrap();
    assert_eq!(event.timestamp, 1005);
    assert_eq!(event.level, Level::Error);
    assert_eq!(
        event.message(),
        "Refused code=17 name=dyn trace_ticks=90 text=a b"
    );
    let mut args = vec![14]; // vector
    for value in [2u64, 0x801234, 0xdead000] {
        args.extend_from_slice(&value.to_le_bytes());
    }
    args.push(1); // in_kernel
    let in_kernel = args.len() - 1;
    args.extend_from_slice(&900u64.to_le_bytes()); // trace_ticks
    for value in [0x10_3ff0u64, 0x46, 0x13_4000] {
        // rsp, rflags, cr3
        args.extend_from_slice(&value.to_le_bytes());
    }
    // The stack: two words, each a nested `{=u64:#x}` after the count and the
    // elements' format (sent once).
    args.extend_from_slice(&2u32.to_le_bytes());
    args.extend_from_slice(&WORD.to_le_bytes());
    for word in [0x80_1234u64, 0] {
        args.extend_from_slice(&word.to_le_bytes());
    }
    let event = decoder.decode(&frame("CpuException", 0, &args)).unwrap();
    assert!(matches!(
        event.kind,
        LoaderEvent::CpuException {
            in_kernel: true,
            trace_ticks: 900,
            rsp: 0x10_3ff0,
            cr3: 0x13_4000,
            ref stack,
            ..
        } if stack == &[0x80_1234, 0]
    ));
    assert!(
        event.message().ends_with(" stack=[0x801234, 0x0]"),
        "{}",
        event.message()
    );
    args[in_kernel] = 2;
    assert_eq!(
        decoder.decode(&frame("CpuException", 0, &args)),
        Err(FrameError::BadValue),
        "a bool is 0 or 1"
    );
}

#[test]
fn refuses_frames_that_cannot_be() {
    let table = table();
    let mut decoder = table.frame_decoder();
    // Cut short inside the timestamp, inside an argument.
    let short = rzcobs_encode(&index("Module").to_le_bytes());
    assert_eq!(decoder.decode(&short), Err(FrameError::Short));
    assert_eq!(
        decoder.decode(&frame("Module", 0, &[1, 2, 3])),
        Err(FrameError::Short)
    );
    // An index the table does not have.
    let mut bytes = 999u16.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 4]);
    assert_eq!(
        decoder.decode(&rzcobs_encode(&bytes)),
        Err(FrameError::UnknownIndex(999))
    );
    // A string that is not UTF-8.
    let mut args = vec![17];
    args.extend_from_slice(&NAME_DYN.to_le_bytes());
    args.extend_from_slice(&0u64.to_le_bytes());
    args.extend_from_slice(&1u32.to_le_bytes());
    args.push(0xff);
    assert_eq!(
        decoder.decode(&frame("Refused", 0, &args)),
        Err(FrameError::BadValue)
    );
}

/// The fuzzing campaign's finds: a count taken from the frame must fit the bytes
/// that remain before anything is allocated for it.
#[test]
fn counts_that_cannot_fit_are_refused_before_allocating() {
    let table = table();
    let mut decoder = table.frame_decoder();
    // A MemoryMap claiming ~2^32 entries in a handful of bytes.
    let mut args = 0xffff_fff0_u32.to_le_bytes().to_vec();
    args.extend_from_slice(&SEQUENCE.to_le_bytes());
    assert_eq!(
        decoder.decode(&frame("MemoryMap", 0, &args)),
        Err(FrameError::ImpossibleCount)
    );
    // Ten million elements of a format that takes no bytes at all (an interned
    // string without parameters): still refused, not looped over.
    let mut args = 10_000_000u32.to_le_bytes().to_vec();
    args.extend_from_slice(&NAME_DYN.to_le_bytes());
    assert_eq!(
        decoder.decode(&frame("MemoryMap", 0, &args)),
        Err(FrameError::ImpossibleCount)
    );
    // A string longer than the frame.
    let mut args = vec![17];
    args.extend_from_slice(&NAME_DYN.to_le_bytes());
    args.extend_from_slice(&0u64.to_le_bytes());
    args.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decoder.decode(&frame("Refused", 0, &args)),
        Err(FrameError::ImpossibleCount)
    );
}

#[test]
fn an_event_of_another_format_is_kept_as_unknown() {
    // A newer loader: one event with a trailing field (still the contract's), one
    // changed, one new.
    let module = "Module start={=u64:#x} end={=u64:#x} pages={=u16}";
    let changed = "Tls start={=u32:#x}";
    let new = "Watchdog armed={=bool}";
    let table = TraceTable::new(
        Table::from_entries(
            Some("{=u32}"),
            &[
                (1, Tag::Level(Level::Info), module),
                (2, Tag::Level(Level::Info), changed),
                (3, Tag::Level(Level::Warn), new),
            ],
        ),
        1,
    )
    .unwrap();
    assert_eq!(table.changed_events(), ["Tls"]);
    let mut decoder = table.frame_decoder();
    let encode = |index: u16, args: &[u8]| {
        let mut bytes = index.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(args);
        rzcobs_encode(&bytes)
    };
    let mut args = 0x1000u64.to_le_bytes().to_vec();
    args.extend_from_slice(&0x2000u64.to_le_bytes());
    args.extend_from_slice(&7u16.to_le_bytes());
    let event = decoder.decode(&encode(1, &args)).unwrap();
    assert_eq!(
        event.kind,
        LoaderEvent::Module {
            start: 0x1000,
            end: 0x2000
        }
    );
    let event = decoder.decode(&encode(2, &0x10u32.to_le_bytes())).unwrap();
    assert_eq!(
        event.kind,
        LoaderEvent::Unknown {
            name: "Tls".into(),
            message: "Tls start=0x10".into()
        }
    );
    let event = decoder.decode(&encode(3, &[1])).unwrap();
    assert_eq!(event.name(), "Watchdog");
    assert_eq!(event.level, Level::Warn);
    assert_eq!(event.message(), "Watchdog armed=true");
}
