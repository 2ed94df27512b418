//! Reading the Multiboot command line: `"<file name> <kernel args> [-- <app args>]"`.
//! The loader passes the line on unchanged (the kernel takes the first word as its
//! own path); it only looks at it to trace the split and to honour `-freq`.

/// Where the parts of a command line start, as byte offsets into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandLineSplit {
    /// Start of the kernel arguments (after the file name), if there are any words.
    pub kernel_args_at: Option<usize>,
    /// Start of the application arguments (the first word after `--`), if any.
    pub app_args_at: Option<usize>,
}

/// The words of `text` with their byte offsets (split on ASCII whitespace, as the
/// kernel does).
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| c.is_ascii_whitespace())
        .scan(0usize, |offset, word| {
            let at = *offset;
            *offset += word.len() + 1;
            Some((at, word))
        })
        .filter(|(_, word)| !word.is_empty())
}

/// Splits a command line into file name, kernel arguments and app arguments.
pub fn split(text: &str) -> CommandLineSplit {
    let mut words = words(text).skip(1);
    let mut kernel_args_at = None;
    let mut app_args_at = None;
    let mut after_separator = false;
    for (at, word) in words.by_ref() {
        if after_separator {
            app_args_at = Some(at);
            break;
        }
        if word == "--" {
            after_separator = true;
            kernel_args_at.get_or_insert(at);
            continue;
        }
        kernel_args_at.get_or_insert(at);
    }
    CommandLineSplit {
        kernel_args_at,
        app_args_at,
    }
}

/// The kernel's `-freq <MHz>` argument, if given and valid (before any `--`).
pub fn freq_mhz(text: &str) -> Option<u32> {
    let mut kernel_words = words(text)
        .skip(1)
        .map(|(_, w)| w)
        .take_while(|&w| w != "--");
    while let Some(word) = kernel_words.next() {
        if word == "-freq" {
            return kernel_words.next()?.parse().ok().filter(|&mhz| mhz > 0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split(text: &str, kernel: Option<&str>, app: Option<&str>) {
        let split = split(text);
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
    }

    #[test]
    fn reads_freq_only_from_kernel_args() {
        assert_eq!(freq_mhz("loader -freq 2800"), Some(2800));
        assert_eq!(freq_mhz("loader -ip 10.0.5.3 -freq 1000 -- x"), Some(1000));
        assert_eq!(freq_mhz("loader -- -freq 2800"), None);
        assert_eq!(freq_mhz("loader -freq"), None);
        assert_eq!(freq_mhz("loader -freq fast"), None);
        assert_eq!(freq_mhz("loader -freq 0"), None);
        assert_eq!(
            freq_mhz("-freq 2800"),
            None,
            "the first word is the file name"
        );
    }
}
