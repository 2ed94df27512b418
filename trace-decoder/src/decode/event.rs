//! A decoded loader event: its time, its level and what happened, typed as the wire
//! contract's [`LoaderEvent`] (`rusty_loader::wire`), and how it reads (as
//! defmt-print shows it).

use rusty_loader::wire::{Level, LoaderEvent, MapEntry};

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

    /// The event as defmt-print shows it (`Module start=0x1 end=0x2`), in pieces:
    /// its fields written into its kind's format ([`super::display`]).
    pub fn pieces(&self) -> Vec<LinePiece> {
        super::display::pieces(&self.kind)
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
