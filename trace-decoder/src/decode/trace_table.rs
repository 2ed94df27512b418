//! From frames to typed events, in one place: each frame's arguments are read by the
//! types of its format string (from the loader ELF's table, see [`super::frame`])
//! and become a [`LoaderEvent`] of the wire contract (`rusty_loader::wire`), the
//! one definition the loader emits from. Everything after this module matches on
//! event variants; nothing reads display strings back.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use rusty_loader::wire::{self, EventSpec, Level, LoaderEvent, Value, EVENTS};

use super::build_id::table_build_id;
use super::event::Event;
use super::frame::{self, Arg, ArgReader, FrameError, Table, Tag};

/// The trace format version this decoder knows (`LoaderStart format=`): the wire
/// contract's.
pub const TRACE_FORMAT: u64 = wire::FORMAT_VERSION as u64;

/// The warning for a stream of another trace format than this decoder's, if it is.
pub fn format_mismatch(format: u64) -> Option<String> {
    (format != TRACE_FORMAT).then(|| {
        format!("trace format {format}, this decoder knows format {TRACE_FORMAT}: fields may be misread")
    })
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

    /// The finest level among the table's statements: the level the loader was
    /// built to trace at (`cargo xtask build --trace-level`).
    pub fn trace_level(&self) -> Level {
        self.statements
            .values()
            .map(|s| s.level)
            .min()
            .unwrap_or(Level::Error)
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

#[cfg(test)]
mod tests;
