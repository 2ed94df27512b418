//! Separating the two kinds of bytes on the loader's serial stream: text (the
//! kernel's output, the loader's error line) and defmt frames. Every frame is
//! written as `FF 00`, then the rzcobs-encoded frame, then `00`; so text runs from
//! a frame's closing `00` to the next `FF 00`. The demultiplexer works on arbitrary
//! chunks, as bytes arrive from a pipe.

use rusty_loader::wire::FRAME_MARKER;

/// The marker's two bytes, as match patterns.
const MARKER_FIRST: u8 = FRAME_MARKER[0];
const MARKER_SECOND: u8 = FRAME_MARKER[1];

/// One piece of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes that are not part of a frame.
    Text(Vec<u8>),
    /// One encoded frame, without the marker and without its closing `00`.
    Frame(Vec<u8>),
    /// A frame longer than any the loader writes ([`MAX_FRAME`] bytes), dropped
    /// unread so that a stream without frame ends cannot fill the reader's memory:
    /// how many bytes it had.
    Oversized(usize),
}

/// An encoded frame longer than this cannot decode to a frame the decoder accepts
/// (every encoded byte decodes to at least one), so it is dropped as it arrives.
pub const MAX_FRAME: usize = super::frame::MAX_FRAME;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Text,
    /// An `FF` was seen in text; a `00` next starts a frame.
    MarkerStart,
    Frame,
    /// Inside a frame that grew past [`MAX_FRAME`]: bytes are counted, not kept.
    Oversized,
}

/// Incremental demultiplexer: feed it bytes, receive pieces.
#[derive(Debug)]
pub struct Demux {
    state: State,
    text: Vec<u8>,
    frame: Vec<u8>,
    /// Bytes of the oversized frame so far.
    dropped: usize,
}

impl Default for Demux {
    fn default() -> Self {
        Self::new()
    }
}

impl Demux {
    pub fn new() -> Self {
        Demux {
            state: State::Text,
            text: Vec::new(),
            frame: Vec::new(),
            dropped: 0,
        }
    }

    /// Consumes `bytes`; text collected so far is handed out at the end of each call
    /// (so a live reader shows it without waiting for the next frame).
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(Piece)) {
        for &byte in bytes {
            match (self.state, byte) {
                (State::Text, MARKER_FIRST) => self.state = State::MarkerStart,
                (State::Text, _) => self.text.push(byte),
                (State::MarkerStart, MARKER_SECOND) => {
                    self.flush_text(out);
                    self.state = State::Frame;
                }
                (State::MarkerStart, MARKER_FIRST) => self.text.push(MARKER_FIRST),
                (State::MarkerStart, _) => {
                    self.text.extend_from_slice(&[MARKER_FIRST, byte]);
                    self.state = State::Text;
                }
                // A zero right after the marker is an empty frame (the rzcobs encoder
                // writes one before its first frame): skip it.
                (State::Frame, 0x00) if self.frame.is_empty() => {}
                (State::Frame, 0x00) => {
                    out(Piece::Frame(std::mem::take(&mut self.frame)));
                    self.state = State::Text;
                }
                (State::Frame, _) if self.frame.len() >= MAX_FRAME => {
                    self.dropped = self.frame.len() + 1;
                    self.frame = Vec::new();
                    self.state = State::Oversized;
                }
                (State::Frame, _) => self.frame.push(byte),
                (State::Oversized, 0x00) => {
                    out(Piece::Oversized(self.dropped));
                    self.state = State::Text;
                }
                (State::Oversized, _) => self.dropped += 1,
            }
        }
        self.flush_text(out);
    }

    fn flush_text(&mut self, out: &mut impl FnMut(Piece)) {
        if !self.text.is_empty() {
            out(Piece::Text(std::mem::take(&mut self.text)));
        }
    }

    /// Ends the stream. Returns the bytes of a frame that never closed (a truncated
    /// stream), if any; a lone trailing `FF` is text.
    pub fn finish(mut self, out: &mut impl FnMut(Piece)) -> Option<Vec<u8>> {
        if self.state == State::MarkerStart {
            self.text.push(0xFF);
        }
        if self.state == State::Oversized {
            out(Piece::Oversized(self.dropped));
        }
        self.flush_text(out);
        (self.state == State::Frame && !self.frame.is_empty()).then_some(self.frame)
    }
}

/// The text of a whole recorded stream, frames removed.
pub fn text_only(stream: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    let mut demux = Demux::new();
    let mut keep = |piece: Piece| {
        if let Piece::Text(t) = piece {
            text.extend_from_slice(&t);
        }
    };
    demux.feed(stream, &mut keep);
    demux.finish(&mut keep);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(chunks: &[&[u8]]) -> (Vec<Piece>, Option<Vec<u8>>) {
        let mut demux = Demux::new();
        let mut out = Vec::new();
        for chunk in chunks {
            demux.feed(chunk, &mut |p| out.push(p));
        }
        let rest = demux.finish(&mut |p| out.push(p));
        // Merge adjacent text pieces: how text is chunked depends on the feed calls.
        let mut merged: Vec<Piece> = Vec::new();
        for piece in out {
            match (merged.last_mut(), piece) {
                (Some(Piece::Text(a)), Piece::Text(b)) => a.extend(b),
                (_, piece) => merged.push(piece),
            }
        }
        (merged, rest)
    }

    #[test]
    fn an_endless_frame_is_dropped_not_kept() {
        let mut stream = vec![0xFF, 0x00];
        stream.extend(std::iter::repeat_n(0x11, MAX_FRAME + 10));
        stream.extend_from_slice(&[0x00, b'o', b'k']);
        let (whole, rest) = pieces(&[&stream]);
        assert_eq!(whole, [Piece::Oversized(MAX_FRAME + 10), text(b"ok")]);
        assert_eq!(rest, None);
        // Cut off inside it: still reported, nothing kept.
        let (cut, rest) = pieces(&[&stream[..MAX_FRAME + 5]]);
        assert_eq!(cut, [Piece::Oversized(MAX_FRAME + 3)]);
        assert_eq!(rest, None);
    }

    fn text(s: &[u8]) -> Piece {
        Piece::Text(s.to_vec())
    }

    fn frame(s: &[u8]) -> Piece {
        Piece::Frame(s.to_vec())
    }

    #[test]
    fn separates_text_and_frames() {
        let stream = b"hello\n\xff\x00\x00\x09\x60\x01\x00kernel text\n\xff\x00\x0b\x4c\x00";
        let (got, rest) = pieces(&[stream]);
        assert_eq!(
            got,
            vec![
                text(b"hello\n"),
                frame(b"\x09\x60\x01"),
                text(b"kernel text\n"),
                frame(b"\x0b\x4c")
            ]
        );
        assert_eq!(rest, None);
    }

    #[test]
    fn same_result_for_any_chunking() {
        let stream: &[u8] = b"a\xff\x00\x01\x02\x00b\xffc\xff\xff\x00\x03\x00";
        let (whole, _) = pieces(&[stream]);
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(pieces(&[a, b]).0, whole, "split at {split}");
        }
        assert_eq!(
            whole,
            vec![
                text(b"a"),
                frame(b"\x01\x02"),
                text(b"b\xffc\xff"),
                frame(b"\x03")
            ]
        );
    }

    #[test]
    fn reports_a_truncated_frame() {
        let (got, rest) = pieces(&[b"x\xff\x00\x05\x06"]);
        assert_eq!(got, vec![text(b"x")]);
        assert_eq!(rest, Some(vec![5, 6]));
    }

    #[test]
    fn trailing_ff_is_text() {
        assert_eq!(text_only(b"abc\xff"), b"abc\xff");
    }
}
