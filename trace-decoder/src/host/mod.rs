//! The host layer: everything both command lines (`rusty-trace` and `cargo xtask
//! trace`) do around decoding and reports, once: reading a live stream in a thread
//! and Ctrl-C ([`pump`]), opening inputs ([`input`]), showing what arrives on a
//! terminal or a pipe ([`consumer`], [`event_line`], [`color`]), choosing and
//! reading the loader ELF ([`loader_elf`]), writing files ([`outputs`]) and the
//! profile flow ([`profile`]). It builds on the two layers below it, `decode` and
//! `report`, which import nothing from here.

pub mod color;
pub mod consumer;
pub mod event_line;
pub mod input;
pub mod loader_elf;
pub mod outputs;
pub mod profile;
pub mod pump;
pub mod show;

use std::fmt;
use std::io::{self, Write};

/// Why a command line stops, by the kinds of cause its exit status tells apart
/// (`rusty-trace` maps them to the statuses of `crate::report::ending`: 2, 3, 130
/// and a boot's own; see its `--help`).
#[derive(Debug)]
pub enum Failure {
    /// The input holds no usable trace (or not a whole boot), or reading it or
    /// writing the output failed. Empty when the reader of the output went away:
    /// nothing more can be said there, and saying it elsewhere would be noise.
    Input(String),
    /// A usage, loader-ELF, baseline or output-file problem.
    Setup(String),
    /// A stage is slower than the baseline allows: the comparison's verdict.
    Regression(String),
    /// Ctrl-C stopped the reading; what arrived was still reported.
    Interrupted,
    /// A replay whose boot did not end in the application's success: the exit
    /// status of its ending, as `cargo xtask trace` gave it live, and why.
    Ended { status: u8, reason: String },
}

impl Failure {
    /// [`Failure::Input`] with `message`'s text.
    pub fn input(message: impl ToString) -> Failure {
        Failure::Input(message.to_string())
    }

    /// [`Failure::Setup`] with `message`'s text.
    pub fn setup(message: impl ToString) -> Failure {
        Failure::Setup(message.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Input(message) | Failure::Setup(message) | Failure::Regression(message) => {
                f.write_str(message)
            }
            Failure::Interrupted => {
                f.write_str("interrupted: the report covers what arrived before Ctrl-C")
            }
            Failure::Ended { status, reason } => write!(f, "{reason}; exit status {status}"),
        }
    }
}

impl std::error::Error for Failure {}

/// Writes `bytes` to standard output and flushes it; a reader that went away is an
/// empty [`Failure::Input`].
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(output_failure)
}

/// A failed write of the output as a [`Failure`].
pub fn output_failure(error: io::Error) -> Failure {
    if error.kind() == io::ErrorKind::BrokenPipe {
        Failure::Input(String::new())
    } else {
        Failure::Input(format!("cannot write the output: {error}"))
    }
}
