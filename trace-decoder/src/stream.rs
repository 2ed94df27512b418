//! Separating the two kinds of bytes on the loader's serial stream: text (the
//! kernel's output, the loader's error line) and defmt frames. Every frame is
//! written as `FF 00`, then the rzcobs-encoded frame, then `00`; so text runs from
//! a frame's closing `00` to the next `FF 00`. The demultiplexer works on arbitrary
//! chunks, as bytes arrive from a pipe.

/// One piece of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes that are not part of a frame.
    Text(Vec<u8>),
    /// One encoded frame, without the marker and without its closing `00`.
    Frame(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Text,
    /// An `FF` was seen in text; a `00` next starts a frame.
    MarkerStart,
    Frame,
}

/// Incremental demultiplexer: feed it bytes, receive pieces.
#[derive(Debug)]
pub struct Demux {
    state: State,
    text: Vec<u8>,
    frame: Vec<u8>,
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
        }
    }

    /// Consumes `bytes`; text collected so far is handed out at the end of each call
    /// (so a live reader shows it without waiting for the next frame).
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(Piece)) {
        for &byte in bytes {
            match (self.state, byte) {
                (State::Text, 0xFF) => self.state = State::MarkerStart,
                (State::Text, _) => self.text.push(byte),
                (State::MarkerStart, 0x00) => {
                    self.flush_text(out);
                    self.state = State::Frame;
                }
                (State::MarkerStart, 0xFF) => self.text.push(0xFF),
                (State::MarkerStart, _) => {
                    self.text.extend_from_slice(&[0xFF, byte]);
                    self.state = State::Text;
                }
                // A zero right after the marker is an empty frame (the rzcobs encoder
                // writes one before its first frame): skip it.
                (State::Frame, 0x00) if self.frame.is_empty() => {}
                (State::Frame, 0x00) => {
                    out(Piece::Frame(std::mem::take(&mut self.frame)));
                    self.state = State::Text;
                }
                (State::Frame, _) => self.frame.push(byte),
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
