//! rusty-trace's library: decoding the loader's boot trace from a serial stream and
//! building reports from it.

pub mod build_id;
pub mod decode;
pub mod live;
pub mod report;
pub mod stream;
