//! Helpers shared by the decoder's integration tests.

/// The byte ranges of the frames in a stream (between `FF 00` and the closing `00`;
/// zeros right after the marker, the encoder's empty first frame, left out).
pub fn frames(stream: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < stream.len() {
        if stream[i] == 0xFF && stream[i + 1] == 0 {
            let mut start = i + 2;
            while stream.get(start) == Some(&0) {
                start += 1;
            }
            let len = stream[start..].iter().position(|&b| b == 0).unwrap();
            if len > 0 {
                found.push(start..start + len);
            }
            i = start + len;
        } else {
            i += 1;
        }
    }
    found
}
