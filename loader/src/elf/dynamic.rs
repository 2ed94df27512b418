//! The dynamic section: whether the application wants shared libraries, and where
//! its relocation table and dynamic symbol table lie in the file.
//!
//! Only the first `PT_DYNAMIC` segment is read, up to its `DT_NULL` or its end, so
//! the work is one pass over at most the file's bytes, whatever the number of
//! `PT_DYNAMIC` headers.

use goblin::elf::dynamic::{
    DT_NEEDED, DT_NULL, DT_RELA, DT_RELAENT, DT_RELASZ, DT_SYMENT, DT_SYMTAB,
};
use goblin::elf::program_header::PT_DYNAMIC;
use goblin::elf64::reloc::SIZEOF_RELA;
use goblin::elf64::sym::SIZEOF_SYM;

use super::program_headers::ProgramHeaderTable;
use super::records::{self, SIZEOF_DYN};
use super::{file_slice, malformed, Segment};
use crate::error::LoadError;

/// Dynamic tag of a packed relative relocation table (goblin does not name it).
pub(super) const DT_RELR: u64 = 36;

/// The entries of the dynamic section the loader cares about.
#[derive(Default)]
pub(super) struct DynamicTags {
    pub(super) needs_shared_library: bool,
    has_packed_relocations: bool,
    rela: Option<u64>,
    rela_size: Option<u64>,
    rela_entry_size: Option<u64>,
    symtab: Option<u64>,
    symbol_entry_size: Option<u64>,
}

/// Reads the first `PT_DYNAMIC` segment up to `DT_NULL` (or its end).
pub(super) fn scan_dynamic(
    bytes: &[u8],
    program_headers: &ProgramHeaderTable,
) -> Result<DynamicTags, LoadError> {
    let mut tags = DynamicTags::default();
    let Some((_, header)) = program_headers.of_type(PT_DYNAMIC).next() else {
        return Ok(tags);
    };
    let section = file_slice(bytes, header.p_offset, header.p_filesz)
        .ok_or(malformed("the PT_DYNAMIC segment lies outside the file"))?;
    // A tail shorter than an entry ends the section as `DT_NULL` would.
    let (entries, _) = section.as_chunks::<SIZEOF_DYN>();
    for entry in entries.iter().map(records::dynamic_entry) {
        match entry.d_tag {
            DT_NULL => break,
            DT_NEEDED => tags.needs_shared_library = true,
            DT_RELR => tags.has_packed_relocations = true,
            DT_RELA => tags.rela = Some(entry.d_val),
            DT_RELASZ => tags.rela_size = Some(entry.d_val),
            DT_RELAENT => tags.rela_entry_size = Some(entry.d_val),
            DT_SYMTAB => tags.symtab = Some(entry.d_val),
            DT_SYMENT => tags.symbol_entry_size = Some(entry.d_val),
            _ => {}
        }
    }
    Ok(tags)
}

/// Finds the file bytes of the `DT_RELA` table.
pub(super) fn locate_relocation_table<'a>(
    bytes: &'a [u8],
    dynamic: &DynamicTags,
    segments: &[Segment],
) -> Result<&'a [u8], LoadError> {
    if dynamic.has_packed_relocations {
        // Ignoring them would start a kernel whose pointers are wrong.
        return Err(malformed(
            "packed relative relocations (DT_RELR) are not supported",
        ));
    }
    let size = dynamic.rela_size.unwrap_or(0);
    let Some(vaddr) = dynamic.rela else {
        return if size == 0 {
            Ok(&[])
        } else {
            Err(malformed("DT_RELASZ without DT_RELA"))
        };
    };
    if size == 0 {
        return Ok(&[]);
    }
    if dynamic
        .rela_entry_size
        .is_some_and(|entry_size| entry_size != SIZEOF_RELA as u64)
    {
        return Err(malformed("DT_RELAENT is not 24 bytes"));
    }
    if !size.is_multiple_of(SIZEOF_RELA as u64) {
        return Err(malformed("DT_RELASZ is not a whole number of entries"));
    }
    file_bytes_at(segments, vaddr)
        .filter(|&(_, available)| size <= available)
        .and_then(|(offset, _)| file_slice(bytes, offset, size))
        .ok_or(malformed(
            "the DT_RELA table lies outside the file bytes of the PT_LOAD segments",
        ))
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
    if dynamic
        .symbol_entry_size
        .is_some_and(|entry_size| entry_size != SIZEOF_SYM as u64)
    {
        return Err(malformed("DT_SYMENT is not 24 bytes"));
    }
    file_bytes_at(segments, vaddr)
        .and_then(|(offset, available)| file_slice(bytes, offset, available))
        .map(Some)
        .ok_or(malformed(
            "the DT_SYMTAB table lies outside the file bytes of the PT_LOAD segments",
        ))
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

    use goblin::elf::program_header::PF_R;
    use goblin::elf64::dynamic::SIZEOF_DYN;
    use goblin::elf64::program_header::{ProgramHeader, SIZEOF_PHDR};

    use super::super::inspect;
    use super::super::test_elf::*;
    use super::*;

    /// Index of the `PT_DYNAMIC` header of the test application, after the three
    /// `PT_LOAD` and the `PT_NOTE`.
    const DYNAMIC_INDEX: usize = 4;
    /// Index of its `PT_TLS` header, which the test turns into a second `PT_DYNAMIC`.
    const TLS_INDEX: usize = 5;
    /// Unused bytes of the read-only segment, where the test puts a second section.
    const SECOND_DYNAMIC_OFFSET: usize = 0xe00;

    /// The standard application with a second `PT_DYNAMIC`, holding `DT_NEEDED`, in
    /// place of its `PT_TLS`.
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
