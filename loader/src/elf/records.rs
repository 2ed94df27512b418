//! The ELF's fixed-size records read from byte arrays of their exact size: the file
//! header, program headers, dynamic entries, relocations, symbols and note headers,
//! as goblin's types.
//!
//! Why not scroll's `pread`: it reads field by field, each read checked against the
//! remaining bytes. Given an array of the record's size, every field's offset is a
//! constant inside it, so nothing can fail and the read compiles to plain loads
//! without a branch. Under emulation each branch starts another block that QEMU
//! translates the first time it runs (`cargo xtask census`), and these readers are
//! the whole of ELF inspection's reading. The caller takes the array with one length
//! check (`first_chunk`, `as_chunks`).

use goblin::elf::note::Nhdr32;
use goblin::elf64::dynamic::Dyn;
use goblin::elf64::header::{Header, SIZEOF_EHDR, SIZEOF_IDENT};
use goblin::elf64::program_header::{ProgramHeader, SIZEOF_PHDR};
use goblin::elf64::reloc::{Rela, SIZEOF_RELA};
use goblin::elf64::sym::{Sym, SIZEOF_SYM};

use crate::le::{bytes_at, u16_at, u32_at, u64_at};

/// Bytes of a `DT_*` entry.
pub(super) const SIZEOF_DYN: usize = 16;
/// Bytes of a note header (`namesz`, `descsz`, `type`).
pub(super) const SIZEOF_NHDR: usize = 12;

/// The ELF64 file header (little-endian).
pub(super) fn header(record: &[u8; SIZEOF_EHDR]) -> Header {
    Header {
        e_ident: bytes_at::<SIZEOF_IDENT>(record, 0),
        e_type: u16_at(record, 16),
        e_machine: u16_at(record, 18),
        e_version: u32_at(record, 20),
        e_entry: u64_at(record, 24),
        e_phoff: u64_at(record, 32),
        e_shoff: u64_at(record, 40),
        e_flags: u32_at(record, 48),
        e_ehsize: u16_at(record, 52),
        e_phentsize: u16_at(record, 54),
        e_phnum: u16_at(record, 56),
        e_shentsize: u16_at(record, 58),
        e_shnum: u16_at(record, 60),
        e_shstrndx: u16_at(record, 62),
    }
}

/// One ELF64 program header.
pub(super) fn program_header(record: &[u8; SIZEOF_PHDR]) -> ProgramHeader {
    ProgramHeader {
        p_type: u32_at(record, 0),
        p_flags: u32_at(record, 4),
        p_offset: u64_at(record, 8),
        p_vaddr: u64_at(record, 16),
        p_paddr: u64_at(record, 24),
        p_filesz: u64_at(record, 32),
        p_memsz: u64_at(record, 40),
        p_align: u64_at(record, 48),
    }
}

/// One entry of the dynamic section.
pub(super) fn dynamic_entry(record: &[u8; SIZEOF_DYN]) -> Dyn {
    Dyn {
        d_tag: u64_at(record, 0),
        d_val: u64_at(record, 8),
    }
}

/// One ELF64 symbol.
pub(super) fn symbol(record: &[u8; SIZEOF_SYM]) -> Sym {
    Sym {
        st_name: u32_at(record, 0),
        st_info: record[4],
        st_other: record[5],
        st_shndx: u16_at(record, 6),
        st_value: u64_at(record, 8),
        st_size: u64_at(record, 16),
    }
}

/// One `DT_RELA` entry.
pub(super) fn rela(record: &[u8; SIZEOF_RELA]) -> Rela {
    Rela {
        r_offset: u64_at(record, 0),
        r_info: u64_at(record, 8),
        r_addend: u64_at(record, 16) as i64,
    }
}

/// One note header (the 32-bit-field layout ELF64 notes use too).
pub(super) fn note_header(record: &[u8; SIZEOF_NHDR]) -> Nhdr32 {
    Nhdr32 {
        n_namesz: u32_at(record, 0),
        n_descsz: u32_at(record, 4),
        n_type: u32_at(record, 8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scroll::{Pread, LE};

    /// Bytes that differ in every position, so a field read from the wrong offset or
    /// with the wrong width shows.
    fn bytes<const N: usize>(seed: u8) -> [u8; N] {
        core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
    }

    /// Each reader agrees with goblin's own (scroll) reader on the same bytes.
    #[test]
    fn every_record_reads_as_goblin_reads_it() {
        for seed in [0, 1, 0x80, 0xff] {
            let mut raw = bytes::<SIZEOF_EHDR>(seed);
            // goblin's reader insists on a valid class and byte order.
            raw[goblin::elf::header::EI_CLASS] = goblin::elf::header::ELFCLASS64;
            raw[goblin::elf::header::EI_DATA] = goblin::elf::header::ELFDATA2LSB;
            assert_eq!(header(&raw), raw.pread_with::<Header>(0, LE).unwrap());
            let raw = bytes::<SIZEOF_PHDR>(seed);
            assert_eq!(
                program_header(&raw),
                raw.pread_with::<ProgramHeader>(0, LE).unwrap()
            );
            let raw = bytes::<SIZEOF_DYN>(seed);
            let (ours, theirs) = (dynamic_entry(&raw), raw.pread_with::<Dyn>(0, LE).unwrap());
            assert_eq!((ours.d_tag, ours.d_val), (theirs.d_tag, theirs.d_val));
            let raw = bytes::<SIZEOF_RELA>(seed);
            let (ours, theirs) = (rela(&raw), raw.pread_with::<Rela>(0, LE).unwrap());
            assert_eq!(
                (ours.r_offset, ours.r_info, ours.r_addend),
                (theirs.r_offset, theirs.r_info, theirs.r_addend)
            );
            let raw = bytes::<SIZEOF_SYM>(seed);
            assert_eq!(symbol(&raw), raw.pread_with::<Sym>(0, LE).unwrap());
            let raw = bytes::<SIZEOF_NHDR>(seed);
            let (ours, theirs) = (note_header(&raw), raw.pread_with::<Nhdr32>(0, LE).unwrap());
            assert_eq!(
                (ours.n_namesz, ours.n_descsz, ours.n_type),
                (theirs.n_namesz, theirs.n_descsz, theirs.n_type)
            );
        }
    }
}
