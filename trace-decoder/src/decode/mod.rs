//! The decoding layer: from the bytes of a serial stream to the typed events of one
//! boot and the [`BootRecord`] the reports are built from. It knows nothing of
//! reports, terminals, files or threads (it imports neither `crate::report` nor
//! `crate::host`: `tests/layers.rs` holds it to that), so anything that has bytes
//! can decode, a fuzz target as well as a command line.
//!
//! `bytes → stream::Demux → frames → trace_table::FrameDecoder → Event →
//! session::Session → BootRecord`:
//!
//! - [`stream`] splits text from frames, [`frame`] reads a frame's arguments by the
//!   types of its format string, [`table`] is the loader ELF's `.defmt` table and
//!   [`build_id`] its build identity;
//! - [`trace_table`] turns frames into typed [`Event`]s ([`event`]);
//! - [`session`] is a decoding session over a live or recorded stream, and
//!   [`record`] what it leaves: the [`BootRecord`], with the kernel's text as lines
//!   ([`text_lines`]) and how QEMU saw the guest stop ([`qemu_stop`]);
//! - [`fixtures`] writes events from their displayed form, for tests.

pub mod build_id;
pub mod display;
pub mod event;
pub mod fixtures;
pub mod frame;
pub mod qemu_stop;
pub mod record;
pub mod session;
pub mod stream;
pub mod table;
pub mod text_lines;
pub mod trace_table;

pub use event::{memory_map, Event, LinePiece};
pub use qemu_stop::{QemuStop, StopKind};
pub use record::{decode_recording, BootRecord, Decoded, FrameCounts, HostTimes};
pub use session::{Output, Session, TraceStatus};
pub use trace_table::{format_mismatch, FrameDecoder, TraceTable, TRACE_FORMAT};
