//! An event as one line of live output, the one rendering `rusty-trace` and `cargo
//! xtask trace` share: `[    1.234 ms] Name key=value ...`, coloured on request,
//! with long lists wrapped to a terminal's width.

use rusty_loader::wire::Level;

use crate::decode::{Event, LinePiece};
use crate::report::format::{escape_text, push_escaped};
use crate::report::terminal::Paint;

/// How [`push_event_line`] renders an event.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineStyle {
    /// ANSI colours: the time dim, the name bold (red for errors, yellow for
    /// warnings).
    pub color: bool,
    /// On a terminal, the width to keep lists within: a list that would run past it
    /// goes on over indented lines, broken after its commas. `None` keeps every
    /// event on one line (for pipes and files).
    pub wrap_at: Option<usize>,
}

/// One event as both `rusty-trace` and `cargo xtask trace` show it, appended to
/// `line` (without a line break): `[    1.234 ms] Name key=value ...`, or
/// `[   123456 ticks] ...` (TSC ticks since the entry) when the TSC frequency is not
/// known. Keys and values are escaped: nothing from the stream reaches a terminal as
/// a control character.
pub fn push_event_line(line: &mut String, event: &Event, micros: Option<f64>, style: LineStyle) {
    use std::fmt::Write;
    let paint = Paint { on: style.color };
    // The column of the next character, ANSI sequences not counted.
    let mut column = 0;
    paint.push(line, Paint::DIM, |line| {
        let before = line.len();
        let _ = match micros {
            Some(us) => write!(line, "[{:>9.3} ms]", us / 1000.0),
            None => write!(line, "[{:>9} ticks]", event.timestamp),
        };
        column = line.len() - before;
    });
    line.push(' ');
    column += 1;
    let name_style = match event.level {
        Level::Error => Paint::RED_BOLD,
        Level::Warn => Paint::YELLOW_BOLD,
        _ => Paint::BOLD,
    };
    let mut pieces = event.pieces();
    // The name is the first word of the first piece; it is painted on its own.
    let name = event.name().to_string();
    if let Some(LinePiece::Text(first)) = pieces.first_mut() {
        if let Some(rest) = first.strip_prefix(name.as_str()) {
            *first = rest.to_string();
        }
    }
    paint.push(line, name_style, |line| {
        let before = line.len();
        push_escaped(line, &name);
        column += line[before..].chars().count();
    });
    for piece in pieces {
        match piece {
            LinePiece::Text(text) => {
                let before = line.len();
                push_escaped(line, &text);
                column += line[before..].chars().count();
            }
            LinePiece::List(items) => {
                let escaped: Vec<String> = items.iter().map(|i| escape_text(i)).collect();
                let one_line = escaped.iter().map(|i| i.chars().count() + 2).sum::<usize>();
                match style.wrap_at {
                    Some(width) if column + one_line > width => {
                        line.push('[');
                        column += 1;
                        for (n, item) in escaped.iter().enumerate() {
                            let end = if n + 1 < escaped.len() { "," } else { "]" };
                            let len = item.chars().count() + end.len();
                            if n > 0 {
                                if column + 1 + len > width {
                                    line.push('\n');
                                    line.extend(std::iter::repeat_n(' ', CONTINUATION_INDENT));
                                    column = CONTINUATION_INDENT;
                                } else {
                                    line.push(' ');
                                    column += 1;
                                }
                            }
                            line.push_str(item);
                            line.push_str(end);
                            column += len;
                        }
                        if escaped.is_empty() {
                            line.push(']');
                            column += 1;
                        }
                    }
                    _ => {
                        let text = format!("[{}]", escaped.join(", "));
                        column += text.chars().count();
                        line.push_str(&text);
                    }
                }
            }
        }
    }
}

/// `[    1.234 ms]`: the width of an event line's time in milliseconds.
const TIME_WIDTH: usize = 14;
/// Where the continuation lines of a wrapped list start: under the event's name,
/// two columns in.
const CONTINUATION_INDENT: usize = TIME_WIDTH + 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str, micros: Option<f64>, style: LineStyle) -> String {
        let mut line = String::new();
        push_event_line(
            &mut line,
            &crate::decode::fixtures::event(1234, message),
            micros,
            style,
        );
        line
    }

    #[test]
    fn event_lines() {
        let plain = LineStyle::default();
        assert_eq!(
            line("Module start=0x1 end=0x2", Some(1500.0), plain),
            "[    1.500 ms] Module start=0x1 end=0x2"
        );
        assert_eq!(
            line("PagingEnabled", None, plain),
            "[     1234 ticks] PagingEnabled"
        );
        // Nothing from the stream reaches the terminal as a control character.
        assert_eq!(
            line(
                "Refused code=17 name=x trace_ticks=0 text=a\u{1b}[2Jb",
                None,
                plain
            ),
            "[     1234 ticks] Refused code=17 name=x trace_ticks=0 text=a\\x1b[2Jb"
        );
        let colored = LineStyle {
            color: true,
            wrap_at: None,
        };
        assert_eq!(
            line("Module start=0x1 end=0x2", None, colored),
            "\x1b[2m[     1234 ticks]\x1b[0m \x1b[1mModule\x1b[0m start=0x1 end=0x2"
        );
    }

    #[test]
    fn long_lists_wrap_on_a_terminal_only() {
        let regions: Vec<String> = (0u64..7)
            .map(|i| format!("{:#x}-{:#x}:1", i << 32, (i + 1) << 32))
            .collect();
        let message = format!("MemoryMap regions=[{}]", regions.join(", "));
        let one_line = line(&message, None, LineStyle::default());
        assert_eq!(one_line.lines().count(), 1);
        for color in [false, true] {
            let wrapped = line(
                &message,
                None,
                LineStyle {
                    color,
                    wrap_at: Some(80),
                },
            );
            let lines: Vec<&str> = wrapped.lines().collect();
            assert!(lines.len() > 1, "{wrapped}");
            let visible = |l: &str| {
                l.replace("\x1b[2m", "")
                    .replace("\x1b[1m", "")
                    .replace("\x1b[0m", "")
                    .chars()
                    .count()
            };
            assert!(lines.iter().all(|l| visible(l) <= 80), "{wrapped}");
            assert!(lines[1..].iter().all(|l| l.starts_with(&" ".repeat(17))));
            // Joined up again, it is the one-line form.
            let joined = lines
                .iter()
                .map(|l| l.trim_start())
                .collect::<Vec<_>>()
                .join(" ");
            if !color {
                assert_eq!(joined, one_line);
            }
        }
    }
}
