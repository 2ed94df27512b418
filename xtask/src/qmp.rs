//! Asking QEMU what the guest did when the loader can no longer say: a small QMP
//! client (QEMU's JSON monitor protocol, over the Unix socket that
//! [`crate::qemu::QemuConfig::monitor`] opens). With `-no-reboot -no-shutdown`, a
//! guest that resets (a triple fault) or shuts down makes QEMU send a `SHUTDOWN`
//! event and pause instead of exiting; the client then reads the CPU's registers
//! (`info registers`) and ends QEMU. At a timeout, or on Ctrl-C (which QEMU itself
//! does not get), the runner asks it to stop the guest and read them the same way,
//! so a hang or an interrupted boot says where the CPU was.
//!
//! Only what QEMU says is kept: the event's reason and time, and the register text
//! as QEMU printed it (parsed by `trace_decoder::report::registers`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Why QEMU stopped the guest, as QEMU said it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `SHUTDOWN` with reason `guest-reset`: the guest reset the machine (a triple
    /// fault, or a reset it asked for), which `-no-reboot` turns into a stop.
    GuestReset,
    /// `SHUTDOWN` with another reason (`guest-shutdown`: the guest powered off).
    Shutdown(String),
    /// The runner stopped the guest at its timeout.
    Timeout,
    /// The runner stopped the guest on Ctrl-C.
    Interrupted,
}

/// What QEMU said when the guest stopped.
#[derive(Clone, Debug)]
pub struct MachineStop {
    pub reason: StopReason,
    /// When it happened (the event's timestamp, on the host's clock).
    pub at: Instant,
    /// `info registers` as QEMU printed it, when it answered.
    pub registers: Option<String>,
}

/// One QMP connection.
struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects (QEMU creates the socket shortly after it starts) and negotiates
    /// capabilities; `None` when QEMU never offered the socket.
    fn connect(socket: &Path, give_up: &AtomicBool) -> Option<Client> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline && !give_up.load(Ordering::Relaxed) => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => return None,
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .ok()?;
        let mut client = Client {
            reader: BufReader::new(stream.try_clone().ok()?),
            writer: stream,
        };
        // The greeting, then capabilities negotiation.
        client.next_message(Duration::from_secs(5))?;
        client.execute(json!({"execute": "qmp_capabilities"}))?;
        Some(client)
    }

    /// The next JSON message, waiting at most `patience`.
    fn next_message(&mut self, patience: Duration) -> Option<Value> {
        let deadline = Instant::now() + patience;
        let mut line = String::new();
        loop {
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) if line.ends_with('\n') => return serde_json::from_str(&line).ok(),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
            if Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// Sends a command and returns its `return` value, skipping events meanwhile.
    fn execute(&mut self, command: Value) -> Option<Value> {
        writeln!(self.writer, "{command}").ok()?;
        loop {
            let message = self.next_message(Duration::from_secs(5))?;
            if let Some(value) = message.get("return") {
                return Some(value.clone());
            }
            if message.get("error").is_some() {
                return None;
            }
        }
    }

    /// `info registers`, as QEMU prints it.
    fn registers(&mut self) -> Option<String> {
        let value = self.execute(json!({
            "execute": "human-monitor-command",
            "arguments": {"command-line": "info registers"}
        }))?;
        value.as_str().map(|text| text.replace("\r\n", "\n"))
    }

    /// Ends QEMU (it answers, then exits).
    fn quit(&mut self) {
        self.execute(json!({"execute": "quit"}));
    }
}

/// When a QMP event happened, from its timestamp (the host's wall clock), on the
/// monotonic clock; now when it has none.
fn event_instant(event: &Value) -> Instant {
    let stamp = &event["timestamp"];
    let (Some(seconds), Some(micros)) = (stamp["seconds"].as_u64(), stamp["microseconds"].as_u64())
    else {
        return Instant::now();
    };
    let then = UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros);
    let ago = SystemTime::now()
        .duration_since(then)
        .unwrap_or(Duration::ZERO);
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

/// How often QEMU is asked whether the guest still runs. QEMU 7.2 does not always
/// send an event on its own while no command is pending, so it is asked; the event
/// (with its reason and time) comes with the answer.
const POLL: Duration = Duration::from_millis(20);

/// Watches QEMU through its QMP socket until the guest stops (then reads the
/// registers and ends QEMU), `stop_guest` is set (the runner's timeout, or Ctrl-C:
/// the guest is stopped, its registers read, QEMU ended), QEMU goes away, or `give_up` is set
/// before QEMU offered the socket. `connected` is set once QEMU answered.
pub fn watch(
    socket: &Path,
    stop_guest: &AtomicBool,
    give_up: &AtomicBool,
    connected: &AtomicBool,
) -> Option<MachineStop> {
    let mut client = Client::connect(socket, give_up)?;
    connected.store(true, Ordering::Relaxed);
    let mut shutdown: Option<(StopReason, Instant)> = None;
    loop {
        if stop_guest.load(Ordering::Relaxed) {
            let at = Instant::now();
            client.execute(json!({"execute": "stop"}));
            let registers = client.registers();
            client.quit();
            let reason = if trace_decoder::host::pump::interrupted() {
                StopReason::Interrupted
            } else {
                StopReason::Timeout
            };
            return Some(MachineStop {
                reason,
                at,
                registers,
            });
        }
        writeln!(client.writer, "{}", json!({"execute": "query-status"})).ok()?;
        let status = loop {
            let message = client.next_message(Duration::from_secs(5))?;
            if message["event"] == "SHUTDOWN" {
                let reason = match message["data"]["reason"].as_str() {
                    Some("guest-reset") => StopReason::GuestReset,
                    Some(other) => StopReason::Shutdown(other.to_string()),
                    None => StopReason::Shutdown("unknown".to_string()),
                };
                shutdown = Some((reason, event_instant(&message)));
            }
            if let Some(value) = message.get("return") {
                break value["status"].as_str().unwrap_or("").to_string();
            }
        };
        if status == "shutdown" {
            let (reason, at) = shutdown
                .take()
                .unwrap_or((StopReason::Shutdown("unknown".to_string()), Instant::now()));
            let registers = client.registers();
            client.quit();
            return Some(MachineStop {
                reason,
                at,
                registers,
            });
        }
        std::thread::sleep(POLL);
    }
}
