//! From frames to events: each frame is decoded with defmt-decoder against the loader
//! ELF's table, and its displayed message is read back into an [`Event`] by the
//! grammar of `docs/trace-format.md` (`Name key=value ...`, a final `text=` taking
//! the rest of the line). Event names and field names are the loader's, unchanged.

use anyhow::{bail, Context, Result};
use defmt_decoder::{DecodeError, StreamDecoder, Table};

use crate::build_id::table_build_id;
use crate::stream::{Demux, Piece};

/// The trace format version this decoder knows (`LoaderStart format=`; the
/// loader's `trace::FORMAT_VERSION`).
pub const TRACE_FORMAT: u64 = 2;

/// One decoded loader event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// TSC ticks since the Multiboot entry: the sum of the frames' timestamps (each
    /// is the ticks since the previous frame) since the boot's `LoaderStart`.
    pub timestamp: u64,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// The event's name: the first word of its format string (`SegmentLoaded`).
    pub name: String,
    /// The fields in order, values as displayed.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// Reads a displayed message: `Name key=value key=value ... [text=rest of line]`,
    /// where a value in brackets is a list (`regions=[a, b]`) and may hold spaces.
    pub fn parse(timestamp: u64, level: &str, message: &str) -> Event {
        let (name, mut rest) = message.split_once(' ').unwrap_or((message, ""));
        let mut fields = Vec::new();
        while !rest.is_empty() {
            if let Some(text) = rest.strip_prefix("text=") {
                fields.push(("text".to_string(), text.to_string()));
                break;
            }
            let (key, tail) = rest.split_once('=').unwrap_or((rest, ""));
            if key.contains(' ') {
                // A word without `=`: kept as a key without value.
                let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                fields.push((word.to_string(), String::new()));
                rest = tail;
                continue;
            }
            let end = if tail.starts_with('[') {
                tail.find(']').map_or(tail.len(), |close| close + 1)
            } else {
                tail.find(' ').unwrap_or(tail.len())
            };
            fields.push((key.to_string(), tail[..end].to_string()));
            rest = tail[end..].strip_prefix(' ').unwrap_or(&tail[end..]);
        }
        Event {
            timestamp,
            level: level.to_string(),
            name: name.to_string(),
            fields,
        }
    }

    /// False for the events sent with a time recorded earlier (`LoaderStart`,
    /// `PagingEnabled`, `LongModeEntered` carry the start-up code's stamps); true
    /// for every other, whose time is when it was sent.
    pub fn timed_when_sent(&self) -> bool {
        !matches!(
            self.name.as_str(),
            "LoaderStart" | "PagingEnabled" | "LongModeEntered"
        )
    }

    /// A field's displayed value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A numeric field (`0x` hex or decimal).
    pub fn u64(&self, key: &str) -> Option<u64> {
        parse_number(self.get(key)?)
    }

    /// The items of a list field (`[a, b]`); `None` when the field is absent or not
    /// a list.
    pub fn list(&self, key: &str) -> Option<Vec<&str>> {
        let inner = self.get(key)?.strip_prefix('[')?.strip_suffix(']')?;
        Some(if inner.is_empty() {
            Vec::new()
        } else {
            inner.split(", ").collect()
        })
    }

    /// A boolean field.
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

/// One Multiboot memory-map entry as `MemoryMap` shows it: `0x100000-0x3fe0000:1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    /// 1 usable, 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, 5 defective.
    pub kind: u64,
}

impl MapEntry {
    /// Reads `start-end:kind`; `None` for anything else.
    pub fn parse(item: &str) -> Option<MapEntry> {
        let (range, kind) = item.split_once(':')?;
        let (start, end) = range.split_once('-')?;
        Some(MapEntry {
            start: parse_number(start)?,
            end: parse_number(end)?,
            kind: parse_number(kind)?,
        })
    }
}

/// Every memory-map entry of the `MemoryMap` events (a long map takes several), in
/// order; items that do not read as an entry are skipped.
pub fn memory_map(events: &[Event]) -> Vec<MapEntry> {
    events
        .iter()
        .filter(|e| e.name == "MemoryMap")
        .filter_map(|e| e.list("regions"))
        .flatten()
        .filter_map(MapEntry::parse)
        .collect()
}

/// Parses `0x`-prefixed hex or decimal.
pub fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// A loader ELF's defmt table and build identity.
pub struct TraceTable {
    table: Table,
    build_id: u32,
    errors_only: bool,
    loader_image: Option<(u64, u64)>,
}

impl TraceTable {
    /// Reads the table from the (unstripped) loader ELF.
    pub fn from_elf(elf: &[u8]) -> Result<TraceTable> {
        let table = Table::parse(elf)
            .context("reading the defmt table")?
            .context("the ELF has no defmt table: not a loader built with tracing")?;
        let build_id = table_build_id(elf)?;
        // Each symbol is a JSON record with the log level as its tag.
        let errors_only = !table.raw_symbols().any(|symbol| {
            ["info", "debug", "trace"]
                .iter()
                .any(|level| symbol.contains(&format!(r#""tag":"defmt_{level}""#)))
        });
        Ok(TraceTable {
            table,
            build_id,
            errors_only,
            loader_image: loader_image(elf),
        })
    }

    /// The loader image `[start, end)` from the ELF's `__loader_start` and
    /// `__loader_end` symbols, when both are there.
    pub fn loader_image(&self) -> Option<(u64, u64)> {
        self.loader_image
    }

    /// The identity this ELF's loader sends in `LoaderStart` (a u32, widened to
    /// compare with the field as read back).
    pub fn build_id(&self) -> u64 {
        u64::from(self.build_id)
    }

    /// Whether the loader was built to trace only errors and warnings
    /// (`--trace-level error` or `warn`): a boot without any event is then normal.
    pub fn errors_only(&self) -> bool {
        self.errors_only
    }

    pub fn frame_decoder(&self) -> FrameDecoder<'_> {
        FrameDecoder {
            stream: self.table.new_stream_decoder(),
            clock: 0,
            saturated: false,
        }
    }
}

/// Reads the loader image's range from the linker script's symbols.
fn loader_image(elf_bytes: &[u8]) -> Option<(u64, u64)> {
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
    stream: Box<dyn StreamDecoder + Send + Sync + 't>,
    /// The time of the previous event, in ticks since the Multiboot entry.
    clock: u64,
    /// Whether the last frame's timestamp was `u32::MAX`: the loader sends a longer
    /// gap as that, so the times from there on are early.
    saturated: bool,
}

impl FrameDecoder<'_> {
    /// Decodes one frame (without marker and closing zero).
    pub fn decode(&mut self, frame: &[u8]) -> Result<Event, DecodeError> {
        self.stream.received(frame);
        self.stream.received(&[0]);
        let decoded = self.stream.decode()?;
        let since_previous: u64 = decoded
            .display_timestamp()
            .and_then(|t| t.to_string().parse().ok())
            .ok_or(DecodeError::Malformed)?;
        self.saturated = since_previous == u64::from(u32::MAX);
        let level = decoded.level().map_or("print", |l| l.as_str());
        let mut event = Event::parse(0, level, &decoded.display_message().to_string());
        // `LoaderStart` starts a boot's clock: its time is counted from the entry.
        self.clock = if event.name == "LoaderStart" {
            since_previous
        } else {
            self.clock.saturating_add(since_previous)
        };
        event.timestamp = self.clock;
        Ok(event)
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
    pub events: Vec<Event>,
    /// All text, frames removed.
    pub text: Vec<u8>,
    /// Frames that did not decode.
    pub malformed_frames: usize,
    /// The stream ended inside a frame.
    pub truncated: bool,
}

/// Decodes a whole recorded stream, refusing one from another loader build.
pub fn decode_recording(table: &TraceTable, stream: &[u8]) -> Result<Decoded> {
    let mut decoder = table.frame_decoder();
    let mut decoded = Decoded::default();
    let mut demux = Demux::new();
    let mut take = |piece: Piece| match piece {
        Piece::Text(text) => decoded.text.extend_from_slice(&text),
        Piece::Frame(frame) => match decoder.decode(&frame) {
            Ok(event) => decoded.events.push(event),
            Err(_) => decoded.malformed_frames += 1,
        },
    };
    demux.feed(stream, &mut take);
    decoded.truncated = demux.finish(&mut take).is_some();
    if let Some(start) = decoded.events.iter().find(|e| e.name == "LoaderStart") {
        let build = start.u64("build").unwrap_or(0);
        if build != table.build_id() {
            bail!(
                "the trace comes from another loader build (stream build {build:#010x}, ELF build {:#010x}): pass the ELF of the loader that produced it",
                table.build_id()
            );
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(message: &str, name: &str, fields: &[(&str, &str)]) {
        let event = Event::parse(7, "info", message);
        assert_eq!(event.name, name);
        let got: Vec<(&str, &str)> = event
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, fields, "fields of {message:?}");
    }

    #[test]
    fn parses_messages_by_the_documented_grammar() {
        check("PagingEnabled", "PagingEnabled", &[]);
        check(
            "Module start=0x1000 end=0x2000",
            "Module",
            &[("start", "0x1000"), ("end", "0x2000")],
        );
        check(
            "CommandLine kernel_args_at=10 app_args_at=65535 text=/x -freq 2800 -- a=b  c",
            "CommandLine",
            &[
                ("kernel_args_at", "10"),
                ("app_args_at", "65535"),
                ("text", "/x -freq 2800 -- a=b  c"),
            ],
        );
        check(
            "Refused code=17 name=not-elf text=",
            "Refused",
            &[("code", "17"), ("name", "not-elf"), ("text", "")],
        );
        check("Bare", "Bare", &[]);
        check(
            "MemoryMap regions=[0x0-0x9fc00:1, 0x9fc00-0xa0000:2] next=1",
            "MemoryMap",
            &[
                ("regions", "[0x0-0x9fc00:1, 0x9fc00-0xa0000:2]"),
                ("next", "1"),
            ],
        );
        check(
            "X a=[] b=[unclosed",
            "X",
            &[("a", "[]"), ("b", "[unclosed")],
        );
    }

    #[test]
    fn typed_accessors() {
        let event = Event::parse(0, "info", "X a=0x10 b=42 c=true d=maybe");
        assert_eq!(event.u64("a"), Some(16));
        assert_eq!(event.u64("b"), Some(42));
        assert_eq!(event.bool("c"), Some(true));
        assert_eq!(event.bool("d"), None);
        assert_eq!(event.u64("missing"), None);
        let event = Event::parse(0, "info", "X l=[0x1-0x2:1, 3] e=[] n=5");
        assert_eq!(event.list("l"), Some(vec!["0x1-0x2:1", "3"]));
        assert_eq!(event.list("e"), Some(vec![]));
        assert_eq!(event.list("n"), None);
    }

    #[test]
    fn reads_memory_map_entries() {
        let events = [
            Event::parse(
                0,
                "info",
                "MemoryMap regions=[0x0-0x9fc00:1, junk, 0x100000-0x200000:2]",
            ),
            Event::parse(0, "info", "Module start=0x1 end=0x2"),
            Event::parse(
                0,
                "info",
                "MemoryMap regions=[0xfd00000000-0x10000000000:2]",
            ),
        ];
        let entry = |start, end, kind| MapEntry { start, end, kind };
        assert_eq!(
            memory_map(&events),
            [
                entry(0, 0x9fc00, 1),
                entry(0x100000, 0x200000, 2),
                entry(0xfd00000000, 0x10000000000, 2)
            ]
        );
        assert_eq!(MapEntry::parse("0x1-0x2"), None);
        assert_eq!(MapEntry::parse("0x1:2"), None);
    }
}
