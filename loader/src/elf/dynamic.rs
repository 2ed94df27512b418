//! The dynamic section: whether the application wants shared libraries, and where
//! its relocation table and dynamic symbol table lie in the file.
//!
//! Only the first `PT_DYNAMIC` segment is read, up to its `DT_NULL` or its end, so
//! the work is one pass over at most the file's bytes, whatever the number of
//! `PT_DYNAMIC` headers.

use goblin::elf::dynamic::{
    DT_HIOS, DT_HIPROC, DT_JMPREL, DT_LOOS, DT_NEEDED, DT_NULL, DT_PLTRELSZ, DT_REL, DT_RELA,
    DT_RELACOUNT, DT_RELAENT, DT_RELASZ, DT_RELSZ, DT_SYMENT, DT_SYMTAB,
};
use goblin::elf64::program_header::ProgramHeader;
use goblin::elf64::reloc::SIZEOF_RELA;
use goblin::elf64::sym::SIZEOF_SYM;

use super::records::{self, SIZEOF_DYN};
use super::{file_slice, malformed, Segment};
use crate::error::LoadError;

/// Dynamic tag of a packed relative relocation table (goblin does not name it).
pub(super) const DT_RELR: u64 = 36;
/// The last generic dynamic tag the ELF specification defines (`DT_RELRENT`, with
/// `DT_RELR`); goblin's `DT_NUM` predates the three `DT_RELR*` tags.
const DT_LAST_GENERIC: u64 = 37;
/// The start of the GNU extensions' value, address and versioning tags
/// (`DT_VALRNGLO`), which run up to the processor-specific range.
const DT_VALRNGLO: u64 = 0x6fff_fd00;

/// The entries of the dynamic section the loader cares about.
#[derive(Default)]
pub(super) struct DynamicTags {
    pub(super) needs_shared_library: bool,
    has_packed_relocations: bool,
    rela: Option<u64>,
    rela_size: Option<u64>,
    rela_entry_size: Option<u64>,
    relative_count: Option<u64>,
    rel: Option<u64>,
    rel_size: Option<u64>,
    plt_relocations: Option<u64>,
    plt_relocations_size: Option<u64>,
    symtab: Option<u64>,
    symbol_entry_size: Option<u64>,
}

/// Whether `tag` lies in a range the ELF specification or the GNU extensions define:
/// the generic tags, the operating-system range, and from GNU's value, address and
/// versioning tags through the processor-specific range. A tag elsewhere is a
/// corrupted entry (a mutation that turned `DT_RELASZ`, 8, into 0xffff0008 left
/// `DT_RELA` without a size); ignoring it could leave the kernel unrelocated.
const fn tag_is_defined(tag: u64) -> bool {
    matches!(tag, 0..=DT_LAST_GENERIC | DT_LOOS..=DT_HIOS | DT_VALRNGLO..=DT_HIPROC)
}

/// Records the value of a tag that may appear once, or again with the same value.
fn record(slot: &mut Option<u64>, tag: &'static str, value: u64) -> Result<(), LoadError> {
    match *slot {
        Some(first) if first != value => Err(LoadError::RepeatedDynamicTag {
            tag,
            first,
            second: value,
        }),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// Reads the first `PT_DYNAMIC` segment (`header`) up to `DT_NULL` (or its end),
/// refusing a tag no specification defines and a tag the loader reads given twice
/// with two values.
pub(super) fn scan_dynamic(
    bytes: &[u8],
    header: Option<&ProgramHeader>,
) -> Result<DynamicTags, LoadError> {
    let mut tags = DynamicTags::default();
    let Some(header) = header else {
        return Ok(tags);
    };
    let section = file_slice(bytes, header.p_offset, header.p_filesz)
        .ok_or(malformed("the PT_DYNAMIC segment lies outside the file"))?;
    // A tail shorter than an entry ends the section as `DT_NULL` would.
    let (entries, _) = section.as_chunks::<SIZEOF_DYN>();
    for (index, entry) in entries.iter().map(records::dynamic_entry).enumerate() {
        let value = entry.d_val;
        match entry.d_tag {
            DT_NULL => break,
            DT_NEEDED => tags.needs_shared_library = true,
            DT_RELR => tags.has_packed_relocations = true,
            DT_RELA => record(&mut tags.rela, "DT_RELA", value)?,
            DT_RELASZ => record(&mut tags.rela_size, "DT_RELASZ", value)?,
            DT_RELAENT => record(&mut tags.rela_entry_size, "DT_RELAENT", value)?,
            DT_RELACOUNT => record(&mut tags.relative_count, "DT_RELACOUNT", value)?,
            DT_REL => record(&mut tags.rel, "DT_REL", value)?,
            DT_RELSZ => record(&mut tags.rel_size, "DT_RELSZ", value)?,
            DT_JMPREL => record(&mut tags.plt_relocations, "DT_JMPREL", value)?,
            DT_PLTRELSZ => record(&mut tags.plt_relocations_size, "DT_PLTRELSZ", value)?,
            DT_SYMTAB => record(&mut tags.symtab, "DT_SYMTAB", value)?,
            DT_SYMENT => record(&mut tags.symbol_entry_size, "DT_SYMENT", value)?,
            tag if !tag_is_defined(tag) => {
                return Err(LoadError::UndefinedDynamicTag { index, tag });
            }
            _ => {}
        }
    }
    Ok(tags)
}

/// The `DT_RELA` table as [`locate_relocation_table`] finds it: its file bytes and
/// how many of its entries `DT_RELACOUNT` says come first as `R_X86_64_RELATIVE`.
pub(super) struct RelocationTable<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) relative_count: usize,
}

/// Finds the file bytes of the `DT_RELA` table, refusing a dynamic section that
/// describes it inconsistently: the table without its size or entry size (or those
/// without the table), an entry size other than 24, a size that is not whole entries,
/// a `DT_RELACOUNT` above the number of entries, REL or PLT relocations (which the
/// loader would not apply), or a table outside the file bytes of the segments.
pub(super) fn locate_relocation_table<'a>(
    bytes: &'a [u8],
    dynamic: &DynamicTags,
    segments: &[Segment],
) -> Result<RelocationTable<'a>, LoadError> {
    if dynamic.has_packed_relocations {
        // Ignoring them would start a kernel whose pointers are wrong.
        return Err(malformed(
            "packed relative relocations (DT_RELR) are not supported",
        ));
    }
    // x86_64 uses only RELA; a linker would not write REL relocations, and ignoring
    // them would start a kernel that is not fully relocated.
    if dynamic.rel.is_some() || dynamic.rel_size.is_some_and(|size| size != 0) {
        return Err(LoadError::UnappliedRelocations {
            tag: "DT_REL",
            size: dynamic.rel_size.unwrap_or(0),
        });
    }
    let missing = |present, missing| LoadError::DynamicTagMissing { present, missing };
    // PLT relocations (`R_X86_64_JUMP_SLOT`, `R_X86_64_IRELATIVE`) have no use in a
    // static application, and without a dynamic linker nothing would apply them:
    // a kernel that has some would call through unrelocated pointers.
    match (dynamic.plt_relocations, dynamic.plt_relocations_size) {
        (_, Some(size)) if size != 0 => {
            return Err(LoadError::UnappliedRelocations {
                tag: "DT_JMPREL",
                size,
            })
        }
        (Some(_), None) => return Err(missing("DT_JMPREL", "DT_PLTRELSZ")),
        _ => {}
    }
    let relative_count = dynamic.relative_count.unwrap_or(0);
    let (vaddr, size, entry_size) = match (dynamic.rela, dynamic.rela_size, dynamic.rela_entry_size)
    {
        (Some(vaddr), Some(size), Some(entry_size)) => (vaddr, size, entry_size),
        (Some(_), None, _) => return Err(missing("DT_RELA", "DT_RELASZ")),
        (Some(_), _, None) => return Err(missing("DT_RELA", "DT_RELAENT")),
        (None, Some(_), _) => return Err(missing("DT_RELASZ", "DT_RELA")),
        (None, _, Some(_)) => return Err(missing("DT_RELAENT", "DT_RELA")),
        (None, None, None) if relative_count != 0 => {
            return Err(missing("DT_RELACOUNT", "DT_RELA"))
        }
        (None, None, None) => {
            return Ok(RelocationTable {
                bytes: &[],
                relative_count: 0,
            })
        }
    };
    if entry_size != SIZEOF_RELA as u64 {
        return Err(LoadError::DynamicEntrySize {
            tag: "DT_RELAENT",
            value: entry_size,
            expected: SIZEOF_RELA as u64,
        });
    }
    if !size.is_multiple_of(SIZEOF_RELA as u64) {
        return Err(LoadError::RelocationTableSize { size });
    }
    let entries = size / SIZEOF_RELA as u64;
    if relative_count > entries {
        return Err(LoadError::RelativeCountAboveEntries {
            count: relative_count,
            entries,
        });
    }
    if size == 0 {
        return Ok(RelocationTable {
            bytes: &[],
            relative_count: 0,
        });
    }
    let table = file_bytes_at(segments, vaddr)
        .filter(|&(_, available)| size <= available)
        .and_then(|(offset, _)| file_slice(bytes, offset, size))
        .ok_or(LoadError::TableOutsideSegments {
            table: "DT_RELA",
            start: vaddr,
            end: vaddr.checked_add(size),
        })?;
    Ok(RelocationTable {
        bytes: table,
        // At most the entries, which fit in memory.
        relative_count: usize::try_from(relative_count).unwrap_or(usize::MAX),
    })
}

/// Finds where the `DT_SYMTAB` table starts in the file and how far it may reach.
pub(super) fn locate_symbol_table<'a>(
    bytes: &'a [u8],
    dynamic: &DynamicTags,
    segments: &[Segment],
) -> Result<Option<&'a [u8]>, LoadError> {
    let Some(vaddr) = dynamic.symtab else {
        return Ok(None);
    };
    if let Some(entry_size) = dynamic
        .symbol_entry_size
        .filter(|&entry_size| entry_size != SIZEOF_SYM as u64)
    {
        return Err(LoadError::DynamicEntrySize {
            tag: "DT_SYMENT",
            value: entry_size,
            expected: SIZEOF_SYM as u64,
        });
    }
    file_bytes_at(segments, vaddr)
        .and_then(|(offset, available)| file_slice(bytes, offset, available))
        .map(Some)
        .ok_or(LoadError::TableOutsideSegments {
            table: "DT_SYMTAB",
            start: vaddr,
            end: None,
        })
}

/// Where virtual address `vaddr` lies in the file, and how many bytes from there to
/// the end of the file part of the segment that contains it.
///
/// The dynamic section names its tables by address; they are read from the file (not
/// from the loaded image, which relocation changes), so they must lie in the part of a
/// segment that the file backs.
fn file_bytes_at(segments: &[Segment], vaddr: u64) -> Option<(u64, u64)> {
    segments.iter().find_map(|segment| {
        let offset_in_segment = vaddr.checked_sub(segment.vaddr)?;
        let available = segment.file_size.checked_sub(offset_in_segment)?;
        if available == 0 {
            return None;
        }
        let offset = segment.file_offset.checked_add(offset_in_segment)?;
        Some((offset, available))
    })
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use goblin::elf::program_header::{PF_R, PT_DYNAMIC};
    use goblin::elf64::dynamic::SIZEOF_DYN;
    use goblin::elf64::program_header::{ProgramHeader, SIZEOF_PHDR};

    use super::super::inspect;
    use super::super::test_elf::*;
    use super::*;

    /// Unused bytes of the read-only segment, where the test puts a second section.
    const SECOND_DYNAMIC_OFFSET: usize = 0xe00;

    /// The standard application with a second `PT_DYNAMIC`, holding `DT_NEEDED`, in
    /// place of its `PT_TLS` (`TLS_INDEX`).
    fn with_second_dynamic_section() -> Vec<u8> {
        let mut bytes = test_dyn().build();
        put_u64(&mut bytes, SECOND_DYNAMIC_OFFSET, DT_NEEDED);
        put_u64(&mut bytes, SECOND_DYNAMIC_OFFSET + 8, 1);
        put_u64(&mut bytes, SECOND_DYNAMIC_OFFSET + SIZEOF_DYN, DT_NULL);
        let size = 2 * SIZEOF_DYN as u64;
        let offset = SECOND_DYNAMIC_OFFSET as u64;
        let second = ProgramHeader {
            p_type: PT_DYNAMIC,
            p_flags: PF_R,
            p_offset: offset,
            p_vaddr: offset,
            p_paddr: offset,
            p_filesz: size,
            p_memsz: size,
            p_align: 8,
        };
        put_program_header(&mut bytes, TLS_INDEX, &second);
        bytes
    }

    #[test]
    fn only_the_first_dynamic_segment_is_read() {
        let bytes = with_second_dynamic_section();
        let kernel = inspect(&bytes).expect("the second section's DT_NEEDED is not read");
        assert_eq!(kernel.tls, None);

        // The same sections with the headers swapped: now DT_NEEDED is read first.
        let mut swapped = bytes.clone();
        let first = phdr_field(DYNAMIC_INDEX, 0);
        let second = phdr_field(TLS_INDEX, 0);
        swapped[first..first + SIZEOF_PHDR].copy_from_slice(&bytes[second..second + SIZEOF_PHDR]);
        swapped[second..second + SIZEOF_PHDR].copy_from_slice(&bytes[first..first + SIZEOF_PHDR]);
        assert_eq!(
            inspect(&swapped).map(|kernel| kernel.entry),
            Err(LoadError::NeedsSharedLibrary)
        );
    }

    #[test]
    fn the_section_ends_at_dt_null() {
        // A DT_NEEDED after the DT_NULL is not an entry of the section.
        let bytes = described(|elf| {
            let entries = elf.dynamic.as_mut().unwrap();
            entries.push((DT_NULL, 0));
            entries.push((DT_NEEDED, 1));
        });
        assert!(inspect(&bytes).is_ok());
    }
}
