//! rusty-trace's own frame decoder against the reference, defmt-decoder (what
//! `defmt-print` uses): every frame of every recorded boot decodes to the same
//! level, the same timestamp and the same displayed message, so the typed events
//! are exactly what the loader sent.

use std::fs;
use std::path::PathBuf;

use defmt_decoder::{DecodeError, Table};
use trace_decoder::decode::stream::{Demux, Piece};
use trace_decoder::decode::TraceTable;

fn recordings() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/recordings")
}

/// The frames of a recorded stream, in order.
fn frames(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut demux = Demux::new();
    let mut take = |piece| {
        if let Piece::Frame(frame) = piece {
            frames.push(frame);
        }
    };
    demux.feed(stream, &mut take);
    demux.finish(&mut take);
    frames
}

#[test]
fn every_recorded_frame_reads_as_defmt_decoder_reads_it() {
    let elf = fs::read(recordings().join("rusty-loader.elf")).unwrap();
    let ours = TraceTable::from_elf(&elf).unwrap();
    let reference = Table::parse(&elf).unwrap().unwrap();
    let mut compared = 0;
    for entry in fs::read_dir(recordings()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let stream = fs::read(&path).unwrap();
        let mut decoder = ours.frame_decoder();
        let mut clock = 0u64;
        for frame in frames(&stream) {
            let mut bytes = frame.clone();
            bytes.push(0);
            let mut stream_decoder = reference.new_stream_decoder();
            stream_decoder.received(&bytes);
            let expected = match stream_decoder.decode() {
                Ok(frame) => frame,
                Err(DecodeError::UnexpectedEof | DecodeError::Malformed) => {
                    panic!(
                        "{}: the reference cannot decode a recorded frame",
                        path.display()
                    )
                }
            };
            let event = decoder.decode(&frame).unwrap_or_else(|e| {
                panic!("{}: {e:?} on a frame the reference reads", path.display())
            });
            assert_eq!(
                event.message(),
                expected.display_message().to_string(),
                "{}",
                path.display()
            );
            assert_eq!(
                Some(event.level.name()),
                expected.level().map(|l| l.as_str()),
                "{}",
                path.display()
            );
            let ticks: u64 = expected
                .display_timestamp()
                .unwrap()
                .to_string()
                .parse()
                .unwrap();
            clock = if event.name() == "LoaderStart" {
                ticks
            } else {
                clock + ticks
            };
            assert_eq!(event.timestamp, clock, "{}", path.display());
            compared += 1;
        }
    }
    assert!(compared >= 50, "only {compared} frames compared");
}
