//! The notes: the HERMIT note, whose presence makes the file a Hermit application
//! and whose descriptor is the entry ABI version, and the GNU ABI tag, which carries
//! the kernel version.

use goblin::elf::note::Nhdr32;
use goblin::elf::program_header::PT_NOTE;
use scroll::{Pread, LE};

use super::program_headers::ProgramHeaderTable;
use super::{file_slice, malformed, HermitVersion};
use crate::error::LoadError;

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
const NOTE_HEADER_SIZE: usize = 12;

/// What the notes say about the application.
#[derive(Default)]
pub(super) struct NoteFindings {
    pub(super) entry_version: Option<u8>,
    pub(super) kernel_version: Option<HermitVersion>,
}

/// Reads every note of every `PT_NOTE` segment; the first HERMIT note and the first
/// Hermit GNU ABI tag count.
///
/// Upstream reads only the first `PT_NOTE`, but linkers put notes of different
/// alignment into separate segments, so the HERMIT note may sit in any of them.
pub(super) fn scan_notes(
    bytes: &[u8],
    program_headers: &ProgramHeaderTable,
) -> Result<NoteFindings, LoadError> {
    let mut findings = NoteFindings::default();
    for (_, header) in program_headers.of_type(PT_NOTE) {
        let segment = file_slice(bytes, header.p_offset, header.p_filesz)
            .ok_or(malformed("a PT_NOTE segment lies outside the file"))?;
        // Names and descriptors are padded to 4 bytes, or to 8 in segments aligned so
        // (such as GNU property notes).
        let alignment = if header.p_align == 8 { 8 } else { 4 };
        let mut position = 0;
        // A tail shorter than a note header is padding.
        while segment.len().saturating_sub(position) >= NOTE_HEADER_SIZE {
            let note = read_note(segment, position, alignment)
                .ok_or(malformed("a note runs past the end of its PT_NOTE segment"))?;
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
    }
    Ok(findings)
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
    let header: Nhdr32 = segment.pread_with(position, LE).ok()?;
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
    if desc.len() != 16 {
        return None;
    }
    let field = |index: usize| desc.pread_with::<u32>(index * 4, LE).ok();
    if field(0)? != ELF_NOTE_OS_HERMIT {
        return None;
    }
    Some(HermitVersion {
        major: field(1)?,
        minor: field(2)?,
        patch: field(3)?,
    })
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::super::inspect;
    use super::super::test_elf::*;
    use super::*;

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
}
