//! The kernel's text as lines with the host's arrival times: a kernel that has no
//! timestamps of its own still shows where its boot spent time, as the gaps between
//! consecutive lines (like `systemd-analyze blame`), and its milestones: its first
//! line, the application's first line, its last line.
//!
//! Works on any text: lines are split at `\n` (a `\r` before it is dropped, and the
//! ANSI escape sequences of a coloured log are taken out of the kept text). Memory
//! stays bounded on any stream: at most [`MAX_KEPT`] lines of at most
//! [`MAX_LINE_CHARS`] characters are kept (for the Chrome trace's instants), the
//! largest gaps are found as lines arrive, and the last line is always kept.
//!
//! # The application's first line
//!
//! The kernel and the application write to the same serial port, and nothing in the
//! stream says who wrote a line. The rule ([`KernelLog`]): after the hand-over, a
//! line is the kernel's when it is
//!
//! 1. a log record of Hermit's kernel logger, in the format of any generation: a
//!    run of bracketed fields one of which starts with a log level (`ERROR`,
//!    `WARN`, `INFO`, `DEBUG`, `TRACE`), with the level's ANSI colour or without,
//!    and whatever the other fields hold: `[0][INFO] msg` (0.6 onwards),
//!    `[0][\e[32mINFO\e[0m] msg` (the level coloured through anstyle unless the
//!    kernel was built with `NO_COLOR`), `[    0.012345][0][INFO] msg` and
//!    `[            ][0][INFO] msg` (a time field, blank until the kernel's timer
//!    runs), `[            ][0][INFO  hermit    ] msg` (the level padded, the
//!    logging module after it); a record with an empty message (`[0][INFO] `, the
//!    blank line before a banner) and a banner (`[0][INFO] ====...`) are records;
//! 2. a continuation line of a multi-line record: Rust's pretty `{:#?}` output
//!    opens a bracket at the end of the record's line (`tls_info = Some(`) and
//!    continues with indented lines and closing lines (`    },`, `)`) until the
//!    brackets balance;
//! 3. a line carrying the prefix of the kernel's first line, when that line is not
//!    a log record ([`log_prefix`]: a run of bracketed fields, or a first word
//!    ending in `:` such as the test kernels' `tk:`);
//! 4. a line Hermit's C runtime is known to print without any prefix
//!    ([`RUNTIME_LINES`]: `LwIP intialized`, from its lwIP port);
//! 5. blank (a line of nothing but white space is nobody's milestone).
//!
//! The first other line is the application's. What the rule cannot tell: a line
//! the kernel or its C runtime prints without a prefix and not listed in
//! [`RUNTIME_LINES`] counts as the application's; an application line shaped like
//! a kernel log record (an application logging through the same format, or printing
//! `[1][WARN] ...` itself), or starting with the prefix of rule 3, counts as the
//! kernel's; a record whose message has line breaks of its own (not `{:#?}`'s
//! bracketed form) ends at its first line, so its second line counts as the
//! application's. A kernel whose first line has no prefix at all and is not a log
//! record gives no application line: the report says so.

use std::time::Duration;

use rusty_loader::wire::TEXT_LINE_PREFIX;

/// Lines kept with their times; the rest are counted.
pub const MAX_KEPT: usize = 4096;
/// Characters kept of a line; the rest are counted in [`TextLine::cut`].
pub const MAX_LINE_CHARS: usize = 200;
/// How many of the largest gaps are kept.
pub const GAPS: usize = 5;

/// The level names of Rust's `log` crate as its `Display` writes them, which
/// Hermit's kernel logger puts in a bracketed field of every record.
const LEVELS: [&str; 5] = ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/// Lines Hermit's C runtime prints without a prefix before the application runs
/// (its lwIP port, `kprintf("LwIP intialized\n")`, spelled as it prints it).
pub const RUNTIME_LINES: [&str; 1] = ["LwIP intialized"];

/// One line of text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextLine {
    /// Its number, from 0.
    pub index: usize,
    /// Its text (at most [`MAX_LINE_CHARS`] characters), without the line break and
    /// without ANSI escape sequences.
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
    /// The first line of the kernel's after the hand-over, and the first that is
    /// not the kernel's by the rule of this module (the application's).
    pub first_kernel: Option<TextLine>,
    pub first_application: Option<TextLine>,
    /// The kernel's log prefix (normalized, [`log_prefix`]), from its first line.
    pub kernel_prefix: Option<String>,
    /// How the kernel's lines are told from the application's.
    log: KernelLog,
    /// The line being received.
    partial: Option<TextLine>,
}

/// What is known of the kernel's log while its lines arrive: the rule of the
/// module's documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct KernelLog {
    /// The first line was seen.
    started: bool,
    /// The first line's prefix, when that line is not a log record (rule 3).
    own_prefix: Option<String>,
    /// The first line was a log record or carried a prefix: the kernel's lines can
    /// be told from the application's.
    recognised: bool,
    /// Brackets a multi-line record has opened and not yet closed (rule 2).
    open_brackets: u32,
}

impl KernelLog {
    /// Whether `line` (ANSI sequences removed) is the kernel's, taking in what it
    /// says of the lines after it. `complete` is false for a line cut at
    /// [`MAX_LINE_CHARS`], whose end is unknown.
    fn claims(&mut self, line: &str, complete: bool) -> bool {
        if self.open_brackets > 0 {
            let body = line.trim();
            // `{:#?}` indents every line inside the record; only its closing lines
            // begin with the bracket. Anything else ends the record.
            if line.starts_with(char::is_whitespace) || body.starts_with(CLOSERS) {
                if body.starts_with(CLOSERS) {
                    self.open_brackets -= 1;
                }
                if complete && body.ends_with(OPENERS) {
                    self.open_brackets += 1;
                }
                return true;
            }
            self.open_brackets = 0;
        }
        if let Some(message) = record_message(line) {
            self.open_brackets = u32::from(complete && message.trim_end().ends_with(OPENERS));
            if !self.started {
                self.started = true;
                self.recognised = true;
            }
            return true;
        }
        if !self.started {
            self.started = true;
            self.own_prefix = log_prefix(line);
            self.recognised = self.own_prefix.is_some();
            return true;
        }
        let trimmed = line.trim();
        trimmed.is_empty()
            || RUNTIME_LINES.contains(&trimmed)
            || (self.own_prefix.is_some() && log_prefix(line) == self.own_prefix)
    }
}

/// The brackets `{:#?}` opens at the end of a line and closes at the start of one.
const OPENERS: [char; 3] = ['(', '[', '{'];
const CLOSERS: [char; 3] = [')', ']', '}'];

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
        if line.text.contains('\x1b') {
            line.text = strip_ansi(&line.text);
        }
        line.index = self.total;
        line.end = now;
        self.total += 1;
        // The loader's own line (its report of an exception) is neither the
        // kernel's nor the application's.
        let loaders = line.text.starts_with(TEXT_LINE_PREFIX);
        if line.after_hand_over && !loaders {
            let first = !self.log.started;
            let kernels = self.log.claims(&line.text, line.cut == 0);
            if first {
                self.kernel_prefix = log_prefix(&line.text);
                self.first_kernel = Some(line.clone());
            } else if !kernels && self.log.recognised && self.first_application.is_none() {
                self.first_application = Some(line.clone());
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

    /// Whether the kernel's first line was seen and none of its lines can be told
    /// from the application's: it is not a log record and carries no prefix.
    pub fn kernel_unrecognised(&self) -> bool {
        self.log.started && !self.log.recognised
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

/// `text` without its ANSI escape sequences (CSI: `ESC [`, parameters and
/// intermediates, a final byte; other escapes: `ESC` and one character), as a
/// coloured log writes them around its level.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        // A CSI runs to its final byte; any other escape is ESC and one character.
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// The message of a log record of Hermit's kernel logger (rule 1 of the module's
/// documentation): the text after a leading run of bracketed fields, one of which
/// begins with a log level. `None` for any other line.
pub fn record_message(line: &str) -> Option<&str> {
    let mut rest = line;
    let mut level = false;
    while let Some(inner) = rest.strip_prefix('[') {
        let close = inner.find(']')?;
        let field = inner[..close].trim_start();
        level |= LEVELS.iter().any(|name| {
            field
                .strip_prefix(name)
                .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric()))
        });
        rest = &inner[close + 1..];
    }
    level.then(|| rest.strip_prefix(' ').unwrap_or(rest))
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

    /// The application's first line of `text`, all of it after the hand-over.
    fn first_application(text: &str) -> Option<String> {
        let mut lines = TextLines::default();
        lines.feed(text.as_bytes(), None, true);
        lines.finish(None);
        lines.first_application.map(|line| line.text)
    }

    /// A real Hermit 0.6.9 application's output as it reached the serial port (the
    /// loader's frames removed), verbatim but for the free list's entries, which
    /// the sample elided.
    const HERMIT_0_6_9: &str = "\
[0][INFO] Welcome to Hermit 0.6.9
[0][INFO] Kernel starts at 800000
[0][INFO] BSS starts at 0x89b680
[0][INFO] tls_info = Some(
    TlsInfo {
        start: 0x8906f8,
        filesz: 0x20,
        memsz: 0x81,
        align: 0x8,
    },
)
[0][INFO] Total memory size: 53 MB
[0][INFO] 
[0][INFO] ===================== PHYSICAL MEMORY FREE LIST ======================
[0][INFO] 0x0000000000A00000 - 0x0000000003FE0000
[0][INFO] ======================================================================
[0][INFO] 
[0][INFO] Hermit is running on common system!
[0][INFO] Try to initialize uhyve filesystem
[0][WARN] Unable to read entropy! Fallback to a naive implementation!
Hello, world!
[0][INFO] Number of interrupts
";

    #[test]
    fn a_real_hermit_0_6_9_log_gives_the_applications_line() {
        assert_eq!(
            first_application(HERMIT_0_6_9).as_deref(),
            Some("Hello, world!")
        );
        let mut lines = TextLines::default();
        lines.feed(HERMIT_0_6_9.as_bytes(), None, true);
        assert_eq!(
            lines.first_kernel.unwrap().text,
            "[0][INFO] Welcome to Hermit 0.6.9"
        );
        assert_eq!(lines.kernel_prefix.as_deref(), Some("[0][A]"));
    }

    #[test]
    fn every_generations_record_format_is_the_kernels() {
        // The level coloured (anstyle), a time field blank until the timer runs and
        // then set, the level padded with the logging module after it, a C
        // runtime's unprefixed line, another core.
        let newer = "\
[0][\x1b[32mINFO\x1b[0m] Welcome to Hermit 0.8.0
[            ][0][\x1b[32mINFO \x1b[0m hermit    ] Welcome to Hermit 0.11.0
[            ][0][\x1b[32mINFO \x1b[0m hermit    ] \n\
[            ][0][\x1b[32mINFO \x1b[0m hermit    ] ============= MEMORY =============
[    0.012345][1][\x1b[33mWARN \x1b[0m virtio_net] no device
[    0.013000][0][DEBUG hermit::arch::x86_64::kernel] boot_info = BootInfo {
    hardware_info: HardwareInfo {
        phys_addr_range: 0x0..0x4000000,
    },
}
LwIP intialized
\x1b[1mHello\x1b[0m from the application
";
        assert_eq!(
            first_application(newer).as_deref(),
            Some("Hello from the application")
        );
    }

    #[test]
    fn the_first_lines_own_prefix_and_hermit_records_are_the_kernels() {
        // The test kernels: their protocol first, then a Hermit-shaped log.
        let text = "tk: kernel=hello-dyn\n[0][INFO] Welcome\n[0][INFO] x = Some(\n    1,\n)\ntk: efer=0xd00\n\nHello from hello-dyn\ntk: ok\n";
        assert_eq!(
            first_application(text).as_deref(),
            Some("Hello from hello-dyn")
        );
    }

    #[test]
    fn a_record_left_open_ends_at_the_first_unindented_line() {
        // A message that ends in a bracket of its own, not `{:#?}`'s.
        let text = "[0][INFO] starting (\nHello\n";
        assert_eq!(first_application(text).as_deref(), Some("Hello"));
        // Nested brackets close one by one; the record ends when they balance.
        let nested = "[0][INFO] a = [\n    B {\n        c: 1,\n    },\n]\n  indented app line\n";
        assert_eq!(
            first_application(nested).as_deref(),
            Some("  indented app line")
        );
    }

    #[test]
    fn records_and_prefixes() {
        assert_eq!(record_message("[0][INFO] Welcome"), Some("Welcome"));
        assert_eq!(record_message("[0][INFO] "), Some(""));
        assert_eq!(record_message("[0][INFO]"), Some(""));
        assert_eq!(
            record_message("[            ][0][WARN  mm        ] low"),
            Some("low")
        );
        assert_eq!(record_message("[1, 2, 3]"), None);
        assert_eq!(record_message("[0][INFORMATION] x"), None);
        assert_eq!(record_message("[0][INFO"), None);
        assert_eq!(record_message("Hello [0][INFO]"), None);
        assert_eq!(
            strip_ansi("[0][\x1b[32mINFO\x1b[0m] x\x1b[1;31m!"),
            "[0][INFO] x!"
        );
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
    fn a_first_line_without_prefix_leaves_the_application_unknown() {
        let mut lines = TextLines::default();
        lines.feed(b"Hello\nWorld\n", None, true);
        assert_eq!(lines.first_application, None);
        assert!(lines.kernel_unrecognised());
        let mut hermit = TextLines::default();
        hermit.feed(b"[0][INFO] Welcome\n", None, true);
        assert!(!hermit.kernel_unrecognised());
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
