//! How a boot ended, and the exit status `cargo xtask run` and `cargo xtask trace`
//! give it, which `rusty-trace` gives a replay of its recording too: the one table
//! of those statuses. The three `--help` texts print it from here ([`help_table`]),
//! and docs/exit-codes.md lists it (a test keeps the two in step). A recording
//! keeps QEMU's end beside the stream ([`QemuEnd::to_recorded`]), so that a replay
//! ends as the live run did.
//!
//! A boot's end is put together from what the runner saw of QEMU ([`QemuEnd`], the
//! last error line QEMU printed) and what the serial stream said ([`TraceSeen`]);
//! [`Ending::of`] turns that into one [`EndingKind`], its status and a one-line
//! reason. A new kind of ending is a new variant of [`EndingKind`] with its row
//! ([`EndingKind::statuses`], [`EndingKind::meaning`], in [`EndingKind::ALL`]) and
//! the facts that lead to it in [`Ending::of`]; the compiler finds every match to
//! extend, and the docs test the table to update.

use rusty_loader::error::ExitCode;
use rusty_loader::wire::LoaderEvent;

use super::format::{escape_text, wrap};
use super::outcome::exception_name;
use crate::decode::BootRecord;

/// The kinds of ending, one exit status (or one range of them) each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndingKind {
    /// The application wrote 1 to isa-debug-exit (QEMU status 3).
    AppSucceeded,
    /// The application wrote 0 (QEMU status 1), or a value that is none of the
    /// other rows'.
    AppFailed,
    /// The command line or the setup was wrong (arguments, files, the build, QEMU
    /// missing); nothing was booted, or the boot was never started.
    Usage,
    /// `--baseline`: a stage is slower than the baseline allows.
    Regression,
    /// QEMU ended without an isa-debug-exit code: the guest reset or powered off.
    /// With `-no-reboot` a triple fault ends QEMU this way.
    Reset,
    /// The application wrote its own value 2–15 (QEMU status 5–31), e.g. a test
    /// kernel's failed check group; passed on as it is.
    AppValue,
    /// The loader refused to boot; QEMU's status, passed on.
    Refused,
    /// A CPU exception in the loader, or in the kernel before it has its own IDT;
    /// QEMU's status, passed on.
    CpuException,
    /// QEMU did not end within the timeout and was stopped: a hang.
    TimedOut,
    /// QEMU itself failed: it could not start the machine, died of a signal, or KVM
    /// could not run the guest.
    QemuFailed,
    /// Ctrl-C.
    Interrupted,
}

/// The status of [`EndingKind::Usage`], for errors found before anything boots.
pub const USAGE_STATUS: u8 = 2;

impl EndingKind {
    /// Every kind, in the order of the table.
    pub const ALL: [EndingKind; 11] = [
        EndingKind::AppSucceeded,
        EndingKind::AppFailed,
        EndingKind::Usage,
        EndingKind::Regression,
        EndingKind::Reset,
        EndingKind::AppValue,
        EndingKind::Refused,
        EndingKind::TimedOut,
        EndingKind::QemuFailed,
        EndingKind::CpuException,
        EndingKind::Interrupted,
    ];

    /// The statuses of this kind.
    pub fn statuses(self) -> Statuses {
        let one = |status: u8| Statuses {
            first: status,
            last: status,
            odd_only: false,
        };
        let odd = |first: i32, last: i32| Statuses {
            first: first as u8,
            last: last as u8,
            odd_only: true,
        };
        match self {
            EndingKind::AppSucceeded => one(0),
            EndingKind::AppFailed => one(1),
            EndingKind::Usage => one(USAGE_STATUS),
            EndingKind::Regression => one(3),
            EndingKind::Reset => one(4),
            EndingKind::AppValue => odd(5, 31),
            EndingKind::Refused => {
                let (first, last) = refusal_statuses();
                odd(first, last)
            }
            EndingKind::CpuException => odd(
                ExitCode::exception_status(0),
                ExitCode::exception_status(31),
            ),
            EndingKind::TimedOut => one(124),
            EndingKind::QemuFailed => one(125),
            EndingKind::Interrupted => one(130),
        }
    }

    /// What the status says, for the table.
    pub fn meaning(self) -> &'static str {
        match self {
            EndingKind::AppSucceeded => "the application reported success (QEMU status 3)",
            EndingKind::AppFailed => {
                "the application reported failure (QEMU status 1), or ended with a value no other row has"
            }
            EndingKind::Usage => {
                "usage or setup error (arguments, a missing file, -m malformed or too small for the application, the build, QEMU not found; for rusty-trace also an input without a trace, or an ELF file given as the stream): nothing booted or decoded"
            }
            EndingKind::Regression => {
                "--baseline: a stage is slower than the baseline allows"
            }
            EndingKind::Reset => {
                "QEMU ended without an isa-debug-exit code: the guest reset (a triple fault, with -no-reboot) or powered off"
            }
            EndingKind::AppValue => {
                "the application's own value 2-15, passed on as QEMU's status (a test kernel's failed check group)"
            }
            EndingKind::Refused => {
                "the loader refused to boot: QEMU's status, passed on (docs/exit-codes.md)"
            }
            EndingKind::CpuException => {
                "CPU exception 0-31 in the loader, or in the kernel before its own IDT: QEMU's status, passed on"
            }
            EndingKind::TimedOut => "QEMU did not end within --timeout and was stopped: a hang",
            EndingKind::QemuFailed => {
                "QEMU itself failed: it could not start the machine, died of a signal, or KVM could not run the guest"
            }
            EndingKind::Interrupted => "interrupted with Ctrl-C (the report of what arrived is still printed)",
        }
    }
}

/// The exit statuses of one kind of ending: one, or the odd ones of a range (those
/// QEMU's isa-debug-exit gives).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statuses {
    pub first: u8,
    pub last: u8,
    pub odd_only: bool,
}

impl Statuses {
    pub fn contains(self, status: u8) -> bool {
        (self.first..=self.last).contains(&status) && (!self.odd_only || status % 2 == 1)
    }
}

/// As the table shows it: `4`, `33-105 odd`.
impl std::fmt::Display for Statuses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            let odd = if self.odd_only { " odd" } else { "" };
            write!(f, "{}-{}{odd}", self.first, self.last)
        }
    }
}

/// The first and last QEMU status of the loader's refusals.
fn refusal_statuses() -> (i32, i32) {
    let statuses = ExitCode::ALL
        .iter()
        .filter(|c| **c != ExitCode::CpuException)
        .map(|c| c.qemu_status());
    let first = statuses.clone().min().unwrap_or(0);
    (first, statuses.max().unwrap_or(0))
}

/// The table for a `--help` text: `Exit status:` and each row, its meaning wrapped
/// to 80 columns beside the statuses.
pub fn help_table() -> String {
    const STATUS_WIDTH: usize = 11;
    let indent = " ".repeat(2 + STATUS_WIDTH + 2);
    let mut text = String::from("Exit status:\n");
    for kind in EndingKind::ALL {
        let statuses = kind.statuses().to_string();
        for (i, line) in wrap(kind.meaning(), 80 - indent.len()).iter().enumerate() {
            if i == 0 {
                text += &format!("  {statuses:>STATUS_WIDTH$}  {line}\n");
            } else {
                text += &format!("{indent}{line}\n");
            }
        }
    }
    text
}

/// How QEMU ended, as the runner saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QemuEnd {
    /// QEMU exited with this status.
    Exited(i32),
    /// QEMU ended without a status (a signal the runner did not send).
    Killed,
    /// The runner stopped QEMU at the timeout, after this many seconds.
    TimedOut { seconds: u64 },
    /// Ctrl-C stopped the boot.
    Interrupted,
    /// QEMU reported a KVM internal error and was stopped.
    KvmFailed,
}

impl QemuEnd {
    /// QEMU's end as a recording keeps it beside its stream (`FILE.status`, which
    /// `cargo xtask trace --save FILE` writes and `rusty-trace FILE` reads): QEMU's
    /// exit status as a number (what `echo $? > FILE.status` writes too), or for an
    /// end without one `timeout <seconds>`, `interrupted`, `killed` or
    /// `kvm-failed`; then, when QEMU printed one, its last error line as
    /// `qemu: <line>`.
    pub fn to_recorded(&self, qemu_error: Option<&str>) -> String {
        let mut text = match self {
            QemuEnd::Exited(status) => status.to_string(),
            QemuEnd::TimedOut { seconds } => format!("timeout {seconds}"),
            QemuEnd::Interrupted => "interrupted".to_string(),
            QemuEnd::Killed => "killed".to_string(),
            QemuEnd::KvmFailed => "kvm-failed".to_string(),
        };
        text.push('\n');
        if let Some(error) = qemu_error {
            text += &format!("qemu-error: {}\n", error.replace('\n', " "));
        }
        text
    }

    /// Reads what [`QemuEnd::to_recorded`] wrote: the end and QEMU's error line.
    pub fn from_recorded(text: &str) -> Result<(QemuEnd, Option<String>), String> {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("").trim();
        let words: Vec<&str> = first.split_whitespace().collect();
        let end = match words.as_slice() {
            [status] if status.parse::<i32>().is_ok() => {
                QemuEnd::Exited(status.parse().expect("checked"))
            }
            ["timeout", seconds] if seconds.parse::<u64>().is_ok() => QemuEnd::TimedOut {
                seconds: seconds.parse().expect("checked"),
            },
            ["interrupted"] => QemuEnd::Interrupted,
            ["killed"] => QemuEnd::Killed,
            ["kvm-failed"] => QemuEnd::KvmFailed,
            _ => {
                return Err(format!(
                    "holds neither QEMU's exit status (a number) nor an end without one (timeout N, interrupted, killed, kvm-failed): {}",
                    escape_text(first)
                ))
            }
        };
        let error = lines.find_map(|line| line.strip_prefix("qemu-error: ").map(str::to_string));
        Ok((end, error))
    }

    /// QEMU's exit status, when it exited by itself.
    pub fn status(&self) -> Option<i32> {
        match self {
            QemuEnd::Exited(status) => Some(*status),
            _ => None,
        }
    }
}

/// What the serial stream said about the loader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceSeen {
    /// Bytes that arrived on the serial port at all (text and frames).
    pub serial_bytes: usize,
    /// Whether the loader's trace was decoded; without it (a loader built without
    /// tracing) only QEMU's status tells what happened.
    pub decoded: bool,
    /// The loader's events of the last boot, by name, in order.
    pub events: Vec<String>,
    /// `HandOver` was seen.
    pub handed_over: bool,
    /// The refusal: its exit-code name and its line.
    pub refusal: Option<(String, String)>,
    /// The CPU exception: its vector, and whether it came after the hand-over.
    pub exception: Option<(u8, bool)>,
}

impl TraceSeen {
    /// What a decoded boot record says (the last boot of the stream).
    pub fn of(record: &BootRecord, serial_bytes: usize) -> TraceSeen {
        let from = record
            .events
            .iter()
            .rposition(|e| matches!(e.kind, LoaderEvent::LoaderStart { .. }))
            .unwrap_or(0);
        let events = &record.events[from..];
        let mut seen = TraceSeen {
            serial_bytes,
            decoded: true,
            events: events.iter().map(|e| e.name().to_string()).collect(),
            ..TraceSeen::default()
        };
        for event in events {
            match &event.kind {
                LoaderEvent::HandOver { .. } => seen.handed_over = true,
                LoaderEvent::Refused { name, text, .. } => {
                    seen.refusal
                        .get_or_insert((escape_text(name), escape_text(text)));
                }
                LoaderEvent::CpuException {
                    vector, in_kernel, ..
                } => {
                    seen.exception.get_or_insert((*vector, *in_kernel));
                }
                _ => {}
            }
        }
        seen
    }

    /// Only the number of bytes: the stream was not decoded.
    pub fn undecoded(serial_bytes: usize) -> TraceSeen {
        TraceSeen {
            serial_bytes,
            ..TraceSeen::default()
        }
    }

    /// Where the boot was when it stopped, for a reset or a hang: `before the loader
    /// said anything`, `in the loader, after its event MemoryMap`, `after the
    /// hand-over to the application`.
    fn whereabouts(&self) -> String {
        if self.serial_bytes == 0 {
            return "before anything arrived on the serial port (the firmware did not start the loader)".to_string();
        }
        if !self.decoded {
            return "(the loader's trace was not decoded)".to_string();
        }
        if self.handed_over {
            return "after the hand-over, in the application".to_string();
        }
        match self.events.last() {
            Some(last) => format!("in the loader, after its event {last}"),
            None => "before the loader's first event".to_string(),
        }
    }
}

/// How a boot ended: its kind, the exit status and one line for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ending {
    pub kind: EndingKind,
    pub status: u8,
    pub reason: String,
}

impl Ending {
    fn new(kind: EndingKind, status: u8, reason: String) -> Ending {
        Ending {
            kind,
            status,
            reason,
        }
    }

    /// The ending of a boot: QEMU's end, its last error line (from its standard
    /// error, if it printed one that is not a warning) and what the stream said.
    pub fn of(qemu: &QemuEnd, qemu_error: Option<&str>, seen: &TraceSeen) -> Ending {
        match qemu {
            QemuEnd::Interrupted => Ending::new(
                EndingKind::Interrupted,
                130,
                "interrupted: the report covers what arrived before Ctrl-C".to_string(),
            ),
            QemuEnd::TimedOut { seconds } => Ending::new(
                EndingKind::TimedOut,
                124,
                format!(
                    "QEMU did not end within {seconds} s and was stopped: the boot hangs {}",
                    seen.whereabouts()
                ),
            ),
            QemuEnd::KvmFailed => Ending::new(
                EndingKind::QemuFailed,
                125,
                "KVM failed to run the guest (see QEMU's message above); run again without --kvm to use TCG".to_string(),
            ),
            QemuEnd::Killed => Ending::new(
                EndingKind::QemuFailed,
                125,
                "QEMU was ended by a signal".to_string(),
            ),
            QemuEnd::Exited(status) => Ending::of_status(*status, qemu_error, seen),
        }
    }

    fn of_status(status: i32, qemu_error: Option<&str>, seen: &TraceSeen) -> Ending {
        let failed = |why: String| Ending::new(EndingKind::QemuFailed, 125, why);
        if status == 0 {
            return Ending::new(
                EndingKind::Reset,
                4,
                format!(
                    "QEMU ended without an exit code: the guest reset (a triple fault) or powered off {}",
                    seen.whereabouts()
                ),
            );
        }
        if !(1..=255).contains(&status) || status % 2 == 0 {
            let why = qemu_error.map_or(String::new(), |e| format!(": {e}"));
            return failed(format!(
                "QEMU failed with status {status}, which no isa-debug-exit code gives{why}"
            ));
        }
        if status == 1 {
            // QEMU's own failures exit with 1 too; they say why on standard error.
            if let Some(error) = qemu_error {
                return failed(format!("QEMU failed: {error}"));
            }
        }
        let pass_on = status as u8;
        let value = status >> 1;
        let shown = format!("(QEMU status {status})");
        if let Some((name, text)) = &seen.refusal {
            if ExitCode::ALL
                .iter()
                .any(|c| c.name() == name && c.qemu_status() == status)
            {
                return Ending::new(
                    EndingKind::Refused,
                    pass_on,
                    format!("the loader refused to boot ({name}): {text} {shown}"),
                );
            }
        }
        let exception = |vector: i32, place: &str| {
            let vector = vector as u64;
            Ending::new(
                EndingKind::CpuException,
                pass_on,
                format!(
                    "CPU exception {vector} ({}){place} {shown}",
                    exception_name(vector)
                ),
            )
        };
        if let Some((vector, in_kernel)) = seen.exception {
            if vector < 32 && ExitCode::exception_status(vector) == status {
                let place = if in_kernel {
                    " in the kernel, after the hand-over"
                } else {
                    " in the loader"
                };
                return exception(i32::from(vector), place);
            }
        }
        match value {
            1 => {
                return Ending::new(
                    EndingKind::AppSucceeded,
                    0,
                    format!("the application reported success {shown}"),
                )
            }
            0 => {
                return Ending::new(
                    EndingKind::AppFailed,
                    1,
                    format!("the application reported failure {shown}"),
                )
            }
            2..=15 => {
                return Ending::new(
                    EndingKind::AppValue,
                    pass_on,
                    format!(
                        "the application ended with its own value {value} {shown} (for a test kernel: check group {value} failed, see its tk: FAIL line)"
                    ),
                )
            }
            _ => {}
        }
        // The loader's values, when the stream does not say the application ran.
        if !seen.handed_over {
            if let Some(code) = ExitCode::ALL
                .iter()
                .find(|c| **c != ExitCode::CpuException && c.qemu_status() == status)
            {
                return Ending::new(
                    EndingKind::Refused,
                    pass_on,
                    format!(
                        "the loader refused to boot ({}): its line above says why {shown}",
                        code.name()
                    ),
                );
            }
        }
        let first_exception = i32::from(ExitCode::CpuException.port_value());
        if (first_exception..first_exception + 32).contains(&value) {
            return exception(value - first_exception, "");
        }
        Ending::new(
            EndingKind::AppFailed,
            1,
            format!("the application ended with value {value} {shown}, which no other row of the table has"),
        )
    }

    /// Ctrl-C before the boot started (while the loader or the application was
    /// built): nothing booted, so there is no report.
    pub fn interrupted_before_boot() -> Ending {
        Ending::new(
            EndingKind::Interrupted,
            130,
            "interrupted before the boot started: nothing booted".to_string(),
        )
    }

    /// Not a boot's ending: a regression found by `--baseline`.
    pub fn regression(verdict: String) -> Ending {
        Ending::new(EndingKind::Regression, 3, verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::fixtures::event;

    fn exited(status: i32) -> QemuEnd {
        QemuEnd::Exited(status)
    }

    fn seen(events: &[&str]) -> TraceSeen {
        let record = BootRecord {
            events: events.iter().map(|e| event(0, e)).collect(),
            ..BootRecord::default()
        };
        TraceSeen::of(&record, 100)
    }

    const START: &str = "LoaderStart format=3 build=0x1 mbi=0x9500";
    const HAND_OVER: &str = "HandOver entry=0x801000 rdi=0x150400 rsp=0x1a0000 trace_ticks=0";

    #[test]
    fn each_kind_has_its_status_within_its_row() {
        let handed_over = seen(&[START, HAND_OVER]);
        let refused = seen(&[
            START,
            "Refused code=17 name=not-elf trace_ticks=0 text=the module is not an ELF file",
        ]);
        let faulted = seen(&[
            START,
            HAND_OVER,
            "CpuException vector=6 error_code=0x0 rip=0x801000 cr2=0x0 in_kernel=true trace_ticks=0 rsp=0x20be68 rflags=0x12 cr3=0x210000 stack=[0x808989]",
        ]);
        let nothing = TraceSeen::undecoded(0);
        let cases = [
            (
                Ending::of(&exited(3), None, &handed_over),
                EndingKind::AppSucceeded,
                0,
            ),
            (
                Ending::of(&exited(1), None, &handed_over),
                EndingKind::AppFailed,
                1,
            ),
            (Ending::of(&exited(0), None, &nothing), EndingKind::Reset, 4),
            (
                Ending::of(&exited(9), None, &handed_over),
                EndingKind::AppValue,
                9,
            ),
            (
                Ending::of(&exited(35), None, &refused),
                EndingKind::Refused,
                35,
            ),
            (
                Ending::of(&exited(141), None, &faulted),
                EndingKind::CpuException,
                141,
            ),
            (
                Ending::of(&QemuEnd::TimedOut { seconds: 60 }, None, &handed_over),
                EndingKind::TimedOut,
                124,
            ),
            (
                Ending::of(
                    &exited(1),
                    Some("qemu-system-x86_64: could not load kernel"),
                    &nothing,
                ),
                EndingKind::QemuFailed,
                125,
            ),
            (
                Ending::of(&QemuEnd::Killed, None, &nothing),
                EndingKind::QemuFailed,
                125,
            ),
            (
                Ending::of(&QemuEnd::KvmFailed, None, &nothing),
                EndingKind::QemuFailed,
                125,
            ),
            (
                Ending::of(&QemuEnd::Interrupted, None, &nothing),
                EndingKind::Interrupted,
                130,
            ),
            (
                Ending::regression("slower".into()),
                EndingKind::Regression,
                3,
            ),
        ];
        for (ending, kind, status) in cases {
            assert_eq!((ending.kind, ending.status), (kind, status), "{ending:?}");
            // The status lies within the row the table shows for its kind.
            assert!(kind.statuses().contains(ending.status), "{ending:?}");
            assert!(!ending.reason.contains('\n'), "one line: {ending:?}");
        }
        assert_eq!(
            USAGE_STATUS.to_string(),
            EndingKind::Usage.statuses().to_string()
        );
    }

    #[test]
    fn statuses_of_the_rows_do_not_overlap() {
        for status in 0..=255u8 {
            let rows: Vec<EndingKind> = EndingKind::ALL
                .into_iter()
                .filter(|kind| kind.statuses().contains(status))
                .collect();
            assert!(rows.len() <= 1, "{status} in several rows: {rows:?}");
        }
        assert_eq!(EndingKind::Refused.statuses().to_string(), "33-105 odd");
        assert_eq!(
            EndingKind::CpuException.statuses().to_string(),
            "129-191 odd"
        );
        assert!(!EndingKind::CpuException.statuses().contains(130));
    }

    #[test]
    fn reasons_say_where_a_boot_stopped() {
        let reset = Ending::of(&exited(0), None, &TraceSeen::undecoded(0));
        assert_eq!(
            reset.reason,
            "QEMU ended without an exit code: the guest reset (a triple fault) or powered off before anything arrived on the serial port (the firmware did not start the loader)"
        );
        let stuck = seen(&[START, "PagingEnabled"]);
        let hang = Ending::of(&QemuEnd::TimedOut { seconds: 5 }, None, &stuck);
        assert_eq!(
            hang.reason,
            "QEMU did not end within 5 s and was stopped: the boot hangs in the loader, after its event PagingEnabled"
        );
        let after = Ending::of(&exited(0), None, &seen(&[START, HAND_OVER]));
        assert!(
            after
                .reason
                .ends_with("after the hand-over, in the application"),
            "{after:?}"
        );
        let refused = Ending::of(
            &exited(35),
            None,
            &seen(&[
                START,
                "Refused code=17 name=not-elf trace_ticks=0 text=starts with 23 21",
            ]),
        );
        assert_eq!(
            refused.reason,
            "the loader refused to boot (not-elf): starts with 23 21 (QEMU status 35)"
        );
    }

    #[test]
    fn without_a_trace_the_status_decides() {
        let undecoded = TraceSeen::undecoded(10);
        let refused = Ending::of(&exited(57), None, &undecoded);
        assert_eq!((refused.kind, refused.status), (EndingKind::Refused, 57));
        assert!(refused.reason.contains("not-enough-memory"), "{refused:?}");
        let exception = Ending::of(&exited(157), None, &undecoded);
        assert_eq!(exception.kind, EndingKind::CpuException);
        assert!(exception
            .reason
            .starts_with("CPU exception 14 (#PF page fault)"));
        // After the hand-over the loader's values are the application's.
        let app = Ending::of(&exited(57), None, &seen(&[START, HAND_OVER]));
        assert_eq!((app.kind, app.status), (EndingKind::AppFailed, 1));
        // QEMU's own failures: an even status, or 1 with a message.
        assert_eq!(Ending::of(&exited(2), None, &undecoded).status, 125);
        let plain_failure = Ending::of(&exited(1), None, &undecoded);
        assert_eq!(plain_failure.kind, EndingKind::AppFailed);
    }

    #[test]
    fn a_recording_keeps_every_end() {
        for (end, error) in [
            (exited(3), None),
            (exited(-1), None),
            (exited(1), Some("qemu-system-x86_64: could not load kernel")),
            (QemuEnd::TimedOut { seconds: 60 }, None),
            (QemuEnd::Interrupted, None),
            (QemuEnd::Killed, None),
            (QemuEnd::KvmFailed, Some("KVM internal error")),
        ] {
            let text = end.to_recorded(error);
            assert_eq!(
                QemuEnd::from_recorded(&text),
                Ok((end.clone(), error.map(str::to_string))),
                "{text}"
            );
        }
        // What `echo $? > boot.status` writes.
        assert_eq!(QemuEnd::from_recorded("35\n"), Ok((exited(35), None)));
        let error = QemuEnd::from_recorded("timeout soon").unwrap_err();
        assert!(error.starts_with("holds neither"), "{error}");
    }

    #[test]
    fn help_table_lists_every_row() {
        let table = help_table();
        assert!(table.starts_with("Exit status:\n"));
        for kind in EndingKind::ALL {
            let row = format!("  {:>11}  ", kind.statuses().to_string());
            assert!(table.contains(&row), "{row:?} in {table}");
        }
        assert!(table.lines().all(|l| l.chars().count() <= 80), "{table}");
        assert!(
            table.contains("\n          124  QEMU did not end within --timeout"),
            "{table}"
        );
    }
}
