//! `rusty-trace`: reads rusty-loader's serial stream (live from QEMU, or recorded),
//! passes the kernel's text through as it arrives, shows each boot-trace event as one
//! line, and ends with a report. Everything else lives in the library: decoding
//! ([`trace_decoder::live::Session`]), reading and showing a live stream
//! ([`trace_decoder::consumer`]), the loader ELF, output files. This file is the
//! command line: options, choosing the input, what goes where, exit codes.
//!
//! Where things go:
//!
//! | output | `--format text` (default) | `--format json` |
//! | --- | --- | --- |
//! | kernel text | stdout | stderr |
//! | event lines (not with `--quiet`) | stdout | stderr |
//! | report (not with `--no-report`) | stdout | stdout (JSON only) |
//! | warnings and errors | stderr | stderr |
//!
//! Exit codes (also in `--help`):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | a trace was decoded: the boot handed over, was refused, or stopped early |
//! | 1 | no trace in the input, a trace from another loader build, or the input (or an output) could not be read or written |
//! | 2 | usage error, or no usable loader ELF (missing, not an ELF, stripped, not a rusty-loader, built without tracing) |
//! | 130 | interrupted (Ctrl-C) |
//!
//! QEMU's status given with `--status` goes into the report, not into the exit code:
//! QEMU's own codes (1 for a kernel failure, the loader's refusal codes) would be
//! indistinguishable from the ones above.

use std::fmt::Write as _;
use std::io::{self, BufWriter, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use trace_decoder::color::ColorChoice;
use trace_decoder::consumer::{line_style, Console, ConsoleStyle, Consumed, LiveConsumer};
use trace_decoder::decode::TraceTable;
use trace_decoder::input;
use trace_decoder::live::{Session, TraceStatus};
use trace_decoder::outputs::ReportFiles;
use trace_decoder::pump::{stop_on_ctrl_c, InputEnd};
use trace_decoder::report::format::Paint;
use trace_decoder::report::{BootRecord, HostTimes, Report};

const EXAMPLES: &str = "\
Examples:
  # Boot live: the kernel's text and the loader's events as they happen, then the report.
  qemu-system-x86_64 -cpu qemu64,apic,fsgsbase,fxsr,rdrand,rdtscp,xsave,xsaveopt -smp 1 -m 64M \\
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -display none -serial stdio \\
    -kernel target/x86_64/debug/rusty-loader -initrd app.elf | rusty-trace

  # A recorded run with QEMU's exit status, as JSON (the kernel's text goes to stderr).
  qemu-system-x86_64 ... > boot.bin; echo $? > boot.status
  rusty-trace --elf target/x86_64/release/rusty-loader.elf --status $(cat boot.status) boot.bin --format json

  # Timeline files for chrome://tracing (or Perfetto) and for a browser.
  rusty-trace boot.bin --chrome-trace boot.json --svg boot.svg

  # Only the kernel's text, frames removed.
  rusty-trace --quiet --no-report boot.bin > kernel.txt

Outputs: with --format text, the kernel's text, the event lines and the report go to
stdout; with --format json, stdout carries only the JSON report and the text and event
lines go to stderr. Warnings and errors always go to stderr. Text is written as it
arrives, flushed whenever the input pauses.

Exit status:
  0  a trace was decoded (the boot handed over, was refused, or stopped early)
  1  no trace in the input, a trace from another loader build, or unreadable input
     (or unwritable output)
  2  usage error, or no usable loader ELF (missing, not an ELF, stripped, not a
     rusty-loader, built without tracing)
  130  interrupted (Ctrl-C): reading stopped, and the report covers what arrived
QEMU's status given with --status appears in the report; it never becomes
rusty-trace's exit status, since QEMU's own codes (1 = kernel failure, the loader's
refusal codes) would be confused with the ones above.";

/// Decode rusty-loader's boot trace from a serial stream.
#[derive(Parser, Debug)]
#[command(
    name = "rusty-trace",
    version,
    about = "Decode rusty-loader's boot trace from its serial stream",
    long_about = "Decode rusty-loader's boot trace from its serial stream.\n\n\
        Reads QEMU's serial output (live through a pipe, or a recorded file), passes the \
        kernel's text through as it arrives, shows each loader event as one line \
        ([    1.234 ms] SegmentLoaded addr=0x800000 filesz=0x33e0 ...), and ends with a report \
        of the boot. Decoding needs the unstripped loader ELF that produced the stream \
        (target/x86_64/<profile>/rusty-loader.elf, written by `cargo xtask build`).",
    after_help = EXAMPLES,
)]
struct Cli {
    /// The serial stream: a file, or `-` for standard input (the default).
    #[arg(value_name = "INPUT")]
    input: Option<PathBuf>,
    /// The loader ELF with its defmt table. Default: the newest of
    /// target/x86_64/{release,debug}/rusty-loader.elf in this directory or the
    /// nearest parent that has one.
    #[arg(long, value_name = "PATH")]
    elf: Option<PathBuf>,
    /// Colours: `auto` uses them on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
    /// The end report's format; `json` keeps stdout for the JSON alone.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write the timeline in Chrome's trace event format to FILE.
    #[arg(long, value_name = "FILE")]
    chrome_trace: Option<PathBuf>,
    /// Also write the timeline as an SVG picture to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// No live event lines: only the text, warnings and the report.
    #[arg(short, long)]
    quiet: bool,
    /// No end report (files asked for with --chrome-trace or --svg are still written).
    #[arg(long)]
    no_report: bool,
    /// QEMU's exit status for the report (`echo $?` after QEMU, or a recording's
    /// .status file).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    status: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// A reason to stop, with the exit code it maps to.
struct Fatal {
    code: u8,
    message: String,
}

impl Fatal {
    /// Exit code 1: the input holds no usable trace, or I/O failed.
    fn input(message: impl ToString) -> Fatal {
        Fatal {
            code: 1,
            message: message.to_string(),
        }
    }

    /// Exit code 2: usage or loader-ELF problems.
    fn setup(message: impl ToString) -> Fatal {
        Fatal {
            code: 2,
            message: message.to_string(),
        }
    }

    /// Exit code 130: Ctrl-C.
    fn interrupted() -> Fatal {
        Fatal {
            code: 130,
            message: "interrupted: the report covers what arrived before Ctrl-C".into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal { code, message }) => {
            if !message.is_empty() {
                let paint = Paint {
                    on: cli.color.enabled_for(&io::stderr()),
                };
                eprintln!("rusty-trace: {}: {message}", paint.red("error"));
            }
            ExitCode::from(code)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Fatal> {
    let elf = match &cli.elf {
        Some(path) => path.clone(),
        None => {
            let here = std::env::current_dir()
                .map_err(|e| Fatal::setup(format!("cannot read the current directory: {e}")))?;
            let path = trace_decoder::loader_elf::find_loader_elf(&here).map_err(Fatal::setup)?;
            eprintln!(
                "rusty-trace: using {} (the newest loader ELF found; --elf chooses another)",
                path.display()
            );
            path
        }
    };
    let table = trace_decoder::loader_elf::load_table(&elf).map_err(Fatal::setup)?;
    decode_one(cli, &Decoder { table, elf })
}

/// The loader ELF's table, and where it came from for messages.
struct Decoder {
    table: TraceTable,
    elf: PathBuf,
}

impl Decoder {
    /// Whether the session found a trace; if not, why, as the error to exit with.
    fn check_found(
        &self,
        status: TraceStatus,
        record: &BootRecord,
        input: &str,
    ) -> Result<(), Fatal> {
        match status {
            TraceStatus::Decoded { .. } => Ok(()),
            TraceStatus::OtherBuild { stream, elf } => Err(Fatal::input(format!(
                "the trace in {input} comes from another loader build: the stream says build {stream:#010x}, {} is build {elf:#010x}; pass the ELF of the loader that produced it with --elf",
                self.elf.display()
            ))),
            TraceStatus::NotFound => Err(Fatal::input(self.no_trace_message(record, input))),
        }
    }

    /// Why no trace was found, with what would help.
    fn no_trace_message(&self, record: &BootRecord, input: &str) -> String {
        let mut message = format!(
            "no boot trace found in {input} ({} bytes of text passed through; decoded with {}, build {:#010x})",
            record.text_bytes,
            self.elf.display(),
            self.table.build_id()
        );
        if record.malformed_frames > 0 {
            let _ = write!(
                message,
                ": none of its {} frames decodes with this ELF, so they probably come from another loader build",
                record.malformed_frames
            );
        } else if record.text_bytes > 0 {
            message.push_str(
                ": the loader was built without tracing (--trace-level off), or this is not rusty-loader's serial output",
            );
        } else {
            message.push_str(": the input is empty");
        }
        message
    }
}

/// One stream, shown live, then its report.
fn decode_one(cli: &Cli, decoder: &Decoder) -> Result<(), Fatal> {
    let input = input::open(cli.input.as_deref()).map_err(Fatal::input)?;
    let live_on_stdout = cli.format == Format::Text;
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
            events: !cli.quiet,
            line: line_style(cli.color, live_terminal),
            warning_prefix: "rusty-trace: ".into(),
            warning_color: cli.color.enabled_for(&io::stderr()),
        },
    );
    // In `qemu | rusty-trace` QEMU gets Ctrl-C too and the input ends anyway; with an
    // input that does not end, this is how the report still gets written.
    stop_on_ctrl_c();
    let mut consumer = LiveConsumer::new(Session::new(&decoder.table), console);
    let end = consumer.consume(input.reader);
    let Consumed {
        status,
        mut record,
        mut console,
    } = consumer.finish(cli.status);
    if input.recorded {
        // Arrival times say how fast a file was read, not when QEMU sent it.
        record.host = HostTimes::default();
    }
    let result = decoder
        .check_found(status, &record, &input.name)
        .and_then(|()| write_reports(&record, cli, &mut console));
    console.flush();
    if console.reader_gone() {
        // The reader of our output went away (`rusty-trace ... | head`): nothing
        // more can be said there, and saying it on stderr would only be noise.
        return Err(Fatal::input(""));
    }
    if let Some(error) = console.take_write_error() {
        return Err(Fatal::input(format!("cannot write the output: {error}")));
    }
    match end {
        InputEnd::Complete | InputEnd::Stopped => result,
        InputEnd::ReadError(error) => Err(Fatal::input(format!(
            "reading {} failed: {error}",
            input.name
        ))),
        InputEnd::Interrupted => Err(Fatal::interrupted()),
    }
}

/// The end of the run: the report and the timeline files.
fn write_reports<O: io::Write, E: io::Write>(
    record: &BootRecord,
    cli: &Cli,
    console: &mut Console<O, E>,
) -> Result<(), Fatal> {
    let files = ReportFiles {
        json: None,
        chrome_trace: cli.chrome_trace.clone(),
        svg: cli.svg.clone(),
    };
    if cli.no_report && !files.any() {
        return Ok(());
    }
    let report = Report::build(record);
    files.write(&report).map_err(Fatal::setup)?;
    if cli.no_report {
        return Ok(());
    }
    let mut text = match cli.format {
        Format::Text => {
            let color = cli.color.enabled_for(&io::stdout());
            // A blank line sets the report apart from the live output above it.
            format!("\n{}", report.render_text(color))
        }
        Format::Json => report.to_json(),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    console.write_stdout(text.as_bytes());
    Ok(())
}
