//! The live consumer both command lines use: what [`super::pump::read_live`] delivers
//! goes through a [`Session`], and what the session produces is shown as it comes:
//! the kernel's text passed through unchanged, each event as one line
//! ([`push_event_line`]), warnings on standard error.
//!
//! [`Console`] is the showing half. It keeps track of whether the live output is at
//! the start of a line (so that an event line or the report never starts in the
//! middle of the kernel's text), flushes one stream before writing to the other (so
//! that a terminal shows them in order), and remembers a write error or a reader that
//! went away instead of failing on them mid-stream.

use std::io::{self, Write};
use std::ops::ControlFlow;

use super::color::ColorChoice;
use super::event_line::{push_event_line, LineStyle};
use super::pump::{read_live, Arrival, InputEnd};
use crate::decode::{BootRecord, Output, Session, TraceStatus};
use crate::report::terminal::{Paint, TERMINAL_WIDTH};

/// How event lines look on a stream that is (or is not) a terminal: coloured as
/// `color` says, and long lists wrapped to the terminal's width only on a terminal.
pub fn line_style(color: ColorChoice, terminal: bool) -> LineStyle {
    LineStyle {
        color: color.enabled(terminal),
        wrap_at: terminal.then_some(TERMINAL_WIDTH),
    }
}

/// What a [`Console`] shows and where.
#[derive(Clone, Debug)]
pub struct ConsoleStyle {
    /// The kernel's text and the event lines go to standard output (otherwise to
    /// standard error, keeping standard output for a JSON report).
    pub live_on_stdout: bool,
    /// Whether event lines are shown at all (the kernel's text always is).
    pub events: bool,
    /// How event lines look.
    pub line: LineStyle,
    /// What starts a warning line before `warning: `, e.g. `rusty-trace: `.
    pub warning_prefix: String,
    /// Whether the word `warning` is coloured.
    pub warning_color: bool,
}

/// The session's [`Output`] turned into bytes on two streams, standard output and
/// standard error (or whatever stands in for them).
pub struct Console<O: Write, E: Write> {
    stdout: O,
    stderr: E,
    style: ConsoleStyle,
    /// Whether the live stream is at the start of a line.
    at_line_start: bool,
    /// The stream written last, to flush it before writing to the other.
    last_on_stdout: bool,
    /// Reused for each event line, so that formatting allocates nothing per event.
    line: String,
    write_error: Option<io::Error>,
    reader_gone: bool,
}

impl<O: Write, E: Write> Console<O, E> {
    pub fn new(stdout: O, stderr: E, style: ConsoleStyle) -> Self {
        Console {
            stdout,
            stderr,
            style,
            at_line_start: true,
            last_on_stdout: true,
            line: String::new(),
            write_error: None,
            reader_gone: false,
        }
    }

    /// Shows one output of the session.
    pub fn show(&mut self, output: Output) {
        match output {
            Output::Text(text) => {
                if let Some(&last) = text.last() {
                    self.at_line_start = last == b'\n';
                }
                self.write(self.style.live_on_stdout, text);
            }
            Output::Event(event, micros) if self.style.events => {
                let mut line = std::mem::take(&mut self.line);
                line.clear();
                if !self.at_line_start {
                    line.push('\n');
                }
                push_event_line(&mut line, event, micros, self.style.line);
                line.push('\n');
                self.write(self.style.live_on_stdout, line.as_bytes());
                self.at_line_start = true;
                self.line = line;
            }
            Output::Event(..) => {}
            Output::Warning(message) => {
                let paint = Paint {
                    on: self.style.warning_color,
                };
                let line = format!(
                    "{}{}: {message}\n",
                    self.style.warning_prefix,
                    paint.yellow_bold("warning")
                );
                self.write(false, line.as_bytes());
            }
        }
    }

    /// Ends the live output on a line of its own, so that what follows (the report)
    /// starts at the beginning of a line.
    pub fn end_of_stream(&mut self) {
        if !self.at_line_start {
            self.write(self.style.live_on_stdout, b"\n");
            self.at_line_start = true;
        }
    }

    /// Writes to standard output after everything shown so far (the report).
    pub fn write_stdout(&mut self, bytes: &[u8]) {
        self.write(true, bytes);
    }

    /// Makes everything written so far visible.
    pub fn flush(&mut self) {
        if self.reader_gone {
            return;
        }
        let result = self.stdout.flush().and_then(|()| self.stderr.flush());
        self.note(result);
    }

    /// Whether the reader of an output went away (`rusty-trace ... | head`): nothing
    /// more can be shown there.
    pub fn reader_gone(&self) -> bool {
        self.reader_gone
    }

    /// The first write error other than a reader that went away, if any.
    pub fn take_write_error(&mut self) -> Option<io::Error> {
        self.write_error.take()
    }

    fn write(&mut self, to_stdout: bool, bytes: &[u8]) {
        if self.reader_gone {
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

    fn note(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.reader_gone = true,
            Err(e) => {
                self.write_error.get_or_insert(e);
            }
        }
    }
}

/// A [`Session`] fed as bytes arrive, its output shown on a [`Console`].
pub struct LiveConsumer<'t, O: Write, E: Write> {
    session: Session<'t>,
    console: Console<O, E>,
}

/// What a [`LiveConsumer`] leaves at the end.
pub struct Consumed<O: Write, E: Write> {
    /// The session's status before the end of the stream (what was found while it
    /// was read).
    pub status: TraceStatus,
    pub record: BootRecord,
    /// For the report after the live output.
    pub console: Console<O, E>,
}

impl<'t, O: Write, E: Write> LiveConsumer<'t, O, E> {
    pub fn new(session: Session<'t>, console: Console<O, E>) -> Self {
        LiveConsumer { session, console }
    }

    /// Takes one arrival: bytes are decoded and shown, a source that has caught up
    /// gets its output flushed, a stalled one its held-back events shown. Breaks
    /// when nobody reads the output any more.
    pub fn take(&mut self, arrival: Arrival) -> ControlFlow<()> {
        let console = &mut self.console;
        match arrival {
            Arrival::Bytes(bytes) => self.session.feed(bytes, &mut |o| console.show(o)),
            Arrival::CaughtUp => console.flush(),
            Arrival::Stalled => {
                self.session.idle(&mut |o| console.show(o));
                console.flush();
            }
        }
        if console.reader_gone() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Reads `source` to its end (or Ctrl-C, or until nobody reads the output),
    /// taking everything that arrives.
    pub fn consume(&mut self, source: impl io::Read + Send + 'static) -> InputEnd {
        read_live(source, |arrival| self.take(arrival))
    }

    /// Ends the stream (QEMU exited with `exit_status`, if known): the session's last
    /// output is shown and the live output ends on a line of its own.
    pub fn finish(self, exit_status: Option<i32>) -> Consumed<O, E> {
        let LiveConsumer {
            session,
            mut console,
        } = self;
        let status = session.status();
        let record = session.finish(exit_status, &mut |o| console.show(o));
        console.end_of_stream();
        Consumed {
            status,
            record,
            console,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(events: bool) -> ConsoleStyle {
        ConsoleStyle {
            live_on_stdout: true,
            events,
            line: LineStyle::default(),
            warning_prefix: "tool: ".into(),
            warning_color: false,
        }
    }

    #[test]
    fn event_lines_start_on_a_line_of_their_own() {
        let mut console = Console::new(Vec::new(), Vec::new(), style(true));
        let event = crate::decode::fixtures::event(10, "PagingEnabled");
        console.show(Output::Text(b"half a line"));
        console.show(Output::Event(&event, Some(1.0)));
        console.show(Output::Text(b"more\n"));
        console.show(Output::Event(&event, None));
        console.show(Output::Text(b"tail"));
        console.end_of_stream();
        assert_eq!(
            String::from_utf8(console.stdout).unwrap(),
            "half a line\n[    0.001 ms] PagingEnabled\nmore\n[       10 ticks] PagingEnabled\ntail\n"
        );
        assert!(console.stderr.is_empty());
    }

    #[test]
    fn quiet_shows_text_and_warnings_only() {
        let mut console = Console::new(Vec::new(), Vec::new(), style(false));
        let event = crate::decode::fixtures::event(10, "PagingEnabled");
        console.show(Output::Text(b"text\n"));
        console.show(Output::Event(&event, None));
        console.show(Output::Warning("the stream ends early".into()));
        assert_eq!(console.stdout, b"text\n");
        assert_eq!(console.stderr, b"tool: warning: the stream ends early\n");
    }

    #[test]
    fn live_output_can_go_to_stderr() {
        let mut console = Console::new(
            Vec::new(),
            Vec::new(),
            ConsoleStyle {
                live_on_stdout: false,
                ..style(true)
            },
        );
        console.show(Output::Text(b"kernel"));
        console.end_of_stream();
        console.write_stdout(b"{}\n");
        assert_eq!(console.stderr, b"kernel\n");
        assert_eq!(console.stdout, b"{}\n");
    }

    /// A stream whose reader has gone (a closed pipe), or that fails otherwise.
    struct Failing(io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_reader_that_went_away_stops_the_output_and_other_errors_are_kept() {
        let mut gone = Console::new(Failing(io::ErrorKind::BrokenPipe), Vec::new(), style(true));
        gone.show(Output::Text(b"text"));
        assert!(gone.reader_gone());
        assert!(gone.take_write_error().is_none());

        let mut full = Console::new(Failing(io::ErrorKind::StorageFull), Vec::new(), style(true));
        full.show(Output::Text(b"text"));
        assert!(!full.reader_gone());
        assert_eq!(
            full.take_write_error().map(|e| e.kind()),
            Some(io::ErrorKind::StorageFull)
        );
    }

    fn recorded(name: &str) -> String {
        format!("{}/tests/recordings/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn a_recording_is_decoded_and_shown_as_it_arrives() {
        let elf = std::fs::read(recorded("rusty-loader.elf")).unwrap();
        let table = crate::decode::TraceTable::from_elf(&elf).unwrap();
        let stream = std::fs::read(recorded("hello-dyn-pc.bin")).unwrap();
        let console = Console::new(Vec::new(), Vec::new(), style(true));
        let mut consumer = LiveConsumer::new(Session::new(&table), console);
        // The first frames: their events wait for the TSC frequency, until the input
        // stalls; then they are shown in ticks.
        let _ = consumer.take(Arrival::Bytes(&stream[..60]));
        let _ = consumer.take(Arrival::CaughtUp);
        assert!(consumer.console.stdout.is_empty());
        let _ = consumer.take(Arrival::Stalled);
        let shown = String::from_utf8(consumer.console.stdout.clone()).unwrap();
        let start = format!(
            "[        0 ticks] LoaderStart format={} ",
            crate::decode::TRACE_FORMAT
        );
        assert!(shown.starts_with(&start), "{shown}");
        let _ = consumer.take(Arrival::Bytes(&stream[60..]));
        let consumed = consumer.finish(Some(3));
        assert_eq!(consumed.status, TraceStatus::Decoded { verified: true });
        assert_eq!(consumed.record.events.len(), 17);
        assert_eq!(consumed.record.exit_status, Some(3));
        let shown = String::from_utf8(consumed.console.stdout).unwrap();
        assert!(shown.contains("ms] HandOver entry=0x"), "{shown}");
        assert!(shown.ends_with("tk: ok\n"), "{shown}");
        assert!(consumed.console.stderr.is_empty());
    }

    #[test]
    fn consume_reads_a_source_to_its_end() {
        let elf = std::fs::read(recorded("rusty-loader.elf")).unwrap();
        let table = crate::decode::TraceTable::from_elf(&elf).unwrap();
        let file = std::fs::File::open(recorded("not-an-elf.bin")).unwrap();
        let console = Console::new(Vec::new(), Vec::new(), style(false));
        let mut consumer = LiveConsumer::new(Session::new(&table), console);
        let end = consumer.consume(file);
        assert!(matches!(end, InputEnd::Complete), "{end:?}");
        let consumed = consumer.finish(None);
        assert!(consumed.record.events.iter().any(|e| e.name() == "Refused"));
        let shown = String::from_utf8(consumed.console.stdout).unwrap();
        assert!(
            shown.starts_with("rusty-loader: error: the module is not an ELF file"),
            "{shown}"
        );
    }

    #[test]
    fn line_style_wraps_on_a_terminal_only() {
        assert_eq!(
            line_style(ColorChoice::Never, true).wrap_at,
            Some(TERMINAL_WIDTH)
        );
        assert_eq!(line_style(ColorChoice::Always, false).wrap_at, None);
        assert!(line_style(ColorChoice::Always, false).color);
        assert!(!line_style(ColorChoice::Never, true).color);
    }
}
