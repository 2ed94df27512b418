//! `rusty-trace`: reads rusty-loader's serial stream (live from QEMU, or recorded),
//! passes the kernel's text through as it arrives, shows each boot-trace event as one
//! line, and ends with a report; or, with `--baseline` or `--save-profile`, reads one
//! boot per input and profiles their stages. This file is the command line: its
//! options, and which of the library's flows they call
//! ([`trace_decoder::host::show::show_stream`] for one stream,
//! [`trace_decoder::host::profile::profile_streams`] for a profile), with the exit
//! code of each kind of failure.
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
//! With `--baseline` or `--save-profile` only the statistics and the comparison go to
//! stdout.
//!
//! Exit statuses (also in `--help`) are those of `cargo xtask trace`, from one table
//! (`trace_decoder::report::ending`): a replay whose QEMU end is known (a
//! recording's `.status` file, or `--status`) ends with the status the live run
//! gave its boot; without it (a pipe from QEMU) a decoded trace ends with 0. Its
//! own: 2 for a usage or setup error and an input that holds no trace (or another
//! build's, or an ELF file), 3 for a regression, 130 when interrupted.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use trace_decoder::host::color::ColorChoice;
use trace_decoder::host::loader_elf::LoaderElfs;
use trace_decoder::host::profile::profile_streams;
use trace_decoder::host::show::{show_stream, ReportFormat, ShowOptions};
use trace_decoder::host::Failure;
use trace_decoder::report::ending::{help_table, EndingKind, USAGE_STATUS};
use trace_decoder::report::profile::Baseline;
use trace_decoder::report::symbols::AppSymbols;
use trace_decoder::report::terminal::Paint;

const EXAMPLES: &str = "\
Examples:
  # Boot live: the kernel's text and the loader's events as they happen, then the report.
  qemu-system-x86_64 -cpu qemu64,apic,fsgsbase,fxsr,rdrand,rdtscp,xsave,xsaveopt -smp 1 -m 64M \\
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -display none -serial stdio -no-reboot \\
    -kernel target/x86_64/debug/rusty-loader -initrd app.elf | rusty-trace

  # A recorded run, as JSON (the kernel's text goes to stderr); QEMU's exit status
  # is read from boot.status beside it (as `cargo xtask trace --save boot.bin` keeps it).
  qemu-system-x86_64 ... > boot.bin; echo $? > boot.status
  rusty-trace --elf target/x86_64/release/rusty-loader.elf boot.bin --format json

  # Timeline files for chrome://tracing (or Perfetto) and for a browser.
  rusty-trace boot.bin --chrome-trace boot.json --svg boot.svg

  # A kernel that crashed: RIP and the stack's return addresses named from its ELF.
  rusty-trace boot.bin --app target/test-kernels/debug/crashing

  # Only the kernel's text, frames removed.
  rusty-trace --quiet --no-report boot.bin > kernel.txt

  # Per-stage statistics of three recorded boots, kept as a profile; later, new
  # recordings checked against it (exit status 3 when a stage got slower).
  rusty-trace --save-profile profile.json boot1.bin boot2.bin boot3.bin
  rusty-trace --baseline profile.json --max-regression 10% new1.bin new2.bin

Outputs: with --format text, the kernel's text, the event lines and the report go to
stdout; with --format json, stdout carries only the JSON report and the text and event
lines go to stderr. Warnings and errors always go to stderr. Text is written as it
arrives, flushed whenever the input pauses. With --baseline or --save-profile, stdout
carries only the per-stage statistics (min, median, max, spread over the inputs) and
the comparison with the baseline.

Exit status: a replay ends as `cargo xtask trace` ended the boot it recorded, with
the status of the table below: QEMU's end is read from the .status file beside the
recording (--status overrides it), and a boot that did not end in the
application's success adds one line on stderr saying why. Without QEMU's end (a
pipe from QEMU), a decoded trace ends with 0. rusty-trace's own statuses are rows
of the same table: 2 (no usable loader ELF, an input without a trace, another
build's trace or an ELF file given as the stream, unreadable input or unwritable
output; with --baseline or --save-profile also an input whose boot did not hand
over), 3 (--baseline) and 130 (Ctrl-C: the report covers what arrived).";

/// The `--help` text's end: the examples, then the exit statuses.
fn after_help() -> String {
    format!("{EXAMPLES}\n\n{}", help_table())
}

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
    after_help = after_help(),
)]
struct Cli {
    /// The serial stream: a file, or `-` for standard input (the default). Several
    /// only with --baseline or --save-profile, one boot each. A file's QEMU exit
    /// status is read from the file beside it with the extension .status, if any.
    #[arg(value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// The loader ELF with its defmt table. Default: of
    /// target/x86_64/{release,debug}/rusty-loader.elf in this directory or the
    /// nearest parent that has them, the one whose build identity the stream names
    /// (the newest when neither does).
    #[arg(long, value_name = "PATH")]
    elf: Option<PathBuf>,
    /// Colours: `auto` uses them on a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
    /// The end report's format; `json` keeps stdout for the JSON alone.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
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
    /// The application's ELF (the kernel that was booted): a crash's RIP and the
    /// return addresses on its stack are named with its symbol table (function and
    /// offset) and DWARF (file:line). A stripped ELF gives addresses only.
    #[arg(long, value_name = "FILE")]
    app: Option<PathBuf>,
    /// QEMU's exit status (`echo $?` after QEMU), for the report and the exit
    /// status; overrides a recording's .status file.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    status: Option<i32>,
    /// Compare the inputs' per-stage times (one boot each, their medians) with a
    /// profile written by --save-profile (or `cargo xtask trace --save-profile`); exit
    /// status 3 when a stage is slower than --max-regression allows. Shows the
    /// statistics and the comparison instead of the live output and the report.
    #[arg(long, value_name = "PROFILE", conflicts_with_all = PER_BOOT_OUTPUTS)]
    baseline: Option<PathBuf>,
    /// How much slower than the --baseline a stage may be (a stage slower by 20 µs or
    /// less never counts: that is noise).
    #[arg(long, value_name = "PERCENT", default_value = "10%", requires = "baseline",
          value_parser = parse_percent)]
    max_regression: f64,
    /// Write the inputs' per-stage statistics (one boot each) to FILE as a profile,
    /// the baseline for a later --baseline. Shows the statistics instead of the live
    /// output and the report.
    #[arg(long, value_name = "FILE", conflicts_with_all = PER_BOOT_OUTPUTS)]
    save_profile: Option<PathBuf>,
}

/// The options that show or write one boot, which a profile of several does not.
const PER_BOOT_OUTPUTS: [&str; 5] = ["format", "chrome_trace", "svg", "status", "app"];

fn parse_percent(text: &str) -> Result<f64, String> {
    trace_decoder::report::profile::parse_percent(text).map_err(|e| e.to_string())
}

/// The exit code of each kind of failure (the table in `--help`).
fn exit_code(failure: &Failure) -> u8 {
    match failure {
        Failure::Input(_) | Failure::Setup(_) => USAGE_STATUS,
        Failure::Regression(_) => EndingKind::Regression.statuses().first,
        Failure::Interrupted => EndingKind::Interrupted.statuses().first,
        Failure::Ended { status, .. } => *status,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let message = failure.to_string();
            if !message.is_empty() {
                let paint = Paint {
                    on: cli.color.enabled_for(&io::stderr()),
                };
                eprintln!("rusty-trace: {}: {message}", paint.red("error"));
            }
            ExitCode::from(exit_code(&failure))
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let profiling = cli.baseline.is_some() || cli.save_profile.is_some();
    if cli.inputs.len() > 1 && !profiling {
        return Err(Failure::setup(
            "several inputs are read only with --baseline or --save-profile (one boot each); decode one stream at a time",
        ));
    }
    // A bad baseline is refused before any input is read.
    let baseline = cli
        .baseline
        .as_deref()
        .map(Baseline::read)
        .transpose()
        .map_err(|e| Failure::Setup(format!("{e:#}")))?;
    let elfs = LoaderElfs::load(cli.elf.as_deref())?;
    // A bad application ELF is refused before any input is read, like the loader's.
    let app = cli
        .app
        .as_deref()
        .map(AppSymbols::read)
        .transpose()
        .map_err(|e| Failure::Setup(format!("--app: {e}")))?;
    if profiling {
        let baseline = baseline.as_ref().map(|b| (b, cli.max_regression));
        return profile_streams(
            &cli.inputs,
            &elfs,
            cli.color,
            cli.save_profile.as_deref(),
            baseline,
        );
    }
    let options = ShowOptions {
        format: cli.format,
        quiet: cli.quiet,
        no_report: cli.no_report,
        color: cli.color,
        chrome_trace: cli.chrome_trace.clone(),
        svg: cli.svg.clone(),
        status: cli.status,
        app: app.as_ref(),
    };
    show_stream(cli.inputs.first().map(PathBuf::as_path), &elfs, &options)
}
