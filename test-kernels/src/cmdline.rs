//! Splitting the command line the way a Hermit kernel does for its application: the
//! first word is the image path (the loader's file name under QEMU), kernel options
//! follow, and the words after a lone `--` are the application's arguments.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn args(c: &str) -> Vec<&[u8]> {
        app_args(c.as_bytes()).collect()
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
}
