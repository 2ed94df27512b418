//! Reports built from a decoded boot: a timeline of boot stages with a summary, a
//! memory map, and machine-readable renderings (JSON, Chrome trace, SVG).
//! Everything here is pure: a [`BootRecord`] in, text out.

use std::time::Duration;

use crate::decode::Event;

/// What the host saw and when, relative to the moment reading began (for a live
/// QEMU run: when QEMU was started).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostTimes {
    /// The first byte of the stream (firmware or loader).
    pub first_byte: Option<Duration>,
    /// Arrival of the loader's first event (`LoaderStart`).
    pub loader_start: Option<Duration>,
    /// Arrival of `HandOver`.
    pub hand_over: Option<Duration>,
    /// The first text byte after `HandOver`: the kernel's first output.
    pub first_kernel_output: Option<Duration>,
    /// End of the stream (EOF or QEMU's exit).
    pub end: Option<Duration>,
}

/// Everything known about one boot.
#[derive(Clone, Debug, Default)]
pub struct BootRecord {
    /// The loader's events, in stream order.
    pub events: Vec<Event>,
    /// Host-side arrival times (all None for a recorded stream without them).
    pub host: HostTimes,
    /// QEMU's exit status, when known.
    pub exit_status: Option<i32>,
    /// Frames that did not decode.
    pub malformed_frames: usize,
    /// The stream ended inside a frame.
    pub truncated: bool,
    /// The loader image `[start, end)`, from the ELF's `__loader_start`/`__loader_end`.
    pub loader_image: Option<(u64, u64)>,
    /// Bytes of text (kernel output and loader text lines) seen.
    pub text_bytes: usize,
}
