//! `rusty-trace`: reads rusty-loader's serial stream (live from QEMU, or recorded),
//! passes the kernel's text through as it arrives, shows each boot-trace event as one
//! line, and ends with a report; or, with `--baseline` or `--save-profile`, reads one
//! boot per input and profiles their stages. Everything else lives in the library:
//! decoding ([`trace_decoder::live::Session`]), reading and showing a live stream
//! ([`trace_decoder::consumer`]), the loader ELF, output files, profiles. This file
//! is the command line: options, choosing the input, what goes where, exit codes.
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
//! stdout. Exit codes (also in `--help`):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | a trace was decoded: the boot handed over, was refused, or stopped early |
//! | 1 | no trace in the input, a trace from another loader build, or the input (or an output) could not be read or written |
//! | 2 | usage error, no usable loader ELF (missing, not an ELF, stripped, not a rusty-loader, built without tracing), or no usable baseline |
//! | 3 | a stage is slower than the `--baseline` allows |
//! | 130 | interrupted (Ctrl-C) |
//!
//! QEMU's status given with `--status` goes into the report, not into the exit code:
//! QEMU's own codes (1 for a kernel failure, the loader's refusal codes) would be
//! indistinguishable from the ones above.

use std::fmt::Write as _;
use std::io::{self, BufWriter, IsTerminal};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use trace_decoder::color::ColorChoice;
use trace_decoder::consumer::{line_style, Console, ConsoleStyle, Consumed, LiveConsumer};
use trace_decoder::decode::TraceTable;
use trace_decoder::input::{self, Input};
use trace_decoder::live::{Session, TraceStatus};
use trace_decoder::loader_elf::BuildMatch;
use trace_decoder::outputs::{write_file, ReportFiles};
use trace_decoder::profile::{Baseline, Comparison, Profile, StageTimes};
use trace_decoder::pump::{read_live, stop_on_ctrl_c, Arrival, InputEnd};
use trace_decoder::report::format::{escape_text, Paint};
use trace_decoder::report::outcome::OutcomeKind;
use trace_decoder::report::{BootRecord, HostTimes, Report};
use trace_decoder::symbols::AppSymbols;

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

Exit status:
  0  a trace was decoded (the boot handed over, was refused, or stopped early)
  1  no trace in the input, a trace from another loader build, or unreadable input
     (or unwritable output); with --baseline or --save-profile also an input whose
     boot did not hand over to the kernel
  2  usage error, no usable loader ELF (missing, not an ELF, stripped, not a
     rusty-loader, built without tracing), or no usable baseline
  3  a stage is slower than the --baseline by more than --max-regression
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
    /// The application's ELF (the kernel that was booted): a crash's RIP and the
    /// return addresses on its stack are named with its symbol table (function and
    /// offset) and DWARF (file:line). A stripped ELF gives addresses only.
    #[arg(long, value_name = "FILE")]
    app: Option<PathBuf>,
    /// QEMU's exit status for the report (`echo $?` after QEMU); overrides a
    /// recording's .status file.
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
    trace_decoder::profile::parse_percent(text).map_err(|e| e.to_string())
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

    /// Exit code 2: usage, loader-ELF or baseline problems.
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
    let profiling = cli.baseline.is_some() || cli.save_profile.is_some();
    if cli.inputs.len() > 1 && !profiling {
        return Err(Fatal::setup(
            "several inputs are read only with --baseline or --save-profile (one boot each); decode one stream at a time",
        ));
    }
    // A bad baseline is refused before any input is read.
    let baseline = cli
        .baseline
        .as_deref()
        .map(Baseline::read)
        .transpose()
        .map_err(|e| Fatal::setup(format!("{e:#}")))?;
    let decoder = Decoder::load(cli.elf.as_deref())?;
    // A bad application ELF is refused before any input is read, like the loader's.
    let app = cli
        .app
        .as_deref()
        .map(AppSymbols::read)
        .transpose()
        .map_err(|e| Fatal::setup(format!("--app: {e}")))?;
    if profiling {
        profile(cli, &decoder, baseline.as_ref())
    } else {
        decode_one(cli, &decoder, app.as_ref())
    }
}

/// The loader ELFs a stream may need, with their tables: the one given with
/// `--elf`, or those found (newest first), among which the stream names its own.
struct Decoder {
    paths: Vec<PathBuf>,
    tables: Vec<TraceTable>,
    /// `--elf` chose it: nothing to choose or announce.
    given: bool,
}

/// What [`Decoder::consume`] leaves: the table used, how the input ended, and the
/// consumer's results.
struct Read<O: io::Write, E: io::Write> {
    chosen: usize,
    end: InputEnd,
    consumed: Consumed<O, E>,
}

impl Decoder {
    /// The given ELF's table, or the tables of the ELFs found. Found ELFs that are
    /// unusable are skipped while one is usable; otherwise the newest one's problem
    /// is the error.
    fn load(given: Option<&Path>) -> Result<Decoder, Fatal> {
        if let Some(path) = given {
            let table = trace_decoder::loader_elf::load_table(path).map_err(Fatal::setup)?;
            return Ok(Decoder {
                paths: vec![path.to_path_buf()],
                tables: vec![table],
                given: true,
            });
        }
        let here = std::env::current_dir()
            .map_err(|e| Fatal::setup(format!("cannot read the current directory: {e}")))?;
        let found = trace_decoder::loader_elf::find_loader_elfs(&here).map_err(Fatal::setup)?;
        let mut decoder = Decoder {
            paths: Vec::new(),
            tables: Vec::new(),
            given: false,
        };
        let mut first_error = None;
        for path in found {
            match trace_decoder::loader_elf::load_table(&path) {
                Ok(table) => {
                    decoder.paths.push(path);
                    decoder.tables.push(table);
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) if decoder.tables.is_empty() => Err(Fatal::setup(error)),
            _ => Ok(decoder),
        }
    }

    /// Reads `reader` live into a consumer showing on `console`. With several ELFs
    /// the stream's first bytes are held until its first frame names its build, and
    /// the ELF of that build decodes it (the newest when none matches).
    fn consume<O: io::Write, E: io::Write>(
        &self,
        reader: impl io::Read + Send + 'static,
        console: Console<O, E>,
        exit_status: Option<i32>,
    ) -> Read<O, E> {
        // Host times count from the start of reading, also for held bytes.
        let start = Instant::now();
        let mut matcher = BuildMatch::new(&self.tables);
        let mut held = Vec::new();
        let mut console = Some(console);
        let mut chosen = 0;
        let mut start_consumer = |index: usize, matched: bool, held: &mut Vec<u8>| {
            chosen = index;
            self.announce(index, matched);
            let console = console.take().expect("the consumer starts once");
            let mut started =
                LiveConsumer::new(Session::with_start(&self.tables[index], start), console);
            let flow = started.take(Arrival::Bytes(held));
            *held = Vec::new();
            (started, flow)
        };
        let mut consumer = None;
        let end = read_live(reader, |arrival| {
            if let Some(consumer) = consumer.as_mut() {
                return LiveConsumer::take(consumer, arrival);
            }
            let decided = match arrival {
                Arrival::Bytes(bytes) => {
                    held.extend_from_slice(bytes);
                    if self.tables.len() == 1 {
                        Some(Some(0))
                    } else {
                        matcher.feed(bytes)
                    }
                }
                // Text is not held back from a live reader: a stream that pauses
                // after text, before its first frame, is decoded with the newest
                // ELF. Before anything arrived (the firmware is still busy) there is
                // nothing to show, and the choice waits.
                Arrival::Stalled if !held.is_empty() => Some(None),
                Arrival::Stalled => None,
                Arrival::CaughtUp => None,
            };
            let Some(choice) = decided else {
                return ControlFlow::Continue(());
            };
            let stalled = matches!(arrival, Arrival::Stalled);
            let (mut started, flow) =
                start_consumer(choice.unwrap_or(0), choice.is_some(), &mut held);
            if stalled {
                let _ = started.take(Arrival::Stalled);
            }
            consumer = Some(started);
            flow
        });
        let consumer = match consumer {
            Some(consumer) => consumer,
            None => start_consumer(0, false, &mut held).0,
        };
        Read {
            chosen,
            end,
            consumed: consumer.finish(exit_status),
        }
    }

    /// Says which ELF was found and used, unless `--elf` gave it.
    fn announce(&self, index: usize, matched: bool) {
        if self.given {
            return;
        }
        let why = if matched && self.tables.len() > 1 {
            format!(
                "its build {:#010x} is the stream's",
                self.tables[index].build_id()
            )
        } else {
            "the newest loader ELF found".to_string()
        };
        eprintln!(
            "rusty-trace: using {} ({why}; --elf chooses another)",
            self.paths[index].display()
        );
    }

    /// Whether the session found a trace; if not, why, as the error to exit with.
    fn check_found(
        &self,
        chosen: usize,
        status: TraceStatus,
        record: &BootRecord,
        input: &str,
    ) -> Result<(), Fatal> {
        match status {
            TraceStatus::Decoded { .. } => Ok(()),
            TraceStatus::OtherBuild { stream, elf } => Err(Fatal::input(format!(
                "the trace in {input} comes from another loader build: the stream says build {stream:#010x}, {} is build {elf:#010x}; pass the ELF of the loader that produced it with --elf",
                self.paths[chosen].display()
            ))),
            TraceStatus::NotFound => Err(Fatal::input(self.no_trace_message(chosen, record, input))),
        }
    }

    /// Why no trace was found, with what would help.
    fn no_trace_message(&self, chosen: usize, record: &BootRecord, input: &str) -> String {
        let mut message = format!(
            "no boot trace found in {input} ({} bytes of text passed through; decoded with {}, build {:#010x})",
            record.text_bytes,
            self.paths[chosen].display(),
            self.tables[chosen].build_id()
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

/// QEMU's exit status for the report: `--status`, or for a recording the file
/// beside it with the extension `.status` (what `cargo xtask trace --save` and
/// `cargo xtask record` write), announced on stderr.
fn exit_status(cli: &Cli) -> Result<Option<i32>, Fatal> {
    if cli.status.is_some() {
        return Ok(cli.status);
    }
    let Some(path) = cli.inputs.first().filter(|p| *p != Path::new("-")) else {
        return Ok(None);
    };
    let beside = path.with_extension("status");
    if beside == *path || !beside.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&beside)
        .map_err(|e| Fatal::input(format!("cannot read {}: {e}", beside.display())))?;
    match text.trim().parse() {
        Ok(status) => {
            eprintln!(
                "rusty-trace: QEMU status {status} from {} (--status overrides it)",
                beside.display()
            );
            Ok(Some(status))
        }
        Err(_) => Err(Fatal::input(format!(
            "{} does not hold a QEMU exit status (a number): {}",
            beside.display(),
            escape_text(text.trim())
        ))),
    }
}

/// One stream, shown live, then its report.
fn decode_one(cli: &Cli, decoder: &Decoder, app: Option<&AppSymbols>) -> Result<(), Fatal> {
    let exit_status = exit_status(cli)?;
    let input = input::open(cli.inputs.first().map(PathBuf::as_path)).map_err(Fatal::input)?;
    if input.terminal {
        eprintln!(
            "rusty-trace: reading the serial stream from standard input, a terminal: pipe QEMU's output in or name a file (Ctrl-D ends the input)"
        );
    }
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
    let Read {
        chosen,
        end,
        consumed,
    } = decoder.consume(input.reader, console, exit_status);
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
    let result = decoder
        .check_found(chosen, status, &record, &input.name)
        .and_then(|()| write_reports(&record, cli, app, &mut console));
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
    app: Option<&AppSymbols>,
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
    let report = Report::build_with_app(record, app);
    for path in files.write(&report).map_err(Fatal::setup)? {
        console.flush();
        eprintln!("rusty-trace: wrote {}", path.display());
    }
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

/// `--baseline` and `--save-profile`: each input one boot, decoded without showing
/// it; their per-stage statistics, kept and compared.
fn profile(cli: &Cli, decoder: &Decoder, baseline: Option<&Baseline>) -> Result<(), Fatal> {
    let paths: Vec<Option<&Path>> = if cli.inputs.is_empty() {
        vec![None]
    } else {
        cli.inputs.iter().map(|p| Some(p.as_path())).collect()
    };
    let mut boots = Vec::new();
    for path in paths {
        let input = input::open(path).map_err(Fatal::input)?;
        boots.push(boot_times(cli, decoder, input)?);
    }
    let profile = Profile::from_boots(&boots).map_err(Fatal::input)?;
    let mut text = profile.render_table();
    if let Some(path) = &cli.save_profile {
        write_file(path, "the profile", profile.to_json()).map_err(Fatal::setup)?;
        eprintln!("rusty-trace: wrote {}", path.display());
    }
    let mut verdict = Ok(());
    if let Some(baseline) = baseline {
        let comparison = Comparison::new(&profile, baseline, cli.max_regression)
            .map_err(|e| Fatal::setup(format!("{e:#}")))?;
        text.push('\n');
        text.push_str(&comparison.render());
        if comparison.regressions() > 0 {
            verdict = Err(Fatal {
                code: 3,
                message: comparison.verdict(),
            });
        } else {
            text.push_str(&comparison.verdict());
            text.push('\n');
        }
    }
    let mut stdout = io::stdout().lock();
    match io::Write::write_all(&mut stdout, text.as_bytes())
        .and_then(|()| io::Write::flush(&mut stdout))
    {
        Ok(()) => verdict,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Fatal::input("")),
        Err(e) => Err(Fatal::input(format!("cannot write the output: {e}"))),
    }
}

/// One input's stage times: its boot must have handed over to the kernel, or its
/// stages would not compare with a whole boot's.
fn boot_times(cli: &Cli, decoder: &Decoder, input: Input) -> Result<StageTimes, Fatal> {
    // Nothing of the stream is shown but its warnings, each naming the input.
    let console = Console::new(
        io::sink(),
        io::stderr(),
        ConsoleStyle {
            live_on_stdout: true,
            events: false,
            line: Default::default(),
            warning_prefix: format!("rusty-trace: {}: ", input.name),
            warning_color: cli.color.enabled_for(&io::stderr()),
        },
    );
    let Read {
        chosen,
        end,
        consumed: Consumed { status, record, .. },
    } = decoder.consume(input.reader, console, None);
    if let InputEnd::ReadError(error) = end {
        return Err(Fatal::input(format!(
            "reading {} failed: {error}",
            input.name
        )));
    }
    decoder.check_found(chosen, status, &record, &input.name)?;
    let report = Report::build(&record);
    if report.outcome.kind != OutcomeKind::HandedOver {
        return Err(Fatal::input(format!(
            "{}: the boot did not hand over to the kernel, so its stage times do not compare with a whole boot's: {}",
            input.name, report.outcome.message
        )));
    }
    Ok(StageTimes::of(&report))
}
