//! From frames to typed events, in one place: each frame's arguments are read by the
//! types of its format string (from the loader ELF's table, see [`crate::frame`])
//! and become a [`LoaderEvent`] of the wire contract (`rusty_loader::wire`), the
//! one definition the loader emits from. Everything after this module matches on
//! event variants; nothing reads display strings back.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use rusty_loader::wire::{self, EventSpec, Level, LoaderEvent, MapEntry, Value, EVENTS};

use crate::build_id::table_build_id;
use crate::frame::{self, Arg, ArgReader, FrameError, Table, Tag};
#[cfg(doc)]
use crate::report::BootRecord;

/// The trace format version this decoder knows (`LoaderStart format=`): the wire
/// contract's.
pub const TRACE_FORMAT: u64 = wire::FORMAT_VERSION as u64;

/// The warning for a stream of another trace format than this decoder's, if it is.
pub fn format_mismatch(format: u64) -> Option<String> {
    (format != TRACE_FORMAT).then(|| {
        format!("trace format {format}, this decoder knows format {TRACE_FORMAT}: fields may be misread")
    })
}

/// One decoded loader event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// TSC ticks since the Multiboot entry: the sum of the frames' timestamps (each
    /// is the ticks since the previous frame) since the boot's `LoaderStart`.
    pub timestamp: u64,
    /// The level the loader sent it at.
    pub level: Level,
    /// What happened, typed.
    pub kind: LoaderEvent,
}

/// One piece of an event as displayed: text, or a list whose items a terminal may
/// wrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinePiece {
    Text(String),
    List(Vec<String>),
}

impl Event {
    /// An event at `timestamp`, at the level the contract gives it.
    pub fn new(timestamp: u64, kind: LoaderEvent) -> Event {
        Event {
            timestamp,
            level: kind.level(),
            kind,
        }
    }

    /// The event's name (`SegmentLoaded`).
    pub fn name(&self) -> &str {
        self.kind.name()
    }

    /// False for the events sent with a time recorded earlier (see
    /// [`LoaderEvent::timed_when_sent`]).
    pub fn timed_when_sent(&self) -> bool {
        self.kind.timed_when_sent()
    }

    /// The event as defmt-print shows it (`Module start=0x1 end=0x2`), in pieces.
    pub fn pieces(&self) -> Vec<LinePiece> {
        let Some(spec) = self.kind.spec() else {
            let message = match &self.kind {
                LoaderEvent::Unknown { message, .. } => message.clone(),
                other => other.name().to_string(),
            };
            return vec![LinePiece::Text(message)];
        };
        let args: Vec<Arg> = self
            .kind
            .values()
            .iter()
            .zip(spec.fields)
            .map(|(value, field)| arg_of(value, field.ty.element_format()))
            .collect();
        let Ok(fragments) =
            defmt_parser::parse(spec.format, defmt_parser::ParserMode::ForwardsCompatible)
        else {
            return vec![LinePiece::Text(spec.format.to_string())];
        };
        let mut pieces = Vec::new();
        let mut text = String::new();
        for fragment in fragments {
            match fragment {
                defmt_parser::Fragment::Literal(literal) => text.push_str(&literal),
                defmt_parser::Fragment::Parameter(p) => match args.get(p.index) {
                    Some(Arg::List(items)) => {
                        pieces.push(LinePiece::Text(std::mem::take(&mut text)));
                        let items = items
                            .iter()
                            .map(|item| {
                                let mut out = String::new();
                                frame::render_arg(item, None, &mut out);
                                out
                            })
                            .collect();
                        pieces.push(LinePiece::List(items));
                    }
                    Some(arg) => frame::render_arg(arg, p.hint.as_ref(), &mut text),
                    None => text.push('?'),
                },
            }
        }
        if !text.is_empty() {
            pieces.push(LinePiece::Text(text));
        }
        pieces
    }

    /// The event as defmt-print shows it, in one line.
    pub fn message(&self) -> String {
        let mut out = String::new();
        for piece in self.pieces() {
            match piece {
                LinePiece::Text(text) => out.push_str(&text),
                LinePiece::List(items) => {
                    out.push('[');
                    out.push_str(&items.join(", "));
                    out.push(']');
                }
            }
        }
        out
    }
}

/// A contract value as a wire argument, for display; the elements of a list are
/// shown by `element_format`, their field type's.
fn arg_of(value: &Value, element_format: Option<&str>) -> Arg {
    match value {
        Value::Unsigned(n) => Arg::Unsigned(u128::from(*n)),
        Value::Bool(b) => Arg::Bool(*b),
        Value::Str(s) => Arg::Str(s.clone()),
        Value::List(items) => Arg::List(
            items
                .iter()
                .map(|values| Arg::Format {
                    format: element_format.unwrap_or_default().to_string(),
                    args: values.iter().map(|v| arg_of(v, None)).collect(),
                })
                .collect(),
        ),
    }
}

/// A wire argument as a contract value: nested formats and sequences flattened into
/// their values, lists kept as lists of such.
fn value_of(arg: &Arg) -> Option<Value> {
    Some(match arg {
        Arg::Unsigned(n) => Value::Unsigned(u64::try_from(*n).ok()?),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Str(s) => Value::Str(s.clone()),
        Arg::List(items) => Value::List(items.iter().map(flat_values).collect::<Option<_>>()?),
        _ => return None,
    })
}

fn flat_values(arg: &Arg) -> Option<Vec<Value>> {
    match arg {
        Arg::Format { args, .. } => {
            let mut values = Vec::new();
            for arg in args {
                values.extend(flat_values(arg)?);
            }
            Some(values)
        }
        Arg::Sequence(parts) => {
            let mut values = Vec::new();
            for part in parts {
                values.extend(flat_values(part)?);
            }
            Some(values)
        }
        other => Some(vec![value_of(other)?]),
    }
}

/// Every memory-map entry of the `MemoryMap` events (a long map takes several), in
/// order.
pub fn memory_map(events: &[Event]) -> Vec<MapEntry> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            LoaderEvent::MemoryMap { regions } => Some(regions.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// What the decoder knows about one log statement of the table.
#[derive(Clone, Debug)]
struct Statement {
    level: Level,
    format: String,
    /// The contract's event, when the format is the contract's (or extends it with
    /// trailing fields).
    spec: Option<&'static EventSpec>,
}

/// A loader ELF's defmt table, its events and its build identity.
pub struct TraceTable {
    table: Table,
    statements: HashMap<u16, Statement>,
    build_id: u32,
    errors_only: bool,
    loader_image: Option<(u64, u64)>,
    changed_events: Vec<String>,
}

impl TraceTable {
    /// Reads the table from the (unstripped) loader ELF.
    pub fn from_elf(elf: &[u8]) -> Result<TraceTable> {
        let table = Table::from_elf(elf).context("reading the defmt table")?;
        let mut trace_table = TraceTable::new(table, table_build_id(elf)?)?;
        trace_table.loader_image = loader_image(elf);
        Ok(trace_table)
    }

    /// A table from its parts (tests build one without an ELF).
    pub fn new(table: Table, build_id: u32) -> Result<TraceTable> {
        let mut statements = HashMap::new();
        let mut changed_events = Vec::new();
        for (index, entry) in table.entries() {
            let Tag::Level(level) = entry.tag else {
                continue;
            };
            let name = entry.string.split(' ').next().unwrap_or("");
            let spec = EVENTS.iter().find(|spec| spec.name == name);
            let matches = spec.is_some_and(|spec| {
                entry.string == spec.format
                    || entry
                        .string
                        .strip_prefix(spec.format)
                        .is_some_and(|rest| rest.starts_with(' '))
            });
            if spec.is_some() && !matches {
                changed_events.push(name.to_string());
            }
            statements.insert(
                index,
                Statement {
                    level,
                    format: entry.string.clone(),
                    spec: spec.filter(|_| matches),
                },
            );
        }
        if statements.is_empty() {
            bail!("the ELF's defmt table has no log statements: not a loader built with tracing");
        }
        // A loader built to trace only errors has no `info` statement.
        let errors_only = !statements.values().any(|s| s.level <= Level::Info);
        Ok(TraceTable {
            table,
            statements,
            build_id,
            errors_only,
            loader_image: None,
            changed_events,
        })
    }

    /// The loader image `[start, end)` from the ELF's `__loader_start` and
    /// `__loader_end` symbols, when both are there.
    pub fn loader_image(&self) -> Option<(u64, u64)> {
        self.loader_image
    }

    /// The identity this ELF's loader sends in `LoaderStart` (widened to compare
    /// with the field).
    pub fn build_id(&self) -> u64 {
        u64::from(self.build_id)
    }

    /// Whether the loader was built to trace only errors and warnings
    /// (`--trace-level error` or `warn`): a boot without any event is then normal.
    pub fn errors_only(&self) -> bool {
        self.errors_only
    }

    /// Events of the contract whose format in this ELF differs from the contract's
    /// (a loader of another trace format): they are decoded as unknown events.
    pub fn changed_events(&self) -> &[String] {
        &self.changed_events
    }

    /// The table index of the contract's event `name` in this ELF (for tools and
    /// tests that write frames).
    pub fn index_of(&self, name: &str) -> Option<u16> {
        self.statements
            .iter()
            .filter(|(_, s)| s.spec.is_some_and(|spec| spec.name == name))
            .map(|(&index, _)| index)
            .min()
    }

    pub fn frame_decoder(&self) -> FrameDecoder<'_> {
        FrameDecoder {
            table: self,
            clock: 0,
            saturated: false,
        }
    }
}

/// Reads the loader image's range from the linker script's symbols.
pub(crate) fn loader_image(elf_bytes: &[u8]) -> Option<(u64, u64)> {
    let elf = goblin::elf::Elf::parse(elf_bytes).ok()?;
    let symbol = |name: &str| {
        elf.syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
            .map(|s| s.st_value)
    };
    let (start, end) = (symbol("__loader_start")?, symbol("__loader_end")?);
    (start < end).then_some((start, end))
}

/// Decodes single frames (as the demultiplexer cuts them) into events.
pub struct FrameDecoder<'t> {
    table: &'t TraceTable,
    /// The time of the previous event, in ticks since the Multiboot entry.
    clock: u64,
    /// Whether the last frame's timestamp was `u32::MAX`: the loader sends a longer
    /// gap as that, so the times from there on are early.
    saturated: bool,
}

impl FrameDecoder<'_> {
    /// Decodes one frame (without marker and closing zero).
    pub fn decode(&mut self, frame: &[u8]) -> Result<Event, FrameError> {
        let bytes = frame::rzcobs_decode(frame)?;
        let mut reader = ArgReader::new(&self.table.table, &bytes);
        let index = reader.index()?;
        let statement = self
            .table
            .statements
            .get(&index)
            .ok_or(FrameError::UnknownIndex(index))?;
        let since_previous = match self.table.table.timestamp() {
            Some(format) => match reader.args(format)?.first() {
                Some(Arg::Unsigned(ticks)) => u64::try_from(*ticks).unwrap_or(u64::MAX),
                _ => return Err(FrameError::BadValue),
            },
            None => 0,
        };
        let args = reader.args(&statement.format)?;
        let kind = match statement.spec {
            Some(spec) => {
                let values = args.iter().map(value_of).collect::<Option<Vec<_>>>();
                values
                    .and_then(|values| LoaderEvent::from_values(spec.name, &values).ok())
                    .ok_or(FrameError::BadValue)?
            }
            None => {
                let mut message = String::new();
                frame::render(&statement.format, &args, &mut message);
                LoaderEvent::Unknown {
                    name: statement.format.split(' ').next().unwrap_or("").to_string(),
                    message,
                }
            }
        };
        self.saturated = since_previous == u64::from(u32::MAX);
        // `LoaderStart` starts a boot's clock: its time is counted from the entry.
        self.clock = if matches!(kind, LoaderEvent::LoaderStart { .. }) {
            since_previous
        } else {
            self.clock.saturating_add(since_previous)
        };
        Ok(Event {
            timestamp: self.clock,
            level: statement.level,
            kind,
        })
    }

    /// Whether the last decoded frame came at least `u32::MAX` ticks after the one
    /// before (the most a timestamp can say).
    pub fn gap_saturated(&self) -> bool {
        self.saturated
    }
}

/// Everything in a recorded stream.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The events of the stream's last boot (see [`BootRecord::events`]).
    pub events: Vec<Event>,
    /// Boots before it, whose events were dropped.
    pub earlier_boots: usize,
    /// All text, frames removed.
    pub text: Vec<u8>,
    /// Frames that did not decode.
    pub malformed_frames: usize,
    /// The stream ended inside a frame.
    pub truncated: bool,
    /// Bytes of trace frames (of the last boot), with their markers.
    pub trace_bytes: usize,
}

/// Decodes a whole recorded stream, refusing one from another loader build: the
/// live [`crate::live::Session`] fed the stream in one piece.
pub fn decode_recording(table: &TraceTable, stream: &[u8]) -> Result<Decoded> {
    use crate::live::{Output, Session, TraceStatus};
    let mut session = Session::new(table);
    let mut text = Vec::new();
    let mut take = |output: Output| {
        if let Output::Text(bytes) = output {
            text.extend_from_slice(bytes);
        }
    };
    session.feed(stream, &mut take);
    if let TraceStatus::OtherBuild { stream, elf } = session.status() {
        bail!(
            "the trace comes from another loader build (stream build {stream:#010x}, ELF build {elf:#010x}): pass the ELF of the loader that produced it"
        );
    }
    let record = session.finish(None, &mut take);
    Ok(Decoded {
        events: record.events,
        earlier_boots: record.earlier_boots,
        text,
        malformed_frames: record.malformed_frames,
        truncated: record.truncated,
        trace_bytes: record.trace_bytes,
    })
}

#[cfg(test)]
mod tests;
