//! rusty-trace's library: decoding the loader's boot trace from a serial stream and
//! building reports from it.

pub mod build_id;
pub mod decode;
pub mod fixtures;
pub mod frame;
pub mod live;
pub mod report;
pub mod stream;
