//! The `frames` target: the decoder on streams of well-made frames of the
//! contract's events (real table indices, values of the right types), with frames
//! cut short, damaged frames, frames of other indices and text in between; fed
//! whole and in chunks.
//!
//! Input: one byte that sets the chunk sizes, then pieces of stream, each chosen by
//! one byte (see [`write_stream`]).

use defmt_parser::Type;
use rusty_loader::wire::{Value, EVENTS, FORMAT_VERSION, MAP_ENTRY_FORMAT};
use trace_decoder::decode::frame::{parameters, rzcobs_encode};
use trace_decoder::decode::table::Tag;
use trace_decoder::decode::Event;

use super::decoding::{check_stream, raw_table, table};
use super::input::{tail_run, Choices, Input};

/// The longest string a frame carries here.
const MAX_STRING: usize = 255;
/// The most memory-map entries one input writes in all: enough for the maps that
/// made the report quadratic, few enough that no input takes seconds of linear
/// work.
const MAX_ENTRIES: usize = 20_000;

/// Runs every check on one input; panics on the first that fails. Returns the work
/// it asked for (see [`check_stream`]).
pub fn check(data: &[u8]) -> usize {
    let mut input = Input::new(data);
    let size = usize::from(input.u8()) + 1;
    let stream = write_stream(&mut input);
    check_stream(&stream, &[size, 1 + size / 3, 2 * size])
}

/// The table's interned strings (`{=istr}` values), in index order.
fn interned() -> &'static [(u16, &'static str)] {
    static INTERNED: std::sync::OnceLock<Vec<(u16, &'static str)>> = std::sync::OnceLock::new();
    INTERNED.get_or_init(|| {
        raw_table()
            .entries()
            .filter(|(_, e)| e.tag == Tag::Str)
            .map(|(i, e)| (i, e.string.as_str()))
            .collect()
    })
}

/// The table index of the memory map's element format.
fn map_entry_index() -> u16 {
    raw_table()
        .entries()
        .find(|(_, e)| e.string == MAP_ENTRY_FORMAT)
        .map(|(i, _)| i)
        .expect("the map entry format in the table")
}

/// A stream from pieces: text (0), an event's frame (1 to 5), a frame of random
/// bytes (6), a frame of any index with random arguments (7).
pub fn write_stream(input: &mut Input) -> Vec<u8> {
    let mut stream = Vec::new();
    let mut entries_left = MAX_ENTRIES;
    while !input.is_empty() {
        match input.u8() % 8 {
            0 => {
                let len = input.below(64);
                stream.extend_from_slice(input.bytes(len));
            }
            1..=5 => {
                let frame = event_frame(input, &mut entries_left);
                push_frame(&mut stream, &frame, input);
            }
            6 => {
                let len = input.below(64);
                stream.extend_from_slice(&[0xff, 0x00]);
                stream.extend_from_slice(input.bytes(len));
                stream.push(0);
            }
            _ => {
                let mut frame = input.u16().to_le_bytes().to_vec();
                let len = input.below(64);
                frame.extend_from_slice(input.bytes(len));
                push_frame(&mut stream, &frame, input);
            }
        }
    }
    stream
}

/// Adds a frame (marker, rzcobs encoding, closing zero), or, one time in sixteen,
/// only a beginning of it.
fn push_frame(stream: &mut Vec<u8>, frame: &[u8], input: &mut Input) {
    let encoded = rzcobs_encode(frame);
    stream.extend_from_slice(&[0xff, 0x00]);
    if input.u8().is_multiple_of(16) {
        let kept = input.below(encoded.len() + 1);
        stream.extend_from_slice(&encoded[..kept]);
    } else {
        stream.extend_from_slice(&encoded);
        stream.push(0);
    }
}

/// An integer of `bytes` bytes: any, or a small one.
fn int(input: &mut Input, bytes: usize) -> u64 {
    let value = match input.u8() % 4 {
        0 => input.u64(),
        1 => u64::from(input.u8()),
        2 => u64::from(input.u16()),
        _ => u64::from(input.u32()),
    };
    if bytes >= 8 {
        value
    } else {
        value & ((1 << (8 * bytes)) - 1)
    }
}

/// One frame of a contract event with values from the input, its memory map (if
/// any) taking entries from `entries_left`.
fn event_frame(input: &mut Input, entries_left: &mut usize) -> Vec<u8> {
    let spec = &EVENTS[input.below(EVENTS.len())];
    let mut frame = Vec::new();
    let index = table().index_of(spec.name).unwrap_or(u16::MAX);
    frame.extend_from_slice(&index.to_le_bytes());
    let timestamp = raw_table().timestamp().unwrap_or("");
    let types = parameters(timestamp).unwrap_or_default();
    write_values(&types, &[], input, &mut frame, entries_left);
    let fields: Vec<&str> = spec.fields.iter().map(|f| f.name).collect();
    let types = parameters(spec.format).expect("the contract's formats parse");
    write_values(&types, &fields, input, &mut frame, entries_left);
    frame
}

/// Writes one value of each type, from the input. A `LoaderStart`'s `build` and
/// `format` are mostly this ELF's, so that the rest of the stream is decoded.
fn write_values(
    types: &[Type],
    fields: &[&str],
    input: &mut Input,
    out: &mut Vec<u8>,
    entries_left: &mut usize,
) {
    for (n, ty) in types.iter().enumerate() {
        let field = fields.get(n).copied().unwrap_or("");
        let width = match ty {
            Type::U8 | Type::Bool => 1,
            Type::U16 => 2,
            Type::U32 => 4,
            Type::U64 => 8,
            Type::Str => {
                let len = input.below(MAX_STRING + 1);
                let text = input.bytes(len);
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                out.extend_from_slice(text);
                continue;
            }
            Type::IStr => {
                let strings = interned();
                let index = strings.get(input.below(strings.len())).map_or(0, |s| s.0);
                out.extend_from_slice(&index.to_le_bytes());
                continue;
            }
            Type::FormatSlice => {
                write_map(input, out, entries_left);
                continue;
            }
            _ => continue,
        };
        let value = match (field, input.u8() % 8) {
            ("build", 1..) => u64::from(table().build_id() as u32),
            ("format", 1..) => u64::from(FORMAT_VERSION),
            _ => int(input, width),
        };
        out.extend_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// A memory map (`{=[?]}`): up to seven entries, the last repeated
/// ([`Input::count`]: a frame of thousands of entries from a short input), as long
/// as `entries_left` lasts.
fn write_map(input: &mut Input, out: &mut Vec<u8>, entries_left: &mut usize) {
    let count = input.below(8);
    let repeats = if count > 0 { input.count() } else { 0 };
    let repeats = repeats.min(entries_left.saturating_sub(count));
    *entries_left = entries_left.saturating_sub(count + repeats);
    let format = if input.u8().is_multiple_of(8) {
        input.u16()
    } else {
        map_entry_index()
    };
    out.extend_from_slice(&((count + repeats) as u32).to_le_bytes());
    out.extend_from_slice(&format.to_le_bytes());
    let types = parameters(MAP_ENTRY_FORMAT).expect("the entry format parses");
    let mut last = Vec::new();
    for _ in 0..count {
        last.clear();
        write_values(&types, &[], input, &mut last, &mut 0);
        out.extend_from_slice(&last);
    }
    for _ in 0..repeats {
        out.extend_from_slice(&last);
    }
}

/// The choices that make [`write_stream`] write `events` as frames, each sent
/// as many ticks after the one before as their timestamps say, with `text` after
/// them.
pub fn choices_for(events: &[Event], text: &str) -> Vec<u8> {
    let mut choices = Choices::default();
    choices.u8(63);
    let mut clock = 0u64;
    for event in events {
        let Some(spec) = event.kind.spec() else {
            continue;
        };
        let position = EVENTS.iter().position(|e| e.name == spec.name).unwrap();
        choices.u8(1).below(position);
        // The timestamp, then each field: "not this ELF's value", then "any u64".
        let since = event.timestamp.saturating_sub(clock);
        clock = event.timestamp;
        choices.u8(0).u8(0).u64(since);
        let types = parameters(spec.format).expect("the contract's formats parse");
        for (ty, value) in types.iter().zip(event.kind.values()) {
            choose_value(&mut choices, ty, &value);
        }
        // Not cut.
        choices.u8(1);
    }
    let text = &text.as_bytes()[..text.len().min(63)];
    choices.u8(0).below(text.len()).raw(text);
    choices.bytes
}

/// The choices that make [`write_values`] write `value` as a `ty`.
fn choose_value(choices: &mut Choices, ty: &Type, value: &Value) {
    match (ty, value) {
        (Type::IStr, Value::Str(s)) => {
            let at = interned().iter().position(|(_, i)| i == s).unwrap_or(0);
            choices.below(at);
        }
        (_, Value::Str(s)) => {
            let bytes = &s.as_bytes()[..s.len().min(MAX_STRING)];
            choices.below(bytes.len()).raw(bytes);
        }
        (_, Value::Unsigned(n)) => {
            choices.u8(0).u8(0).u64(*n);
        }
        (_, Value::Bool(b)) => {
            choices.u8(0).u8(0).u64(u64::from(*b));
        }
        (_, Value::List(entries)) => {
            let (head, repeats) = tail_run(entries);
            choices.below(head);
            if head > 0 {
                choices.count(repeats);
            }
            // The entry format: the table's.
            choices.u8(1);
            for entry in &entries[..head] {
                for value in entry {
                    choose_value(choices, &Type::U64, value);
                }
            }
        }
    }
}
