//! A live decoding session: bytes go in as they arrive from QEMU's serial port (or a
//! recording), and out come the kernel's text, passed through untouched, and the
//! loader's events, each as soon as its frame is complete. At the end the session
//! hands over a [`BootRecord`] for the reports.
//!
//! Both `rusty-trace` and `cargo xtask trace` drive a [`Session`]: `feed` it every
//! chunk read, call `idle` when the input pauses, and `finish` it at EOF. The session
//! never panics on any input; whatever goes wrong in the stream (a corrupted frame, a
//! stream from another loader build, a stream cut short) becomes a
//! [`Output::Warning`] and a field of the record, and decoding goes on where it can.

use std::time::{Duration, Instant};

use rusty_loader::wire::LoaderEvent;

use super::event::Event;
use super::frame::FrameError;
use super::record::BootRecord;
use super::stream::{Demux, Piece};
use super::trace_table::{format_mismatch, FrameDecoder, TraceTable};

/// How many malformed frames are reported one by one; the rest are only counted, so
/// that a stream of garbage does not bury the text under warnings.
const MALFORMED_WARNINGS: usize = 5;

/// What a session produces, in stream order.
#[derive(Debug)]
pub enum Output<'a> {
    /// Text between frames: the kernel's output and the loader's error line, as
    /// bytes (not necessarily UTF-8, not necessarily whole lines).
    Text(&'a [u8]),
    /// A decoded event, and its time since the Multiboot entry (the loader's first
    /// instruction) in microseconds, when the TSC frequency is known.
    Event(&'a Event, Option<f64>),
    /// Something the reader should know about the stream, as one sentence.
    Warning(String),
}

/// What the session has found so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceStatus {
    /// No event has been decoded (yet).
    NotFound,
    /// Events were decoded. `verified` says whether a `LoaderStart` with this ELF's
    /// build identity was among them; without one (a stream that starts mid-boot)
    /// the events may still be right, but nothing proves it.
    Decoded { verified: bool },
    /// The stream's `LoaderStart` names another build than the ELF: events are no
    /// longer decoded (they would be garbage), text still passes through.
    OtherBuild { stream: u64, elf: u64 },
}

/// One decoding session over one stream.
pub struct Session<'t> {
    table: &'t TraceTable,
    decoder: FrameDecoder<'t>,
    demux: Demux,
    start: Instant,
    record: BootRecord,
    status: TraceStatus,
    /// The TSC frequency in kHz from the current boot's `Frequency` event (None
    /// before it, or when the loader did not know it).
    khz: Option<u64>,
    /// Whether the current boot's `Frequency` event has arrived.
    frequency_seen: bool,
    /// Events of `record.events` not yet handed out: those before `Frequency`, held
    /// back so that they can be shown with their time.
    pending_from: usize,
    after_hand_over: bool,
}

impl<'t> Session<'t> {
    /// A session whose host times count from now.
    pub fn new(table: &'t TraceTable) -> Self {
        Self::with_start(table, Instant::now())
    }

    /// A session whose host times count from `start` (for example when QEMU was
    /// spawned).
    pub fn with_start(table: &'t TraceTable, start: Instant) -> Self {
        Session {
            table,
            decoder: table.frame_decoder(),
            demux: Demux::new(),
            start,
            record: BootRecord {
                loader_image: table.loader_image(),
                errors_only: table.errors_only(),
                trace_level: Some(table.trace_level()),
                ..BootRecord::default()
            },
            status: TraceStatus::NotFound,
            khz: None,
            frequency_seen: false,
            pending_from: 0,
            after_hand_over: false,
        }
    }

    /// What has been found so far.
    pub fn status(&self) -> TraceStatus {
        self.status
    }

    /// The record as built so far (events, counters, host times).
    pub fn record(&self) -> &BootRecord {
        &self.record
    }

    /// Consumes the next bytes of the stream, in any chunking.
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(Output)) {
        if bytes.is_empty() {
            return;
        }
        let now = self.elapsed();
        self.record.host.first_byte.get_or_insert(now);
        // The demultiplexer is taken out for the call so that its callback can
        // borrow the rest of the session.
        let mut demux = std::mem::take(&mut self.demux);
        demux.feed(bytes, &mut |piece| self.piece(piece, now, out));
        self.demux = demux;
    }

    /// Tells the session that the input has paused: events held back until the TSC
    /// frequency is known are handed out now, without their time, so that a loader
    /// that hangs early still shows how far it got.
    pub fn idle(&mut self, out: &mut impl FnMut(Output)) {
        self.release_pending(out);
    }

    /// Ends the stream (EOF, or QEMU exited with `exit_status`) and returns the
    /// record of the boot.
    pub fn finish(mut self, exit_status: Option<i32>, out: &mut impl FnMut(Output)) -> BootRecord {
        let now = self.elapsed();
        let demux = std::mem::take(&mut self.demux);
        let rest = demux.finish(&mut |piece| self.piece(piece, now, out));
        self.release_pending(out);
        if let Some(rest) = rest {
            self.record.truncated = true;
            out(Output::Warning(format!(
                "the stream ends inside a frame ({} bytes of it arrived): the trace is truncated",
                rest.len()
            )));
        }
        if self.record.malformed_frames > MALFORMED_WARNINGS {
            out(Output::Warning(format!(
                "{} of {} frames did not decode and were skipped",
                self.record.malformed_frames, self.record.frames.candidates
            )));
        }
        self.record.text_lines.finish(Some(now));
        self.record.host.end = Some(now);
        self.record.exit_status = exit_status;
        self.record
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn piece(&mut self, piece: Piece, now: Duration, out: &mut impl FnMut(Output)) {
        match piece {
            Piece::Text(text) => {
                // Events before the text were sent before it: show them first.
                self.release_pending(out);
                if self.after_hand_over {
                    self.record.host.first_kernel_output.get_or_insert(now);
                }
                self.record.text_bytes += text.len();
                self.record
                    .text_lines
                    .feed(&text, Some(now), self.after_hand_over);
                out(Output::Text(&text));
            }
            Piece::Frame(frame) => self.frame(&frame, now, out),
            Piece::Oversized(_) => {
                self.record.frames.candidates += 1;
                self.malformed(FrameError::TooLong, out);
            }
        }
    }

    fn frame(&mut self, frame: &[u8], now: Duration, out: &mut impl FnMut(Output)) {
        self.record.frames.candidates += 1;
        // The frame with its marker and closing zero (a new boot counts anew).
        let size = frame.len() + 3;
        if matches!(self.status, TraceStatus::OtherBuild { .. }) {
            return;
        }
        let event = match self.decoder.decode(frame) {
            Ok(event) => event,
            Err(error) => {
                self.malformed(error, out);
                return;
            }
        };
        if self.decoder.gap_saturated() {
            out(Output::Warning(format!(
                "{} came at least {} ticks after the event before it, more than a timestamp can say: its time and later ones are early",
                event.name(),
                u32::MAX
            )));
        }
        let is_start = matches!(event.kind, LoaderEvent::LoaderStart { .. });
        if self.status == TraceStatus::NotFound && !is_start {
            out(Output::Warning(format!(
                "the trace does not start with LoaderStart but with {}: the stream starts mid-boot, or comes from another loader build",
                event.name()
            )));
        }
        match &event.kind {
            LoaderEvent::LoaderStart { build, format, .. }
                if !self.loader_start(u64::from(*build), u64::from(*format), now, out) =>
            {
                return;
            }
            LoaderEvent::Frequency { khz, .. } => {
                self.khz = Some(u64::from(*khz)).filter(|&khz| khz > 0);
                self.frequency_seen = true;
            }
            LoaderEvent::HandOver { .. } => {
                self.record.host.hand_over.get_or_insert(now);
                self.after_hand_over = true;
            }
            _ => {}
        }
        if self.status == TraceStatus::NotFound {
            self.status = TraceStatus::Decoded { verified: false };
        }
        if is_start {
            self.begin_boot();
        }
        self.record.trace_bytes += size;
        if event.timed_when_sent() {
            self.record.host.first_timed_event.get_or_insert(now);
        }
        self.record.events.push(event);
        // Until the frequency is known, events wait (see `pending_from`).
        if self.frequency_seen {
            self.release_pending(out);
        }
    }

    /// Checks the build identity of a new boot. Returns whether to keep decoding.
    fn loader_start(
        &mut self,
        stream: u64,
        format: u64,
        now: Duration,
        out: &mut impl FnMut(Output),
    ) -> bool {
        self.release_pending(out);
        let elf = self.table.build_id();
        if stream != elf {
            self.status = TraceStatus::OtherBuild { stream, elf };
            out(Output::Warning(format!(
                "the trace comes from another loader build (stream build {stream:#010x}, ELF build {elf:#010x}): events are not decoded, pass the ELF of the loader that produced the stream"
            )));
            return false;
        }
        if let Some(warning) = format_mismatch(format) {
            out(Output::Warning(warning));
        }
        self.status = TraceStatus::Decoded { verified: true };
        self.record.host.loader_start.get_or_insert(now);
        // A new boot in the same stream (concatenated recordings) may run at another
        // frequency.
        self.khz = None;
        self.frequency_seen = false;
        self.after_hand_over = false;
        true
    }

    /// Starts the record of a new boot (its `LoaderStart` was accepted, and the
    /// events before it handed out). The report covers the last boot of a stream, so
    /// the earlier one's events are dropped and only counted: a stream of many boots
    /// (a guest that resets in a loop, recordings joined together) costs the memory
    /// of one. Events before any `LoaderStart` (a stream that starts mid-boot) are
    /// dropped too, without counting as a boot.
    fn begin_boot(&mut self) {
        let was_boot = self
            .record
            .events
            .first()
            .is_some_and(|e| matches!(e.kind, LoaderEvent::LoaderStart { .. }));
        if was_boot {
            self.record.earlier_boots += 1;
        }
        self.record.events.clear();
        self.pending_from = 0;
        self.record.trace_bytes = 0;
    }

    fn malformed(&mut self, error: FrameError, out: &mut impl FnMut(Output)) {
        self.record.malformed_frames += 1;
        let counts = &mut self.record.frames;
        match error {
            FrameError::Encoding | FrameError::TooLong => counts.broken += 1,
            FrameError::UnknownIndex(_) => counts.unknown_index += 1,
            _ => counts.other += 1,
        }
        let count = self.record.malformed_frames;
        let after = self.record.events.last().map_or_else(
            || "before any event".to_string(),
            |e| format!("after {}", e.name()),
        );
        if count <= MALFORMED_WARNINGS {
            let more = if count == MALFORMED_WARNINGS {
                "; further ones are only counted"
            } else {
                ""
            };
            out(Output::Warning(format!(
                "frame {} ({after}) did not decode ({}) and was skipped; later times may be early{more}",
                self.record.frames.candidates,
                error.describe()
            )));
        }
    }

    fn release_pending(&mut self, out: &mut impl FnMut(Output)) {
        let khz = self.khz;
        for event in &self.record.events[self.pending_from..] {
            let micros = khz.map(|khz| event.timestamp as f64 * 1000.0 / khz as f64);
            out(Output::Event(event, micros));
        }
        self.pending_from = self.record.events.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_finds_no_trace() {
        // Any ELF will do for a session that never sees a frame, but the table needs
        // a real one: the recordings' ELF is checked in.
        let elf = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/recordings/rusty-loader.elf"
        ))
        .unwrap();
        let table = TraceTable::from_elf(&elf).unwrap();
        let session = Session::new(&table);
        assert_eq!(session.status(), TraceStatus::NotFound);
        let mut outputs = 0;
        let record = session.finish(None, &mut |_| outputs += 1);
        assert_eq!(outputs, 0);
        assert!(record.events.is_empty());
        assert_eq!(record.host.first_byte, None);
        assert!(record.host.end.is_some());
    }
}
