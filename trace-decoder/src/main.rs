//! `rusty-trace`: reads rusty-loader's serial stream (live from QEMU, or recorded),
//! passes the kernel's text through as it arrives, shows each boot-trace event as one
//! line, and ends with a report. All decoding lives in the library
//! ([`trace_decoder::live::Session`]); this file is the command line: options,
//! finding the loader ELF, reading the input, writing the outputs, exit codes.
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
//!
//! QEMU's status given with `--status` goes into the report, not into the exit code:
//! QEMU's own codes (1 for a kernel failure, the loader's refusal codes) would be
//! indistinguishable from the ones above.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use trace_decoder::build_id::BUILD_ID_SYMBOL;
use trace_decoder::decode::TraceTable;
use trace_decoder::live::{push_event_line, LineStyle, Output, Session, TraceStatus};
use trace_decoder::report::format::{Paint, TERMINAL_WIDTH};
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
enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour what goes to a stream that is (or is not) a terminal.
    fn enabled(self, terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
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
    fn input(message: impl Into<String>) -> Fatal {
        Fatal {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit code 2: usage or loader-ELF problems.
    fn setup(message: impl Into<String>) -> Fatal {
        Fatal {
            code: 2,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal { code, message }) => {
            if !message.is_empty() {
                let color = cli.color.enabled(io::stderr().is_terminal());
                eprintln!(
                    "rusty-trace: {}: {message}",
                    Paint { on: color }.red("error")
                );
            }
            ExitCode::from(code)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Fatal> {
    let elf_path = match &cli.elf {
        Some(path) => path.clone(),
        None => {
            let path = find_loader_elf()?;
            eprintln!(
                "rusty-trace: using {} (the newest loader ELF found; --elf chooses another)",
                path.display()
            );
            path
        }
    };
    let table = load_table(&elf_path)?;
    let input = open_input(cli.input.as_deref())?;
    let input_name = input.name.clone();

    let mut sink = Sink::new(cli);
    let mut session = Session::new(&table);
    let recorded = input.recorded;
    let end = pump(input.reader, &mut session, &mut sink);
    let mut emit = |output: Output| sink.output(output);
    let status = session.status();
    let mut record = session.finish(cli.status, &mut emit);
    if recorded {
        record.host = HostTimes::default();
    }
    sink.end_of_stream();

    let result = match status {
        TraceStatus::Decoded { .. } => write_reports(&record, cli, &mut sink),
        TraceStatus::OtherBuild { stream, elf } => Err(Fatal::input(format!(
            "the trace in {input_name} comes from another loader build: the stream says build {stream:#010x}, {} is build {elf:#010x}; pass the ELF of the loader that produced it with --elf",
            elf_path.display()
        ))),
        TraceStatus::NotFound => Err(Fatal::input(no_trace_message(
            &record,
            &input_name,
            &elf_path,
            table.build_id(),
        ))),
    };
    sink.flush();
    if sink.broken_pipe {
        // The reader of our output went away (`rusty-trace ... | head`): nothing
        // more can be said there, and saying it on stderr would only be noise.
        return Err(Fatal::input(""));
    }
    if let Some(error) = sink.write_error.take() {
        return Err(Fatal::input(format!("cannot write the output: {error}")));
    }
    match end {
        InputEnd::Complete => result,
        InputEnd::ReadError(error) => Err(Fatal::input(format!(
            "reading {input_name} failed: {error}"
        ))),
        InputEnd::Interrupted => Err(Fatal {
            code: 130,
            message: "interrupted: the report covers what arrived before Ctrl-C".into(),
        }),
    }
}

/// Why no trace was found, with what would help.
fn no_trace_message(record: &BootRecord, input: &str, elf: &Path, build: u64) -> String {
    let mut message = format!(
        "no boot trace found in {input} ({} bytes of text passed through; decoded with {}, build {build:#010x})",
        record.text_bytes,
        elf.display()
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

/// How long the input must be silent before events held back for their time are
/// shown without it.
const STALL: Duration = Duration::from_millis(100);
const READ_SIZE: usize = 64 * 1024;

/// What reaches the main loop: input, how it ended, or a wake-up for Ctrl-C.
enum Message {
    Bytes(Vec<u8>),
    End,
    ReadError(io::Error),
    Interrupted,
}

/// Set by the first Ctrl-C.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How the input ended.
enum InputEnd {
    /// At its end (or when the output went away).
    Complete,
    /// A read error.
    ReadError(io::Error),
    /// Ctrl-C: the reader is left behind, the report covers what arrived.
    Interrupted,
}

/// Reads the input to its end, feeding the session. A reader thread lets the main
/// loop notice when the input pauses (to flush, and to let a hung loader's last
/// events show) without polling, and Ctrl-C stop reading (in `qemu | rusty-trace`
/// QEMU gets it too and the input ends anyway; with an input that does not end,
/// this is how the report still gets written).
fn pump(input: Box<dyn Read + Send>, session: &mut Session, sink: &mut Sink) -> InputEnd {
    let (sender, receiver) = mpsc::sync_channel::<Message>(16);
    let interrupt = sender.clone();
    // Without a handler (one is already set, e.g. in tests) Ctrl-C keeps its
    // default effect: the process ends at once.
    let _ = ctrlc::set_handler(move || {
        if INTERRUPTED.swap(true, Ordering::Relaxed) {
            // A second Ctrl-C: stop now.
            std::process::exit(130);
        }
        // Wakes the loop if it waits; if the channel is full, the loop is busy and
        // sees the flag after the message at hand.
        let _ = interrupt.try_send(Message::Interrupted);
    });
    let reader = std::thread::spawn(move || {
        let mut input = input;
        loop {
            let mut buffer = vec![0; READ_SIZE];
            let message = match input.read(&mut buffer) {
                Ok(0) => {
                    let _ = sender.send(Message::End);
                    break;
                }
                Ok(n) => {
                    buffer.truncate(n);
                    Message::Bytes(buffer)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Message::ReadError(e),
            };
            let failed = matches!(message, Message::ReadError(_));
            if sender.send(message).is_err() || failed {
                break;
            }
        }
    });
    let mut end = InputEnd::Complete;
    loop {
        let message = match receiver.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                // Nothing more is ready: whatever arrived so far is shown now.
                sink.flush();
                match receiver.recv_timeout(STALL) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {
                        session.idle(&mut |output| sink.output(output));
                        sink.flush();
                        match receiver.recv() {
                            Ok(message) => message,
                            Err(_) => break,
                        }
                    }
                }
            }
        };
        match message {
            Message::Bytes(bytes) => session.feed(&bytes, &mut |output| sink.output(output)),
            Message::End => break,
            Message::ReadError(error) => {
                end = InputEnd::ReadError(error);
                break;
            }
            Message::Interrupted => {}
        }
        if INTERRUPTED.load(Ordering::Relaxed) {
            // The reader may be blocked in a read that never returns: leave it.
            return InputEnd::Interrupted;
        }
        if sink.broken_pipe {
            break;
        }
    }
    if sink.broken_pipe {
        // Stop early; the reader thread ends when its next send fails.
        return end;
    }
    // The reader has sent its last message (the Ctrl-C handler keeps a sender, so
    // the end is a message, not a disconnection).
    let _ = reader.join();
    end
}

/// The session's `Output` turned into bytes on stdout and stderr.
struct Sink {
    stdout: BufWriter<io::Stdout>,
    stderr: BufWriter<io::Stderr>,
    /// Text and event lines go to stdout (text format) or stderr (JSON format).
    live_on_stdout: bool,
    show_events: bool,
    live_style: LineStyle,
    warn_color: bool,
    /// Whether the live stream is at the start of a line (so an event line or the
    /// report does not start in the middle of the kernel's text).
    at_line_start: bool,
    /// The last of the two streams written, to flush it before writing the other:
    /// otherwise a terminal would show them out of order.
    last_on_stdout: bool,
    /// Reused for each event line, so that formatting allocates nothing per event.
    line: String,
    write_error: Option<io::Error>,
    broken_pipe: bool,
}

impl Sink {
    fn new(cli: &Cli) -> Sink {
        let live_on_stdout = cli.format == Format::Text;
        let live_terminal = if live_on_stdout {
            io::stdout().is_terminal()
        } else {
            io::stderr().is_terminal()
        };
        Sink {
            stdout: BufWriter::with_capacity(64 * 1024, io::stdout()),
            stderr: BufWriter::new(io::stderr()),
            live_on_stdout,
            show_events: !cli.quiet,
            live_style: LineStyle {
                color: cli.color.enabled(live_terminal),
                wrap_at: live_terminal.then_some(TERMINAL_WIDTH),
            },
            warn_color: cli.color.enabled(io::stderr().is_terminal()),
            at_line_start: true,
            last_on_stdout: true,
            line: String::new(),
            write_error: None,
            broken_pipe: false,
        }
    }

    fn output(&mut self, output: Output) {
        match output {
            Output::Text(text) => {
                if let Some(&last) = text.last() {
                    self.at_line_start = last == b'\n';
                }
                self.write(self.live_on_stdout, text);
            }
            Output::Event(event, micros) if self.show_events => {
                let mut line = std::mem::take(&mut self.line);
                line.clear();
                if !self.at_line_start {
                    line.push('\n');
                }
                push_event_line(&mut line, event, micros, self.live_style);
                line.push('\n');
                self.write(self.live_on_stdout, line.as_bytes());
                self.at_line_start = true;
                self.line = line;
            }
            Output::Event(..) => {}
            Output::Warning(message) => {
                let line = format!(
                    "rusty-trace: {}: {message}\n",
                    Paint {
                        on: self.warn_color
                    }
                    .yellow_bold("warning")
                );
                self.write(false, line.as_bytes());
            }
        }
    }

    /// Called once the input has ended: the live output is finished, so a report
    /// after it starts on a line of its own.
    fn end_of_stream(&mut self) {
        if !self.at_line_start {
            self.write(self.live_on_stdout, b"\n");
            self.at_line_start = true;
        }
    }

    fn write(&mut self, to_stdout: bool, bytes: &[u8]) {
        if self.broken_pipe {
            return;
        }
        if to_stdout != self.last_on_stdout {
            self.flush();
            self.last_on_stdout = to_stdout;
        }
        let result = if to_stdout {
            self.stdout.write_all(bytes)
        } else {
            self.stderr.write_all(bytes)
        };
        self.note(result);
    }

    fn flush(&mut self) {
        if self.broken_pipe {
            return;
        }
        let result = self.stdout.flush().and_then(|()| self.stderr.flush());
        self.note(result);
    }

    fn note(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.broken_pipe = true,
            Err(e) => {
                self.write_error.get_or_insert(e);
            }
        }
    }
}

/// The end of the run: the report and the timeline files.
fn write_reports(record: &BootRecord, cli: &Cli, sink: &mut Sink) -> Result<(), Fatal> {
    if cli.no_report && cli.chrome_trace.is_none() && cli.svg.is_none() {
        return Ok(());
    }
    let report = Report::build(record);
    let write_file = |path: &Path, what: &str, contents: String| {
        std::fs::write(path, contents).map_err(|e| {
            Fatal::setup(format!(
                "cannot write the {what} to {}: {e}",
                path.display()
            ))
        })
    };
    if let Some(path) = &cli.chrome_trace {
        write_file(path, "Chrome trace", report.to_chrome_trace())?;
    }
    if let Some(path) = &cli.svg {
        write_file(path, "SVG timeline", report.to_svg())?;
    }
    if cli.no_report {
        return Ok(());
    }
    let mut text = match cli.format {
        Format::Text => {
            let color = cli.color.enabled(io::stdout().is_terminal());
            // A blank line sets the report apart from the live output above it.
            format!("\n{}", report.render_text(color))
        }
        Format::Json => report.to_json(),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    sink.write(true, text.as_bytes());
    Ok(())
}

/// The input stream.
struct Input {
    reader: Box<dyn Read + Send>,
    /// How messages name it.
    name: String,
    /// A regular file (also as redirected standard input): a recording, whose
    /// arrival times say how fast it was read, not when QEMU sent it.
    recorded: bool,
}

/// Opens the input; `None` and `-` are standard input.
fn open_input(path: Option<&Path>) -> Result<Input, Fatal> {
    match path {
        None => Ok(stdin_input()),
        Some(p) if p == Path::new("-") => Ok(stdin_input()),
        Some(p) => {
            let file = File::open(p)
                .map_err(|e| Fatal::input(format!("cannot read {}: {e}", p.display())))?;
            let metadata = file
                .metadata()
                .map_err(|e| Fatal::input(format!("cannot read {}: {e}", p.display())))?;
            if metadata.is_dir() {
                return Err(Fatal::input(format!(
                    "cannot read {}: it is a directory",
                    p.display()
                )));
            }
            Ok(Input {
                reader: Box::new(file),
                name: p.display().to_string(),
                recorded: metadata.is_file(),
            })
        }
    }
}

fn stdin_input() -> Input {
    let stdin = io::stdin();
    // A duplicate of the descriptor tells what standard input is without unsafe code.
    let recorded = stdin
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|file| file.metadata())
        .is_ok_and(|m| m.is_file());
    Input {
        reader: Box::new(stdin),
        name: "standard input".to_string(),
        recorded,
    }
}

/// Finds `target/x86_64/{release,debug}/rusty-loader.elf` in the current directory or
/// the nearest parent that has one, and picks the newest of the two.
fn find_loader_elf() -> Result<PathBuf, Fatal> {
    let here = std::env::current_dir()
        .map_err(|e| Fatal::setup(format!("cannot read the current directory: {e}")))?;
    for dir in here.ancestors() {
        let newest = ["release", "debug"]
            .iter()
            .map(|profile| {
                dir.join("target/x86_64")
                    .join(profile)
                    .join("rusty-loader.elf")
            })
            .filter_map(|path| {
                let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
                Some((modified, path))
            })
            .max_by_key(|(modified, _)| *modified);
        if let Some((_, path)) = newest {
            // Shown relative to here when it is below, which reads better.
            return Ok(path
                .strip_prefix(&here)
                .map(Path::to_path_buf)
                .unwrap_or(path));
        }
    }
    Err(Fatal::setup(format!(
        "no loader ELF given and none found: no target/x86_64/{{release,debug}}/rusty-loader.elf in {} or its parents; build one with `cargo xtask build`, or pass --elf <path>",
        here.display()
    )))
}

/// Reads the loader ELF's defmt table, explaining every way an ELF can be unusable.
fn load_table(path: &Path) -> Result<TraceTable, Fatal> {
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| Fatal::setup(format!("cannot read the loader ELF {shown}: {e}")))?;
    if !bytes.starts_with(b"\x7fELF") {
        return Err(Fatal::setup(format!(
            "{shown} is not an ELF file: pass the loader ELF, target/x86_64/<profile>/rusty-loader.elf"
        )));
    }
    let elf = goblin::elf::Elf::parse(&bytes)
        .map_err(|e| Fatal::setup(format!("{shown} is not a readable ELF file: {e}")))?;
    let defmt = elf
        .section_headers
        .iter()
        .position(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".defmt"));
    let has_symbol = |name: &str| {
        elf.syms
            .iter()
            .any(|s| elf.strtab.get_at(s.st_name) == Some(name))
    };
    let defmt_symbols = defmt.map_or(0, |index| {
        elf.syms.iter().filter(|s| s.st_shndx == index).count()
    });
    if defmt.is_some() && defmt_symbols == 0 {
        return Err(Fatal::setup(format!(
            "{shown} is stripped: its defmt table (.defmt) is there but the symbols that name its entries are gone; use the unstripped target/x86_64/<profile>/rusty-loader.elf that `cargo xtask build` writes"
        )));
    }
    if !has_symbol(BUILD_ID_SYMBOL) {
        return Err(Fatal::setup(if elf.syms.is_empty() {
            format!("{shown} has no symbols and no defmt table: not an unstripped rusty-loader ELF")
        } else {
            format!("{shown} is not a rusty-loader ELF (it has no {BUILD_ID_SYMBOL} symbol)")
        }));
    }
    if defmt.is_none() {
        return Err(Fatal::setup(format!(
            "{shown} is a loader built without tracing (--trace-level off): it sends no trace to decode"
        )));
    }
    TraceTable::from_elf(&bytes)
        .map_err(|e| Fatal::setup(format!("{shown}: cannot read its defmt table: {e:#}")))
}
