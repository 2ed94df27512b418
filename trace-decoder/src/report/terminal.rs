//! What the text report and the command lines' terminal output share: the ANSI
//! styles (the one place for their escape codes: the text report here, and from the
//! host layer event lines and the command lines' own messages) and the width of a
//! terminal they keep within. Untrusted text is made safe by
//! [`escape_text`](super::format::escape_text) before it is styled.

use std::fmt::Write as _;

/// ANSI styling, or none: the one place for the escape codes of every terminal
/// output (the text report, event lines, rusty-trace's own messages).
#[derive(Clone, Copy, Debug, Default)]
pub struct Paint {
    pub on: bool,
}

impl Paint {
    pub const BOLD: &'static str = "1";
    pub const DIM: &'static str = "2";
    pub const RED_BOLD: &'static str = "1;31";
    pub const YELLOW_BOLD: &'static str = "1;33";

    /// Appends what `write` writes, in the style `code` when painting.
    pub fn push(self, out: &mut String, code: &str, write: impl FnOnce(&mut String)) {
        if self.on {
            let _ = write!(out, "\x1b[{code}m");
        }
        write(out);
        if self.on {
            out.push_str("\x1b[0m");
        }
    }
    /// `text` in the style `code` when painting (empty text stays empty).
    pub fn wrap(self, code: &str, text: &str) -> String {
        if self.on && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    pub fn bold(self, text: &str) -> String {
        self.wrap(Self::BOLD, text)
    }
    pub fn dim(self, text: &str) -> String {
        self.wrap(Self::DIM, text)
    }
    pub fn red(self, text: &str) -> String {
        self.wrap(Self::RED_BOLD, text)
    }
    pub fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }
    pub fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }
    pub fn yellow_bold(self, text: &str) -> String {
        self.wrap(Self::YELLOW_BOLD, text)
    }
    pub fn cyan(self, text: &str) -> String {
        self.wrap("36", text)
    }
}

/// The terminal width the text report and wrapped event lines keep within.
pub const TERMINAL_WIDTH: usize = 80;
