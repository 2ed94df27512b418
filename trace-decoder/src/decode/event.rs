//! A decoded loader event: its time, its level and what happened, typed as the wire
//! contract's [`LoaderEvent`] (`rusty_loader::wire`), and how it reads (as
//! defmt-print shows it).

use rusty_loader::wire::{Level, LoaderEvent, MapEntry, Value};

use super::frame::{self, Arg};

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
