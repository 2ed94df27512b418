//! rusty-trace's library, in three layers, each importing only from those below it
//! (`tests/layers.rs` checks it):
//!
//! - [`decode`]: from a serial stream's bytes to typed events and the
//!   [`decode::BootRecord`] of a boot;
//! - [`report`]: pure, a `BootRecord` in, a [`report::Report`] and its renderings
//!   (text, JSON, Chrome trace, SVG) and boot profiles out;
//! - [`host`]: everything the two command lines that show a trace (`rusty-trace`
//!   and `cargo xtask trace`) share around them: reading a live stream, showing it as
//!   it arrives, colour, the loader ELF, files, the profile flow.

pub mod decode;
pub mod host;
pub mod report;
