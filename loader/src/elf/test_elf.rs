//! The test application the ELF tests share: a small static PIE (or executable) built
//! byte by byte from a description, so that each test can break one thing in it, and
//! the helpers that load it the way the loader does.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use goblin::elf::dynamic::{
    DT_NULL, DT_RELA, DT_RELACOUNT, DT_RELAENT, DT_RELASZ, DT_SYMENT, DT_SYMTAB,
};
use goblin::elf::header::{
    EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB, ELFMAG, EM_X86_64, ET_DYN, ET_EXEC,
};
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_DYNAMIC, PT_LOAD, PT_NOTE, PT_TLS};
use goblin::elf::reloc::{R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_NONE, R_X86_64_RELATIVE};
use goblin::elf::sym::{STB_GLOBAL, STB_WEAK, STT_FUNC};
use goblin::elf64::dynamic::SIZEOF_DYN;
use goblin::elf64::header::SIZEOF_EHDR;
use goblin::elf64::program_header::{ProgramHeader, SIZEOF_PHDR};
use goblin::elf64::reloc::SIZEOF_RELA;
use goblin::elf64::sym::SIZEOF_SYM;

use super::notes::{NT_GNU_ABI_TAG, NT_HERMIT_ENTRY_VERSION};
use super::{inspect, Kernel, RelocStats};
use crate::error::LoadError;

// The test application is laid out like a small static PIE: one read-only segment
// holding the headers, notes, dynamic section, relocations and symbols, a text
// segment, an untouched page, and a data segment with a bss tail and the TLS
// template. File offsets equal addresses except for the data segment, so a mix-up
// of the two shows.
pub(super) const PHDR_OFFSET: usize = 0x40;
pub(super) const NOTES_OFFSET: usize = 0x200;
pub(super) const DYNAMIC_OFFSET: usize = 0x400;
pub(super) const RELA_OFFSET: usize = 0x600;
pub(super) const SYMTAB_OFFSET: usize = 0x800;
pub(super) const RODATA_SIZE: usize = 0x1000;
pub(super) const TEXT_OFFSET: usize = 0x1000;
pub(super) const TEXT_SIZE: usize = 0x100;
pub(super) const DATA_OFFSET: usize = 0x2000;
pub(super) const DATA_VADDR: u64 = 0x3000;
pub(super) const DATA_FILE_SIZE: usize = 0x80;
pub(super) const DATA_MEM_SIZE: u64 = 0x1800;
pub(super) const DATA_ALIGN: u64 = 0x20_0000;
pub(super) const ENTRY: u64 = 0x1010;
pub(super) const FILE_SIZE: usize = DATA_OFFSET + DATA_FILE_SIZE;
pub(super) const IMAGE_SIZE: u64 = 0x5000;
pub(super) const SECOND_NOTES_OFFSET: usize = 0x300;

// Program header indices of the test application.
pub(super) const RODATA_INDEX: usize = 0;
pub(super) const TEXT_INDEX: usize = 1;
pub(super) const DATA_INDEX: usize = 2;
pub(super) const NOTE_INDEX: usize = 3;
pub(super) const DYNAMIC_INDEX: usize = 4;
pub(super) const TLS_INDEX: usize = 5;

// Offsets of program header fields.
pub(super) const P_TYPE: usize = 0;
pub(super) const P_FLAGS: usize = 4;
pub(super) const P_OFFSET: usize = 8;
pub(super) const P_VADDR: usize = 16;
pub(super) const P_FILESZ: usize = 32;
pub(super) const P_MEMSZ: usize = 40;
pub(super) const P_ALIGN: usize = 48;

// Indices of the test application's dynamic entries, in `TestElf::dynamic`.
pub(super) const DYN_RELA: usize = 0;
pub(super) const DYN_RELASZ: usize = 1;
pub(super) const DYN_RELAENT: usize = 2;
pub(super) const DYN_SYMTAB: usize = 3;
pub(super) const DYN_SYMENT: usize = 4;
pub(super) const DYN_RELACOUNT: usize = 5;

// Symbols of the test application's dynamic symbol table.
pub(super) const DEFINED_SYMBOL: u32 = 1;
pub(super) const WEAK_UNDEFINED_SYMBOL: u32 = 2;
pub(super) const STRONG_UNDEFINED_SYMBOL: u32 = 3;
pub(super) const DEFINED_SYMBOL_VALUE: u64 = 0x1050;

/// A relocation of the test application: target address, type, symbol, addend.
pub(super) type TestRela = (u64, u32, u32, i64);

/// A test application, described by the parts the loader reads.
#[derive(Clone)]
pub(super) struct TestElf {
    pub(super) class: u8,
    pub(super) data: u8,
    pub(super) e_type: u16,
    pub(super) machine: u16,
    pub(super) entry: u64,
    /// Added to every address: 0 for a PIE, 0x800000 for an executable.
    pub(super) vaddr_base: u64,
    /// The contents of the first `PT_NOTE` segment.
    pub(super) notes: Vec<u8>,
    /// A second `PT_NOTE` segment (contents, alignment), after all others.
    pub(super) second_notes: Option<(Vec<u8>, u64)>,
    /// The dynamic section without its `DT_NULL`; `None` leaves out `PT_DYNAMIC`.
    pub(super) dynamic: Option<Vec<(u64, u64)>>,
    pub(super) relocations: Vec<TestRela>,
    /// Dynamic symbols after the null symbol: (`st_info`, `st_shndx`, `st_value`).
    pub(super) symbols: Vec<(u8, u16, u64)>,
    pub(super) tls: bool,
}

/// A note as a linker writes it, padded to `alignment`.
pub(super) fn note(name: &[u8], n_type: u32, desc: &[u8], alignment: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    let name_size = u32::try_from(name.len() + 1).unwrap();
    bytes.extend_from_slice(&name_size.to_le_bytes());
    bytes.extend_from_slice(&u32::try_from(desc.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(&n_type.to_le_bytes());
    bytes.extend_from_slice(name);
    bytes.push(0);
    bytes.resize(bytes.len().next_multiple_of(alignment), 0);
    bytes.extend_from_slice(desc);
    bytes.resize(bytes.len().next_multiple_of(alignment), 0);
    bytes
}

pub(super) fn hermit_note(version: u8) -> Vec<u8> {
    note(b"HERMIT", NT_HERMIT_ENTRY_VERSION, &[version], 4)
}

pub(super) fn abi_tag(fields: [u32; 4], alignment: usize) -> Vec<u8> {
    let desc: Vec<u8> = fields
        .iter()
        .flat_map(|field| field.to_le_bytes())
        .collect();
    note(b"GNU", NT_GNU_ABI_TAG, &desc, alignment)
}

pub(super) fn uhyve_note() -> Vec<u8> {
    note(b"UHYVEIF", 0x5b00, &1_u32.to_be_bytes(), 4)
}

/// The standard position-independent test application, linked at 0.
pub(super) fn test_dyn() -> TestElf {
    test_dyn_at(0)
}

/// The standard position-independent test application, linked at `link_base`.
pub(super) fn test_dyn_at(link_base: u64) -> TestElf {
    let relocations = standard_relocations(link_base);
    let relocations_size = u64::try_from(relocations.len() * SIZEOF_RELA).unwrap();
    TestElf {
        class: ELFCLASS64,
        data: ELFDATA2LSB,
        e_type: ET_DYN,
        machine: EM_X86_64,
        entry: link_base + ENTRY,
        vaddr_base: link_base,
        notes: [hermit_note(4), abi_tag([6, 0, 11, 0], 4), uhyve_note()].concat(),
        second_notes: None,
        dynamic: Some(vec![
            (DT_RELA, link_base + RELA_OFFSET as u64),
            (DT_RELASZ, relocations_size),
            (DT_RELAENT, SIZEOF_RELA as u64),
            (DT_SYMTAB, link_base + SYMTAB_OFFSET as u64),
            (DT_SYMENT, SIZEOF_SYM as u64),
            // The first relocation is the one relative one.
            (DT_RELACOUNT, 1),
        ]),
        relocations,
        symbols: vec![
            (
                (STB_GLOBAL << 4) | STT_FUNC,
                7,
                link_base + DEFINED_SYMBOL_VALUE,
            ),
            (STB_WEAK << 4, 0, 0),
            (STB_GLOBAL << 4, 0, 0),
        ],
        tls: true,
    }
}

/// One relocation of each kind the loader handles, all aimed at the data segment
/// of an application linked at `link_base`.
pub(super) fn standard_relocations(link_base: u64) -> Vec<TestRela> {
    let relative_addend = i64::try_from(link_base + 0x1234).unwrap();
    vec![
        (link_base + 0x3020, R_X86_64_RELATIVE, 0, relative_addend),
        (link_base + 0x3028, R_X86_64_64, DEFINED_SYMBOL, 8),
        // The addend of a GLOB_DAT relocation is ignored.
        (link_base + 0x3030, R_X86_64_GLOB_DAT, DEFINED_SYMBOL, 0x77),
        (link_base + 0x3038, R_X86_64_64, WEAK_UNDEFINED_SYMBOL, 0),
        (0, R_X86_64_NONE, 0, 0),
    ]
}

/// The standard fixed-address test application: no dynamic section, at 0x800000.
pub(super) fn test_exec() -> TestElf {
    TestElf {
        e_type: ET_EXEC,
        dynamic: None,
        relocations: Vec::new(),
        ..test_dyn_at(0x80_0000)
    }
}

pub(super) fn put(bytes: &mut [u8], offset: usize, data: &[u8]) {
    bytes[offset..offset + data.len()].copy_from_slice(data);
}

pub(super) fn put_u64(bytes: &mut [u8], offset: usize, value: u64) {
    put(bytes, offset, &value.to_le_bytes());
}

/// Where field `field` of program header `index` lies in the file.
pub(super) fn phdr_field(index: usize, field: usize) -> usize {
    PHDR_OFFSET + index * SIZEOF_PHDR + field
}

/// Writes `phdr` as program header `index`.
pub(super) fn put_program_header(bytes: &mut [u8], index: usize, phdr: &ProgramHeader) {
    let offset = phdr_field(index, 0);
    put(bytes, offset, &phdr.p_type.to_le_bytes());
    put(bytes, offset + 4, &phdr.p_flags.to_le_bytes());
    let fields = [
        phdr.p_offset,
        phdr.p_vaddr,
        phdr.p_paddr,
        phdr.p_filesz,
        phdr.p_memsz,
        phdr.p_align,
    ];
    for (number, field) in fields.into_iter().enumerate() {
        put_u64(bytes, offset + 8 + number * 8, field);
    }
}

impl TestElf {
    pub(super) fn build(&self) -> Vec<u8> {
        let mut bytes = vec![0_u8; FILE_SIZE];
        let base = self.vaddr_base;
        let notes_len = self.notes.len() as u64;
        let mut phdrs = vec![
            ProgramHeader {
                p_type: PT_LOAD,
                p_flags: PF_R,
                p_offset: 0,
                p_vaddr: base,
                p_paddr: base,
                p_filesz: RODATA_SIZE as u64,
                p_memsz: RODATA_SIZE as u64,
                p_align: 0x1000,
            },
            ProgramHeader {
                p_type: PT_LOAD,
                p_flags: PF_R | PF_X,
                p_offset: TEXT_OFFSET as u64,
                p_vaddr: base + TEXT_OFFSET as u64,
                p_paddr: base + TEXT_OFFSET as u64,
                p_filesz: TEXT_SIZE as u64,
                p_memsz: TEXT_SIZE as u64,
                p_align: 0x1000,
            },
            ProgramHeader {
                p_type: PT_LOAD,
                p_flags: PF_R | PF_W,
                p_offset: DATA_OFFSET as u64,
                p_vaddr: base + DATA_VADDR,
                p_paddr: base + DATA_VADDR,
                p_filesz: DATA_FILE_SIZE as u64,
                p_memsz: DATA_MEM_SIZE,
                p_align: DATA_ALIGN,
            },
            ProgramHeader {
                p_type: PT_NOTE,
                p_flags: PF_R,
                p_offset: NOTES_OFFSET as u64,
                p_vaddr: base + NOTES_OFFSET as u64,
                p_paddr: base + NOTES_OFFSET as u64,
                p_filesz: notes_len,
                p_memsz: notes_len,
                p_align: 4,
            },
        ];
        put(&mut bytes, NOTES_OFFSET, &self.notes);

        if let Some(entries) = &self.dynamic {
            let mut offset = DYNAMIC_OFFSET;
            for &(tag, value) in entries.iter().chain([(DT_NULL, 0)].iter()) {
                put_u64(&mut bytes, offset, tag);
                put_u64(&mut bytes, offset + 8, value);
                offset += SIZEOF_DYN;
            }
            let size = (offset - DYNAMIC_OFFSET) as u64;
            phdrs.push(ProgramHeader {
                p_type: PT_DYNAMIC,
                p_flags: PF_R | PF_W,
                p_offset: DYNAMIC_OFFSET as u64,
                p_vaddr: base + DYNAMIC_OFFSET as u64,
                p_paddr: base + DYNAMIC_OFFSET as u64,
                p_filesz: size,
                p_memsz: size,
                p_align: 8,
            });
        }
        for (number, &(target, kind, symbol, addend)) in self.relocations.iter().enumerate() {
            let offset = RELA_OFFSET + number * SIZEOF_RELA;
            put_u64(&mut bytes, offset, target);
            put_u64(
                &mut bytes,
                offset + 8,
                (u64::from(symbol) << 32) | u64::from(kind),
            );
            put(&mut bytes, offset + 16, &addend.to_le_bytes());
        }
        // Entry 0 of a symbol table is the null symbol, all zeros.
        for (number, &(info, section, value)) in self.symbols.iter().enumerate() {
            let offset = SYMTAB_OFFSET + (number + 1) * SIZEOF_SYM;
            bytes[offset + 4] = info;
            put(&mut bytes, offset + 6, &section.to_le_bytes());
            put_u64(&mut bytes, offset + 8, value);
        }

        for (position, byte) in bytes[TEXT_OFFSET..TEXT_OFFSET + TEXT_SIZE]
            .iter_mut()
            .enumerate()
        {
            *byte = (position as u8).wrapping_mul(7) | 1;
        }
        // Only the first 0x20 data bytes are initialised; the relocation targets
        // behind them start as zeros, as a linker leaves them.
        for (position, byte) in bytes[DATA_OFFSET..DATA_OFFSET + 0x20]
            .iter_mut()
            .enumerate()
        {
            *byte = 0xd0 + position as u8;
        }
        if self.tls {
            phdrs.push(ProgramHeader {
                p_type: PT_TLS,
                p_flags: PF_R,
                p_offset: DATA_OFFSET as u64,
                p_vaddr: base + DATA_VADDR,
                p_paddr: base + DATA_VADDR,
                p_filesz: 0x10,
                p_memsz: 0x40,
                p_align: 0x10,
            });
        }
        if let Some((notes, alignment)) = &self.second_notes {
            put(&mut bytes, SECOND_NOTES_OFFSET, notes);
            phdrs.push(ProgramHeader {
                p_type: PT_NOTE,
                p_flags: PF_R,
                p_offset: SECOND_NOTES_OFFSET as u64,
                p_vaddr: base + SECOND_NOTES_OFFSET as u64,
                p_paddr: base + SECOND_NOTES_OFFSET as u64,
                p_filesz: notes.len() as u64,
                p_memsz: notes.len() as u64,
                p_align: *alignment,
            });
        }

        for (index, phdr) in phdrs.iter().enumerate() {
            put_program_header(&mut bytes, index, phdr);
        }

        put(&mut bytes, 0, ELFMAG);
        bytes[EI_CLASS] = self.class;
        bytes[EI_DATA] = self.data;
        bytes[6] = 1; // EI_VERSION
        bytes[7] = 0xff; // EI_OSABI: standalone, as Hermit applications say.
        put(&mut bytes, 16, &self.e_type.to_le_bytes());
        put(&mut bytes, 18, &self.machine.to_le_bytes());
        put(&mut bytes, 20, &1_u32.to_le_bytes()); // e_version
        put_u64(&mut bytes, 24, self.entry);
        put_u64(&mut bytes, 32, PHDR_OFFSET as u64);
        put(&mut bytes, 52, &(SIZEOF_EHDR as u16).to_le_bytes());
        put(&mut bytes, 54, &(SIZEOF_PHDR as u16).to_le_bytes());
        put(
            &mut bytes,
            56,
            &u16::try_from(phdrs.len()).unwrap().to_le_bytes(),
        );
        bytes
    }
}

/// The standard application with `edit` applied to its bytes.
pub(super) fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = test_dyn().build();
    edit(&mut bytes);
    bytes
}

/// The standard application changed through its description.
pub(super) fn described(change: impl FnOnce(&mut TestElf)) -> Vec<u8> {
    let mut elf = test_dyn();
    change(&mut elf);
    elf.build()
}

/// Loads `kernel` for `bias` the way the loader does and returns the image.
pub(super) fn load(kernel: &Kernel, bias: u64) -> Result<(Vec<u8>, RelocStats), LoadError> {
    let mut image = vec![0xaa_u8; usize::try_from(kernel.size()).unwrap()];
    for segment in &kernel.segments {
        kernel.load_segment_timed(segment, &mut image, || 0)?;
    }
    kernel.zero_gaps(&mut image);
    let stats = kernel.relocate(bias, &mut image)?;
    Ok((image, stats))
}

/// The addresses `[start, end)` the loaded kernel occupies for load bias `bias`.
pub(super) fn image_range(kernel: &Kernel, bias: u64) -> Range<u64> {
    kernel.vaddr_start.wrapping_add(bias)..kernel.vaddr_end.wrapping_add(bias)
}

/// Checks that `inspect` refuses each case with the expected error.
pub(super) fn assert_refusals(cases: Vec<(&str, Vec<u8>, LoadError)>) {
    for (description, bytes, expected) in cases {
        let result = inspect(&bytes).map(|kernel| kernel.entry);
        assert_eq!(result, Err(expected), "{description}");
    }
}

/// The 8-byte little-endian value at `offset` of the image.
pub(super) fn image_u64(image: &[u8], offset: u64) -> u64 {
    let start = usize::try_from(offset).unwrap();
    u64::from_le_bytes(image[start..start + 8].try_into().unwrap())
}
