//! The defmt global logger: frames go to the serial port, each preceded by the two
//! bytes `FF 00`, so that text (the kernel's output, the loader's error line) and
//! frames share one stream and a reader can always tell them apart: a frame ends at
//! its `00`, text runs from there to the next `FF 00`.

use core::sync::atomic::{AtomicBool, Ordering};

use defmt::Encoder;

use crate::{arch, console};

/// Written before every frame; see the module comment.
pub const FRAME_MARKER: [u8; 2] = [0xFF, 0x00];

// Every frame carries the ticks since the Multiboot entry (see docs/trace-format.md).
defmt::timestamp!("{=u64}", arch::ticks_since_entry());

/// One frame at a time: set between acquire and release.
static TAKEN: AtomicBool = AtomicBool::new(false);
static mut ENCODER: Encoder = Encoder::new();

/// The encoder, reached through a raw pointer (a reference to a `static mut` is what
/// Rust warns against); only used between acquire and release.
fn encoder() -> *mut Encoder {
    &raw mut ENCODER
}

/// True while a frame is being written (an exception handler must not start one).
pub fn frame_in_progress() -> bool {
    TAKEN.load(Ordering::Relaxed)
}

#[defmt::global_logger]
struct SerialLogger;

// SAFETY: `acquire` refuses re-entry, so the encoder is used by one frame at a time;
// the loader runs on one CPU with interrupts off.
unsafe impl defmt::Logger for SerialLogger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            panic!("defmt logger re-entered");
        }
        console::write_bytes(&FRAME_MARKER);
        // SAFETY: TAKEN grants exclusive use of the encoder until release.
        unsafe { (*encoder()).start_frame(console::write_bytes) }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: called after acquire, which granted exclusive use.
        unsafe { (*encoder()).end_frame(console::write_bytes) }
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called between acquire and release.
        unsafe { (*encoder()).write(bytes, console::write_bytes) }
    }
}
