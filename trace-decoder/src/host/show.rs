//! One stream shown as `rusty-trace` shows it: the kernel's text and the event lines
//! live as they arrive (on standard output, or standard error when the report is
//! JSON), then the report and the timeline files, and, when how QEMU ended is known
//! (a recording's `.status`, `--status`), the boot's ending as its exit status.

use std::io::{self, BufWriter, IsTerminal};
use std::path::{Path, PathBuf};

use super::color::ColorChoice;
use super::consumer::{line_style, Console, ConsoleStyle, Consumed};
use super::input;
use super::loader_elf::{LiveRead, LoaderElfs};
use super::outputs::ReportFiles;
use super::pump::{stop_on_ctrl_c, InputEnd};
use super::Failure;
use crate::decode::{BootRecord, HostTimes};
use crate::report::ending::{Ending, EndingKind, QemuEnd, TraceSeen};
use crate::report::symbols::AppSymbols;
use crate::report::Report;

/// The end report's format: `text` for people, the live output on standard output
/// with it; `json` (docs/report-schema.md) alone on standard output.
// (No doc comments on the variants: clap would print them in `--help`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// What to show of a stream and where.
#[derive(Clone, Debug)]
pub struct ShowOptions<'a> {
    pub format: ReportFormat,
    /// No live event lines: only the text, warnings and the report.
    pub quiet: bool,
    /// No end report (the files below are still written).
    pub no_report: bool,
    pub color: ColorChoice,
    /// Also the timeline in Chrome's trace event format, to this file.
    pub chrome_trace: Option<PathBuf>,
    /// Also the timeline and memory layout as SVG, to this file.
    pub svg: Option<PathBuf>,
    /// QEMU's exit status for the report and the exit status; without it, a
    /// recording's `.status` file.
    pub status: Option<i32>,
    /// The application's symbols, to name a crash's addresses.
    pub app: Option<&'a AppSymbols>,
}

/// Reads the stream at `path` (standard input for `None` or `-`) live, shows it,
/// and ends with its report.
pub fn show_stream(
    path: Option<&Path>,
    elfs: &LoaderElfs,
    options: &ShowOptions,
) -> Result<(), Failure> {
    let qemu_end = match options.status {
        Some(status) => Some((QemuEnd::Exited(status), None)),
        None => input::recorded_end(path)?,
    };
    let exit_status = qemu_end.as_ref().and_then(|(end, _)| end.status());
    let input = input::open(path).map_err(Failure::input)?;
    if input.terminal {
        eprintln!(
            "rusty-trace: reading the serial stream from standard input, a terminal: pipe QEMU's output in or name a file (Ctrl-D ends the input)"
        );
    }
    let live_on_stdout = options.format == ReportFormat::Text;
    let live_terminal = if live_on_stdout {
        io::stdout().is_terminal()
    } else {
        io::stderr().is_terminal()
    };
    let console = Console::new(
        BufWriter::with_capacity(64 * 1024, io::stdout()),
        BufWriter::new(io::stderr()),
        ConsoleStyle {
            live_on_stdout,
            events: !options.quiet,
            line: line_style(options.color, live_terminal),
            warning_prefix: "rusty-trace: ".into(),
            warning_color: options.color.enabled_for(&io::stderr()),
        },
    );
    // In `qemu | rusty-trace` QEMU gets Ctrl-C too and the input ends anyway; with an
    // input that does not end, this is how the report still gets written.
    stop_on_ctrl_c();
    let LiveRead {
        chosen,
        elf_file,
        end,
        consumed,
    } = elfs.consume(input.reader, console, exit_status);
    let Consumed {
        status,
        mut record,
        mut console,
    } = consumed;
    if input.recorded {
        // Arrival times say how fast a file was read, not when QEMU sent it.
        record.host = HostTimes::default();
        record.text_lines.forget_times();
    }
    let result = elfs
        .check_found(chosen, elf_file, status, &record, &input.name)
        .and_then(|()| write_reports(&record, options, &mut console));
    console.flush();
    if console.reader_gone() {
        // The reader of our output went away (`rusty-trace ... | head`): nothing
        // more can be said there, and saying it on stderr would only be noise.
        return Err(Failure::Input(String::new()));
    }
    if let Some(error) = console.take_write_error() {
        return Err(Failure::Input(format!("cannot write the output: {error}")));
    }
    match end {
        InputEnd::Complete | InputEnd::Stopped => result.and_then(|()| match &qemu_end {
            Some((end, error)) => replayed_ending(&record, end, error.as_deref()),
            None => Ok(()),
        }),
        InputEnd::ReadError(error) => Err(Failure::Input(format!(
            "reading {} failed: {error}",
            input.name
        ))),
        InputEnd::Interrupted => Err(Failure::Interrupted),
    }
}

/// A replay ends as the live run did: with the status `cargo xtask trace` gives the
/// boot's ending ([`Ending::of`]), from how QEMU ended and what the trace says.
fn replayed_ending(record: &BootRecord, end: &QemuEnd, error: Option<&str>) -> Result<(), Failure> {
    let serial_bytes = record.text_bytes + record.trace_bytes;
    let ending = Ending::of(end, error, &TraceSeen::of(record, serial_bytes));
    if ending.kind == EndingKind::AppSucceeded {
        return Ok(());
    }
    Err(Failure::Ended {
        status: ending.status,
        reason: ending.reason,
    })
}

/// The end of the run: the report and the timeline files.
fn write_reports<O: io::Write, E: io::Write>(
    record: &BootRecord,
    options: &ShowOptions,
    console: &mut Console<O, E>,
) -> Result<(), Failure> {
    let files = ReportFiles {
        json: None,
        chrome_trace: options.chrome_trace.clone(),
        svg: options.svg.clone(),
    };
    if options.no_report && !files.any() {
        return Ok(());
    }
    let report = Report::build_with_app(record, options.app);
    for path in files.write(&report).map_err(Failure::setup)? {
        console.flush();
        eprintln!("rusty-trace: wrote {}", path.display());
    }
    if options.no_report {
        return Ok(());
    }
    let mut text = match options.format {
        ReportFormat::Text => {
            let color = options.color.enabled_for(&io::stdout());
            // A blank line sets the report apart from the live output above it.
            format!("\n{}", report.render_text(color))
        }
        ReportFormat::Json => report.to_json(),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    console.write_stdout(text.as_bytes());
    Ok(())
}
