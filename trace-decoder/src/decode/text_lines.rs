//! The kernel's text as lines with the host's arrival times: a kernel that has no
//! timestamps of its own still shows where its boot spent time, as the gaps between
//! consecutive lines (like `systemd-analyze blame`), and its milestones: its first
//! line, the application's first line, its last line.
//!
//! Works on any text: lines are split at `\n` (a `\r` before it is dropped), and
//! the application's first line is told from the kernel's by the kernel's log
//! prefix, whatever it is ([`log_prefix`]). Memory stays bounded on any stream: at
//! most [`MAX_KEPT`] lines of at most [`MAX_LINE_CHARS`] characters are kept (for the
//! Chrome trace's instants), the largest gaps are found as lines arrive, and the last
//! line is always kept.

use std::time::Duration;

use rusty_loader::wire::TEXT_LINE_PREFIX;

/// Lines kept with their times; the rest are counted.
pub const MAX_KEPT: usize = 4096;
/// Characters kept of a line; the rest are counted in [`TextLine::cut`].
pub const MAX_LINE_CHARS: usize = 200;
/// How many of the largest gaps are kept.
pub const GAPS: usize = 5;

/// One line of text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextLine {
    /// Its number, from 0.
    pub index: usize,
    /// Its text (at most [`MAX_LINE_CHARS`] characters), without the line break.
    pub text: String,
    /// Characters beyond [`MAX_LINE_CHARS`], not kept.
    pub cut: usize,
    /// When its first byte arrived (since the session's start), when known.
    pub start: Option<Duration>,
    /// When its line break arrived (or the stream ended), when known.
    pub end: Option<Duration>,
    /// It came after the loader's `HandOver`: the kernel's.
    pub after_hand_over: bool,
}

/// A pause between two consecutive lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// From the end of `before` to the start of `after`.
    pub length: Duration,
    pub before: TextLine,
    pub after: TextLine,
}

/// The lines of a stream, as they arrive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextLines {
    /// The first [`MAX_KEPT`] lines.
    pub kept: Vec<TextLine>,
    /// Every line seen.
    pub total: usize,
    /// The last complete line (or the unfinished one at the end).
    pub last: Option<TextLine>,
    /// The largest gaps between consecutive lines after the hand-over, longest
    /// first.
    pub gaps: Vec<Gap>,
    /// The first line of the kernel's after the hand-over, and the first that does
    /// not carry the kernel's log prefix (the application's).
    pub first_kernel: Option<TextLine>,
    pub first_application: Option<TextLine>,
    /// The kernel's log prefix (normalized), from its first line.
    pub kernel_prefix: Option<String>,
    /// The line being received.
    partial: Option<TextLine>,
}

impl TextLines {
    /// Takes text as it arrives at `now` (`None`: times unknown).
    pub fn feed(&mut self, text: &[u8], now: Option<Duration>, after_hand_over: bool) {
        let mut rest = text;
        while !rest.is_empty() {
            let line = self.partial.get_or_insert_with(|| TextLine {
                index: 0,
                start: now,
                after_hand_over,
                ..TextLine::default()
            });
            let (piece, done) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], Some(at + 1)),
                None => (rest, None),
            };
            append(line, piece);
            match done {
                Some(at) => {
                    rest = &rest[at..];
                    self.complete(now);
                }
                None => rest = &[],
            }
        }
    }

    /// Ends the stream at `now`: an unfinished line counts as the last.
    pub fn finish(&mut self, now: Option<Duration>) {
        if self.partial.is_some() {
            self.complete(now);
        }
    }

    /// Forgets every arrival time (for a recording, whose times say how fast it was
    /// read, not when the kernel wrote it): gaps are then unknown.
    pub fn forget_times(&mut self) {
        let clear = |line: &mut TextLine| {
            line.start = None;
            line.end = None;
        };
        self.kept.iter_mut().for_each(clear);
        for line in [
            &mut self.last,
            &mut self.first_kernel,
            &mut self.first_application,
        ]
        .into_iter()
        .flatten()
        {
            clear(line);
        }
        self.gaps.clear();
    }

    fn complete(&mut self, now: Option<Duration>) {
        let Some(mut line) = self.partial.take() else {
            return;
        };
        if line.text.ends_with('\r') {
            line.text.pop();
        }
        line.index = self.total;
        line.end = now;
        self.total += 1;
        // The loader's own line (its report of an exception) is neither the
        // kernel's nor the application's.
        let loaders = line.text.starts_with(TEXT_LINE_PREFIX);
        if line.after_hand_over && !loaders {
            match &self.kernel_prefix {
                None if self.first_kernel.is_none() => {
                    self.kernel_prefix = log_prefix(&line.text);
                    self.first_kernel = Some(line.clone());
                }
                Some(prefix)
                    if self.first_application.is_none()
                        && log_prefix(&line.text).as_ref() != Some(prefix)
                        && !line.text.trim().is_empty() =>
                {
                    self.first_application = Some(line.clone());
                }
                _ => {}
            }
        }
        if line.after_hand_over {
            if let Some(previous) = self.last.as_ref().filter(|p| p.after_hand_over) {
                if let (Some(end), Some(start)) = (previous.end, line.start) {
                    self.note_gap(Gap {
                        length: start.saturating_sub(end),
                        before: previous.clone(),
                        after: line.clone(),
                    });
                }
            }
        }
        if self.kept.len() < MAX_KEPT {
            self.kept.push(line.clone());
        }
        self.last = Some(line);
    }

    fn note_gap(&mut self, gap: Gap) {
        if self.gaps.len() == GAPS && self.gaps.last().is_some_and(|g| g.length >= gap.length) {
            return;
        }
        let at = self.gaps.partition_point(|g| g.length >= gap.length);
        self.gaps.insert(at, gap);
        self.gaps.truncate(GAPS);
    }
}

/// Appends bytes to a line, as text (invalid UTF-8 replaced), up to the kept length.
fn append(line: &mut TextLine, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let room = MAX_LINE_CHARS.saturating_sub(line.text.chars().count());
    let mut chars = text.chars();
    line.text.extend(chars.by_ref().take(room));
    line.cut += chars.count();
}

/// A line's log prefix, normalized so that every line of one log has the same: a
/// leading run of bracketed fields (`[0][INFO]`, `[  0.123456][0]`), each field's
/// digits becoming `0` and its letters `A`, spaces dropped; or else a first word
/// ending in `:` (`tk:`, `hermit:`), kept as it is. `None` for a line without one.
pub fn log_prefix(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        let mut prefix = String::new();
        let mut rest = trimmed;
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            prefix.push('[');
            let mut last = None;
            for c in inner[..close].chars() {
                let class = if c.is_ascii_digit() {
                    '0'
                } else if c.is_alphabetic() {
                    'A'
                } else if c.is_whitespace() {
                    continue;
                } else {
                    c
                };
                // A run of one class is one symbol: `123` and `7` look alike.
                if last != Some(class) || !matches!(class, '0' | 'A') {
                    prefix.push(class);
                }
                last = Some(class);
            }
            prefix.push(']');
            rest = inner[close + 1..].trim_start();
        }
        return Some(prefix);
    }
    let word = trimmed.split_whitespace().next()?;
    (word.len() > 1 && word.len() <= 24 && word.ends_with(':')).then(|| word.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn prefixes_of_common_logs() {
        assert_eq!(log_prefix("[0][INFO] Welcome").as_deref(), Some("[0][A]"));
        assert_eq!(log_prefix("[1][WARN] x"), log_prefix("[0][INFO] y"));
        assert_eq!(
            log_prefix("[   0.001234][0][INFO ] x"),
            log_prefix("[  12.5][0][DEBUG] y")
        );
        assert_eq!(log_prefix("tk: kernel=crashing").as_deref(), Some("tk:"));
        assert_eq!(log_prefix("Hello from the application"), None);
        assert_eq!(log_prefix("Hello, world!"), None);
        assert_eq!(log_prefix("[unclosed"), None);
        assert_eq!(log_prefix(""), None);
    }

    #[test]
    fn lines_gaps_and_milestones_from_chunks() {
        let mut lines = TextLines::default();
        lines.feed(b"firmware\n", ms(1), false);
        lines.feed(b"tk: one\ntk: tw", ms(10), true);
        lines.feed(b"o\r\n", ms(11), true);
        lines.feed(b"tk: three\n", ms(61), true);
        lines.feed(b"Hello from the app\ntk: ok\n", ms(62), true);
        lines.feed(b"rusty-loader: error: not the app's\n", ms(63), true);
        lines.feed(b"unfinished", ms(70), true);
        lines.finish(ms(80));
        assert_eq!(lines.total, 8);
        let texts: Vec<&str> = lines.kept.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "firmware",
                "tk: one",
                "tk: two",
                "tk: three",
                "Hello from the app",
                "tk: ok",
                "rusty-loader: error: not the app's",
                "unfinished"
            ]
        );
        assert_eq!(lines.first_kernel.as_ref().unwrap().text, "tk: one");
        assert_eq!(
            lines.first_application.as_ref().unwrap().text,
            "Hello from the app"
        );
        assert_eq!(lines.last.as_ref().unwrap().text, "unfinished");
        let gap = &lines.gaps[0];
        assert_eq!(gap.length, Duration::from_millis(50));
        assert_eq!(
            (gap.before.text.as_str(), gap.after.text.as_str()),
            ("tk: two", "tk: three")
        );
        assert!(lines.gaps.windows(2).all(|w| w[0].length >= w[1].length));
        assert!(
            lines.gaps.iter().all(|g| g.before.text != "firmware"),
            "only the kernel's lines"
        );
        lines.forget_times();
        assert!(lines.gaps.is_empty());
        assert_eq!(lines.kept[3].start, None);
    }

    #[test]
    fn the_loaders_line_is_not_the_applications() {
        let mut lines = TextLines::default();
        lines.feed(b"tk: crashing=page-fault\n", ms(1), true);
        lines.feed(b"rusty-loader: error: CPU exception 14\n", ms(9), true);
        lines.finish(ms(10));
        assert_eq!(lines.first_application, None);
        assert_eq!(lines.gaps[0].length, Duration::from_millis(8));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut lines = TextLines::default();
        let long = vec![b'x'; 10_000];
        lines.feed(&long, ms(1), true);
        lines.feed(b"\n", ms(1), true);
        assert_eq!(lines.kept[0].text.len(), MAX_LINE_CHARS);
        assert_eq!(lines.kept[0].cut, 10_000 - MAX_LINE_CHARS);
        for i in 0..(MAX_KEPT as u64 + 100) {
            lines.feed(b"tk: line\n", ms(i), true);
        }
        assert_eq!(lines.kept.len(), MAX_KEPT);
        assert_eq!(lines.total, MAX_KEPT + 101);
        assert!(lines.gaps.len() <= GAPS);
    }
}
