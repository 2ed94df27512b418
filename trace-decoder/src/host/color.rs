//! When to colour: the `--color auto|always|never` choice and the `NO_COLOR`
//! convention (<https://no-color.org>), decided the same way by `rusty-trace` and
//! `cargo xtask trace`.

use std::io::IsTerminal;

/// The `--color` option of both command lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set to something.
    #[default]
    Auto,
    /// Always colour, even into a pipe or a file, whatever `NO_COLOR` says.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether to colour what goes to a stream that is (or is not) a terminal.
    pub fn enabled(self, terminal: bool) -> bool {
        self.enabled_with(terminal, std::env::var_os("NO_COLOR").as_deref())
    }

    /// Whether to colour what goes to `stream` (standard output or error).
    pub fn enabled_for(self, stream: &impl IsTerminal) -> bool {
        self.enabled(stream.is_terminal())
    }

    /// [`Self::enabled`] with `NO_COLOR`'s value given, so that tests need not
    /// change the process environment. An empty `NO_COLOR` counts as unset, as the
    /// convention says.
    fn enabled_with(self, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && no_color.is_none_or(|value| value.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ColorChoice;
    use std::ffi::OsStr;

    #[test]
    fn auto_colours_a_terminal_unless_no_color_is_set() {
        let auto = ColorChoice::Auto;
        assert!(auto.enabled_with(true, None));
        assert!(!auto.enabled_with(false, None));
        assert!(!auto.enabled_with(true, Some(OsStr::new("1"))));
        assert!(auto.enabled_with(true, Some(OsStr::new(""))));
    }

    #[test]
    fn always_and_never_ignore_the_stream_and_no_color() {
        for terminal in [false, true] {
            for no_color in [None, Some(OsStr::new("1"))] {
                assert!(ColorChoice::Always.enabled_with(terminal, no_color));
                assert!(!ColorChoice::Never.enabled_with(terminal, no_color));
            }
        }
    }
}
