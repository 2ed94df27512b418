//! Copies of real test kernels with one inconsistency each, which the loader must
//! refuse before the hand-over (issue 20, item 8): built here for `elf_refusals.rs`,
//! which boots each through both entries, and for `refusals.rs`, whose one input per
//! documented exit code takes one of them for each code they produce.
//!
//! The first two are the issue's: `DT_RELASZ`'s tag turned into 0xffff0008 (the
//! loader applied nothing and handed over), and the data segment's `PT_LOAD` given
//! another type (the loader relocated into the hole and the boot hung).

use std::path::PathBuf;

use goblin::elf::dynamic::{DT_RELA, DT_RELACOUNT, DT_RELAENT, DT_RELASZ};
use goblin::elf::program_header::{PT_DYNAMIC, PT_LOAD, PT_NULL, PT_TLS};
use goblin::elf::Elf;
use rusty_loader::error::ExitCode;

use super::artifacts;

/// A mutant on disk, the code it must be refused with and what the error line says.
pub struct Mutant {
    pub path: PathBuf,
    pub code: ExitCode,
    pub message: String,
}

/// Every mutant, in the order of the tests.
pub fn all() -> Vec<Mutant> {
    vec![
        relasz_tag_turned_undefined(),
        relasz_tag_turned_into_another_defined_tag(),
        relacount_above_the_table(),
        relocation_entry_size_16(),
        data_segment_type_turned_undefined(),
        data_segment_turned_into_pt_null(),
        tls_template_moved_into_a_gap(),
        relocation_table_outside_the_segments(),
        relocation_into_a_gap(),
        relocation_across_a_segment_end(),
        entry_point_outside_the_code(),
        segments_out_of_order(),
        file_size_above_memory_size(),
        file_offset_not_congruent_with_the_address(),
        every_segment_empty(),
    ]
}

/// Program header field offsets (ELF64).
const P_TYPE: usize = 0;
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;

/// A test kernel's bytes with what the tests need to find in them.
pub struct Kernel {
    pub bytes: Vec<u8>,
}

impl Kernel {
    pub fn read(path: &std::path::Path) -> Kernel {
        Kernel {
            bytes: std::fs::read(path).unwrap(),
        }
    }

    pub fn hello_dyn() -> Kernel {
        Kernel::read(&artifacts().kernels.hello_dyn)
    }

    pub fn elf(&self) -> Elf<'_> {
        Elf::parse(&self.bytes).unwrap()
    }

    pub fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().unwrap())
    }

    pub fn set_u64(&mut self, at: usize, value: u64) {
        self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// File offset of field `field` of program header `index`.
    pub fn phdr_field(&self, index: usize, field: usize) -> usize {
        // e_phoff, read directly: a mutant need not parse any more.
        self.u64_at(32) as usize + index * 56 + field
    }

    /// The index of the `nth` program header of type `p_type`.
    pub fn phdr_index(&self, p_type: u32, nth: usize) -> usize {
        self.elf()
            .program_headers
            .iter()
            .enumerate()
            .filter(|(_, header)| header.p_type == p_type)
            .nth(nth)
            .unwrap_or_else(|| panic!("program header {p_type} number {nth}"))
            .0
    }

    pub fn set_phdr(&mut self, index: usize, field: usize, value: u64) {
        let at = self.phdr_field(index, field);
        self.set_u64(at, value);
    }

    pub fn set_phdr_type(&mut self, index: usize, p_type: u32) {
        let at = self.phdr_field(index, P_TYPE);
        self.bytes[at..at + 4].copy_from_slice(&p_type.to_le_bytes());
    }

    /// File offset and index of the dynamic entry with tag `tag`.
    pub fn dynamic_entry(&self, tag: u64) -> (usize, usize) {
        let elf = self.elf();
        let dynamic = elf
            .program_headers
            .iter()
            .find(|p| p.p_type == PT_DYNAMIC)
            .unwrap();
        let base = dynamic.p_offset as usize;
        (0..dynamic.p_filesz as usize / 16)
            .map(|i| (base + i * 16, i))
            .find(|&(at, _)| self.u64_at(at) == tag)
            .unwrap_or_else(|| panic!("dynamic tag {tag:#x}"))
    }

    /// File offset of the first entry of the `.rela.dyn` table and its entries'
    /// targets.
    pub fn relocations(&self) -> (usize, Vec<u64>) {
        let elf = self.elf();
        let (rela, _) = self.dynamic_entry(DT_RELA);
        let vaddr = self.u64_at(rela + 8);
        let offset = elf
            .program_headers
            .iter()
            .find(|p| p.p_type == PT_LOAD && (p.p_vaddr..p.p_vaddr + p.p_filesz).contains(&vaddr))
            .map(|p| (vaddr - p.p_vaddr + p.p_offset) as usize)
            .unwrap();
        let targets = elf.dynrelas.iter().map(|rela| rela.r_offset).collect();
        (offset, targets)
    }

    /// Writes the mutant to a file named after the case.
    pub fn write(&self, name: &str) -> PathBuf {
        let dir = xtask::project_root().join("target/test-inputs/elf-refusals");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &self.bytes).unwrap();
        path
    }
}

/// The first mutant: `DT_RELASZ`'s tag turned into an undefined one leaves
/// `DT_RELA` and `DT_RELACOUNT` without a size.
pub fn relasz_tag_turned_undefined() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let (at, index) = kernel.dynamic_entry(DT_RELASZ);
    kernel.set_u64(at, 0xffff_0008);
    Mutant {
        path: kernel.write("relasz-tag-0xffff0008"),
        code: ExitCode::UndefinedTag,
        message: format!(
            "dynamic entry {index} has tag 0xffff0008, which no ELF specification defines"
        ),
    }
}

/// The same mutation to a tag in a defined range that the loader does not read: the
/// table is left without its size, which is refused as such.
pub fn relasz_tag_turned_into_another_defined_tag() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let (at, _) = kernel.dynamic_entry(DT_RELASZ);
    kernel.set_u64(at, 0x6fff_fd08);
    Mutant {
        path: kernel.write("relasz-tag-gnu"),
        code: ExitCode::InconsistentDynamic,
        message: "the dynamic section has DT_RELA but no DT_RELASZ".to_string(),
    }
}

pub fn relacount_above_the_table() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let (at, _) = kernel.dynamic_entry(DT_RELACOUNT);
    let (size_at, _) = kernel.dynamic_entry(DT_RELASZ);
    let entries = kernel.u64_at(size_at + 8) / 24;
    kernel.set_u64(at + 8, entries + 1);
    Mutant {
        path: kernel.write("relacount-above"),
        code: ExitCode::InconsistentDynamic,
        message: format!(
            "DT_RELACOUNT says {} relative relocations, but the table (DT_RELASZ) holds {entries}",
            entries + 1
        ),
    }
}

pub fn relocation_entry_size_16() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let (at, _) = kernel.dynamic_entry(DT_RELAENT);
    kernel.set_u64(at + 8, 16);
    Mutant {
        path: kernel.write("relaent-16"),
        code: ExitCode::InconsistentDynamic,
        message: "DT_RELAENT is 16, where the loader's records are 24 bytes".to_string(),
    }
}

/// The second mutant: the `PT_LOAD` of the data segment (`.tdata`,
/// `.data.rel.ro`, `.dynamic`, `.got`) given an undefined type.
pub fn data_segment_type_turned_undefined() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let index = kernel.phdr_index(PT_LOAD, 2);
    kernel.set_phdr_type(index, 0x1234_5678);
    Mutant {
        path: kernel.write("data-load-undefined-type"),
        code: ExitCode::UndefinedTag,
        message: format!("program header {index} has type 0x12345678"),
    }
}

/// The second mutant with a defined type (`PT_NULL`): the segment is gone, and with
/// it the `PT_DYNAMIC` it held.
pub fn data_segment_turned_into_pt_null() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let index = kernel.phdr_index(PT_LOAD, 2);
    kernel.set_phdr_type(index, PT_NULL);
    Mutant {
        path: kernel.write("data-load-null"),
        code: ExitCode::DynamicOutsideSegments,
        message: "PT_DYNAMIC [".to_string(),
    }
}

pub fn tls_template_moved_into_a_gap() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let elf = kernel.elf();
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .cloned()
        .collect();
    // The page-aligned address between the first two segments.
    let gap = (loads[0].p_vaddr + loads[0].p_memsz).next_multiple_of(0x1000);
    assert!(
        gap < loads[1].p_vaddr,
        "a gap between the first two segments"
    );
    let index = kernel.phdr_index(PT_TLS, 0);
    kernel.set_phdr(index, P_VADDR, gap);
    Mutant {
        path: kernel.write("tls-in-gap"),
        code: ExitCode::TlsOutsideSegments,
        message: format!("the PT_TLS template [{gap:#x}, "),
    }
}

pub fn relocation_table_outside_the_segments() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let (at, _) = kernel.dynamic_entry(DT_RELA);
    kernel.set_u64(at + 8, 0x4000_0000);
    Mutant {
        path: kernel.write("rela-outside"),
        code: ExitCode::TableOutsideSegments,
        message: "the DT_RELA table [0x40000000, ".to_string(),
    }
}

/// A relocation aimed between the first two segments: found while relocating, after
/// the segments are loaded, still before the hand-over.
pub fn relocation_into_a_gap() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let elf = kernel.elf();
    let first = elf
        .program_headers
        .iter()
        .find(|p| p.p_type == PT_LOAD)
        .unwrap();
    let gap = (first.p_vaddr + first.p_memsz).next_multiple_of(0x1000);
    let (table, targets) = kernel.relocations();
    let index = targets.len() / 2;
    kernel.set_u64(table + index * 24, gap);
    Mutant {
        path: kernel.write("relocation-into-gap"),
        code: ExitCode::RelocationOutsideSegments,
        message: format!("relocation {index} writes 8 bytes at {gap:#x}, which do not lie in one PT_LOAD segment"),
    }
}

/// The last relocation moved to straddle the end of the last segment.
pub fn relocation_across_a_segment_end() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let elf = kernel.elf();
    let last = elf
        .program_headers
        .iter()
        .rfind(|p| p.p_type == PT_LOAD)
        .unwrap();
    let target = last.p_vaddr + last.p_memsz - 4;
    let (table, targets) = kernel.relocations();
    let index = targets.len() - 1;
    kernel.set_u64(table + index * 24, target);
    Mutant {
        path: kernel.write("relocation-across-end"),
        code: ExitCode::RelocationOutsideSegments,
        message: format!("relocation {index} writes 8 bytes at {target:#x}"),
    }
}

/// An executable's entry point moved into its read-only first segment.
pub fn entry_point_outside_the_code() -> Mutant {
    let mut kernel = Kernel::read(&artifacts().kernels.hello_exec);
    let entry = kernel
        .elf()
        .program_headers
        .iter()
        .find(|p| p.p_type == PT_LOAD)
        .unwrap()
        .p_vaddr
        + 0x100;
    kernel.set_u64(24, entry);
    Mutant {
        path: kernel.write("entry-in-rodata"),
        code: ExitCode::EntryOutsideCode,
        message: format!(
            "the entry point {entry:#x} is not in the file bytes of an executable PT_LOAD segment"
        ),
    }
}

pub fn segments_out_of_order() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let (first, second) = (kernel.phdr_index(PT_LOAD, 0), kernel.phdr_index(PT_LOAD, 1));
    let (a, b) = (kernel.phdr_field(first, 0), kernel.phdr_field(second, 0));
    let original = kernel.bytes.clone();
    kernel.bytes[a..a + 56].copy_from_slice(&original[b..b + 56]);
    kernel.bytes[b..b + 56].copy_from_slice(&original[a..a + 56]);
    Mutant {
        path: kernel.write("loads-swapped"),
        code: ExitCode::OverlappingSegments,
        message: "PT_LOAD segments out of address order".to_string(),
    }
}

pub fn file_size_above_memory_size() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let index = kernel.phdr_index(PT_LOAD, 1);
    let file_size = kernel.u64_at(kernel.phdr_field(index, P_FILESZ));
    kernel.set_phdr(index, P_MEMSZ, file_size - 8);
    Mutant {
        path: kernel.write("filesz-above-memsz"),
        code: ExitCode::FileSizeAboveMemorySize,
        message: format!("PT_LOAD program header {index} has p_filesz {file_size:#x} > p_memsz"),
    }
}

pub fn file_offset_not_congruent_with_the_address() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let index = kernel.phdr_index(PT_LOAD, 1);
    let offset = kernel.u64_at(kernel.phdr_field(index, P_OFFSET));
    kernel.set_phdr(index, P_OFFSET, offset + 8);
    Mutant {
        path: kernel.write("offset-not-congruent"),
        code: ExitCode::MisalignedSegment,
        message: format!("has p_offset {:#x} and p_vaddr", offset + 8),
    }
}

pub fn every_segment_empty() -> Mutant {
    let mut kernel = Kernel::hello_dyn();
    let count = kernel
        .elf()
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .count();
    let indices: Vec<usize> = (0..count)
        .map(|nth| kernel.phdr_index(PT_LOAD, nth))
        .collect();
    for index in indices {
        kernel.set_phdr(index, P_FILESZ, 0);
        kernel.set_phdr(index, P_MEMSZ, 0);
    }
    Mutant {
        path: kernel.write("empty-image"),
        code: ExitCode::EmptyImage,
        message: format!("the {count} PT_LOAD segments occupy no memory"),
    }
}
