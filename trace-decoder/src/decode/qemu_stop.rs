//! What QEMU said about the guest when the loader could not: how it stopped (a
//! triple fault, a reset, a power-off, or stopped by the runner at a timeout or on
//! Ctrl-C) and
//! its `info registers` text. `cargo xtask trace` asks QEMU (through QMP) and puts a
//! [`QemuStop`] into the boot record; the report reads the registers from it
//! (`report::registers`) and only repeats what it holds.

use std::time::Duration;

/// How the guest stopped, as QEMU said it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// The guest reset and QEMU logged "Triple fault" for it (TCG).
    TripleFault,
    /// The guest reset (QEMU's `SHUTDOWN` event, reason `guest-reset`), without a
    /// log that says why (KVM): a triple fault, or a reset the kernel asked for.
    GuestReset,
    /// The guest shut down for another reason QEMU named (`guest-shutdown`: a
    /// power-off).
    Shutdown(String),
    /// Still running at the timeout: the runner stopped it.
    Hang {
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// Still running when Ctrl-C came: the runner stopped it.
    Interrupted,
}

/// What QEMU said when the guest stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuStop {
    pub kind: StopKind,
    /// When, on the session's clock (the same as the record's host times).
    pub at: Option<Duration>,
    /// `info registers` as QEMU printed it, when it answered.
    pub registers: Option<String>,
}
