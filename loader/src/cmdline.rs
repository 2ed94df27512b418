//! Reading the command line, `"<file name> <kernel args> [-- <app args>]"` from
//! Multiboot or `"<kernel args> [-- <app args>]"` from PVH ([`Shape`]), the way
//! Hermit kernels read it, and handing a kernel its TSC frequency.
//!
//! Kernels split their command line with shell quoting rules (the `shell-words`
//! crate, which the loader uses too), take the first word as their path, read the
//! words up to `--` as kernel arguments and the rest as the application's. Kernels
//! 0.6–0.10 learn the TSC frequency only from `-freq <MHz>`, parsed as a `u16`, the
//! last one winning; they panic on any argument they do not know. So the loader
//! inserts `-freq` only when the command line has none, and decides that exactly as
//! the kernel will ([`kernel_frequency`]).

use alloc::string::String;

use crate::error::LoadError;

/// How a command line starts, which depends on the entry protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Multiboot: QEMU puts the loader's file name first (`"%s %s"`), which the
    /// kernel takes as its path.
    FileNameFirst,
    /// PVH and UEFI: the VMM or firmware hands over only the arguments it was given
    /// (`-append`; under UEFI the load options without OVMF's `initrd=` word).
    ArgumentsOnly,
}

impl Shape {
    /// The command-line shape of an entry protocol.
    pub const fn of(entry: crate::EntryProtocol) -> Shape {
        match entry {
            crate::EntryProtocol::Multiboot => Shape::FileNameFirst,
            crate::EntryProtocol::Pvh | crate::EntryProtocol::Uefi => Shape::ArgumentsOnly,
        }
    }
}

/// Where the parts of a command line start, as byte offsets into it (for the trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandLineSplit {
    /// Start of the kernel arguments (after the file name, if the shape has one), if
    /// there are any words.
    pub kernel_args_at: Option<usize>,
    /// Start of the application arguments (the first word after `--`), if any.
    pub app_args_at: Option<usize>,
}

/// The words of a command line between shell delimiters, with their byte offsets.
/// A plain loop rather than iterator adaptors: under emulation every distinct piece
/// of code costs more to translate than to run.
struct Words<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Words<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len() && is_delimiter(char::from(bytes[self.at])) {
            self.at += 1;
        }
        if self.at == bytes.len() {
            return None;
        }
        let start = self.at;
        while self.at < bytes.len() && !is_delimiter(char::from(bytes[self.at])) {
            self.at += 1;
        }
        // Delimiters are ASCII, so both ends lie on character boundaries.
        Some((start, &self.text[start..self.at]))
    }
}

fn words(text: &str) -> Words<'_> {
    Words { text, at: 0 }
}

/// Splits a command line into file name (for [`Shape::FileNameFirst`]), kernel
/// arguments and app arguments, at shell delimiters (offsets into the raw text; a
/// quoted `--` is not a separator here, unlike for the kernel: these offsets only
/// label the trace).
pub fn split(text: &str, shape: Shape) -> CommandLineSplit {
    let mut split = CommandLineSplit {
        kernel_args_at: None,
        app_args_at: None,
    };
    let mut words = words(text);
    if shape == Shape::FileNameFirst {
        words.next();
    }
    while let Some((at, word)) = words.next() {
        split.kernel_args_at.get_or_insert(at);
        if word == "--" {
            split.app_args_at = words.next().map(|(at, _)| at);
            break;
        }
    }
    split
}

/// What the kernel will take for `-freq` from this command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFrequency {
    /// No `-freq` among the kernel arguments: the kernel measures the TSC itself
    /// (0.6–0.10) unless told otherwise.
    Absent,
    /// The last `-freq`'s value, as the kernel parses it (`u16` MHz); `None` when it
    /// does not parse, which leaves the kernel without one.
    Given(Option<u16>),
    /// The command line does not split (an unclosed quote): the kernel would fail
    /// on it; the loader leaves it alone.
    Unreadable,
}

/// The bytes that separate shell words (and only these: `shell-words` treats a
/// carriage return, say, as part of a word).
fn is_delimiter(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n')
}

/// The bytes that make shell splitting more than cutting at delimiters: quotes, the
/// backslash and the comment sign.
fn needs_shell_rules(text: &str) -> bool {
    text.bytes()
        .any(|b| matches!(b, b'\'' | b'"' | b'\\' | b'#'))
}

/// Reads `-freq` as the kernel does: shell words, the first one being the path
/// (with [`Shape::FileNameFirst`]), kernel arguments up to `--`, the last `-freq`
/// winning.
pub fn kernel_frequency(text: &str, shape: Shape) -> KernelFrequency {
    if needs_shell_rules(text) {
        match shell_words::split(text) {
            Ok(words) => frequency_in(words.iter().map(String::as_str), shape),
            Err(_) => KernelFrequency::Unreadable,
        }
    } else {
        // The common case, split as `shell-words` would, without its machinery.
        frequency_in(words(text).map(|(_, word)| word), shape)
    }
}

/// The last `-freq` among the kernel arguments of these words, read as the kernel
/// reads them: the first word is the path (with a file name first), `--` ends the
/// kernel arguments, and `-freq` takes the next word as its value whatever it is.
fn frequency_in<'a>(mut words: impl Iterator<Item = &'a str>, shape: Shape) -> KernelFrequency {
    let mut found = KernelFrequency::Absent;
    if shape == Shape::FileNameFirst {
        words.next();
    }
    while let Some(word) = words.next() {
        match word {
            "--" => break,
            "-freq" => {
                found = KernelFrequency::Given(words.next().and_then(|mhz| mhz.parse().ok()))
            }
            _ => {}
        }
    }
    found
}

/// The kernel's `-freq <MHz>`, if given and usable (a valid, non-zero `u16`).
pub fn freq_mhz(text: &str, shape: Shape) -> Option<u16> {
    match kernel_frequency(text, shape) {
        KernelFrequency::Given(Some(mhz)) if mhz > 0 => Some(mhz),
        _ => None,
    }
}

/// A command line with `-freq <MHz>` inserted for the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrequencyInserted {
    /// The whole new command line.
    pub text: String,
    /// Where the inserted text starts in it.
    pub at: usize,
    /// The inserted text (` -freq <MHz>` after a file name, `-freq <MHz> ` at the
    /// start of a line of arguments only).
    pub inserted: String,
}

/// Where the first shell word of `text` (the file name) ends, as `shell-words`
/// splits: the byte after its last one. `None` when the line has no word (a kernel
/// would then take the inserted `-freq` for its path), when the first word is the
/// last and ends in a backslash (text appended to it would join it), or when it
/// does not split.
///
/// The word ends at the first delimiter outside quotes and escapes, so the quoted
/// file name of `'/x/my app' -ip 1` ends after its closing quote, not at its space.
fn first_word_end(text: &str) -> Option<usize> {
    if !needs_shell_rules(text) {
        return words(text).next().map(|(at, word)| at + word.len());
    }
    let bytes = text.as_bytes();
    let mut at = 0;
    // Before the word: delimiters, comments (from `#` to the line's end) and line
    // continuations (a backslash and a newline).
    loop {
        match bytes.get(at)? {
            &b if is_delimiter(char::from(b)) => at += 1,
            b'#' => at += bytes[at..].iter().position(|&b| b == b'\n')? + 1,
            b'\\' if bytes.get(at + 1) == Some(&b'\n') => at += 2,
            _ => break,
        }
    }
    // The word, to a delimiter outside quotes. Delimiters, quotes and the backslash
    // are ASCII, so every stop lies on a character boundary.
    loop {
        match bytes.get(at) {
            None => return Some(at),
            Some(&b) if is_delimiter(char::from(b)) => return Some(at),
            // The escaped byte is part of the word (a backslash last would take what
            // is appended).
            Some(b'\\') => at = at.checked_add(2).filter(|&next| next <= bytes.len())?,
            Some(b'\'') => at += bytes[at + 1..].iter().position(|&b| b == b'\'')? + 2,
            Some(b'"') => {
                at += 1;
                loop {
                    match bytes.get(at)? {
                        b'"' => break,
                        b'\\' => at += 2,
                        _ => at += 1,
                    }
                }
                at += 1;
            }
            Some(_) => at += 1,
        }
    }
}

/// `text` with `-freq <MHz>` inserted right after the file name (or, for
/// [`Shape::ArgumentsOnly`], first), for a kernel that would otherwise measure the
/// TSC itself; `None` when the command line already has a `-freq` (the user's
/// always wins), cannot be split, has no file name to insert it after (see
/// [`first_word_end`]), or `khz` does not make a valid `u16` of MHz. The rest of
/// the line is unchanged: the kernel reads the same words, with `-freq <MHz>` after
/// its path.
pub fn insert_frequency(text: &str, khz: u32, shape: Shape) -> Option<FrequencyInserted> {
    if kernel_frequency(text, shape) != KernelFrequency::Absent {
        return None;
    }
    let mhz = u16::try_from((u64::from(khz) + 500) / 1000)
        .ok()
        .filter(|&m| m > 0)?;
    let at = match shape {
        // After the first word (the file name) as the kernel splits it.
        Shape::FileNameFirst => first_word_end(text)?,
        // Before the first argument, which may be `--`.
        Shape::ArgumentsOnly => 0,
    };
    // Built by hand: `format!` would bring the formatting machinery into the loader,
    // whose code costs more to translate under emulation than all of this to run.
    let mut inserted = String::with_capacity(12);
    if at > 0 {
        inserted.push(' ');
    }
    inserted.push_str("-freq ");
    push_decimal(&mut inserted, mhz);
    if at == 0 && !text.is_empty() && !text.starts_with(is_delimiter) {
        inserted.push(' ');
    }
    let mut whole = String::with_capacity(text.len() + inserted.len());
    whole.push_str(&text[..at]);
    whole.push_str(&inserted);
    whole.push_str(&text[at..]);
    Some(FrequencyInserted {
        text: whole,
        at,
        inserted,
    })
}

/// Appends `value` in decimal.
fn push_decimal(out: &mut String, value: u16) {
    let mut digits = [0u8; 5];
    let mut rest = value;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

/// The loader's own options. They are the words after the application's file name
/// in its Multiboot module string (`-initrd "app.elf keep-cmdline"`), so they never
/// reach the kernel, which panics on arguments it does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoaderOptions {
    /// `keep-cmdline`: hand the kernel its command line exactly as given, without
    /// inserting `-freq`.
    pub keep_command_line: bool,
}

/// The option words the loader knows, for messages.
pub const LOADER_OPTIONS: &str = "keep-cmdline";

/// Reads the loader's options from the module string; the first word is the file
/// name. An unknown word is refused by name.
pub fn loader_options(module_string: &str) -> Result<LoaderOptions, LoadError> {
    let mut options = LoaderOptions::default();
    for (_, word) in words(module_string).skip(1) {
        match word {
            "keep-cmdline" => options.keep_command_line = true,
            // The message outlives the Multiboot information's borrow.
            unknown => {
                return Err(LoadError::UnknownOption {
                    option: String::from(unknown).leak(),
                })
            }
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Shape = Shape::FileNameFirst;
    const A: Shape = Shape::ArgumentsOnly;

    fn check_split(text: &str, kernel: Option<&str>, app: Option<&str>) {
        let split = split(text, Shape::FileNameFirst);
        assert_eq!(
            split.kernel_args_at.map(|at| &text[at..]),
            kernel,
            "kernel args of {text:?}"
        );
        assert_eq!(
            split.app_args_at.map(|at| &text[at..]),
            app,
            "app args of {text:?}"
        );
    }

    #[test]
    fn splits_file_name_kernel_and_app_args() {
        check_split("", None, None);
        check_split("/tmp/loader ", None, None);
        check_split("/tmp/loader -freq 2800", Some("-freq 2800"), None);
        check_split(
            "/tmp/loader -freq 2800 -- a b",
            Some("-freq 2800 -- a b"),
            Some("a b"),
        );
        check_split("loader -- a  b", Some("-- a  b"), Some("a  b"));
        check_split("loader  --", Some("--"), None);
        check_split("loader x\t--\ty", Some("x\t--\ty"), Some("y"));
        check_split("loader -- -- x", Some("-- -- x"), Some("-- x"));
        check_split("  loader x", Some("x"), None);
    }

    #[test]
    fn reads_freq_as_the_kernel_does() {
        assert_eq!(freq_mhz("loader -freq 2800", F), Some(2800));
        assert_eq!(
            freq_mhz("loader -ip 10.0.5.3 -freq 1000 -- x", F),
            Some(1000)
        );
        assert_eq!(freq_mhz("loader -- -freq 2800", F), None, "an app argument");
        assert_eq!(freq_mhz("loader -freq", F), None);
        assert_eq!(freq_mhz("loader -freq fast", F), None);
        assert_eq!(freq_mhz("loader -freq 0", F), None);
        assert_eq!(
            freq_mhz("-freq 2800", F),
            None,
            "the first word is the file name"
        );
        // The last one wins, quotes are shell quotes, values are u16.
        assert_eq!(freq_mhz("app -freq 1000 -freq 2000", F), Some(2000));
        assert_eq!(freq_mhz("app -freq '2800'", F), Some(2800));
        assert_eq!(freq_mhz("app '-freq' \"2800\"", F), Some(2800));
        assert_eq!(freq_mhz("app -freq 70000", F), None, "not a u16");
        assert_eq!(
            freq_mhz("app -freq 2000 -freq 70000", F),
            None,
            "the last wins"
        );
        assert_eq!(
            kernel_frequency("app -freq 70000", F),
            KernelFrequency::Given(None)
        );
        assert_eq!(
            kernel_frequency("app '-freq 1", F),
            KernelFrequency::Unreadable
        );
        assert_eq!(kernel_frequency("app -ip 1", F), KernelFrequency::Absent);
        assert_eq!(
            kernel_frequency("app 'x -- y' -freq 5", F),
            KernelFrequency::Given(Some(5)),
            "a quoted -- is a word, not the separator"
        );
        assert_eq!(
            kernel_frequency("app -freq -- 5", F),
            KernelFrequency::Given(None),
            "-freq takes the next word, even --, as the kernel does"
        );
        assert_eq!(
            kernel_frequency("app # -freq 5", F),
            KernelFrequency::Absent,
            "a comment, for shell-words"
        );
        assert_eq!(
            kernel_frequency("app\r-freq 5", F),
            KernelFrequency::Absent,
            "a carriage return is no delimiter"
        );
    }

    #[test]
    fn inserts_freq_after_the_file_name_only_when_absent() {
        let inserted = insert_frequency("/x/loader -ip 1 -- app", 2_300_012, F).unwrap();
        assert_eq!(inserted.text, "/x/loader -freq 2300 -ip 1 -- app");
        assert_eq!(inserted.at, 9);
        assert_eq!(inserted.inserted, " -freq 2300");
        assert_eq!(
            &inserted.text[inserted.at..inserted.at + inserted.inserted.len()],
            inserted.inserted
        );
        assert_eq!(
            insert_frequency("/x/loader", 2_299_600, F).unwrap().text,
            "/x/loader -freq 2300"
        );
        assert_eq!(
            insert_frequency("/x/loader ", 1_000_000, F).unwrap().text,
            "/x/loader -freq 1000 "
        );
        // Without a file name there is nothing to insert after: a kernel would take
        // `-freq` for its path.
        assert_eq!(insert_frequency("", 1_000_000, F), None);
        assert_eq!(insert_frequency(" \t# comment", 1_000_000, F), None);
        // The file name ends where the kernel's first word does, quotes and escapes
        // included.
        let after_quoted_name = |text: &str| insert_frequency(text, 1_000_000, F).unwrap().text;
        assert_eq!(
            after_quoted_name("'/x/my app' -ip 1"),
            "'/x/my app' -freq 1000 -ip 1"
        );
        assert_eq!(
            after_quoted_name("\"/x/a \\\" b\" x"),
            "\"/x/a \\\" b\" -freq 1000 x"
        );
        assert_eq!(after_quoted_name("/x/my\\ app"), "/x/my\\ app -freq 1000");
        assert_eq!(after_quoted_name("\\\n#c\n app"), "\\\n#c\n app -freq 1000");
        // A lone name ending in a backslash would take what is appended.
        assert_eq!(insert_frequency("/x/app\\", 1_000_000, F), None);
        // The app's own -freq is not the kernel's.
        assert_eq!(
            insert_frequency("l -- -freq 9", 1_000_000, F).unwrap().text,
            "l -freq 1000 -- -freq 9"
        );
        // Whatever -freq the user gave wins, even one the kernel cannot read.
        assert_eq!(insert_frequency("l -freq 2800", 1_000_000, F), None);
        assert_eq!(insert_frequency("l -freq abc", 1_000_000, F), None);
        assert_eq!(insert_frequency("l 'unclosed", 1_000_000, F), None);
        // No usable MHz value: nothing to insert.
        assert_eq!(insert_frequency("l", 0, F), None);
        assert_eq!(insert_frequency("l", 70_000_000, F), None);
    }

    #[test]
    fn a_line_of_arguments_only_has_no_file_name() {
        let parts = split("-freq 2800 -- a", A);
        assert_eq!(
            (parts.kernel_args_at, parts.app_args_at),
            (Some(0), Some(14))
        );
        assert_eq!(split("-- a", A).kernel_args_at, Some(0));
        assert_eq!(split("", A).kernel_args_at, None);
        assert_eq!(freq_mhz("-freq 2800", A), Some(2800));
        assert_eq!(freq_mhz("-- -freq 2800", A), None, "an app argument");
        let inserted = insert_frequency("-- app", 2_300_000, A).unwrap();
        assert_eq!(inserted.text, "-freq 2300 -- app");
        assert_eq!(
            (inserted.at, inserted.inserted.as_str()),
            (0, "-freq 2300 ")
        );
        assert_eq!(
            insert_frequency("", 1_000_000, A).unwrap().text,
            "-freq 1000"
        );
        assert_eq!(
            insert_frequency(" -ip 1", 1_000_000, A).unwrap().text,
            "-freq 1000 -ip 1"
        );
        assert_eq!(insert_frequency("-freq 5", 1_000_000, A), None);
    }

    #[test]
    fn reads_the_loaders_own_options_from_the_module_string() {
        assert_eq!(loader_options("app.elf"), Ok(LoaderOptions::default()));
        assert_eq!(loader_options(""), Ok(LoaderOptions::default()));
        assert_eq!(
            loader_options("/x/app.elf  keep-cmdline"),
            Ok(LoaderOptions {
                keep_command_line: true
            })
        );
        assert_eq!(
            loader_options("app.elf keep-cmdline -freq"),
            Err(LoadError::UnknownOption { option: "-freq" })
        );
    }
}
