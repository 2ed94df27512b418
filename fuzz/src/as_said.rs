//! The `as_said` target: whatever `elf::inspect` and loading accept is loaded as
//! the file says (issue 20, item 8). Its seeds are real test kernels (release
//! builds of `test-kernels/`, cut after their last segment's file bytes), so that
//! the fuzzer mutates files shaped as a linker writes them: four `PT_LOAD`
//! segments, `PT_TLS`, `PT_DYNAMIC`, a `DT_RELA` table of hundreds of
//! `R_X86_64_RELATIVE` entries with `DT_RELACOUNT`.
//!
//! For an input the library accepts, the file is read a second time,
//! independently, with goblin's parsers (program headers, dynamic section,
//! relocation table, symbols) and rules written here, and the image the loader
//! built is compared with the one the file describes, byte for byte: every
//! `PT_LOAD` segment's file bytes at its address, its memory-size tail and every
//! gap zeroed, every relocation of the `DT_RELA` table applied (and counted) and
//! nothing else changed. Besides, what the file says must be consistent, or the
//! library should have refused it: every program header type and dynamic tag in
//! a defined range, the relocation tags complete and `DT_RELACOUNT` borne out,
//! segments in order and apart, `PT_DYNAMIC` and the TLS template where a segment
//! loads them, every relocation target inside one segment, the entry point in an
//! executable segment's file bytes.
//!
//! Input: the module (the application's ELF file). Nothing is booted; the image is
//! a host buffer, for a base chosen as the layout would.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::{
    Dyn, Dynamic, DT_HIOS, DT_HIPROC, DT_LOOS, DT_NULL, DT_PLTRELSZ, DT_RELA, DT_RELACOUNT,
    DT_RELAENT, DT_RELASZ, DT_RELSZ, DT_SYMTAB,
};
use goblin::elf::header::ET_DYN;
use goblin::elf::program_header::{
    ProgramHeader, PF_X, PT_DYNAMIC, PT_HIPROC, PT_LOAD, PT_LOOS, PT_TLS,
};
use goblin::elf::reloc::{
    RelocSection, R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_NONE, R_X86_64_RELATIVE,
};
use goblin::elf::sym::{Symtab, STB_WEAK};
use goblin::elf::Elf;
use rusty_loader::elf::{self, ElfKind, Kernel, RelocStats};

/// The largest image checked: what QEMU's usual 64 MiB could hold. The layout
/// refuses larger ones (`not-enough-memory`), and a buffer per input stays small.
const MAX_IMAGE: u64 = 48 << 20;
const PAGE: u64 = 0x1000;
const HUGE_PAGE: u64 = 0x20_0000;
/// Where the layout puts a position-independent kernel on QEMU's usual machine.
const BASE: u64 = 0x80_0000;
/// The packed relative relocation table's tag (goblin does not name it).
const DT_RELR: u64 = 36;

/// How far an input got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    /// `elf::inspect` refused it.
    Inspection,
    /// The image is larger than any RAM the layout would find for it.
    TooLarge,
    /// Loading or relocating refused it.
    Loading,
    /// Accepted, and loaded as the file says.
    Loaded,
}

/// Runs the checks on one module; panics on the first that fails.
pub fn check(module: &[u8]) -> Reached {
    let Ok(kernel) = elf::inspect(module) else {
        return Reached::Inspection;
    };
    let file = File::read(module);
    file.check_consistent(&kernel);

    let size = kernel.size();
    if size > MAX_IMAGE {
        return Reached::TooLarge;
    }
    let base = match kernel.kind {
        ElfKind::Dyn => BASE.next_multiple_of(kernel.align.max(HUGE_PAGE)),
        ElfKind::Exec => kernel.vaddr_start,
    };
    let bias = kernel.bias(base);
    if kernel.kind == ElfKind::Dyn {
        assert_eq!(bias, base.wrapping_sub(file.image_start), "the bias");
    }

    // Loading as the loader does, into a poisoned buffer.
    let mut image = vec![0xa5u8; usize::try_from(size).unwrap()];
    for segment in &kernel.segments {
        if kernel
            .load_segment_timed(segment, &mut image, || 0)
            .is_err()
        {
            return Reached::Loading;
        }
    }
    kernel.zero_gaps(&mut image);
    let mut expected = file.placed_image(module, image.len());
    assert_same(&image, &expected, "after loading");

    let relocated = kernel.relocate(bias, &mut image);
    let Ok(stats) = relocated else {
        return Reached::Loading;
    };
    let expected_stats = match kernel.kind {
        ElfKind::Dyn => file.relocate(module, bias, &mut expected),
        ElfKind::Exec => RelocStats::default(),
    };
    assert_same(&image, &expected, "after relocation");
    assert_eq!(stats, expected_stats, "relocations applied, by kind");

    if let Some(tls) = kernel.tls_info(bias) {
        let header = file.tls.expect("a PT_TLS header");
        assert_eq!(
            (tls.start, tls.filesz, tls.memsz, tls.align),
            (
                header.p_vaddr.wrapping_add(bias),
                header.p_filesz,
                header.p_memsz,
                header.p_align
            ),
            "the TLS template handed over"
        );
    } else {
        assert!(file.tls.is_none(), "the PT_TLS header was left out");
    }
    assert_eq!(
        kernel.entry_point(bias),
        file.entry.wrapping_add(bias),
        "the entry point"
    );
    Reached::Loaded
}

/// The file as goblin reads it: the parts that say how it is loaded.
struct File {
    kind: ElfKind,
    entry: u64,
    /// Every program header, in table order.
    headers: Vec<ProgramHeader>,
    /// The `PT_LOAD` headers, in table order.
    loads: Vec<ProgramHeader>,
    /// The first `PT_TLS` header.
    tls: Option<ProgramHeader>,
    /// The first `PT_DYNAMIC` header and its entries up to `DT_NULL`.
    dynamic: Option<(ProgramHeader, Vec<Dyn>)>,
    /// The lowest `PT_LOAD` address, rounded down to a page.
    image_start: u64,
}

fn ctx() -> Ctx {
    Ctx::new(Container::Big, Endian::Little)
}

impl File {
    /// Reads `module`, which `elf::inspect` accepted: goblin must read it too.
    fn read(module: &[u8]) -> File {
        let header = Elf::parse_header(module).expect("goblin reads the ELF header");
        let headers = ProgramHeader::parse(
            module,
            usize::try_from(header.e_phoff).unwrap(),
            usize::from(header.e_phnum),
            ctx(),
        )
        .expect("goblin reads the program headers");
        let loads: Vec<ProgramHeader> = headers
            .iter()
            .filter(|h| h.p_type == PT_LOAD)
            .cloned()
            .collect();
        let tls = headers.iter().find(|h| h.p_type == PT_TLS).cloned();
        let dynamic = headers
            .iter()
            .find(|h| h.p_type == PT_DYNAMIC)
            .cloned()
            .map(|h| {
                let entries = Dynamic::parse(module, &headers, ctx())
                    .expect("goblin reads the dynamic section")
                    .expect("a dynamic section")
                    .dyns;
                (h, entries)
            });
        let image_start = loads.iter().map(|h| h.p_vaddr).min().expect("a PT_LOAD") / PAGE * PAGE;
        File {
            kind: if header.e_type == ET_DYN {
                ElfKind::Dyn
            } else {
                ElfKind::Exec
            },
            entry: header.e_entry,
            headers,
            loads,
            tls,
            dynamic,
            image_start,
        }
    }

    /// The value of dynamic tag `tag` (its first entry), if present.
    fn tag(&self, tag: u64) -> Option<u64> {
        let (_, entries) = self.dynamic.as_ref()?;
        entries
            .iter()
            .take_while(|d| d.d_tag != DT_NULL)
            .find(|d| d.d_tag == tag)
            .map(|d| d.d_val)
    }

    /// Where address `vaddr` lies in the file, if `size` bytes from it lie in the
    /// file bytes of one `PT_LOAD` segment.
    fn file_offset(&self, vaddr: u64, size: u64) -> Option<u64> {
        self.loads.iter().find_map(|h| {
            let at = vaddr.checked_sub(h.p_vaddr)?;
            (at.checked_add(size)? <= h.p_filesz).then(|| h.p_offset + at)
        })
    }

    /// Checks that what the file says is consistent, as it must be for a file the
    /// library accepted, and that the library describes it as the file does.
    fn check_consistent(&self, kernel: &Kernel) {
        assert_eq!(kernel.kind, self.kind, "the kind");
        assert_eq!(kernel.entry, self.entry, "the entry point");
        for (index, h) in self.headers.iter().enumerate() {
            let defined = h.p_type <= PT_TLS || (PT_LOOS..=PT_HIPROC).contains(&h.p_type);
            assert!(
                defined,
                "program header {index} has the undefined type {:#x}",
                h.p_type
            );
        }
        // Every PT_LOAD is loaded, as written.
        let described: Vec<(usize, u64, u64, u64, u64, u32)> = kernel
            .segments
            .iter()
            .map(|s| {
                (
                    s.index,
                    s.file_offset,
                    s.file_size,
                    s.mem_size,
                    s.vaddr,
                    s.flags,
                )
            })
            .collect();
        let written: Vec<(usize, u64, u64, u64, u64, u32)> = self
            .headers
            .iter()
            .enumerate()
            .filter(|(_, h)| h.p_type == PT_LOAD)
            .map(|(i, h)| (i, h.p_offset, h.p_filesz, h.p_memsz, h.p_vaddr, h.p_flags))
            .collect();
        assert_eq!(described, written, "the PT_LOAD segments");
        let mut previous_end = 0;
        let mut any_memory = false;
        for h in &self.loads {
            assert!(h.p_filesz <= h.p_memsz, "{h:?}: p_filesz > p_memsz");
            assert!(
                h.p_align <= 1 || h.p_align.is_power_of_two(),
                "{h:?}: p_align"
            );
            let modulus = h.p_align.clamp(1, PAGE);
            assert_eq!(
                h.p_offset % modulus,
                h.p_vaddr % modulus,
                "{h:?}: p_offset and p_vaddr"
            );
            assert!(
                h.p_vaddr >= previous_end,
                "{h:?} overlaps or precedes the one before"
            );
            previous_end = h.p_vaddr + h.p_memsz;
            any_memory |= h.p_memsz > 0;
        }
        assert!(any_memory, "an empty image");
        assert_eq!(kernel.vaddr_start, self.image_start, "the image's start");
        assert_eq!(
            kernel.vaddr_end,
            previous_end.next_multiple_of(PAGE),
            "the image's end"
        );
        if self.kind == ElfKind::Dyn {
            for h in &self.loads {
                assert_eq!(
                    self.image_start % h.p_align.max(1),
                    0,
                    "{h:?}: the image start cannot keep this segment's alignment"
                );
            }
        }
        let runs = self.loads.iter().any(|h| {
            h.p_flags & PF_X != 0
                && self
                    .entry
                    .checked_sub(h.p_vaddr)
                    .is_some_and(|at| at < h.p_filesz)
        });
        assert!(
            runs,
            "the entry point {:#x} is not in executable file bytes",
            self.entry
        );

        if let Some((header, entries)) = &self.dynamic {
            self.check_loaded_as_said(header, "PT_DYNAMIC");
            for (index, d) in entries
                .iter()
                .take_while(|d| d.d_tag != DT_NULL)
                .enumerate()
            {
                let tag = d.d_tag;
                let defined = tag <= 37
                    || (DT_LOOS..=DT_HIOS).contains(&tag)
                    || (0x6fff_fd00..=DT_HIPROC).contains(&tag);
                assert!(
                    defined,
                    "dynamic entry {index} has the undefined tag {tag:#x}"
                );
            }
        }
        if let Some(tls) = &self.tls {
            assert!(tls.p_filesz <= tls.p_memsz, "{tls:?}: p_filesz > p_memsz");
            self.check_loaded_as_said(tls, "the PT_TLS template");
        }
        if self.kind == ElfKind::Dyn {
            let tags = [DT_RELA, DT_RELASZ, DT_RELAENT].map(|tag| self.tag(tag));
            let present = tags.iter().filter(|t| t.is_some()).count();
            assert!(
                present == 0 || present == 3,
                "DT_RELA, DT_RELASZ, DT_RELAENT: {tags:?}"
            );
            if present == 3 {
                assert_eq!(tags[2], Some(24), "DT_RELAENT");
                assert_eq!(tags[1].unwrap() % 24, 0, "DT_RELASZ");
            }
            // Relocations of other tables would not be applied.
            assert_eq!(self.tag(DT_RELR), None, "DT_RELR");
            assert_eq!(self.tag(DT_RELSZ).unwrap_or(0), 0, "DT_RELSZ");
            assert_eq!(self.tag(DT_PLTRELSZ).unwrap_or(0), 0, "DT_PLTRELSZ");
            let count = self.tag(DT_RELACOUNT).unwrap_or(0);
            assert!(
                count <= tags[1].unwrap_or(0) / 24,
                "DT_RELACOUNT {count} above the table"
            );
        }
    }

    /// Checks that `header`'s file bytes are what the segments place at its address.
    fn check_loaded_as_said(&self, header: &ProgramHeader, what: &str) {
        if header.p_filesz == 0 {
            let inside = self.loads.iter().any(|h| {
                header
                    .p_vaddr
                    .checked_sub(h.p_vaddr)
                    .is_some_and(|at| at <= h.p_memsz)
            });
            assert!(inside, "{what} {header:?} outside every segment");
            return;
        }
        assert_eq!(
            self.file_offset(header.p_vaddr, header.p_filesz),
            Some(header.p_offset),
            "{what} {header:?} is not loaded where it says"
        );
    }

    /// The image before relocation, as the file describes it: each `PT_LOAD`
    /// segment's file bytes at its address, zeros everywhere else.
    fn placed_image(&self, module: &[u8], len: usize) -> Vec<u8> {
        let mut image = vec![0u8; len];
        for h in &self.loads {
            let at = usize::try_from(h.p_vaddr - self.image_start).unwrap();
            let from = usize::try_from(h.p_offset).unwrap();
            let size = usize::try_from(h.p_filesz).unwrap();
            image[at..at + size].copy_from_slice(&module[from..from + size]);
        }
        image
    }

    /// Applies the `DT_RELA` relocations to `image` as the ELF specification says,
    /// for load bias `bias`, and counts them by kind. Panics on what a loader that
    /// accepted the file should have refused.
    fn relocate(&self, module: &[u8], bias: u64, image: &mut [u8]) -> RelocStats {
        let mut stats = RelocStats::default();
        let (Some(vaddr), Some(size)) = (self.tag(DT_RELA), self.tag(DT_RELASZ)) else {
            return stats;
        };
        if size == 0 {
            return stats;
        }
        let offset = self
            .file_offset(vaddr, size)
            .expect("the DT_RELA table in a segment's file bytes");
        let table = RelocSection::parse(
            module,
            usize::try_from(offset).unwrap(),
            usize::try_from(size).unwrap(),
            true,
            ctx(),
        )
        .expect("goblin reads the DT_RELA table");
        let relative_count = self.tag(DT_RELACOUNT).unwrap_or(0);
        let symbol = |index: usize| {
            let table = self
                .tag(DT_SYMTAB)
                .and_then(|vaddr| self.file_offset(vaddr, 0))
                .expect("a symbol relocation with a symbol table");
            let at = usize::try_from(table).unwrap() + index * 24;
            Symtab::parse(module, at, 1, ctx())
                .ok()
                .and_then(|symbols| symbols.get(0))
                .expect("the symbol in the file")
        };
        for (index, relocation) in table.iter().enumerate() {
            if (index as u64) < relative_count {
                assert_eq!(
                    relocation.r_type, R_X86_64_RELATIVE,
                    "relocation {index}, counted by DT_RELACOUNT"
                );
            }
            let addend = relocation.r_addend.unwrap_or(0);
            let value = match relocation.r_type {
                R_X86_64_NONE => continue,
                R_X86_64_RELATIVE => {
                    stats.relative += 1;
                    bias.wrapping_add_signed(addend)
                }
                R_X86_64_64 | R_X86_64_GLOB_DAT => {
                    let sym = symbol(relocation.r_sym);
                    if sym.st_shndx == 0 {
                        assert_eq!(
                            sym.st_bind(),
                            STB_WEAK,
                            "relocation {index}: an undefined symbol"
                        );
                        stats.skipped_weak += 1;
                        continue;
                    }
                    let value = bias.wrapping_add(sym.st_value);
                    if relocation.r_type == R_X86_64_64 {
                        stats.abs64 += 1;
                        value.wrapping_add_signed(addend)
                    } else {
                        stats.glob_dat += 1;
                        value
                    }
                }
                other => panic!("relocation {index}: type {other} accepted"),
            };
            let target = relocation.r_offset;
            let inside = self.loads.iter().any(|h| {
                target
                    .checked_sub(h.p_vaddr)
                    .is_some_and(|at| at.checked_add(8).is_some_and(|end| end <= h.p_memsz))
            });
            assert!(
                inside,
                "relocation {index} writes at {target:#x}, outside the segments"
            );
            let at = usize::try_from(target - self.image_start).unwrap();
            image[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        stats
    }
}

/// Panics at the first byte where the loader's image differs from the file's.
fn assert_same(image: &[u8], expected: &[u8], when: &str) {
    assert_eq!(image.len(), expected.len(), "image size {when}");
    if image == expected {
        return;
    }
    let at = image
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap();
    panic!(
        "{when}: image byte {at:#x} is {:#04x}, the file says {:#04x}",
        image[at], expected[at]
    );
}

/// The seeds: the loadable part of release test kernels (everything up to the last
/// `PT_LOAD` segment's file bytes; section headers and debug information are not
/// loaded), so that a seed is small and still what a linker wrote.
pub fn loadable_part(kernel: &[u8]) -> Vec<u8> {
    let header = Elf::parse_header(kernel).expect("an ELF header");
    let headers = ProgramHeader::parse(
        kernel,
        usize::try_from(header.e_phoff).unwrap(),
        usize::from(header.e_phnum),
        ctx(),
    )
    .expect("program headers");
    let end = headers
        .iter()
        .map(|h| h.p_offset + h.p_filesz)
        .max()
        .unwrap();
    let mut bytes = kernel[..usize::try_from(end).unwrap()].to_vec();
    // No section headers: they lay beyond the cut.
    bytes[40..48].fill(0); // e_shoff
    bytes[58..64].fill(0); // e_shentsize, e_shnum, e_shstrndx
    bytes
}
