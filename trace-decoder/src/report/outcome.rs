//! How a boot ended: handed over, refused, a CPU exception, or a trace that stops
//! early; and what QEMU's exit status says (docs/exit-codes.md).

use rusty_loader::error::ExitCode;
use serde::Serialize;

use rusty_loader::wire::LoaderEvent;

use super::after::StopReport;
use super::format::{escape_text, hex, ser_opt_hex};
use super::{first, Warning};
use crate::decode::Event;

/// How the boot ended, as far as the trace tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// `HandOver` seen and nothing went wrong in the trace after it.
    HandedOver,
    /// `Refused`: the loader declined the input.
    Refused,
    /// `CpuException`, in the loader or in the kernel before its own IDT.
    CpuException,
    /// None of these: the trace ended before the hand-over.
    Truncated,
    /// None of these from a loader that traces only errors and warnings: nothing
    /// went wrong in the loader (the boot's stages are not traced).
    ErrorsOnly,
    /// QEMU says the guest triple-faulted (after the hand-over, the loader's
    /// handlers gone or unusable).
    TripleFault,
    /// QEMU says the guest reset, without saying why.
    GuestReset,
    /// QEMU says the guest shut down (powered off) without an exit code.
    Shutdown,
    /// Still running at the timeout: QEMU stopped it.
    Hang,
    /// Still running when Ctrl-C came: QEMU stopped it.
    Interrupted,
}

/// The jump into the kernel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HandOverInfo {
    /// The kernel's entry point.
    #[serde(serialize_with = "ser_opt_hex")]
    pub entry: Option<u64>,
    /// The boot info address (`rdi`).
    #[serde(serialize_with = "ser_opt_hex")]
    pub boot_info: Option<u64>,
    /// The lowest address of the kernel stack (`rsp`).
    #[serde(serialize_with = "ser_opt_hex")]
    pub stack: Option<u64>,
}

/// A refusal, as the loader sent it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Refusal {
    /// The exit code's port value (QEMU status `2 * code + 1`).
    pub code: Option<u64>,
    /// The exit code's name, e.g. `not-elf`.
    pub name: String,
    /// The loader's one-line explanation.
    pub text: String,
}

/// A CPU exception, as the loader's IDT reported it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exception {
    /// The vector number.
    pub vector: Option<u64>,
    /// The vector's mnemonic and name, e.g. `#PF page fault`.
    pub name: String,
    /// The error code pushed by the CPU (0 for vectors without one).
    #[serde(serialize_with = "ser_opt_hex")]
    pub error_code: Option<u64>,
    /// The faulting instruction.
    #[serde(serialize_with = "ser_opt_hex")]
    pub rip: Option<u64>,
    /// CR2: the faulting address of a page fault.
    #[serde(serialize_with = "ser_opt_hex")]
    pub cr2: Option<u64>,
    /// True when it happened after the hand-over, in the kernel.
    pub in_kernel: Option<bool>,
}

/// What QEMU's exit status means (docs/exit-codes.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExitStatus {
    /// The status QEMU exited with.
    pub status: i32,
    /// Who ended the run: `kernel`, `test-kernel`, `loader`, `cpu-exception`, `qemu`
    /// or `unknown`.
    pub by: &'static str,
    /// The loader's exit-code name, for `loader` and `cpu-exception`.
    pub name: Option<String>,
    /// One sentence for people.
    pub meaning: String,
}

/// How the boot ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// The kind of ending.
    pub kind: OutcomeKind,
    /// One sentence for people.
    pub message: String,
    /// The hand-over, when `HandOver` was seen.
    pub hand_over: Option<HandOverInfo>,
    /// The refusal, when `Refused` was seen.
    pub refusal: Option<Refusal>,
    /// The exception, when `CpuException` was seen.
    pub exception: Option<Exception>,
    /// QEMU's exit status and its meaning, when known.
    pub exit: Option<ExitStatus>,
}

impl Outcome {
    /// The boot as QEMU saw it stop after what the trace tells (a triple fault, a
    /// reset, a power-off, a hang, Ctrl-C): that is how it ended.
    pub fn then_stopped(&mut self, stop: &StopReport) {
        self.kind = match stop.kind {
            "triple-fault" => OutcomeKind::TripleFault,
            "guest-reset" => OutcomeKind::GuestReset,
            "hang" => OutcomeKind::Hang,
            "interrupted" => OutcomeKind::Interrupted,
            _ => OutcomeKind::Shutdown,
        };
        self.message = match &self.hand_over {
            Some(_) => format!("{}, then {}", self.message, stop.message),
            None => stop.message.clone(),
        };
    }
}

/// The mnemonic and name of an x86 exception vector.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range exceeded",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        9 => "coprocessor segment overrun",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack-segment fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 floating-point",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD floating-point",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        28 => "#HV hypervisor injection",
        29 => "#VC VMM communication",
        30 => "#SX security",
        _ => "reserved vector",
    }
}

/// Reads QEMU's exit status by the table in docs/exit-codes.md; the loader's codes
/// come from `rusty_loader::error::ExitCode`, where they are defined.
pub fn exit_status(status: i32) -> ExitStatus {
    let value = (i64::from(status) - 1) / 2;
    let odd = status > 0 && status % 2 == 1;
    let (by, name, meaning) = if status == 3 {
        ("kernel", None, "the kernel reported success".to_string())
    } else if status == 1 {
        (
            "kernel",
            None,
            "the kernel reported failure (or QEMU itself failed: its stderr then says why)"
                .to_string(),
        )
    } else if odd && (2..=15).contains(&value) {
        (
            "test-kernel",
            None,
            format!("a test kernel's check group {value} failed"),
        )
    } else if let Some(code) = ExitCode::ALL
        .iter()
        .find(|c| **c != ExitCode::CpuException && c.qemu_status() == status)
    {
        (
            "loader",
            Some(code.name().to_string()),
            format!("the loader refused to boot ({})", code.name()),
        )
    } else if odd && (0x40..0x60).contains(&value) {
        let vector = (value - 0x40) as u64;
        (
            "cpu-exception",
            Some(ExitCode::CpuException.name().to_string()),
            format!("CPU exception {vector} ({})", exception_name(vector)),
        )
    } else if status == 0 {
        (
            "qemu",
            None,
            "no isa-debug-exit code: the guest reset (a triple fault, with -no-reboot) or powered off, or QEMU ended on a signal (Ctrl-C)".to_string(),
        )
    } else {
        ("unknown", None, "not an isa-debug-exit code".to_string())
    };
    ExitStatus {
        status,
        by,
        name,
        meaning,
    }
}

/// Derives the outcome; disagreements between the trace and the exit status go to
/// `warnings`.
pub fn build(
    events: &[Event],
    status: Option<i32>,
    errors_only: bool,
    warnings: &mut Vec<Warning>,
) -> Outcome {
    let hand_over = HandOverInfo::of(events);
    let refusal = Refusal::of(events);
    let exception = Exception::of(events);
    let exit = status.map(exit_status);
    let (kind, message) = ending(
        &hand_over,
        &refusal,
        &exception,
        errors_only,
        events.is_empty(),
    );
    if let Some(warning) = exit
        .as_ref()
        .and_then(|exit| exit_mismatch(exit, &refusal, &exception))
    {
        warnings.push(warning);
    }
    Outcome {
        kind,
        message,
        hand_over,
        refusal,
        exception,
        exit,
    }
}

impl HandOverInfo {
    /// From `HandOver`.
    fn of(events: &[Event]) -> Option<HandOverInfo> {
        first!(events, LoaderEvent::HandOver { entry, rdi, rsp, .. } => HandOverInfo {
            entry: Some(*entry),
            boot_info: Some(*rdi),
            stack: Some(*rsp),
        })
    }
}

impl Refusal {
    /// From `Refused`.
    fn of(events: &[Event]) -> Option<Refusal> {
        first!(events, LoaderEvent::Refused { code, name, text, .. } => Refusal {
            code: Some(u64::from(*code)),
            name: name.clone(),
            text: text.clone(),
        })
    }
}

impl Exception {
    /// From `CpuException`.
    fn of(events: &[Event]) -> Option<Exception> {
        first!(events, LoaderEvent::CpuException { vector, error_code, rip, cr2, in_kernel, .. } => Exception {
            vector: Some(u64::from(*vector)),
            name: exception_name(u64::from(*vector)).to_string(),
            error_code: Some(*error_code),
            rip: Some(*rip),
            cr2: Some(*cr2),
            in_kernel: Some(*in_kernel),
        })
    }

    /// One sentence: the vector, where, the faulting instruction and address.
    fn message(&self) -> String {
        let place = match self.in_kernel {
            Some(true) => "in the kernel",
            Some(false) => "in the loader",
            None => "in the loader or the kernel",
        };
        let vector = self.vector.map_or("?".to_string(), |v| v.to_string());
        let mut message = format!("CPU exception {vector} ({}) {place}", self.name);
        if let Some(rip) = self.rip {
            message += &format!(" at rip {}", hex(rip));
        }
        if let Some(cr2) = self.cr2.filter(|_| self.vector == Some(14)) {
            message += &format!(", address {}", hex(cr2));
        }
        message
    }
}

/// How the boot ended, and that in one sentence: an exception wins over a refusal,
/// which wins over a hand-over.
fn ending(
    hand_over: &Option<HandOverInfo>,
    refusal: &Option<Refusal>,
    exception: &Option<Exception>,
    errors_only: bool,
    no_events: bool,
) -> (OutcomeKind, String) {
    if let Some(x) = exception {
        let message = match hand_over {
            Some(_) => format!("handed over to the kernel, then {}", x.message()),
            None => x.message(),
        };
        (OutcomeKind::CpuException, message)
    } else if let Some(r) = refusal {
        (
            OutcomeKind::Refused,
            format!(
                "refused ({}): {}",
                escape_text(&r.name),
                escape_text(&r.text)
            ),
        )
    } else if let Some(h) = hand_over {
        let entry = h.entry.map_or("?".to_string(), hex);
        (
            OutcomeKind::HandedOver,
            format!("handed over to the kernel at {entry}"),
        )
    } else if errors_only {
        (
            OutcomeKind::ErrorsOnly,
            "no error from the loader (it was built to trace only errors and warnings: --trace-level info shows the boot stages)".to_string(),
        )
    } else if no_events {
        (
            OutcomeKind::Truncated,
            "no trace: no loader event arrived (the loader did not start, or this is not its output)".to_string(),
        )
    } else {
        (
            OutcomeKind::Truncated,
            "trace ended before the hand-over".to_string(),
        )
    }
}

/// A warning when QEMU's exit status is not the one the trace's ending implies (a
/// damaged field that cannot be one is no evidence either way).
fn exit_mismatch(
    exit: &ExitStatus,
    refusal: &Option<Refusal>,
    exception: &Option<Exception>,
) -> Option<Warning> {
    let implied = |value: Option<u64>, base: i64| {
        i64::try_from(value?)
            .ok()?
            .checked_mul(2)?
            .checked_add(base)
    };
    let expected = match (exception, refusal) {
        (Some(x), _) => implied(x.vector, 129),
        (None, Some(r)) => implied(r.code, 1),
        _ => None,
    };
    let expected = expected.filter(|&e| e != i64::from(exit.status))?;
    Some(Warning::new(
        "exit-status",
        format!(
            "QEMU exit status {} does not match the trace's ending (expected {expected})",
            exit.status
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses() {
        let check = |status, by, name: Option<&str>| {
            let exit = exit_status(status);
            assert_eq!(
                (exit.by, exit.name.as_deref()),
                (by, name),
                "status {status}"
            );
        };
        check(3, "kernel", None);
        check(1, "kernel", None);
        check(5, "test-kernel", None);
        check(31, "test-kernel", None);
        check(33, "loader", Some("no-module"));
        check(35, "loader", Some("not-elf"));
        check(65, "loader", Some("fdt-build"));
        check(67, "loader", Some("elf-too-complex"));
        check(129 + 28, "cpu-exception", Some("cpu-exception"));
        check(0, "qemu", None);
        check(-1, "unknown", None);
        check(2, "unknown", None);
        check(71, "loader", Some("bad-start-info"));
        check(73, "loader", Some("inconsistent-dynamic"));
        check(93, "loader", Some("empty-image"));
        // The first odd status past the loader's last code.
        check(95, "unknown", None);
        assert_eq!(
            exit_status(129 + 28).meaning,
            "CPU exception 14 (#PF page fault)"
        );
    }
}
