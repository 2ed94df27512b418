//! From frames to events: each frame is decoded with defmt-decoder against the loader
//! ELF's table, and its displayed message is read back into an [`Event`] by the
//! grammar of `docs/trace-format.md` (`Name key=value ...`, a final `text=` taking
//! the rest of the line). Event names and field names are the loader's, unchanged.

use anyhow::{bail, Context, Result};
use defmt_decoder::{DecodeError, StreamDecoder, Table};

use crate::build_id::table_build_id;
use crate::stream::{Demux, Piece};

/// One decoded loader event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// TSC ticks since the Multiboot entry (the frame's defmt timestamp).
    pub timestamp: u64,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// The event's name: the first word of its format string (`SegmentLoaded`).
    pub name: String,
    /// The fields in order, values as displayed.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// Reads a displayed message: `Name key=value key=value ... [text=rest of line]`.
    pub fn parse(timestamp: u64, level: &str, message: &str) -> Event {
        let (name, mut rest) = message.split_once(' ').unwrap_or((message, ""));
        let mut fields = Vec::new();
        while !rest.is_empty() {
            if let Some(text) = rest.strip_prefix("text=") {
                fields.push(("text".to_string(), text.to_string()));
                break;
            }
            let (pair, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            fields.push((key.to_string(), value.to_string()));
            rest = tail;
        }
        Event {
            timestamp,
            level: level.to_string(),
            name: name.to_string(),
            fields,
        }
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

    /// A boolean field.
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
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
    build_id: u64,
    loader_image: Option<(u64, u64)>,
}

impl TraceTable {
    /// Reads the table from the (unstripped) loader ELF.
    pub fn from_elf(elf: &[u8]) -> Result<TraceTable> {
        let table = Table::parse(elf)
            .context("reading the defmt table")?
            .context("the ELF has no defmt table: not a loader built with tracing")?;
        let build_id = table_build_id(elf)?;
        Ok(TraceTable {
            table,
            build_id,
            loader_image: loader_image(elf),
        })
    }

    /// The loader image `[start, end)` from the ELF's `__loader_start` and
    /// `__loader_end` symbols, when both are there.
    pub fn loader_image(&self) -> Option<(u64, u64)> {
        self.loader_image
    }

    /// The identity this ELF's loader sends in `LoaderStart`.
    pub fn build_id(&self) -> u64 {
        self.build_id
    }

    pub fn frame_decoder(&self) -> FrameDecoder<'_> {
        FrameDecoder {
            stream: self.table.new_stream_decoder(),
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
}

impl FrameDecoder<'_> {
    /// Decodes one frame (without marker and closing zero).
    pub fn decode(&mut self, frame: &[u8]) -> Result<Event, DecodeError> {
        self.stream.received(frame);
        self.stream.received(&[0]);
        let decoded = self.stream.decode()?;
        let timestamp = decoded
            .display_timestamp()
            .and_then(|t| t.to_string().parse().ok())
            .ok_or(DecodeError::Malformed)?;
        let level = decoded.level().map_or("print", |l| l.as_str());
        Ok(Event::parse(
            timestamp,
            level,
            &decoded.display_message().to_string(),
        ))
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
                "the trace comes from another loader build (stream build {build:#018x}, ELF build {:#018x}): pass the ELF of the loader that produced it",
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
        check("MultibootEntry tsc=0", "MultibootEntry", &[("tsc", "0")]);
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
    }

    #[test]
    fn typed_accessors() {
        let event = Event::parse(0, "info", "X a=0x10 b=42 c=true d=maybe");
        assert_eq!(event.u64("a"), Some(16));
        assert_eq!(event.u64("b"), Some(42));
        assert_eq!(event.bool("c"), Some(true));
        assert_eq!(event.bool("d"), None);
        assert_eq!(event.u64("missing"), None);
    }
}
