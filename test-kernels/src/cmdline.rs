//! Splitting the command line the way a Hermit kernel does: the first word is the
//! image path (the loader's file name under QEMU), kernel options follow (of which
//! the kernels read `-freq <MHz>`), and the words after a lone `--` are the
//! application's arguments.
//!
//! Quoting is not interpreted: the test harness passes plain words, and a kernel
//! that printed quoted words differently from the host's truth would show it.

#![forbid(unsafe_code)]

/// Iterates over the whitespace-separated words of a command line.
pub fn words(cmdline: &[u8]) -> impl Iterator<Item = &[u8]> {
    cmdline
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
}

/// The image path: the first word, if any.
pub fn image_path(cmdline: &[u8]) -> Option<&[u8]> {
    words(cmdline).next()
}

/// The application arguments: the words after the first `--` word. A command line
/// without `--` has none.
pub fn app_args(cmdline: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut all = words(cmdline);
    // Advance past the separator; if there is none the iterator is already empty.
    let found = all.by_ref().any(|w| w == b"--");
    all.filter(move |_| found)
}

/// What is wrong with a `-freq` option. Hermit kernels 0.6–0.10 panic on either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreqArgError {
    /// `-freq` is the last kernel option: no value follows.
    MissingValue,
    /// The value is not a decimal number from 0 to 65535.
    NotAnMhzValue,
}

impl FreqArgError {
    /// A short description for failure messages.
    pub fn describe(self) -> &'static str {
        match self {
            FreqArgError::MissingValue => "-freq needs a value",
            FreqArgError::NotAnMhzValue => "the -freq value is not a number of MHz from 0 to 65535",
        }
    }
}

/// The value of the kernel option `-freq <MHz>`, read as Hermit kernels 0.6–0.10 read
/// it: among the words before `--`, `-freq` takes the next word as a `u16`; a later
/// `-freq` overrides an earlier one. `None` without the option.
pub fn freq_mhz(cmdline: &[u8]) -> Result<Option<u16>, FreqArgError> {
    let mut kernel_words = words(cmdline).take_while(|&w| w != b"--");
    let mut mhz = None;
    while let Some(word) = kernel_words.next() {
        if word == b"-freq" {
            let value = kernel_words.next().ok_or(FreqArgError::MissingValue)?;
            let parsed = core::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok());
            mhz = Some(parsed.ok_or(FreqArgError::NotAnMhzValue)?);
        }
    }
    Ok(mhz)
}

/// The MHz value of a `-freq` the loader inserted: `ours` is `theirs` (the command
/// line QEMU gave) with ` -freq <MHz>` right after the first word (the file name
/// Multiboot puts first) or, for a line without one (PVH), `-freq <MHz>` first; or
/// `None`.
/// The loader does that for kernels of 0.6–0.10 given no `-freq` (they learn the
/// TSC frequency only there).
pub fn inserted_freq(ours: &[u8], theirs: &[u8]) -> Option<u16> {
    let start = theirs
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(theirs.len());
    let at = theirs[start..]
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .map_or(theirs.len(), |end| start + end);
    let (head, tail) = theirs.split_at(at);
    let after_path = ours
        .strip_prefix(head)
        .and_then(|rest| rest.strip_suffix(tail))
        .and_then(|middle| middle.strip_prefix(b" -freq "));
    // A command line without a file name (PVH) gets it first: `-freq N <theirs>`.
    let first = || {
        let rest = ours.strip_prefix(b"-freq ")?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (value, after) = rest.split_at(digits);
        let unchanged = if theirs.is_empty() {
            after.is_empty()
        } else if theirs[0].is_ascii_whitespace() {
            after == theirs
        } else {
            after.strip_prefix(b" ") == Some(theirs)
        };
        unchanged.then_some(value)
    };
    let value = after_path.or_else(first)?;
    let mhz: u16 = core::str::from_utf8(value).ok()?.parse().ok()?;
    (mhz > 0 && !value.is_empty() && value.iter().all(u8::is_ascii_digit)).then_some(mhz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn args(c: &str) -> Vec<&[u8]> {
        app_args(c.as_bytes()).collect()
    }

    #[test]
    fn recognises_a_frequency_the_loader_inserted() {
        assert_eq!(inserted_freq(b"/l -freq 2300 -- a", b"/l -- a"), Some(2300));
        assert_eq!(inserted_freq(b"/l -freq 2300", b"/l"), Some(2300));
        assert_eq!(inserted_freq(b"/l -- a", b"/l -- a"), None, "unchanged");
        assert_eq!(inserted_freq(b"/l -freq 0", b"/l"), None);
        assert_eq!(inserted_freq(b"/l -freq +5", b"/l"), None);
        assert_eq!(
            inserted_freq(b"/l -freq 23 x", b"/l y"),
            None,
            "rest changed"
        );
        assert_eq!(
            inserted_freq(b"/l -ip 1 -freq 5", b"/l -ip 1"),
            None,
            "not after the path"
        );
        // PVH: no file name, the loader inserts it first.
        assert_eq!(inserted_freq(b"-freq 2300 -- a", b"-- a"), Some(2300));
        assert_eq!(inserted_freq(b"-freq 2300", b""), Some(2300));
        assert_eq!(inserted_freq(b"-freq 2300 -- b", b"-- a"), None);
        assert_eq!(inserted_freq(b"-freq 2300-- a", b"-- a"), None);
    }

    #[test]
    fn qemu_style_command_lines() {
        let c = "target/x86_64/debug/rusty-loader -freq 2800 -- hello world";
        assert_eq!(
            image_path(c.as_bytes()),
            Some(&b"target/x86_64/debug/rusty-loader"[..])
        );
        assert_eq!(args(c), [&b"hello"[..], b"world"]);
        // An empty -append leaves "<file> " behind.
        assert_eq!(args("rusty-loader "), Vec::<&[u8]>::new());
        assert_eq!(image_path(b"rusty-loader "), Some(&b"rusty-loader"[..]));
    }

    #[test]
    fn separator_rules() {
        assert_eq!(args("l -- "), Vec::<&[u8]>::new());
        assert_eq!(args("l a b"), Vec::<&[u8]>::new());
        // Only the first separator splits; later ones are arguments.
        assert_eq!(args("l -- a -- b"), [&b"a"[..], b"--", b"b"]);
        // A word that merely contains "--" is no separator.
        assert_eq!(args("l --x a"), Vec::<&[u8]>::new());
        assert_eq!(args("l\t--\n a  b"), [&b"a"[..], b"b"]);
        assert_eq!(image_path(b""), None);
        assert_eq!(image_path(b"   "), None);
    }

    #[test]
    fn freq_option() {
        let freq = |c: &str| freq_mhz(c.as_bytes());
        assert_eq!(freq("rusty-loader -freq 2800 -- a b"), Ok(Some(2800)));
        assert_eq!(freq("rusty-loader -freq 2300"), Ok(Some(2300)));
        assert_eq!(freq("rusty-loader "), Ok(None));
        assert_eq!(freq("rusty-loader -ip 10.0.5.3 -- a"), Ok(None));
        // After "--" the words are the application's, not the kernel's.
        assert_eq!(freq("rusty-loader -- -freq 2800"), Ok(None));
        assert_eq!(freq("l -freq 1000 -freq 3000"), Ok(Some(3000)));
        assert_eq!(freq("l -freq 0"), Ok(Some(0)));
        assert_eq!(freq("l\t-freq\n65535"), Ok(Some(65535)));
    }

    #[test]
    fn bad_freq_values() {
        let freq = |c: &str| freq_mhz(c.as_bytes());
        assert_eq!(freq("l -freq"), Err(FreqArgError::MissingValue));
        assert_eq!(freq("l -freq -- a"), Err(FreqArgError::MissingValue));
        assert_eq!(freq("l -freq 65536"), Err(FreqArgError::NotAnMhzValue));
        assert_eq!(freq("l -freq 2.8GHz"), Err(FreqArgError::NotAnMhzValue));
        assert_eq!(freq("l -freq -1"), Err(FreqArgError::NotAnMhzValue));
        assert_eq!(freq_mhz(b"l -freq \xff"), Err(FreqArgError::NotAnMhzValue));
    }
}
