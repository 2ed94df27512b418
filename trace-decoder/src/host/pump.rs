//! Reading a live byte source (QEMU's serial output through a pipe, standard input,
//! a recording) in a background thread, so that the reading side notices when the
//! source pauses without polling it, and Ctrl-C can stop the reading even while the
//! source says nothing.
//!
//! [`read_live`] is the one reading loop of both `rusty-trace` and `cargo xtask`
//! (which runs it on QEMU's standard output): what arrives goes to a callback as
//! [`Arrival`]s, in order, and the callback says whether to go on.

use std::io::{self, Read};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

/// How long the source must be silent before [`Arrival::Stalled`]: long enough not
/// to fire between the chunks of a busy stream, short enough for a person watching.
pub const STALL: Duration = Duration::from_millis(100);

/// How much one read takes at most.
const READ_SIZE: usize = 64 * 1024;

/// Chunks read ahead of the consumer at most: a slow consumer slows the reader
/// instead of filling memory.
const CHANNEL_DEPTH: usize = 16;

/// What the source delivers, as the reading loop hands it on.
#[derive(Clone, Copy, Debug)]
pub enum Arrival<'a> {
    /// Bytes, as one read returned them.
    Bytes(&'a [u8]),
    /// Nothing more is ready right now: the moment to show what was written.
    CaughtUp,
    /// Nothing arrived for [`STALL`]: the moment to show what is held back. Comes
    /// once per silence.
    Stalled,
}

/// How reading ended.
#[derive(Debug)]
pub enum InputEnd {
    /// The source ended.
    Complete,
    /// A read failed.
    ReadError(io::Error),
    /// Ctrl-C, once [`stop_on_ctrl_c`] is in force. The reader thread is left
    /// behind: it may sit in a read that never returns.
    Interrupted,
    /// The callback asked to stop. The reader thread ends at its next chunk.
    Stopped,
}

/// What the reader thread sends to the reading loop.
enum Message {
    Bytes(Vec<u8>),
    End,
    ReadError(io::Error),
    /// A wake-up from the Ctrl-C handler.
    Interrupted,
}

/// Set by the first Ctrl-C once [`stop_on_ctrl_c`] installed the handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The reading loops running now, each with a channel to wake it: a loop blocked
/// while its source is silent must still notice Ctrl-C.
static WAITING: Mutex<Vec<(u64, SyncSender<Message>)>> = Mutex::new(Vec::new());
static NEXT_LOOP: AtomicU64 = AtomicU64::new(0);

/// How soon after the first Ctrl-C another one is the same: `timeout -s INT`
/// signals its command and then the command's whole process group, so one
/// interrupt can arrive twice in quick succession; a person's second Ctrl-C comes
/// later.
const SAME_INTERRUPT: Duration = Duration::from_secs(1);

/// Makes the first Ctrl-C stop every [`read_live`] (which then ends with
/// [`InputEnd::Interrupted`], so that the caller can still report what arrived) and
/// a second one (more than [`SAME_INTERRUPT`] later) end the process at once with
/// status 130. Without this, Ctrl-C keeps its default effect, which ends the
/// process. Calling it again does nothing; when another handler is already set (as
/// in some tests), it is kept.
pub fn stop_on_ctrl_c() {
    static INSTALL: Once = Once::new();
    static FIRST: OnceLock<Instant> = OnceLock::new();
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let first = *FIRST.get_or_init(Instant::now);
            if INTERRUPTED.swap(true, Ordering::Relaxed) {
                if first.elapsed() < SAME_INTERRUPT {
                    return;
                }
                std::process::exit(130);
            }
            for (_, waiting) in WAITING.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                // A full channel means the loop is busy: it sees the flag after the
                // message at hand.
                let _ = waiting.try_send(Message::Interrupted);
            }
        });
    });
}

/// Whether Ctrl-C was pressed since [`stop_on_ctrl_c`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Reads `source` to its end in a background thread and hands everything that
/// arrives to `on_arrival`, in order, with [`Arrival::CaughtUp`] and
/// [`Arrival::Stalled`] when the source pauses. Stops early on Ctrl-C (see
/// [`stop_on_ctrl_c`]) or when `on_arrival` breaks.
pub fn read_live(
    source: impl Read + Send + 'static,
    mut on_arrival: impl FnMut(Arrival) -> ControlFlow<()>,
) -> InputEnd {
    let (sender, receiver) = mpsc::sync_channel::<Message>(CHANNEL_DEPTH);
    let id = NEXT_LOOP.fetch_add(1, Ordering::Relaxed);
    WAITING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, sender.clone()));
    let reader = std::thread::spawn(move || read_to_end(source, &sender));
    let end = receive(&receiver, &mut on_arrival);
    WAITING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(waiting, _)| *waiting != id);
    if matches!(end, InputEnd::Complete | InputEnd::ReadError(_)) {
        // The reader has sent its last message; joining it makes sure it is gone.
        let _ = reader.join();
    }
    end
}

/// The reader thread: reads until the source ends, fails, or nobody listens.
fn read_to_end(mut source: impl Read, sender: &SyncSender<Message>) {
    loop {
        let mut buffer = vec![0; READ_SIZE];
        let message = match source.read(&mut buffer) {
            Ok(0) => {
                let _ = sender.send(Message::End);
                return;
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
            return;
        }
    }
}

/// The reading loop: messages become arrivals until the end.
fn receive(
    receiver: &mpsc::Receiver<Message>,
    on_arrival: &mut impl FnMut(Arrival) -> ControlFlow<()>,
) -> InputEnd {
    loop {
        let message = match receiver.try_recv() {
            Ok(message) => message,
            // The registry keeps a sender, so the reader's end is a message; this is
            // only a safety net.
            Err(TryRecvError::Disconnected) => return InputEnd::Complete,
            Err(TryRecvError::Empty) => {
                if on_arrival(Arrival::CaughtUp).is_break() {
                    return InputEnd::Stopped;
                }
                match receiver.recv_timeout(STALL) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Disconnected) => return InputEnd::Complete,
                    Err(RecvTimeoutError::Timeout) => {
                        if on_arrival(Arrival::Stalled).is_break() {
                            return InputEnd::Stopped;
                        }
                        match receiver.recv() {
                            Ok(message) => message,
                            Err(_) => return InputEnd::Complete,
                        }
                    }
                }
            }
        };
        let flow = match message {
            Message::Bytes(bytes) => on_arrival(Arrival::Bytes(&bytes)),
            Message::End => return InputEnd::Complete,
            Message::ReadError(error) => return InputEnd::ReadError(error),
            Message::Interrupted => ControlFlow::Continue(()),
        };
        if interrupted() {
            return InputEnd::Interrupted;
        }
        if flow.is_break() {
            return InputEnd::Stopped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that returns its chunks one read at a time, then fails or ends.
    struct Chunks {
        chunks: Vec<&'static [u8]>,
        fail_at_end: bool,
    }

    impl Read for Chunks {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            if self.chunks.is_empty() {
                return if self.fail_at_end {
                    Err(io::Error::other("the device went away"))
                } else {
                    Ok(0)
                };
            }
            let chunk = self.chunks.remove(0);
            buffer[..chunk.len()].copy_from_slice(chunk);
            Ok(chunk.len())
        }
    }

    fn bytes_of(source: Chunks) -> (Vec<u8>, InputEnd) {
        let mut bytes = Vec::new();
        let end = read_live(source, |arrival| {
            if let Arrival::Bytes(chunk) = arrival {
                bytes.extend_from_slice(chunk);
            }
            ControlFlow::Continue(())
        });
        (bytes, end)
    }

    #[test]
    fn every_byte_arrives_in_order() {
        let source = Chunks {
            chunks: vec![b"one ", b"two ", b"three"],
            fail_at_end: false,
        };
        let (bytes, end) = bytes_of(source);
        assert_eq!(bytes, b"one two three");
        assert!(matches!(end, InputEnd::Complete), "{end:?}");
    }

    #[test]
    fn a_read_error_ends_reading_after_what_arrived() {
        let source = Chunks {
            chunks: vec![b"partial"],
            fail_at_end: true,
        };
        let (bytes, end) = bytes_of(source);
        assert_eq!(bytes, b"partial");
        assert!(
            matches!(&end, InputEnd::ReadError(e) if e.to_string() == "the device went away"),
            "{end:?}"
        );
    }

    #[test]
    fn a_silent_source_stalls_once_and_the_callback_can_stop_it() {
        // A pipe whose writer stays open: the source is silent, not ended.
        let (reader, writer) = io::pipe().unwrap();
        let mut seen = Vec::new();
        let end = read_live(reader, |arrival| {
            seen.push(format!("{arrival:?}"));
            match arrival {
                Arrival::Stalled => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        });
        assert!(matches!(end, InputEnd::Stopped), "{end:?}");
        assert_eq!(seen, ["CaughtUp", "Stalled"]);
        drop(writer);
    }
}
