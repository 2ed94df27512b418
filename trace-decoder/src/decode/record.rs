//! What decoding a stream yields: the [`BootRecord`] of its (last) boot, which the
//! reports are built from, with the host's arrival times; and [`decode_recording`],
//! a whole recorded stream decoded at once.

use std::time::Duration;

use anyhow::{bail, Result};
use rusty_loader::wire::Level;

use super::event::Event;
use super::qemu_stop::QemuStop;
use super::session::{Output, Session, TraceStatus};
use super::text_lines::TextLines;
use super::trace_table::TraceTable;

/// What the host saw and when, relative to the moment reading began (for a live
/// QEMU run: when QEMU was started).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostTimes {
    /// The first byte of the stream (firmware or loader).
    pub first_byte: Option<Duration>,
    /// Arrival of the loader's first event (`LoaderStart`).
    pub loader_start: Option<Duration>,
    /// Arrival of the first event timed when it was sent (see
    /// [`Event::timed_when_sent`]): ties the host's clock to the loader's.
    pub first_timed_event: Option<Duration>,
    /// Arrival of `HandOver`.
    pub hand_over: Option<Duration>,
    /// The first text byte after `HandOver`: the kernel's first output.
    pub first_kernel_output: Option<Duration>,
    /// End of the stream (EOF or QEMU's exit).
    pub end: Option<Duration>,
}

/// Everything known about one boot.
#[derive(Clone, Debug, Default)]
pub struct BootRecord {
    /// The loader's events, in stream order: for a stream of several boots, those of
    /// the last one (a live session drops a boot's events when the next begins).
    pub events: Vec<Event>,
    /// Boots earlier in the stream whose events were dropped: the stream held these
    /// and the boots (`LoaderStart` events) in `events`.
    pub earlier_boots: usize,
    /// Host-side arrival times (all None for a recorded stream without them).
    pub host: HostTimes,
    /// QEMU's exit status, when known.
    pub exit_status: Option<i32>,
    /// Frames that did not decode.
    pub malformed_frames: usize,
    /// Candidate frames seen (a frame marker up to its closing zero), decoded or
    /// not, and how those that did not decode failed.
    pub frames: FrameCounts,
    /// The stream ended inside a frame.
    pub truncated: bool,
    /// The loader image `[start, end)`, from the ELF's `__loader_start`/`__loader_end`.
    pub loader_image: Option<(u64, u64)>,
    /// The loader traces only errors and warnings (its ELF has no `info` event): a
    /// boot without events is normal, not a trace cut short.
    pub errors_only: bool,
    /// The level the loader was built to trace at (its ELF table's finest), when
    /// the record comes from a session.
    pub trace_level: Option<Level>,
    /// Bytes of text (kernel output and loader text lines) seen.
    pub text_bytes: usize,
    /// Bytes of trace frames seen, with their markers (of the last boot).
    pub trace_bytes: usize,
    /// The text as lines, with their arrival times when the stream was live.
    pub text_lines: TextLines,
    /// How QEMU saw the guest stop, when it was asked (`cargo xtask trace`).
    pub qemu_stop: Option<QemuStop>,
}

/// The candidate frames of a stream: what a stream that holds no trace is made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Every candidate frame: a frame marker (`FF 00`) up to the next `00`.
    pub candidates: usize,
    /// Those whose rzcobs encoding was broken, or longer than any frame.
    pub broken: usize,
    /// Those that decoded to a table index naming no log statement of the ELF.
    pub unknown_index: usize,
    /// Those that failed otherwise (arguments that do not fit their format).
    pub other: usize,
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
/// live [`Session`] fed the stream in one piece.
pub fn decode_recording(table: &TraceTable, stream: &[u8]) -> Result<Decoded> {
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
