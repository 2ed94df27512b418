//! The notes: the HERMIT note, whose presence makes the file a Hermit application
//! and whose descriptor is the entry ABI version, and the GNU ABI tag, which carries
//! the kernel version.
//!
//! A run of zero bytes is a valid sequence of empty 12-byte notes, and every
//! `PT_NOTE` header may point at the same bytes, so reading every note of every
//! header costs headers × bytes / 12 note reads: 65 534 headers over 4 MiB took
//! minutes on the host, a hang under emulation. The scan therefore reads each file
//! range once, refuses ranges that overlap without being identical, and refuses to
//! start when the ranges hold more than [`MAX_NOTE_BYTES`]: it never examines more
//! than that many bytes, whatever the file.

use alloc::vec::Vec;

use goblin::elf::program_header::PT_NOTE;

use super::program_headers::ProgramHeaderTable;
use super::records::{self, SIZEOF_NHDR};
use super::{file_slice, malformed, HermitVersion};
use crate::error::LoadError;
use crate::le::u32_at;

/// The most bytes of `PT_NOTE` segments [`super::inspect`] reads.
///
/// A Hermit application carries a few hundred bytes of notes (the HERMIT note, the
/// GNU ABI tag, uhyve's note, a build id, GNU properties), so 64 KiB leaves a margin
/// of a hundred and more, while the scan stays at most 5 462 note headers, well under
/// a millisecond even under emulation.
pub const MAX_NOTE_BYTES: u64 = 64 * 1024;

/// Note type of the HERMIT note, whose one-byte descriptor is the entry ABI version.
pub(super) const NT_HERMIT_ENTRY_VERSION: u32 = 0x5a00;
/// Owner name of the HERMIT note.
const HERMIT_NOTE_NAME: &[u8] = b"HERMIT";
/// Note type of the GNU ABI tag, whose descriptor is `{os, major, minor, patch}`.
pub(super) const NT_GNU_ABI_TAG: u32 = 1;
/// Owner name of the GNU ABI tag note.
const GNU_NOTE_NAME: &[u8] = b"GNU";
/// The `os` field of a GNU ABI tag written by a Hermit kernel.
const ELF_NOTE_OS_HERMIT: u32 = 6;
/// Size of a note header: `n_namesz`, `n_descsz` and `n_type`, 32 bits each in ELF64 too.
const NOTE_HEADER_SIZE: usize = SIZEOF_NHDR;

/// What the notes say about the application.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct NoteFindings {
    pub(super) entry_version: Option<u8>,
    pub(super) kernel_version: Option<HermitVersion>,
    /// How many bytes the scan walked through, for the tests that hold it to
    /// [`MAX_NOTE_BYTES`].
    pub(super) bytes_scanned: u64,
}

/// The file bytes of one `PT_NOTE` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NoteRange<'a> {
    /// The index of the first program header that names these bytes.
    index: usize,
    /// Where the bytes start in the file.
    start: u64,
    /// Where the bytes end in the file.
    end: u64,
    /// Names and descriptors are padded to this many bytes.
    alignment: usize,
    /// The bytes themselves.
    bytes: &'a [u8],
}

/// Reads the notes of every `PT_NOTE` segment, each file range once; the first HERMIT
/// note and the first Hermit GNU ABI tag, in program header order, count.
///
/// Upstream reads only the first `PT_NOTE`, but linkers put notes of different
/// alignment into separate segments, so the HERMIT note may sit in any of them.
pub(super) fn scan_notes(
    bytes: &[u8],
    program_headers: &ProgramHeaderTable,
) -> Result<NoteFindings, LoadError> {
    let mut findings = NoteFindings::default();
    for range in distinct_note_ranges(bytes, program_headers)? {
        let segment = range.bytes;
        let mut position = 0;
        // A tail shorter than a note header is padding.
        while segment.len().saturating_sub(position) >= NOTE_HEADER_SIZE {
            let note = read_note(segment, position, range.alignment)
                .ok_or(malformed("a note runs past the end of its PT_NOTE segment"))?;
            // Every note moves the position forward by at least its header, so the
            // loop ends and walks each byte of the segment at most once.
            position = note.next;
            if note.name == HERMIT_NOTE_NAME && note.n_type == NT_HERMIT_ENTRY_VERSION {
                let version = *note
                    .desc
                    .first()
                    .ok_or(malformed("the HERMIT note has no version byte"))?;
                findings.entry_version.get_or_insert(version);
            } else if note.name == GNU_NOTE_NAME && note.n_type == NT_GNU_ABI_TAG {
                if let Some(version) = hermit_version_from_abi_tag(note.desc) {
                    findings.kernel_version.get_or_insert(version);
                }
            }
        }
        findings.bytes_scanned = findings
            .bytes_scanned
            .saturating_add(u64::try_from(position).unwrap_or(u64::MAX));
    }
    Ok(findings)
}

/// The file ranges of the `PT_NOTE` segments, each once, in program header order,
/// after checking that they lie inside the file, do not overlap and together hold at
/// most [`MAX_NOTE_BYTES`].
///
/// Headers that name the same bytes with the same alignment name the same notes, so
/// one scan serves them all. Ranges that overlap otherwise would make some bytes part
/// of two different note sequences, which no linker writes, so they are refused.
fn distinct_note_ranges<'a>(
    bytes: &'a [u8],
    program_headers: &ProgramHeaderTable,
) -> Result<Vec<NoteRange<'a>>, LoadError> {
    let mut ranges = Vec::new();
    for (index, header) in program_headers.of_type(PT_NOTE) {
        let segment = file_slice(bytes, header.p_offset, header.p_filesz)
            .ok_or(malformed("a PT_NOTE segment lies outside the file"))?;
        if segment.is_empty() {
            // No bytes, no notes, and nothing to overlap with.
            continue;
        }
        // Names and descriptors are padded to 4 bytes, or to 8 in segments aligned so
        // (such as GNU property notes).
        let alignment = if header.p_align == 8 { 8 } else { 4 };
        // The range lies inside the file, so its end does not overflow.
        let end = header.p_offset.saturating_add(header.p_filesz);
        // The table is bounded, but the heap is small and an allocation failure on
        // bare metal is a panic, so a failure is still a refusal.
        ranges
            .try_reserve(1)
            .map_err(|_| malformed("too many PT_NOTE segments for the loader's heap"))?;
        ranges.push(NoteRange {
            index,
            start: header.p_offset,
            end,
            alignment,
            bytes: segment,
        });
    }

    // Sorted by place, identical ranges are neighbours, and if any two ranges overlap
    // then two neighbours do: the next start after a range's start is at most the
    // overlapping one's. The index comes last, so the first of identical ranges is
    // the one a scan in header order would have met first.
    ranges.sort_unstable_by_key(|range| (range.start, range.end, range.alignment, range.index));
    ranges.dedup_by(|later, earlier| {
        (later.start, later.end, later.alignment) == (earlier.start, earlier.end, earlier.alignment)
    });
    if ranges.windows(2).any(|pair| pair[1].start < pair[0].end) {
        return Err(malformed("PT_NOTE segments overlap"));
    }
    let total = ranges.iter().fold(0_u64, |total, range| {
        total.saturating_add(range.end - range.start)
    });
    if total > MAX_NOTE_BYTES {
        return Err(LoadError::ElfTooComplex {
            what: "bytes of PT_NOTE segments",
            found: total,
            limit: MAX_NOTE_BYTES,
        });
    }
    ranges.sort_unstable_by_key(|range| range.index);
    Ok(ranges)
}

/// One note inside a `PT_NOTE` segment.
struct Note<'a> {
    /// The owner name up to its terminating NUL.
    name: &'a [u8],
    n_type: u32,
    desc: &'a [u8],
    /// Where the next note starts in the segment.
    next: usize,
}

fn read_note(segment: &[u8], position: usize, alignment: usize) -> Option<Note<'_>> {
    let header = records::note_header(segment.get(position..)?.first_chunk::<NOTE_HEADER_SIZE>()?);
    let name_start = position.checked_add(NOTE_HEADER_SIZE)?;
    let name_end = name_start.checked_add(usize::try_from(header.n_namesz).ok()?)?;
    let desc_start = align_up(name_end, alignment)?;
    let desc_end = desc_start.checked_add(usize::try_from(header.n_descsz).ok()?)?;
    let raw_name = segment.get(name_start..name_end)?;
    let desc = segment.get(desc_start..desc_end)?;
    let name = raw_name.split(|&byte| byte == 0).next().unwrap_or_default();
    // The last note's padding may be cut off by the end of the segment.
    let next = align_up(desc_end, alignment)?.min(segment.len());
    Some(Note {
        name,
        n_type: header.n_type,
        desc,
        next,
    })
}

/// `value` rounded up to a multiple of `alignment` (a power of two).
fn align_up(value: usize, alignment: usize) -> Option<usize> {
    let mask = alignment.checked_sub(1)?;
    Some(value.checked_add(mask)? & !mask)
}

/// The kernel version in a GNU ABI tag, if the tag is Hermit's (`os` = 6).
fn hermit_version_from_abi_tag(desc: &[u8]) -> Option<HermitVersion> {
    let desc: &[u8; 16] = desc.try_into().ok()?;
    let field = |index: usize| u32_at(desc, index * 4);
    if field(0) != ELF_NOTE_OS_HERMIT {
        return None;
    }
    Some(HermitVersion {
        major: field(1),
        minor: field(2),
        patch: field(3),
    })
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use goblin::elf::program_header::{PF_R, PT_NOTE};
    use goblin::elf64::program_header::{ProgramHeader, SIZEOF_PHDR};

    use super::super::program_headers::{read_header, ProgramHeaderTable};
    use super::super::test_elf::*;
    use super::super::{inspect, MAX_PROGRAM_HEADERS};
    use super::*;
    use crate::error::ExitCode;

    /// The shape a fuzzing campaign found: as many program headers as `e_phnum` allows
    /// (65 535 announces extended numbering).
    const MOST_HEADERS: u16 = 0xfffe;
    /// Index of the `PT_NOTE` header that `TestElf::second_notes` adds: after the
    /// three `PT_LOAD`, the first `PT_NOTE`, `PT_DYNAMIC` and `PT_TLS`.
    const SECOND_NOTE_INDEX: usize = 6;

    /// An ELF header followed by `count` `PT_NOTE` headers that all name `ranges[i %
    /// ranges.len()]`, where each range is (file offset, size), and `contents` after
    /// the table, at the offset [`contents_offset`] gives.
    fn note_headers(count: u16, ranges: &[(u64, u64)], contents: &[u8]) -> Vec<u8> {
        let mut bytes = test_dyn().build();
        bytes.truncate(PHDR_OFFSET);
        put(&mut bytes, 56, &count.to_le_bytes());
        bytes.resize(contents_offset(count), 0);
        for index in 0..usize::from(count) {
            let (offset, size) = ranges[index % ranges.len()];
            let header = ProgramHeader {
                p_type: PT_NOTE,
                p_flags: PF_R,
                p_offset: offset,
                p_vaddr: offset,
                p_paddr: offset,
                p_filesz: size,
                p_memsz: size,
                p_align: 4,
            };
            put_program_header(&mut bytes, index, &header);
        }
        bytes.extend_from_slice(contents);
        bytes
    }

    /// Where [`note_headers`] puts the contents: right after a table of `count`
    /// headers.
    fn contents_offset(count: u16) -> usize {
        PHDR_OFFSET + usize::from(count) * SIZEOF_PHDR
    }

    /// How many of `len` zero bytes the scan walks: whole 12-byte empty notes; the
    /// shorter tail is padding.
    fn empty_notes(len: u64) -> u64 {
        len - len % NOTE_HEADER_SIZE as u64
    }

    /// Scans the notes of `bytes` with a program header table of any size, so that
    /// the scan's own bound shows.
    fn scan_without_header_limit(bytes: &[u8]) -> Result<NoteFindings, LoadError> {
        let header = read_header(bytes).unwrap();
        let table = ProgramHeaderTable::new(bytes, &header, u16::MAX).unwrap();
        scan_notes(bytes, &table)
    }

    #[test]
    fn notes_are_found_in_every_note_segment() {
        let cases: Vec<(&str, TestElf, u8, Option<HermitVersion>)> = vec![
            (
                "entry version 3 without an ABI tag",
                TestElf {
                    notes: hermit_note(3),
                    ..test_dyn()
                },
                3,
                None,
            ),
            (
                "ABI tag of another operating system",
                TestElf {
                    notes: [abi_tag([0, 3, 2, 0], 4), hermit_note(4)].concat(),
                    ..test_dyn()
                },
                4,
                None,
            ),
            (
                "short ABI tag",
                TestElf {
                    notes: [
                        note(b"GNU", NT_GNU_ABI_TAG, &[6, 0, 0, 0], 4),
                        hermit_note(4),
                    ]
                    .concat(),
                    ..test_dyn()
                },
                4,
                None,
            ),
            (
                "HERMIT note in a second segment with 8-byte alignment",
                TestElf {
                    notes: uhyve_note(),
                    second_notes: Some((
                        [
                            abi_tag([6, 0, 12, 1], 8),
                            note(b"HERMIT", NT_HERMIT_ENTRY_VERSION, &[4], 8),
                        ]
                        .concat(),
                        8,
                    )),
                    ..test_dyn()
                },
                4,
                Some(HermitVersion {
                    major: 0,
                    minor: 12,
                    patch: 1,
                }),
            ),
            (
                "the first HERMIT note counts",
                TestElf {
                    notes: [hermit_note(3), hermit_note(2)].concat(),
                    ..test_dyn()
                },
                3,
                None,
            ),
        ];
        for (description, elf, entry_version, kernel_version) in cases {
            let bytes = elf.build();
            let kernel = inspect(&bytes).unwrap_or_else(|error| panic!("{description}: {error}"));
            assert_eq!(kernel.entry_version, entry_version, "{description}");
            assert_eq!(kernel.kernel_version, kernel_version, "{description}");
        }
    }

    #[test]
    fn each_range_is_scanned_once_however_many_headers_name_it() {
        // Zero bytes are empty notes: 5 120 of them, then the HERMIT note.
        let contents = [vec![0_u8; 60 * 1024], hermit_note(4)].concat();
        let offset = contents_offset(MOST_HEADERS) as u64;
        let bytes = note_headers(MOST_HEADERS, &[(offset, contents.len() as u64)], &contents);
        let findings = scan_without_header_limit(&bytes).unwrap();
        assert_eq!(findings.entry_version, Some(4));
        // Each header scanning the range again would examine 65 534 times as much.
        assert_eq!(findings.bytes_scanned, contents.len() as u64);
        assert!(findings.bytes_scanned <= MAX_NOTE_BYTES);
    }

    #[test]
    fn the_fuzzed_file_is_refused_before_any_note_is_read() {
        // 65 534 headers over the same 4 MiB of zeros: 23 billion note reads for a
        // scan per header, 350 000 for one scan.
        let zeros = vec![0_u8; 4 << 20];
        let offset = contents_offset(MOST_HEADERS) as u64;
        let bytes = note_headers(MOST_HEADERS, &[(offset, 4 << 20)], &zeros);
        let refusal = inspect(&bytes).map(|kernel| kernel.entry).unwrap_err();
        assert_eq!(
            refusal,
            LoadError::ElfTooComplex {
                what: "program headers",
                found: u64::from(MOST_HEADERS),
                limit: u64::from(MAX_PROGRAM_HEADERS),
            }
        );
        assert_eq!(refusal.exit_code(), ExitCode::ElfTooComplex);
        // Even without the bound on headers, the note scan refuses from the ranges
        // alone, before it reads a note.
        assert_eq!(
            scan_without_header_limit(&bytes),
            Err(LoadError::ElfTooComplex {
                what: "bytes of PT_NOTE segments",
                found: 4 << 20,
                limit: MAX_NOTE_BYTES,
            })
        );
    }

    /// What the headers name, as (file offset, size) ranges, and the bytes the scan
    /// examines or its refusal.
    type BudgetCase = (&'static str, Vec<(u64, u64)>, Result<u64, LoadError>);

    #[test]
    fn the_note_budget_counts_every_distinct_range() {
        let count = MAX_PROGRAM_HEADERS;
        let offset = contents_offset(count) as u64;
        let zeros = vec![0_u8; 4 << 20];
        let cases: [BudgetCase; 4] = [
            (
                "every header at the same 4 MiB",
                vec![(offset, 4 << 20)],
                Err(LoadError::ElfTooComplex {
                    what: "bytes of PT_NOTE segments",
                    found: 4 << 20,
                    limit: MAX_NOTE_BYTES,
                }),
            ),
            (
                "exactly the budget, named by every header",
                vec![(offset, MAX_NOTE_BYTES)],
                Ok(empty_notes(MAX_NOTE_BYTES)),
            ),
            (
                "two distinct ranges within the budget",
                vec![(offset, 0x4000), (offset + 0x4000, MAX_NOTE_BYTES - 0x4000)],
                Ok(empty_notes(0x4000) + empty_notes(MAX_NOTE_BYTES - 0x4000)),
            ),
            (
                "two distinct ranges, each within the budget but not together",
                vec![(offset, 0x4000), (offset + 0x4000, MAX_NOTE_BYTES)],
                Err(LoadError::ElfTooComplex {
                    what: "bytes of PT_NOTE segments",
                    found: MAX_NOTE_BYTES + 0x4000,
                    limit: MAX_NOTE_BYTES,
                }),
            ),
        ];
        for (description, ranges, expected) in cases {
            let bytes = note_headers(count, &ranges, &zeros);
            let header = read_header(&bytes).unwrap();
            let table = ProgramHeaderTable::new(&bytes, &header, MAX_PROGRAM_HEADERS).unwrap();
            let scanned = scan_notes(&bytes, &table).map(|findings| findings.bytes_scanned);
            assert_eq!(scanned, expected, "{description}");
            // Zeros hold no HERMIT note, so a file within the budget gets as far as that.
            let expected_refusal = expected.err().unwrap_or(LoadError::NoHermitNote);
            assert_eq!(
                inspect(&bytes).map(|kernel| kernel.entry),
                Err(expected_refusal),
                "{description}"
            );
        }
    }

    #[test]
    fn identical_note_segments_are_read_as_one() {
        // A second header naming the first one's bytes with the first one's alignment.
        let mut bytes = test_dyn().build();
        let notes_size = test_dyn().notes.len() as u64;
        let tls_index = 5;
        let duplicate = ProgramHeader {
            p_type: PT_NOTE,
            p_flags: PF_R,
            p_offset: NOTES_OFFSET as u64,
            p_vaddr: NOTES_OFFSET as u64,
            p_paddr: NOTES_OFFSET as u64,
            p_filesz: notes_size,
            p_memsz: notes_size,
            p_align: 4,
        };
        put_program_header(&mut bytes, tls_index, &duplicate);
        let header = read_header(&bytes).unwrap();
        let table = ProgramHeaderTable::new(&bytes, &header, MAX_PROGRAM_HEADERS).unwrap();
        let findings = scan_notes(&bytes, &table).unwrap();
        assert_eq!(
            findings,
            NoteFindings {
                entry_version: Some(4),
                kernel_version: Some(HermitVersion {
                    major: 0,
                    minor: 11,
                    patch: 0,
                }),
                bytes_scanned: notes_size,
            }
        );
    }

    #[test]
    fn overlapping_note_segments_are_refused() {
        let second_notes = |alignment| TestElf {
            second_notes: Some((hermit_note(4), alignment)),
            ..test_dyn()
        };
        let cases: [(&str, Vec<u8>); 3] = [
            ("the second starts inside the first", {
                let mut bytes = second_notes(4).build();
                let offset = phdr_field(SECOND_NOTE_INDEX, P_OFFSET);
                put_u64(&mut bytes, offset, NOTES_OFFSET as u64 + 4);
                bytes
            }),
            ("the second lies inside the first", {
                let mut bytes = second_notes(4).build();
                let offset = phdr_field(SECOND_NOTE_INDEX, P_OFFSET);
                put_u64(&mut bytes, offset, NOTES_OFFSET as u64);
                bytes
            }),
            ("the same bytes with another alignment", {
                let mut bytes = second_notes(8).build();
                let notes_size = test_dyn().notes.len() as u64;
                put_u64(
                    &mut bytes,
                    phdr_field(SECOND_NOTE_INDEX, P_OFFSET),
                    NOTES_OFFSET as u64,
                );
                put_u64(
                    &mut bytes,
                    phdr_field(SECOND_NOTE_INDEX, P_FILESZ),
                    notes_size,
                );
                bytes
            }),
        ];
        for (description, bytes) in cases {
            assert_eq!(
                inspect(&bytes).map(|kernel| kernel.entry),
                Err(malformed("PT_NOTE segments overlap")),
                "{description}"
            );
        }
    }

    #[test]
    fn the_first_header_counts_not_the_first_bytes_in_the_file() {
        // The HERMIT note of version 2 lies first in the file, but the header that
        // comes first in the table names the one of version 3.
        let mut bytes = TestElf {
            notes: hermit_note(2),
            second_notes: Some((hermit_note(3), 4)),
            ..test_dyn()
        }
        .build();
        put_u64(
            &mut bytes,
            phdr_field(NOTE_INDEX, P_OFFSET),
            SECOND_NOTES_OFFSET as u64,
        );
        put_u64(
            &mut bytes,
            phdr_field(SECOND_NOTE_INDEX, P_OFFSET),
            NOTES_OFFSET as u64,
        );
        assert_eq!(inspect(&bytes).unwrap().entry_version, 3);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn the_note_scan_stays_within_its_budget(
            ranges in proptest::collection::vec((0_u64..0x1_8000, 0_u64..0x1_8000), 1..300),
        ) {
            // Up to 299 headers, each naming any range of a file of zeros a little
            // larger than the budget: whatever they name, the scan examines at most
            // the budget, or refuses.
            let count = u16::try_from(ranges.len()).unwrap();
            let contents = vec![0_u8; 0x1_8000];
            let bytes = note_headers(count, &ranges, &contents);
            if let Ok(findings) = scan_without_header_limit(&bytes) {
                proptest::prop_assert!(findings.bytes_scanned <= MAX_NOTE_BYTES);
            }
            let _ = inspect(&bytes);
        }
    }
}
