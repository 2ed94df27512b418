//! The host layer: everything both command lines (`rusty-trace` and `cargo xtask
//! trace`) do around decoding and reports, once: reading a live stream in a thread
//! and Ctrl-C ([`pump`]), opening inputs ([`input`]), showing what arrives on a
//! terminal or a pipe ([`consumer`], [`event_line`], [`color`]), choosing and
//! reading the loader ELF ([`loader_elf`]), writing files ([`outputs`]) and the
//! profile flow ([`profile`]). It builds on the two layers below it, `decode` and
//! `report`, which import nothing from here.

pub mod color;
pub mod consumer;
pub mod event_line;
pub mod input;
pub mod loader_elf;
pub mod outputs;
pub mod profile;
pub mod pump;
