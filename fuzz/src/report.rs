//! The `report` target: the report builder and its four renderings on arbitrary
//! events (any order, any values, repeated as often as a short input asks), and
//! arbitrary stream health and host times.
//!
//! Input: the record's counters, then events, each chosen by one byte (see
//! [`read_events`]).

use std::time::Duration;

use rusty_loader::wire::{FieldType, LoaderEvent, Value, EVENTS};
use trace_decoder::decode::Event;
use trace_decoder::decode::{BootRecord, HostTimes};

use super::decoding::check_report;
use super::input::{tail_run, Choices, Input};

/// Runs every check on one input; panics on the first that fails. Returns the work
/// it asked for (see [`check_report`]).
pub fn check(data: &[u8]) -> usize {
    check_report(&read_record(&mut Input::new(data)))
}

/// A host time: none, or up to about an hour and a quarter in microseconds.
fn host_time(input: &mut Input) -> Option<Duration> {
    input
        .bool()
        .then(|| Duration::from_micros(u64::from(input.u32())))
}

pub fn read_record(input: &mut Input) -> BootRecord {
    let loader_image = match input.u8() % 4 {
        0 => None,
        1 => Some((input.address(), input.address())),
        _ => Some((0x10_0000, 0x1f_0000)),
    };
    let host = HostTimes {
        first_byte: host_time(input),
        loader_start: host_time(input),
        first_timed_event: host_time(input),
        hand_over: host_time(input),
        first_kernel_output: host_time(input),
        end: host_time(input),
    };
    let exit_status = input.bool().then(|| input.u32() as i32);
    let earlier_boots = usize::from(input.u8());
    let malformed_frames = usize::from(input.u8());
    let truncated = input.bool();
    let errors_only = input.bool();
    let text_bytes = usize::from(input.u16());
    let trace_bytes = usize::from(input.u16());
    BootRecord {
        events: read_events(input),
        earlier_boots,
        host,
        exit_status,
        malformed_frames,
        // Frame counts only word the message of a stream without a trace, which
        // the report does not build.
        frames: Default::default(),
        truncated,
        loader_image,
        errors_only,
        trace_level: None,
        text_bytes,
        trace_bytes,
        // The text's lines come from a live session, which the `stream` and `frames`
        // targets drive; QEMU's view of a stop comes from QMP, not from the stream.
        // Neither is read from the input, so that the corpus keeps its meaning.
        text_lines: Default::default(),
        qemu_stop: None,
    }
}

/// The most events and memory-map entries one input makes in all: enough for the
/// maps and segment lists that made the report quadratic, few enough that no input
/// takes seconds of linear work.
const MAX_ITEMS: usize = 20_000;

/// Events until the input ends: a contract event with values of its fields' types
/// (0 to 5), an unknown event (6), or the last event repeated ([`Input::count`]
/// times) (7); at most [`MAX_ITEMS`] events and map entries.
pub fn read_events(input: &mut Input) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    let mut items_left = MAX_ITEMS;
    let mut clock = 0u64;
    while !input.is_empty() {
        let choice = input.u8() % 8;
        clock = if input.u8().is_multiple_of(16) {
            input.u64()
        } else {
            clock.saturating_add(u64::from(input.u16()))
        };
        match choice {
            0..=5 => {
                let spec = &EVENTS[input.below(EVENTS.len())];
                let values: Vec<Value> = spec
                    .fields
                    .iter()
                    .map(|f| value(input, f.ty, &mut items_left))
                    .collect();
                if let Ok(kind) = LoaderEvent::from_values(spec.name, &values) {
                    events.push(Event::new(clock, kind));
                    items_left = items_left.saturating_sub(1);
                }
            }
            6 => {
                let name = input.text(16);
                let message = input.text(64);
                events.push(Event::new(clock, LoaderEvent::Unknown { name, message }));
            }
            _ => {
                let repeats = input.count().min(items_left);
                if let Some(last) = events.last().cloned() {
                    events.extend(std::iter::repeat_n(last, repeats));
                    items_left -= repeats;
                }
            }
        }
    }
    events
}

/// A value of a field type: any number of the type's width, or a string; a memory
/// map takes its entries from `items_left`.
fn value(input: &mut Input, ty: FieldType, items_left: &mut usize) -> Value {
    let width = match ty {
        FieldType::U8 => 8,
        FieldType::U16 => 16,
        FieldType::U32 => 32,
        FieldType::U64 => 64,
        FieldType::Bool => return Value::Bool(input.bool()),
        FieldType::Str | FieldType::IStr => return Value::Str(input.text(200)),
        FieldType::Words => {
            let count = input.below(20);
            return Value::List(
                (0..count)
                    .map(|_| vec![Value::Unsigned(input.u64())])
                    .collect(),
            );
        }
        FieldType::MemoryMap => {
            let count = input.below(8);
            let mut entries: Vec<Vec<Value>> = (0..count)
                .map(|_| {
                    vec![
                        Value::Unsigned(input.address()),
                        Value::Unsigned(input.address()),
                        Value::Unsigned(u64::from(input.u8())),
                    ]
                })
                .collect();
            if let Some(last) = entries.last().cloned() {
                let repeats = input.count().min(items_left.saturating_sub(count));
                entries.extend(std::iter::repeat_n(last, repeats));
            }
            *items_left = items_left.saturating_sub(entries.len());
            return Value::List(entries);
        }
    };
    let any = input.address();
    Value::Unsigned(if width == 64 {
        any
    } else {
        any & ((1 << width) - 1)
    })
}

/// The choices that make [`read_record`] read a recorded boot's `events`, with
/// the loader image of the recordings and no host times.
pub fn choices_for(events: &[Event]) -> Vec<u8> {
    let mut choices = Choices::default();
    choices.u8(2);
    for _ in 0..6 {
        choices.u8(0);
    }
    choices
        .u8(1)
        .u32(3)
        .u8(0)
        .u8(0)
        .u8(0)
        .u8(0)
        .u16(100)
        .u16(400);
    let mut clock = 0u64;
    for event in events {
        let Some(spec) = event.kind.spec() else {
            continue;
        };
        let position = EVENTS.iter().position(|e| e.name == spec.name).unwrap();
        choices.u8(0);
        if event.timestamp >= clock && event.timestamp - clock <= u64::from(u16::MAX) {
            choices.u8(1).u16((event.timestamp - clock) as u16);
        } else {
            choices.u8(0).u64(event.timestamp);
        }
        clock = event.timestamp;
        choices.below(position);
        for (field, value) in spec.fields.iter().zip(event.kind.values()) {
            choose_value(&mut choices, field.ty, &value);
        }
    }
    choices.bytes
}

/// The choices that make [`value`] read `value`.
fn choose_value(choices: &mut Choices, ty: FieldType, value: &Value) {
    match value {
        Value::Unsigned(n) => {
            choices.address(*n);
        }
        Value::Bool(b) => {
            choices.u8(u8::from(*b));
        }
        Value::Str(s) => {
            let bytes = &s.as_bytes()[..s.len().min(200)];
            choices.below(bytes.len()).raw(bytes);
        }
        Value::List(entries) => {
            debug_assert_eq!(ty, FieldType::MemoryMap);
            let (head, repeats) = tail_run(entries);
            choices.below(head);
            for entry in &entries[..head] {
                for (n, value) in entry.iter().enumerate() {
                    match value {
                        Value::Unsigned(v) if n == 2 => choices.u8(*v as u8),
                        Value::Unsigned(v) => choices.address(*v),
                        _ => choices,
                    };
                }
            }
            if head > 0 {
                choices.count(repeats);
            }
        }
    }
}
