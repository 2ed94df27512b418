//! rusty-trace's library: decoding the loader's boot trace from a serial stream and
//! building reports from it, and everything the two command lines that show it
//! (`rusty-trace` and `cargo xtask trace`) share: reading a live stream, showing it
//! as it arrives, colour, the loader ELF, output files and boot profiles.

pub mod build_id;
pub mod color;
pub mod consumer;
pub mod decode;
pub mod fixtures;
pub mod frame;
pub mod input;
pub mod live;
pub mod loader_elf;
pub mod outputs;
pub mod profile;
pub mod pump;
pub mod qemu_state;
pub mod report;
pub mod stream;
pub mod symbols;
pub mod table;
pub mod text_lines;
