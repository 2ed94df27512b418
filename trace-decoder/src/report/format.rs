//! Small formatting helpers shared by the renderings: turning ticks into time,
//! human sizes and times, hexadecimal addresses, and making untrusted text safe to
//! print in a terminal or to embed in XML.
//!
//! Every string that comes from the trace (the command line, a refusal text, event
//! names, interned names) is untrusted: the loader copies it from its input, and a
//! damaged stream can hold anything. Terminal output must not carry escape sequences
//! or line breaks from it, and XML 1.0 forbids most control characters outright.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serializer;

/// The TSC clock of one boot: how ticks become time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// TSC frequency in kHz; 0 when unknown.
    pub khz: u64,
}

impl Clock {
    /// Whether ticks can be turned into time at all.
    pub fn known(self) -> bool {
        self.khz > 0
    }

    /// Ticks in microseconds, rounded to the nanosecond so that renderings are stable;
    /// `None` when the frequency is unknown.
    pub fn us(self, ticks: u64) -> Option<f64> {
        self.known()
            .then(|| round_ns(ticks as f64 * 1000.0 / self.khz as f64))
    }

    /// A duration for people: `264 µs`, `14.4 ms`, `1.23 s`, or `738660 ticks`.
    pub fn human(self, ticks: u64) -> String {
        match self.us(ticks) {
            Some(us) => human_us(us),
            None => format!("{ticks} ticks"),
        }
    }

    /// A duration for a table column: milliseconds with three decimals, or ticks.
    pub fn column(self, ticks: u64) -> String {
        match self.us(ticks) {
            Some(us) => format!("{:.3} ms", us / 1000.0),
            None => format!("{ticks} ticks"),
        }
    }
}

/// A duration in microseconds, rounded like every other time in the report.
pub fn micros(duration: Duration) -> f64 {
    round_ns(duration.as_secs_f64() * 1_000_000.0)
}

/// Rounds microseconds to three decimals (nanoseconds).
pub fn round_ns(us: f64) -> f64 {
    (us * 1000.0).round() / 1000.0
}

/// Microseconds for people, in the unit that keeps the number short. The unit is
/// chosen for the rounded number, so that 999.7 µs reads `1.0 ms`, not `1000 µs`.
pub fn human_us(us: f64) -> String {
    if us < 999.5 {
        format!("{us:.0} µs")
    } else if us < 999_950.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// A size in bytes for people: `447 B`, `4 KiB`, `62.9 MiB`, `12 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut scale = 1u64;
    while unit + 1 < UNITS.len() && bytes / scale >= 1024 {
        unit += 1;
        scale *= 1024;
    }
    if bytes.is_multiple_of(scale) {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.1} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

/// An address as `0x` and lowercase hex, without padding.
pub fn hex(value: u64) -> String {
    format!("{value:#x}")
}

/// Serializes an address as a `0x` hex string, which stays exact in every JSON
/// reader (JavaScript numbers are exact only up to 2^53).
pub fn ser_hex<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex(*value))
}

/// Serializes an optional address as a `0x` hex string or `null`.
pub fn ser_opt_hex<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => serializer.serialize_str(&hex(*v)),
        None => serializer.serialize_none(),
    }
}

/// An address padded to `digits` hex digits, for aligned columns.
pub fn hex_padded(value: u64, digits: usize) -> String {
    format!("0x{value:0digits$x}")
}

/// Whether a character must not reach a terminal or an XML document as itself:
/// C0 and C1 controls, DEL, the Unicode bidirectional controls (which can make a
/// line read differently from what it contains), and the noncharacters XML forbids.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{fffe}' | '\u{ffff}')
}

/// Makes untrusted text printable on one line: every unsafe character becomes
/// `\xNN` (up to U+00FF) or `\u{NNNN}`. Backslashes stay as they are, so escaping
/// is idempotent: text built from escaped parts can be escaped again safely.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

/// [`escape_text`], appended to `out` (no allocation when `out` has room).
pub fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        if is_unsafe(c) {
            let code = u32::from(c);
            if code <= 0xff {
                let _ = write!(out, "\\x{code:02x}");
            } else {
                let _ = write!(out, "\\u{{{code:04x}}}");
            }
        } else {
            out.push(c);
        }
    }
}

/// Makes untrusted text safe as XML 1.0 character data or attribute value: first
/// [`escape_text`] (which leaves only characters XML allows), then the five XML
/// special characters as entities.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in escape_text(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// Shortens text to at most `width` characters, marking the cut with `…`.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The units a number is followed by in the reports: a line break never separates
/// them from it.
const UNITS: [&str; 13] = [
    "s", "ms", "µs", "ns", "ticks", "B", "KiB", "MiB", "GiB", "TiB", "PiB", "kHz", "GHz",
];

/// The words of `text` split at spaces, a number and the unit after it kept as one.
fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(' ') {
        let unit = UNITS.contains(&word.trim_end_matches([',', ')', ';', ':', '.']));
        match words.last_mut() {
            Some(last) if unit && last.ends_with(|c: char| c.is_ascii_digit()) => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    words
}

/// Breaks text into lines of at most `width` characters, at spaces where possible
/// (never between a number and its unit) and inside a word where a word alone is
/// too long.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    // The characters in `line`, kept rather than counted again: a long text is one
    // pass.
    let mut used = 0;
    for word in words(text) {
        let word: Vec<char> = word.chars().collect();
        if used > 0 && used + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        if !line.is_empty() {
            line.push(' ');
            used += 1;
        }
        let mut rest = &word[..];
        while used + rest.len() > width {
            let (head, tail) = rest.split_at(width - used);
            line.extend(head);
            lines.push(std::mem::take(&mut line));
            used = 0;
            rest = tail;
        }
        line.extend(rest);
        used += rest.len();
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let clock = Clock { khz: 2_800_000 };
        assert_eq!(clock.us(2_800_000), Some(1000.0));
        assert_eq!(clock.human(2_800_000), "1.0 ms");
        assert_eq!(clock.human(700_000), "250 µs");
        assert_eq!(clock.column(700_000), "0.250 ms");
        let unknown = Clock { khz: 0 };
        assert_eq!(unknown.us(5), None);
        assert_eq!(unknown.human(5), "5 ticks");
        assert_eq!(human_us(2_500_000.0), "2.50 s");
        // The unit follows the rounded number.
        assert_eq!(human_us(999.4), "999 µs");
        assert_eq!(human_us(999.7), "1.0 ms");
        assert_eq!(human_us(999_960.0), "1.00 s");
        assert_eq!(unknown.column(5), "5 ticks");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(447), "447 B");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(0x9fc00), "639 KiB");
        assert_eq!(human_size(0x3ee0000), "62.9 MiB");
        assert_eq!(human_size(12 << 30), "12 GiB");
        assert_eq!(human_size(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn escapes_control_characters() {
        assert_eq!(escape_text("a\tb\nc\x1b[31m"), "a\\x09b\\x0ac\\x1b[31m");
        assert_eq!(escape_text("\u{0}\u{7f}\u{85}"), "\\x00\\x7f\\x85");
        assert_eq!(escape_text("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape_text("back\\slash ünï"), "back\\slash ünï");
        let once = escape_text("\x1b\u{1}");
        assert_eq!(escape_text(&once), once);
        assert_eq!(
            xml_escape("<a & 'b'>\u{1}"),
            "&lt;a &amp; &apos;b&apos;&gt;\\x01"
        );
    }

    #[test]
    fn wraps_and_truncates() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), [""]);
        // A number keeps its unit on its line.
        assert_eq!(
            wrap("kernel to exit 17.1 ms, copy 4 KiB.", 18),
            ["kernel to exit", "17.1 ms, copy", "4 KiB."]
        );
        assert_eq!(
            wrap("kernel to exit 17.1 ms, copy 4 KiB.", 16),
            ["kernel to exit", "17.1 ms, copy", "4 KiB."]
        );
        assert_eq!(wrap("5 ticks", 3), ["5 t", "ick", "s"]);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
