//! The defmt global logger: frames go to the serial port, each preceded by the two
//! bytes `FF 00`, so that text (the kernel's output, the loader's error line) and
//! frames share one stream and a reader can always tell them apart: a frame ends at
//! its `00`, text runs from there to the next `FF 00`.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use defmt::Encoder;
use rusty_loader::wire::FRAME_MARKER;

use crate::{arch, console};

/// The build identity `LoaderStart` sends: xtask patches this placeholder after
/// linking with a hash of the defmt table, which the decoder recomputes from the ELF
/// it is given, so a trace is never decoded with the wrong table. An atomic, so that
/// the compiler reads the patched bytes instead of folding in the placeholder.
#[unsafe(no_mangle)]
#[used]
static RUSTY_LOADER_BUILD_ID: AtomicU32 = AtomicU32::new(u32::from_le_bytes(*b"BLID"));

/// The build identity stamped into this image.
pub fn build_id() -> u32 {
    RUSTY_LOADER_BUILD_ID.load(Ordering::Relaxed)
}

// Every frame carries the ticks since the previous frame (see "Timestamps" in
// docs/trace-format.md): 2–4 bytes on the wire where ticks since entry took 5.
defmt::timestamp!("{=u32}", ticks_since_previous_frame());

/// The time of the previous frame, in ticks of loader work since the Multiboot entry.
static PREVIOUS_FRAME: AtomicU64 = AtomicU64::new(0);
/// The time the next frame is to carry, or `NOW`.
static NEXT_FRAME_AT: AtomicU64 = AtomicU64::new(NOW);
const NOW: u64 = u64::MAX;
/// TSC ticks spent writing frames so far: taken out of every later timestamp, so
/// that the trace's times are the loader's work and its own cost is reported once
/// (`trace_ticks` of the last event).
static OUTPUT_TICKS: AtomicU64 = AtomicU64::new(0);
/// The TSC when the current frame began.
static FRAME_START: AtomicU64 = AtomicU64::new(0);

/// Makes the next frame carry the time `ticks` (since the Multiboot entry) instead
/// of the time it is written: for moments recorded before any frame was written. A
/// time before the previous frame's is sent as 0 ticks later, so that the sum of
/// timestamps never goes back.
pub fn time_next_frame(ticks: u64) {
    NEXT_FRAME_AT.store(ticks, Ordering::Relaxed);
}

/// The ticks spent writing the trace so far (not counting the frame being written).
pub fn output_ticks() -> u64 {
    OUTPUT_TICKS.load(Ordering::Relaxed)
}

/// The frame's timestamp: the ticks of loader work since the previous frame. A gap
/// over `u32::MAX` ticks (1.5 s at 2.8 GHz) is sent as `u32::MAX`, which a decoder
/// warns about (the times after it are early).
fn ticks_since_previous_frame() -> u32 {
    let at = match NEXT_FRAME_AT.swap(NOW, Ordering::Relaxed) {
        NOW => FRAME_START
            .load(Ordering::Relaxed)
            .wrapping_sub(arch::early_stamps().entry)
            .saturating_sub(OUTPUT_TICKS.load(Ordering::Relaxed)),
        at => at,
    };
    let previous = PREVIOUS_FRAME.fetch_max(at, Ordering::Relaxed);
    u32::try_from(at.saturating_sub(previous)).unwrap_or(u32::MAX)
}

/// One frame at a time: set between acquire and release.
static TAKEN: AtomicBool = AtomicBool::new(false);
static mut ENCODER: Encoder = Encoder::new();

/// The encoder, reached through a raw pointer (a reference to a `static mut` is what
/// Rust warns against); only used between acquire and release.
fn encoder() -> *mut Encoder {
    &raw mut ENCODER
}

/// A frame is collected here and written to the UART in one go at its end, so the
/// UART is asked whether its FIFO is empty once per 16 bytes instead of once per
/// byte (each question is a port read, which costs microseconds under emulation).
/// A frame longer than the buffer is written in parts.
const BUFFER_SIZE: usize = 256;
struct FrameBuffer {
    bytes: [u8; BUFFER_SIZE],
    len: usize,
}
static mut BUFFER: FrameBuffer = FrameBuffer {
    bytes: [0; BUFFER_SIZE],
    len: 0,
};

/// The frame buffer, reached through a raw pointer; only used between acquire and
/// release.
fn buffer() -> *mut FrameBuffer {
    &raw mut BUFFER
}

impl FrameBuffer {
    /// Inlined into the encoder's loop, which hands over one byte at a time: a call
    /// per byte was a third of the trace's instructions.
    #[inline(always)]
    fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.len >= BUFFER_SIZE {
                self.flush();
            }
            // `len < BUFFER_SIZE` here: the flush emptied a full buffer.
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
    }

    fn flush(&mut self) {
        console::write_bytes(&self.bytes[..self.len]);
        self.len = 0;
    }
}

/// True while a frame is being written (an exception handler must not start one).
pub fn frame_in_progress() -> bool {
    TAKEN.load(Ordering::Relaxed)
}

#[defmt::global_logger]
struct SerialLogger;

// SAFETY: `acquire` refuses re-entry, so the encoder and the buffer are used by one
// frame at a time; the loader runs on one CPU with interrupts off.
unsafe impl defmt::Logger for SerialLogger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            panic!("defmt logger re-entered");
        }
        FRAME_START.store(arch::rdtsc(), Ordering::Relaxed);
        // SAFETY: TAKEN grants exclusive use of the encoder and buffer until release.
        unsafe {
            let buffer = &mut *buffer();
            buffer.push(&FRAME_MARKER);
            (*encoder()).start_frame(|bytes| buffer.push(bytes));
        }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: called after acquire, which granted exclusive use.
        unsafe {
            let buffer = &mut *buffer();
            (*encoder()).end_frame(|bytes| buffer.push(bytes));
            buffer.flush();
        }
        let spent = arch::rdtsc().wrapping_sub(FRAME_START.load(Ordering::Relaxed));
        OUTPUT_TICKS.fetch_add(spent, Ordering::Relaxed);
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called between acquire and release.
        unsafe {
            let buffer = &mut *buffer();
            (*encoder()).write(bytes, |bytes| buffer.push(bytes));
        }
    }
}
