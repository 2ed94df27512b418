//! The `stream` target: the decoder on a raw serial stream, fed whole and in
//! chunks.
//!
//! Input: one byte that sets the chunk sizes, then the stream.

use super::decoding::check_stream;

/// Runs every check on one input; panics on the first that fails. Returns the work
/// it asked for (see [`check_stream`]).
pub fn check(data: &[u8]) -> usize {
    let Some((&first, stream)) = data.split_first() else {
        return 0;
    };
    let size = usize::from(first) + 1;
    check_stream(stream, &[size, 1 + size / 3, 2 * size])
}

/// Seed inputs: the decoder's recordings.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../trace-decoder/tests/recordings"
    );
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the recordings") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let stream = std::fs::read(&path).expect("a recording");
            seeds.push((name, [&[63u8][..], &stream].concat()));
        }
    }
    seeds.sort();
    seeds
}
