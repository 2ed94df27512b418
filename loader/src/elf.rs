//! Recognising, placing and loading the Hermit application (the Multiboot module).
//!
//! [`inspect`] checks that the module is a Hermit application this loader can serve
//! (ELF64, x86_64, `ET_EXEC` or `ET_DYN`, a HERMIT note with entry version 3 or 4, no
//! shared libraries) and records what loading needs: the `PT_LOAD` segments, the TLS
//! template, the kernel version from the GNU ABI tag and where the relocation table
//! lies. The caller chooses where the kernel goes, then calls
//! [`Kernel::load_segment`] for every segment, [`Kernel::zero_gaps`] and
//! [`Kernel::relocate`] on the slice of memory that becomes the kernel image.
//!
//! The module bytes come from whoever started QEMU, so nothing here trusts them: the
//! parser reads only the ELF header, the program headers, the notes and the dynamic
//! section, each field through a bounds-checked reader, and all address arithmetic is
//! checked. A panic on bare metal is a failed boot, so every malformed input ends in a
//! [`LoadError`] instead. Section headers and the symbol tables are never walked as a
//! whole (real applications carry thousands of symbols and the loader's heap is small):
//! a relocation looks its symbol up by index in the dynamic symbol table.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use goblin::elf::dynamic::{
    DT_NEEDED, DT_NULL, DT_RELA, DT_RELAENT, DT_RELASZ, DT_SYMENT, DT_SYMTAB,
};
use goblin::elf::header::{
    EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB, ELFMAG, EM_X86_64, ET_DYN, ET_EXEC,
};
use goblin::elf::program_header::{PT_DYNAMIC, PT_LOAD, PT_NOTE, PT_TLS};
use goblin::elf::reloc::{R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_NONE, R_X86_64_RELATIVE};
use goblin::elf::section_header::SHN_UNDEF;
use goblin::elf::sym::{st_bind, STB_WEAK};
use goblin::elf64::dynamic::{Dyn, SIZEOF_DYN};
use goblin::elf64::header::{Header, SIZEOF_EHDR};
use goblin::elf64::program_header::{ProgramHeader, SIZEOF_PHDR};
use goblin::elf64::reloc::{r_sym, r_type, Rela, SIZEOF_RELA};
use goblin::elf64::sym::{Sym, SIZEOF_SYM};
use hermit_entry::boot_info::TlsInfo;

use crate::error::LoadError;

/// Note type of the HERMIT note, whose one-byte descriptor is the entry ABI version.
const NT_HERMIT_ENTRY_VERSION: u32 = 0x5a00;
/// Owner name of the HERMIT note.
const HERMIT_NOTE_NAME: &[u8] = b"HERMIT";
/// Note type of the GNU ABI tag, whose descriptor is `{os, major, minor, patch}`.
const NT_GNU_ABI_TAG: u32 = 1;
/// Owner name of the GNU ABI tag note.
const GNU_NOTE_NAME: &[u8] = b"GNU";
/// The `os` field of a GNU ABI tag written by a Hermit kernel.
const ELF_NOTE_OS_HERMIT: u32 = 6;
/// Size of a note header: `n_namesz`, `n_descsz` and `n_type`, 32 bits each in ELF64 too.
const NOTE_HEADER_SIZE: usize = 12;
/// The entry ABI versions whose boot-info layout this loader writes: 2 (kernel
/// 0.6.0), 3 (0.6.1–0.6.9) and 4 (0.7 and later).
const SUPPORTED_ENTRY_VERSIONS: [u8; 3] = [2, 3, 4];
/// `e_phnum` value announcing extended numbering (the real count is in section header 0).
const PN_XNUM: u16 = 0xffff;
/// Dynamic tag of a packed relative relocation table (goblin does not name it).
const DT_RELR: u64 = 36;
/// The loader places and zeroes the kernel image in whole pages.
const PAGE_SIZE: u64 = 0x1000;

/// A Hermit kernel version, from the GNU ABI tag note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HermitVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for HermitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The kernel generation whose boot rules an application relies on (see
/// docs/hermit-abi.md). The loader's one page-table layout meets both; the
/// generation is traced so a reader knows which rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// Hermit 0.6 to 0.10: a recursive PML4 entry, nothing mapped above the kernel.
    Legacy,
    /// Hermit 0.11 and later: the device tree, identity-walked page tables.
    Modern,
}

impl Generation {
    /// The name the trace and reports use.
    pub const fn name(self) -> &'static str {
        match self {
            Generation::Legacy => "0.6-0.10",
            Generation::Modern => "0.11+",
        }
    }
}

/// How the application is linked, which decides who picks its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: every segment goes to its own address.
    Exec,
    /// `ET_DYN` (static PIE): the loader picks the address and applies relocations.
    Dyn,
}

/// One `PT_LOAD` program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Index of the program header in the program header table.
    pub index: usize,
    /// Where the segment's bytes start in the file (`p_offset`).
    pub file_offset: u64,
    /// How many bytes come from the file (`p_filesz`).
    pub file_size: u64,
    /// How many bytes the segment occupies in memory (`p_memsz`); the rest is zeroed.
    pub mem_size: u64,
    /// The virtual address as written in the ELF, before relocation (`p_vaddr`).
    pub vaddr: u64,
    /// The access flags (`p_flags`: `PF_R`, `PF_W`, `PF_X`).
    pub flags: u32,
}

/// The `PT_TLS` program header: the template every thread's TLS block starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsSegment {
    /// Start of the TLS template as written in the ELF, before relocation.
    pub vaddr: u64,
    /// Initialised bytes of the template (`p_filesz`).
    pub file_size: u64,
    /// Size of a TLS block, including its zeroed tail (`p_memsz`).
    pub mem_size: u64,
    /// Alignment of a TLS block (`p_align`).
    pub align: u64,
}

/// How many relocations of each kind [`Kernel::relocate`] applied or skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelocStats {
    /// `R_X86_64_RELATIVE` relocations applied.
    pub relative: u32,
    /// `R_X86_64_64` relocations applied.
    pub abs64: u32,
    /// `R_X86_64_GLOB_DAT` relocations applied.
    pub glob_dat: u32,
    /// Symbol relocations left alone because their symbol is weak and undefined.
    pub skipped_weak: u32,
}

/// Time spent loading one segment, in ticks of the caller's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentTicks {
    /// Copying the file bytes.
    pub copy: u64,
    /// Zeroing the rest up to `p_memsz`.
    pub zero: u64,
}

/// A validated Hermit application, borrowed from the module bytes.
#[derive(Clone)]
pub struct Kernel<'a> {
    /// The whole module, as handed over by the boot loader.
    pub bytes: &'a [u8],
    /// Whether the application is position independent.
    pub kind: ElfKind,
    /// The entry ABI version from the HERMIT note.
    pub entry_version: u8,
    /// The kernel version from the GNU ABI tag note; `None` for kernels before 0.10.
    pub kernel_version: Option<HermitVersion>,
    /// The entry point as written in the ELF (`e_entry`), before relocation.
    pub entry: u64,
    /// Every `PT_LOAD` segment, in program header order (which is ascending addresses).
    pub segments: Vec<Segment>,
    /// The `PT_TLS` segment, before relocation.
    pub tls: Option<TlsSegment>,
    /// The lowest `PT_LOAD` address, rounded down to a page.
    pub vaddr_start: u64,
    /// The highest `PT_LOAD` end address, rounded up to a page.
    pub vaddr_end: u64,
    /// The largest `p_align` of the `PT_LOAD` segments, at least a page.
    pub align: u64,
    /// The file bytes of the `DT_RELA` table; empty if there is none or the kernel is
    /// not relocatable.
    relocation_table: Range<u64>,
    /// The file bytes from `DT_SYMTAB` to the end of the segment that holds it. The
    /// dynamic section does not say how many symbols there are, so this is the most a
    /// symbol index may reach.
    symbol_table: Option<Range<u64>>,
}

impl fmt::Debug for Kernel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The module bytes are left out: they are megabytes of machine code.
        f.debug_struct("Kernel")
            .field("file_len", &self.bytes.len())
            .field("kind", &self.kind)
            .field("entry_version", &self.entry_version)
            .field("kernel_version", &self.kernel_version)
            .field("entry", &format_args!("{:#x}", self.entry))
            .field("segments", &self.segments)
            .field("tls", &self.tls)
            .field("vaddr_start", &format_args!("{:#x}", self.vaddr_start))
            .field("vaddr_end", &format_args!("{:#x}", self.vaddr_end))
            .field("align", &format_args!("{:#x}", self.align))
            .field("relocation_table", &self.relocation_table)
            .field("symbol_table", &self.symbol_table)
            .finish()
    }
}

/// Checks that `bytes` is a Hermit application this loader can boot and describes it.
///
/// Nothing is copied: the returned [`Kernel`] borrows `bytes`. Every refusal names
/// what it found, so the loader can print why it will not boot.
pub fn inspect(bytes: &[u8]) -> Result<Kernel<'_>, LoadError> {
    let header = read_header(bytes)?;
    let kind = match header.e_type {
        ET_EXEC => ElfKind::Exec,
        ET_DYN => ElfKind::Dyn,
        e_type => return Err(LoadError::WrongType { e_type }),
    };
    let program_headers = ProgramHeaderTable::new(bytes, &header)?;

    // The HERMIT note decides whether this is a Hermit application at all, so it is
    // checked before anything that would only matter for one.
    let notes = scan_notes(bytes, &program_headers)?;
    let entry_version = notes.entry_version.ok_or(LoadError::NoHermitNote)?;
    if !SUPPORTED_ENTRY_VERSIONS.contains(&entry_version) {
        return Err(LoadError::UnsupportedEntryVersion {
            version: entry_version,
        });
    }

    let dynamic = scan_dynamic(bytes, &program_headers)?;
    if dynamic.needs_shared_library {
        return Err(LoadError::NeedsSharedLibrary);
    }

    let (segments, largest_align) = collect_segments(bytes, &program_headers)?;
    let extent = image_extent(&segments, largest_align)?;
    let tls = find_tls(&program_headers, &extent)?;
    if !(extent.vaddr_start..extent.vaddr_end).contains(&header.e_entry) {
        return Err(malformed(
            "the entry point lies outside the PT_LOAD segments",
        ));
    }

    // Upstream loaders relocate only position-independent kernels; an executable's
    // addresses are final, whatever its dynamic section says.
    let (relocation_table, symbol_table) = match kind {
        ElfKind::Dyn => (
            locate_relocation_table(&dynamic, &segments)?,
            locate_symbol_table(&dynamic, &segments)?,
        ),
        ElfKind::Exec => (0..0, None),
    };

    Ok(Kernel {
        bytes,
        kind,
        entry_version,
        kernel_version: notes.kernel_version,
        entry: header.e_entry,
        segments,
        tls,
        vaddr_start: extent.vaddr_start,
        vaddr_end: extent.vaddr_end,
        align: extent.align,
        relocation_table,
        symbol_table,
    })
}

impl Kernel<'_> {
    /// The generation the kernel belongs to, from its ABI-tag note. Kernels without
    /// the note are older than 0.10, hence legacy.
    pub fn generation(&self) -> Generation {
        match self.kernel_version {
            Some(v) if (v.major, v.minor) >= (0, 11) => Generation::Modern,
            _ => Generation::Legacy,
        }
    }

    /// How many bytes the loaded kernel occupies: `vaddr_end - vaddr_start`.
    pub fn size(&self) -> u64 {
        self.vaddr_end.saturating_sub(self.vaddr_start)
    }

    /// The load bias for a kernel placed at `base`.
    ///
    /// `base` is the physical (= virtual) address the loader chose for a
    /// position-independent kernel, 2 MiB aligned; the bias is what every address in
    /// the ELF must be moved by. Executables ignore `base`: their bias is 0.
    pub fn bias(&self, base: u64) -> u64 {
        match self.kind {
            ElfKind::Dyn => base.wrapping_sub(self.vaddr_start),
            ElfKind::Exec => 0,
        }
    }

    /// The addresses `[start, end)` the loaded kernel occupies for load bias `bias`.
    pub fn image_range(&self, bias: u64) -> Range<u64> {
        self.vaddr_start.wrapping_add(bias)..self.vaddr_end.wrapping_add(bias)
    }

    /// The address to jump to for load bias `bias`.
    pub fn entry_point(&self, bias: u64) -> u64 {
        self.entry.wrapping_add(bias)
    }

    /// The TLS template as the boot info describes it, with its start relocated by `bias`.
    pub fn tls_info(&self, bias: u64) -> Option<TlsInfo> {
        self.tls.map(|tls| TlsInfo {
            start: tls.vaddr.wrapping_add(bias),
            filesz: tls.file_size,
            memsz: tls.mem_size,
            align: tls.align,
        })
    }

    /// Copies `segment`'s file bytes into `image` and zeroes the rest of its memory size.
    ///
    /// `image` is the memory of [`Kernel::image_range`], as a slice; its first byte
    /// holds `vaddr_start`. Where a segment lands inside the image does not depend on
    /// the bias, which is accepted only so that all loading steps take the same inputs.
    pub fn load_segment(
        &self,
        segment: &Segment,
        _bias: u64,
        image: &mut [u8],
    ) -> Result<(), LoadError> {
        self.load_segment_timed(segment, image, || 0).map(|_| ())
    }

    /// As [`Kernel::load_segment`], measuring the copy and the zeroing with `clock`
    /// (the loader passes the TSC; the pure code here cannot read it).
    pub fn load_segment_timed(
        &self,
        segment: &Segment,
        image: &mut [u8],
        mut clock: impl FnMut() -> u64,
    ) -> Result<SegmentTicks, LoadError> {
        let file_bytes = file_slice(self.bytes, segment.file_offset, segment.file_size).ok_or(
            LoadError::SegmentOutsideFile {
                index: segment.index,
                offset: segment.file_offset,
                size: segment.file_size,
                file_len: file_len(self.bytes),
            },
        )?;
        let memory = segment
            .vaddr
            .checked_sub(self.vaddr_start)
            .and_then(|start| image_slice(image, start, segment.mem_size))
            .ok_or(malformed("a PT_LOAD segment lies outside the kernel image"))?;
        let (initialised, zeroed) = memory
            .split_at_mut_checked(file_bytes.len())
            .ok_or(malformed("a PT_LOAD segment has p_filesz > p_memsz"))?;
        let start = clock();
        initialised.copy_from_slice(file_bytes);
        let copied = clock();
        zeroed.fill(0);
        let zeroed = clock();
        Ok(SegmentTicks {
            copy: copied.wrapping_sub(start),
            zero: zeroed.wrapping_sub(copied),
        })
    }

    /// Zeroes every byte of `image` that no segment covers, so the whole image is defined.
    ///
    /// Segments are in ascending address order and do not overlap ([`inspect`] checks
    /// this), so one walk from the start of the image finds every gap.
    pub fn zero_gaps(&self, _bias: u64, image: &mut [u8]) {
        let image_len = file_len(image);
        let mut cursor = 0_u64;
        for segment in &self.segments {
            let start = segment
                .vaddr
                .saturating_sub(self.vaddr_start)
                .min(image_len);
            let end = start.saturating_add(segment.mem_size).min(image_len);
            if let Some(gap) = image_slice(image, cursor, start.saturating_sub(cursor)) {
                gap.fill(0);
            }
            cursor = cursor.max(end);
        }
        if let Some(tail) = image_slice(image, cursor, image_len.saturating_sub(cursor)) {
            tail.fill(0);
        }
    }

    /// Applies the `DT_RELA` relocations to the loaded `image` (after all segments).
    ///
    /// `R_X86_64_RELATIVE` stores bias + addend; `R_X86_64_64` stores bias + symbol
    /// value + addend and `R_X86_64_GLOB_DAT` the same without the addend. Relocations
    /// against weak undefined symbols are skipped and counted, `R_X86_64_NONE` is
    /// ignored, and any other type is refused. `DT_JMPREL` is ignored, as upstream does.
    /// Executables are not relocated.
    pub fn relocate(&self, bias: u64, image: &mut [u8]) -> Result<RelocStats, LoadError> {
        let mut stats = RelocStats::default();
        if self.kind == ElfKind::Exec {
            return Ok(stats);
        }
        let table = file_slice(
            self.bytes,
            self.relocation_table.start,
            self.relocation_table
                .end
                .saturating_sub(self.relocation_table.start),
        )
        .ok_or(malformed("the relocation table lies outside the file"))?;

        for entry in table.chunks_exact(SIZEOF_RELA) {
            let relocation =
                read_rela(entry).ok_or(malformed("a relocation entry is truncated"))?;
            let relocation_type = r_type(relocation.r_info);
            let value = match relocation_type {
                R_X86_64_NONE => continue,
                R_X86_64_RELATIVE => {
                    stats.relative = stats.relative.saturating_add(1);
                    bias.wrapping_add_signed(relocation.r_addend)
                }
                R_X86_64_64 | R_X86_64_GLOB_DAT => {
                    let symbol = self.dynamic_symbol(r_sym(relocation.r_info))?;
                    let undefined = u32::from(symbol.st_shndx) == SHN_UNDEF;
                    if undefined && st_bind(symbol.st_info) == STB_WEAK {
                        // A weak symbol nobody defined resolves to 0, which the linker
                        // already wrote into the target.
                        stats.skipped_weak = stats.skipped_weak.saturating_add(1);
                        continue;
                    }
                    if undefined {
                        // A static application has nothing that could define it.
                        return Err(malformed("a relocation refers to an undefined symbol"));
                    }
                    let addend = if relocation_type == R_X86_64_GLOB_DAT {
                        stats.glob_dat = stats.glob_dat.saturating_add(1);
                        0
                    } else {
                        stats.abs64 = stats.abs64.saturating_add(1);
                        relocation.r_addend
                    };
                    bias.wrapping_add(symbol.st_value)
                        .wrapping_add_signed(addend)
                }
                other => {
                    return Err(LoadError::UnsupportedRelocation {
                        r_type: other,
                        offset: relocation.r_offset,
                    })
                }
            };
            let target = relocation
                .r_offset
                .checked_sub(self.vaddr_start)
                .and_then(|offset| image_slice(image, offset, 8))
                .ok_or(malformed(
                    "a relocation target lies outside the kernel image",
                ))?;
            target.copy_from_slice(&value.to_le_bytes());
        }
        Ok(stats)
    }

    /// Reads entry `index` of the dynamic symbol table.
    fn dynamic_symbol(&self, index: u32) -> Result<Sym, LoadError> {
        let table = self.symbol_table.as_ref().ok_or(malformed(
            "a symbol relocation but no dynamic symbol table (DT_SYMTAB)",
        ))?;
        let offset = u64::from(index)
            .checked_mul(SIZEOF_SYM as u64)
            .and_then(|relative| relative.checked_add(table.start))
            .filter(|&offset| {
                offset
                    .checked_add(SIZEOF_SYM as u64)
                    .is_some_and(|end| end <= table.end)
            })
            .ok_or(malformed(
                "a relocation's symbol index lies outside the dynamic symbol table",
            ))?;
        read_symbol(self.bytes, offset).ok_or(malformed("a dynamic symbol is truncated"))
    }
}

/// A [`LoadError::MalformedElf`] with a short description of what is wrong.
const fn malformed(what: &'static str) -> LoadError {
    LoadError::MalformedElf { what }
}

/// A slice's length as the 64-bit quantity ELF offsets are compared with.
fn file_len(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

/// The `len` bytes at `offset` of `bytes`, if they all lie inside it.
fn file_slice(bytes: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

/// The `len` bytes at `offset` of `image`, if they all lie inside it.
fn image_slice(image: &mut [u8], offset: u64, len: u64) -> Option<&mut [u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    image.get_mut(start..end)
}

/// Reads consecutive little-endian fields of one record, failing instead of running
/// past its end.
struct FieldReader<'a> {
    rest: &'a [u8],
}

impl<'a> FieldReader<'a> {
    /// A reader for the `len` bytes at `offset` of `bytes`, if they are all there.
    fn new(bytes: &'a [u8], offset: u64, len: usize) -> Option<Self> {
        let rest = file_slice(bytes, offset, u64::try_from(len).ok()?)?;
        Some(FieldReader { rest })
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (field, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*field)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[byte]| byte)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
}

/// Checks the identification and machine and reads the ELF header.
fn read_header(bytes: &[u8]) -> Result<Header, LoadError> {
    // A file shorter than the magic is reported with zeros in place of missing bytes.
    let mut magic = [0_u8; 4];
    for (slot, byte) in magic.iter_mut().zip(bytes) {
        *slot = *byte;
    }
    if magic != *ELFMAG {
        return Err(LoadError::NotElf { magic });
    }
    let (Some(&class), Some(&data)) = (bytes.get(EI_CLASS), bytes.get(EI_DATA)) else {
        return Err(malformed("the file is shorter than the ELF header"));
    };
    if class != ELFCLASS64 || data != ELFDATA2LSB {
        return Err(LoadError::WrongClass { class, data });
    }
    if bytes.len() < SIZEOF_EHDR {
        return Err(malformed("the file is shorter than the ELF header"));
    }
    // The length and the data encoding are checked, so goblin cannot fail here; an
    // error is still reported rather than unwrapped.
    let header = Header::parse(bytes).map_err(|_| malformed("the ELF header is unreadable"))?;
    if header.e_machine != EM_X86_64 {
        return Err(LoadError::WrongMachine {
            machine: header.e_machine,
        });
    }
    Ok(header)
}

/// The program header table, checked to lie inside the file, read one entry at a time
/// so that a hostile `e_phnum` costs no memory.
struct ProgramHeaderTable<'a> {
    bytes: &'a [u8],
    offset: u64,
    count: u16,
}

impl<'a> ProgramHeaderTable<'a> {
    fn new(bytes: &'a [u8], header: &Header) -> Result<Self, LoadError> {
        if header.e_phnum == PN_XNUM {
            return Err(malformed(
                "extended program header numbering (PN_XNUM) is not supported",
            ));
        }
        if header.e_phnum == 0 {
            return Err(malformed("no PT_LOAD segment"));
        }
        if usize::from(header.e_phentsize) != SIZEOF_PHDR {
            return Err(malformed("the program header entry size is not 56 bytes"));
        }
        let table_size = u64::from(header.e_phnum) * SIZEOF_PHDR as u64;
        if file_slice(bytes, header.e_phoff, table_size).is_none() {
            return Err(malformed("the program header table lies outside the file"));
        }
        Ok(ProgramHeaderTable {
            bytes,
            offset: header.e_phoff,
            count: header.e_phnum,
        })
    }

    /// Every program header with its index.
    fn iter(&self) -> impl Iterator<Item = (usize, ProgramHeader)> + '_ {
        // `new` checked that the whole table lies inside the file, so no entry is
        // unreadable and `filter_map` drops nothing.
        (0..self.count).filter_map(|index| {
            let offset = u64::from(index)
                .checked_mul(SIZEOF_PHDR as u64)?
                .checked_add(self.offset)?;
            Some((usize::from(index), read_program_header(self.bytes, offset)?))
        })
    }

    /// Every program header of type `p_type` with its index.
    fn of_type(&self, p_type: u32) -> impl Iterator<Item = (usize, ProgramHeader)> + '_ {
        self.iter()
            .filter(move |(_, header)| header.p_type == p_type)
    }
}

fn read_program_header(bytes: &[u8], offset: u64) -> Option<ProgramHeader> {
    let mut fields = FieldReader::new(bytes, offset, SIZEOF_PHDR)?;
    Some(ProgramHeader {
        p_type: fields.u32()?,
        p_flags: fields.u32()?,
        p_offset: fields.u64()?,
        p_vaddr: fields.u64()?,
        p_paddr: fields.u64()?,
        p_filesz: fields.u64()?,
        p_memsz: fields.u64()?,
        p_align: fields.u64()?,
    })
}

fn read_dyn(bytes: &[u8], offset: u64) -> Option<Dyn> {
    let mut fields = FieldReader::new(bytes, offset, SIZEOF_DYN)?;
    Some(Dyn {
        d_tag: fields.u64()?,
        d_val: fields.u64()?,
    })
}

fn read_rela(entry: &[u8]) -> Option<Rela> {
    let mut fields = FieldReader::new(entry, 0, SIZEOF_RELA)?;
    Some(Rela {
        r_offset: fields.u64()?,
        r_info: fields.u64()?,
        r_addend: fields.i64()?,
    })
}

fn read_symbol(bytes: &[u8], offset: u64) -> Option<Sym> {
    let mut fields = FieldReader::new(bytes, offset, SIZEOF_SYM)?;
    Some(Sym {
        st_name: fields.u32()?,
        st_info: fields.u8()?,
        st_other: fields.u8()?,
        st_shndx: fields.u16()?,
        st_value: fields.u64()?,
        st_size: fields.u64()?,
    })
}

/// What the notes say about the application.
#[derive(Default)]
struct NoteFindings {
    entry_version: Option<u8>,
    kernel_version: Option<HermitVersion>,
}

/// Reads every note of every `PT_NOTE` segment; the first HERMIT note and the first
/// Hermit GNU ABI tag count.
///
/// Upstream reads only the first `PT_NOTE`, but linkers put notes of different
/// alignment into separate segments, so the HERMIT note may sit in any of them.
fn scan_notes(
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
    let mut fields = FieldReader::new(segment, u64::try_from(position).ok()?, NOTE_HEADER_SIZE)?;
    let name_size = usize::try_from(fields.u32()?).ok()?;
    let desc_size = usize::try_from(fields.u32()?).ok()?;
    let n_type = fields.u32()?;
    let name_start = position.checked_add(NOTE_HEADER_SIZE)?;
    let name_end = name_start.checked_add(name_size)?;
    let desc_start = align_up(name_end, alignment)?;
    let desc_end = desc_start.checked_add(desc_size)?;
    let raw_name = segment.get(name_start..name_end)?;
    let desc = segment.get(desc_start..desc_end)?;
    let name = raw_name.split(|&byte| byte == 0).next().unwrap_or_default();
    // The last note's padding may be cut off by the end of the segment.
    let next = align_up(desc_end, alignment)?.min(segment.len());
    Some(Note {
        name,
        n_type,
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
    let mut fields = FieldReader::new(desc, 0, 16)?;
    if fields.u32()? != ELF_NOTE_OS_HERMIT {
        return None;
    }
    Some(HermitVersion {
        major: fields.u32()?,
        minor: fields.u32()?,
        patch: fields.u32()?,
    })
}

/// The entries of the dynamic section the loader cares about.
#[derive(Default)]
struct DynamicTags {
    needs_shared_library: bool,
    has_packed_relocations: bool,
    rela: Option<u64>,
    rela_size: Option<u64>,
    rela_entry_size: Option<u64>,
    symtab: Option<u64>,
    symbol_entry_size: Option<u64>,
}

/// Reads the first `PT_DYNAMIC` segment up to `DT_NULL` (or its end).
fn scan_dynamic(
    bytes: &[u8],
    program_headers: &ProgramHeaderTable,
) -> Result<DynamicTags, LoadError> {
    let mut tags = DynamicTags::default();
    let Some((_, header)) = program_headers.of_type(PT_DYNAMIC).next() else {
        return Ok(tags);
    };
    let section = file_slice(bytes, header.p_offset, header.p_filesz)
        .ok_or(malformed("the PT_DYNAMIC segment lies outside the file"))?;
    for entry in section.chunks_exact(SIZEOF_DYN) {
        let Some(entry) = read_dyn(entry, 0) else {
            break;
        };
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

/// Collects the `PT_LOAD` segments and checks each lies inside the file, fits the
/// address space and starts at or after the previous one's end.
///
/// The ELF specification requires ascending `p_vaddr` order; requiring in addition
/// that segments do not overlap makes the load order irrelevant and lets
/// [`Kernel::zero_gaps`] find the gaps in one walk.
fn collect_segments(
    bytes: &[u8],
    program_headers: &ProgramHeaderTable,
) -> Result<(Vec<Segment>, u64), LoadError> {
    let count = program_headers.of_type(PT_LOAD).count();
    if count == 0 {
        return Err(malformed("no PT_LOAD segment"));
    }
    let mut segments = Vec::new();
    // A hostile file may declare tens of thousands of segments; running out of the
    // loader's small heap must be a refusal, not an allocation failure.
    segments
        .try_reserve_exact(count)
        .map_err(|_| malformed("too many PT_LOAD segments for the loader's heap"))?;

    let mut previous_end: Option<u64> = None;
    let mut largest_align = 0;
    for (index, header) in program_headers.of_type(PT_LOAD) {
        if header.p_filesz > header.p_memsz {
            return Err(malformed("a PT_LOAD segment has p_filesz > p_memsz"));
        }
        if file_slice(bytes, header.p_offset, header.p_filesz).is_none() {
            return Err(LoadError::SegmentOutsideFile {
                index,
                offset: header.p_offset,
                size: header.p_filesz,
                file_len: file_len(bytes),
            });
        }
        let end = header.p_vaddr.checked_add(header.p_memsz).ok_or(malformed(
            "a PT_LOAD segment reaches past the end of the address space",
        ))?;
        if header.p_align > 1 && !header.p_align.is_power_of_two() {
            return Err(malformed("a PT_LOAD alignment is not a power of two"));
        }
        if previous_end.is_some_and(|previous_end| header.p_vaddr < previous_end) {
            return Err(malformed(
                "PT_LOAD segments overlap or are not in ascending address order",
            ));
        }
        previous_end = Some(end);
        largest_align = largest_align.max(header.p_align);
        segments.push(Segment {
            index,
            file_offset: header.p_offset,
            file_size: header.p_filesz,
            mem_size: header.p_memsz,
            vaddr: header.p_vaddr,
            flags: header.p_flags,
        });
    }
    Ok((segments, largest_align))
}

/// The page-rounded addresses the segments span and their largest alignment.
struct ImageExtent {
    vaddr_start: u64,
    vaddr_end: u64,
    align: u64,
}

fn image_extent(segments: &[Segment], largest_align: u64) -> Result<ImageExtent, LoadError> {
    let lowest = segments.iter().map(|segment| segment.vaddr).min();
    // `collect_segments` checked that no segment end overflows.
    let highest = segments
        .iter()
        .filter_map(|segment| segment.vaddr.checked_add(segment.mem_size))
        .max();
    let (Some(lowest), Some(highest)) = (lowest, highest) else {
        return Err(malformed("no PT_LOAD segment"));
    };
    let vaddr_end = highest
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(malformed(
            "a PT_LOAD segment reaches past the end of the address space",
        ))?;
    Ok(ImageExtent {
        vaddr_start: lowest - lowest % PAGE_SIZE,
        vaddr_end,
        align: largest_align.max(PAGE_SIZE),
    })
}

/// Reads the first `PT_TLS` segment and checks its template lies inside the image.
fn find_tls(
    program_headers: &ProgramHeaderTable,
    extent: &ImageExtent,
) -> Result<Option<TlsSegment>, LoadError> {
    let Some((_, header)) = program_headers.of_type(PT_TLS).next() else {
        return Ok(None);
    };
    if header.p_filesz > header.p_memsz {
        return Err(malformed("the PT_TLS segment has p_filesz > p_memsz"));
    }
    let template_end = header.p_vaddr.checked_add(header.p_filesz);
    let inside = header.p_vaddr >= extent.vaddr_start
        && template_end.is_some_and(|end| end <= extent.vaddr_end);
    if !inside {
        return Err(malformed(
            "the PT_TLS template lies outside the PT_LOAD segments",
        ));
    }
    Ok(Some(TlsSegment {
        vaddr: header.p_vaddr,
        file_size: header.p_filesz,
        mem_size: header.p_memsz,
        align: header.p_align,
    }))
}

/// Finds the file bytes of the `DT_RELA` table.
fn locate_relocation_table(
    dynamic: &DynamicTags,
    segments: &[Segment],
) -> Result<Range<u64>, LoadError> {
    if dynamic.has_packed_relocations {
        // Ignoring them would start a kernel whose pointers are wrong.
        return Err(malformed(
            "packed relative relocations (DT_RELR) are not supported",
        ));
    }
    let size = dynamic.rela_size.unwrap_or(0);
    let Some(vaddr) = dynamic.rela else {
        return if size == 0 {
            Ok(0..0)
        } else {
            Err(malformed("DT_RELASZ without DT_RELA"))
        };
    };
    if size == 0 {
        return Ok(0..0);
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
        .and_then(|available| {
            let end = available.start.checked_add(size)?;
            (end <= available.end).then_some(available.start..end)
        })
        .ok_or(malformed(
            "the DT_RELA table lies outside the file bytes of the PT_LOAD segments",
        ))
}

/// Finds where the `DT_SYMTAB` table starts in the file and how far it may reach.
fn locate_symbol_table(
    dynamic: &DynamicTags,
    segments: &[Segment],
) -> Result<Option<Range<u64>>, LoadError> {
    let Some(vaddr) = dynamic.symtab else {
        return Ok(None);
    };
    if dynamic
        .symbol_entry_size
        .is_some_and(|entry_size| entry_size != SIZEOF_SYM as u64)
    {
        return Err(malformed("DT_SYMENT is not 24 bytes"));
    }
    file_bytes_at(segments, vaddr).map(Some).ok_or(malformed(
        "the DT_SYMTAB table lies outside the file bytes of the PT_LOAD segments",
    ))
}

/// The file bytes from virtual address `vaddr` to the end of the file part of the
/// segment that contains it.
///
/// The dynamic section names its tables by address; they are read from the file (not
/// from the loaded image, which relocation changes), so they must lie in the part of a
/// segment that the file backs.
fn file_bytes_at(segments: &[Segment], vaddr: u64) -> Option<Range<u64>> {
    segments.iter().find_map(|segment| {
        let offset_in_segment = vaddr.checked_sub(segment.vaddr)?;
        if offset_in_segment >= segment.file_size {
            return None;
        }
        let start = segment.file_offset.checked_add(offset_in_segment)?;
        let end = segment.file_offset.checked_add(segment.file_size)?;
        Some(start..end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_NULL};
    use goblin::elf::reloc::R_X86_64_PC32;
    use goblin::elf::sym::{STB_GLOBAL, STT_FUNC};
    use proptest::prelude::*;

    // The test application is laid out like a small static PIE: one read-only segment
    // holding the headers, notes, dynamic section, relocations and symbols, a text
    // segment, an untouched page, and a data segment with a bss tail and the TLS
    // template. File offsets equal addresses except for the data segment, so a mix-up
    // of the two shows.
    const PHDR_OFFSET: usize = 0x40;
    const NOTES_OFFSET: usize = 0x200;
    const DYNAMIC_OFFSET: usize = 0x400;
    const RELA_OFFSET: usize = 0x600;
    const SYMTAB_OFFSET: usize = 0x800;
    const RODATA_SIZE: usize = 0x1000;
    const TEXT_OFFSET: usize = 0x1000;
    const TEXT_SIZE: usize = 0x100;
    const DATA_OFFSET: usize = 0x2000;
    const DATA_VADDR: u64 = 0x3000;
    const DATA_FILE_SIZE: usize = 0x80;
    const DATA_MEM_SIZE: u64 = 0x1800;
    const DATA_ALIGN: u64 = 0x20_0000;
    const ENTRY: u64 = 0x1010;
    const FILE_SIZE: usize = DATA_OFFSET + DATA_FILE_SIZE;
    const IMAGE_SIZE: u64 = 0x5000;
    const SECOND_NOTES_OFFSET: usize = 0x300;

    // Program header indices of the test application.
    const RODATA_INDEX: usize = 0;
    const TEXT_INDEX: usize = 1;
    const DATA_INDEX: usize = 2;
    const NOTE_INDEX: usize = 3;

    // Offsets of program header fields.
    const P_TYPE: usize = 0;
    const P_OFFSET: usize = 8;
    const P_VADDR: usize = 16;
    const P_FILESZ: usize = 32;
    const P_MEMSZ: usize = 40;

    // Symbols of the test application's dynamic symbol table.
    const DEFINED_SYMBOL: u32 = 1;
    const WEAK_UNDEFINED_SYMBOL: u32 = 2;
    const STRONG_UNDEFINED_SYMBOL: u32 = 3;
    const DEFINED_SYMBOL_VALUE: u64 = 0x1050;

    /// A relocation of the test application: target address, type, symbol, addend.
    type TestRela = (u64, u32, u32, i64);

    /// A test application, described by the parts the loader reads.
    #[derive(Clone)]
    struct TestElf {
        class: u8,
        data: u8,
        e_type: u16,
        machine: u16,
        entry: u64,
        /// Added to every address: 0 for a PIE, 0x800000 for an executable.
        vaddr_base: u64,
        /// The contents of the first `PT_NOTE` segment.
        notes: Vec<u8>,
        /// A second `PT_NOTE` segment (contents, alignment), after all others.
        second_notes: Option<(Vec<u8>, u64)>,
        /// The dynamic section without its `DT_NULL`; `None` leaves out `PT_DYNAMIC`.
        dynamic: Option<Vec<(u64, u64)>>,
        relocations: Vec<TestRela>,
        /// Dynamic symbols after the null symbol: (`st_info`, `st_shndx`, `st_value`).
        symbols: Vec<(u8, u16, u64)>,
        tls: bool,
    }

    /// A note as a linker writes it, padded to `alignment`.
    fn note(name: &[u8], n_type: u32, desc: &[u8], alignment: usize) -> Vec<u8> {
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

    fn hermit_note(version: u8) -> Vec<u8> {
        note(b"HERMIT", NT_HERMIT_ENTRY_VERSION, &[version], 4)
    }

    fn abi_tag(fields: [u32; 4], alignment: usize) -> Vec<u8> {
        let desc: Vec<u8> = fields
            .iter()
            .flat_map(|field| field.to_le_bytes())
            .collect();
        note(b"GNU", NT_GNU_ABI_TAG, &desc, alignment)
    }

    fn uhyve_note() -> Vec<u8> {
        note(b"UHYVEIF", 0x5b00, &1_u32.to_be_bytes(), 4)
    }

    /// The standard position-independent test application, linked at 0.
    fn test_dyn() -> TestElf {
        test_dyn_at(0)
    }

    /// The standard position-independent test application, linked at `link_base`.
    fn test_dyn_at(link_base: u64) -> TestElf {
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
    fn standard_relocations(link_base: u64) -> Vec<TestRela> {
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
    fn test_exec() -> TestElf {
        TestElf {
            e_type: ET_EXEC,
            dynamic: None,
            relocations: Vec::new(),
            ..test_dyn_at(0x80_0000)
        }
    }

    fn put(bytes: &mut [u8], offset: usize, data: &[u8]) {
        bytes[offset..offset + data.len()].copy_from_slice(data);
    }

    fn put_u64(bytes: &mut [u8], offset: usize, value: u64) {
        put(bytes, offset, &value.to_le_bytes());
    }

    /// Where field `field` of program header `index` lies in the file.
    fn phdr_field(index: usize, field: usize) -> usize {
        PHDR_OFFSET + index * SIZEOF_PHDR + field
    }

    impl TestElf {
        fn build(&self) -> Vec<u8> {
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
                let offset = phdr_field(index, 0);
                put(&mut bytes, offset, &phdr.p_type.to_le_bytes());
                put(&mut bytes, offset + 4, &phdr.p_flags.to_le_bytes());
                let fields = [
                    phdr.p_offset,
                    phdr.p_vaddr,
                    phdr.p_paddr,
                    phdr.p_filesz,
                    phdr.p_memsz,
                    phdr.p_align,
                ];
                for (number, field) in fields.into_iter().enumerate() {
                    put_u64(&mut bytes, offset + 8 + number * 8, field);
                }
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
    fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut bytes = test_dyn().build();
        edit(&mut bytes);
        bytes
    }

    /// The standard application changed through its description.
    fn described(change: impl FnOnce(&mut TestElf)) -> Vec<u8> {
        let mut elf = test_dyn();
        change(&mut elf);
        elf.build()
    }

    /// Loads `kernel` for `bias` the way the loader does and returns the image.
    fn load(kernel: &Kernel, bias: u64) -> Result<(Vec<u8>, RelocStats), LoadError> {
        let mut image = vec![0xaa_u8; usize::try_from(kernel.size()).unwrap()];
        for segment in &kernel.segments {
            kernel.load_segment(segment, bias, &mut image)?;
        }
        kernel.zero_gaps(bias, &mut image);
        let stats = kernel.relocate(bias, &mut image)?;
        Ok((image, stats))
    }

    fn image_u64(image: &[u8], offset: u64) -> u64 {
        let start = usize::try_from(offset).unwrap();
        u64::from_le_bytes(image[start..start + 8].try_into().unwrap())
    }

    #[test]
    fn refusals_name_what_they_found() {
        let short_magic = b"\x7fE".to_vec();
        let cases: Vec<(&str, Vec<u8>, LoadError)> = vec![
            (
                "empty file",
                Vec::new(),
                LoadError::NotElf { magic: [0; 4] },
            ),
            (
                "short file",
                short_magic,
                LoadError::NotElf {
                    magic: [0x7f, b'E', 0, 0],
                },
            ),
            (
                "PE file",
                b"MZ\x90\x00\x03\x00".to_vec(),
                LoadError::NotElf {
                    magic: *b"MZ\x90\x00",
                },
            ),
            (
                "magic only",
                b"\x7fELF".to_vec(),
                malformed("the file is shorter than the ELF header"),
            ),
            (
                "ELF32",
                described(|elf| elf.class = 1),
                LoadError::WrongClass { class: 1, data: 1 },
            ),
            (
                "big endian",
                described(|elf| elf.data = 2),
                LoadError::WrongClass { class: 2, data: 2 },
            ),
            (
                "truncated header",
                test_dyn().build()[..40].to_vec(),
                malformed("the file is shorter than the ELF header"),
            ),
            (
                "AArch64",
                described(|elf| elf.machine = 183),
                LoadError::WrongMachine { machine: 183 },
            ),
            (
                "relocatable object",
                described(|elf| elf.e_type = 1),
                LoadError::WrongType { e_type: 1 },
            ),
            (
                "no program headers",
                edited(|bytes| put(bytes, 56, &0_u16.to_le_bytes())),
                malformed("no PT_LOAD segment"),
            ),
            (
                "extended program header numbering",
                edited(|bytes| put(bytes, 56, &PN_XNUM.to_le_bytes())),
                malformed("extended program header numbering (PN_XNUM) is not supported"),
            ),
            (
                "32-bit program header size",
                edited(|bytes| put(bytes, 54, &32_u16.to_le_bytes())),
                malformed("the program header entry size is not 56 bytes"),
            ),
            (
                "program headers past the end",
                edited(|bytes| put_u64(bytes, 32, FILE_SIZE as u64 - 100)),
                malformed("the program header table lies outside the file"),
            ),
            (
                "program header offset overflows",
                edited(|bytes| put_u64(bytes, 32, u64::MAX - 8)),
                malformed("the program header table lies outside the file"),
            ),
            (
                "no notes",
                described(|elf| elf.notes.clear()),
                LoadError::NoHermitNote,
            ),
            (
                "only an ABI tag",
                described(|elf| elf.notes = abi_tag([6, 0, 11, 0], 4)),
                LoadError::NoHermitNote,
            ),
            (
                "HERMIT name with the uhyve note type",
                described(|elf| elf.notes = note(b"HERMIT", 0x5b00, &[4], 4)),
                LoadError::NoHermitNote,
            ),
            (
                "entry version type under another name",
                described(|elf| elf.notes = note(b"HERMIX", NT_HERMIT_ENTRY_VERSION, &[4], 4)),
                LoadError::NoHermitNote,
            ),
            (
                "entry version 1 (hermit-entry 0.8 and older)",
                described(|elf| elf.notes = hermit_note(1)),
                LoadError::UnsupportedEntryVersion { version: 1 },
            ),
            (
                "future entry version",
                described(|elf| elf.notes = hermit_note(5)),
                LoadError::UnsupportedEntryVersion { version: 5 },
            ),
            (
                "HERMIT note without descriptor",
                described(|elf| elf.notes = note(b"HERMIT", NT_HERMIT_ENTRY_VERSION, &[], 4)),
                malformed("the HERMIT note has no version byte"),
            ),
            (
                "note cut by its segment",
                edited(|bytes| put_u64(bytes, phdr_field(NOTE_INDEX, P_FILESZ), 20)),
                malformed("a note runs past the end of its PT_NOTE segment"),
            ),
            (
                "huge note name",
                described(|elf| put(&mut elf.notes, 0, &u32::MAX.to_le_bytes())),
                malformed("a note runs past the end of its PT_NOTE segment"),
            ),
            (
                "notes past the end",
                edited(|bytes| put_u64(bytes, phdr_field(NOTE_INDEX, P_OFFSET), u64::MAX)),
                malformed("a PT_NOTE segment lies outside the file"),
            ),
            (
                "shared libraries",
                described(|elf| elf.dynamic.as_mut().unwrap().push((DT_NEEDED, 1))),
                LoadError::NeedsSharedLibrary,
            ),
            (
                "packed relocations",
                described(|elf| elf.dynamic.as_mut().unwrap().push((DT_RELR, 0x700))),
                malformed("packed relative relocations (DT_RELR) are not supported"),
            ),
            (
                "data segment past the end of the file",
                edited(|bytes| put_u64(bytes, phdr_field(DATA_INDEX, P_OFFSET), 0x2001)),
                LoadError::SegmentOutsideFile {
                    index: DATA_INDEX,
                    offset: 0x2001,
                    size: DATA_FILE_SIZE as u64,
                    file_len: FILE_SIZE as u64,
                },
            ),
            (
                "segment file range overflows",
                edited(|bytes| put_u64(bytes, phdr_field(TEXT_INDEX, P_OFFSET), u64::MAX)),
                LoadError::SegmentOutsideFile {
                    index: TEXT_INDEX,
                    offset: u64::MAX,
                    size: TEXT_SIZE as u64,
                    file_len: FILE_SIZE as u64,
                },
            ),
            (
                "file size above memory size",
                edited(|bytes| put_u64(bytes, phdr_field(TEXT_INDEX, P_MEMSZ), 0x10)),
                malformed("a PT_LOAD segment has p_filesz > p_memsz"),
            ),
            (
                "no PT_LOAD",
                edited(|bytes| {
                    for index in [RODATA_INDEX, TEXT_INDEX, DATA_INDEX] {
                        put(bytes, phdr_field(index, P_TYPE), &PT_NULL.to_le_bytes());
                    }
                }),
                malformed("no PT_LOAD segment"),
            ),
            (
                "segment end overflows",
                edited(|bytes| put_u64(bytes, phdr_field(DATA_INDEX, P_VADDR), u64::MAX - 0x100)),
                malformed("a PT_LOAD segment reaches past the end of the address space"),
            ),
            (
                "page rounding overflows",
                edited(|bytes| {
                    put_u64(
                        bytes,
                        phdr_field(DATA_INDEX, P_VADDR),
                        u64::MAX - DATA_MEM_SIZE,
                    )
                }),
                malformed("a PT_LOAD segment reaches past the end of the address space"),
            ),
            (
                "overlapping segments",
                edited(|bytes| put_u64(bytes, phdr_field(TEXT_INDEX, P_VADDR), 0x800)),
                malformed("PT_LOAD segments overlap or are not in ascending address order"),
            ),
            (
                "entry point outside the segments",
                described(|elf| elf.entry = 0x10_0000),
                malformed("the entry point lies outside the PT_LOAD segments"),
            ),
            (
                "relocation table outside the segments",
                described(|elf| elf.dynamic.as_mut().unwrap()[0].1 = 0x2000),
                malformed("the DT_RELA table lies outside the file bytes of the PT_LOAD segments"),
            ),
            (
                "relocation table runs past its segment",
                described(|elf| elf.dynamic.as_mut().unwrap()[0].1 = 0xff0),
                malformed("the DT_RELA table lies outside the file bytes of the PT_LOAD segments"),
            ),
            (
                "relocation table size not a multiple of 24",
                described(|elf| elf.dynamic.as_mut().unwrap()[1].1 = 25),
                malformed("DT_RELASZ is not a whole number of entries"),
            ),
            (
                "relocation entry size",
                described(|elf| elf.dynamic.as_mut().unwrap()[2].1 = 16),
                malformed("DT_RELAENT is not 24 bytes"),
            ),
            (
                "symbol table outside the segments",
                described(|elf| elf.dynamic.as_mut().unwrap()[3].1 = 0x4000),
                malformed(
                    "the DT_SYMTAB table lies outside the file bytes of the PT_LOAD segments",
                ),
            ),
        ];
        for (description, bytes, expected) in cases {
            let result = inspect(&bytes).map(|kernel| kernel.entry);
            assert_eq!(result, Err(expected), "{description}");
        }
    }

    #[test]
    fn dyn_kernel_is_placed_at_the_chosen_base() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        assert_eq!(kernel.kind, ElfKind::Dyn);
        assert_eq!(kernel.entry_version, 4);
        let version = HermitVersion {
            major: 0,
            minor: 11,
            patch: 0,
        };
        assert_eq!(kernel.kernel_version, Some(version));
        assert_eq!(kernel.entry, ENTRY);
        assert_eq!(
            kernel.segments,
            [
                Segment {
                    index: RODATA_INDEX,
                    file_offset: 0,
                    file_size: RODATA_SIZE as u64,
                    mem_size: RODATA_SIZE as u64,
                    vaddr: 0,
                    flags: PF_R,
                },
                Segment {
                    index: TEXT_INDEX,
                    file_offset: TEXT_OFFSET as u64,
                    file_size: TEXT_SIZE as u64,
                    mem_size: TEXT_SIZE as u64,
                    vaddr: TEXT_OFFSET as u64,
                    flags: PF_R | PF_X,
                },
                Segment {
                    index: DATA_INDEX,
                    file_offset: DATA_OFFSET as u64,
                    file_size: DATA_FILE_SIZE as u64,
                    mem_size: DATA_MEM_SIZE,
                    vaddr: DATA_VADDR,
                    flags: PF_R | PF_W,
                },
            ]
        );
        assert_eq!(kernel.vaddr_start, 0);
        assert_eq!(kernel.vaddr_end, IMAGE_SIZE);
        assert_eq!(kernel.size(), IMAGE_SIZE);
        assert_eq!(kernel.align, DATA_ALIGN);

        let base = 0x80_0000;
        let bias = kernel.bias(base);
        assert_eq!(bias, base);
        assert_eq!(kernel.image_range(bias), base..base + IMAGE_SIZE);
        assert_eq!(kernel.entry_point(bias), base + ENTRY);
        let tls = kernel.tls_info(bias).unwrap();
        assert_eq!(
            (tls.start, tls.filesz, tls.memsz, tls.align),
            (base + DATA_VADDR, 0x10, 0x40, 0x10)
        );
        assert_eq!(version.to_string(), "0.11.0");
    }

    #[test]
    fn exec_kernel_stays_at_its_own_address() {
        let bytes = test_exec().build();
        let kernel = inspect(&bytes).unwrap();
        assert_eq!(kernel.kind, ElfKind::Exec);
        let bias = kernel.bias(0x4000_0000);
        assert_eq!(bias, 0);
        assert_eq!(kernel.image_range(bias), 0x80_0000..0x80_0000 + IMAGE_SIZE);
        assert_eq!(kernel.entry_point(bias), 0x80_0000 + ENTRY);
        assert_eq!(kernel.tls_info(bias).unwrap().start, 0x80_0000 + DATA_VADDR);
        let (image, stats) = load(&kernel, bias).unwrap();
        assert_eq!(stats, RelocStats::default());
        assert_eq!(image_u64(&image, 0x3020), 0);
    }

    #[test]
    fn bias_moves_the_lowest_page_to_the_base() {
        // A PIE linked at 2 MiB rather than 0: its addresses all move by base - 2 MiB.
        let link_base = 0x20_0000;
        let bytes = test_dyn_at(link_base).build();
        let kernel = inspect(&bytes).unwrap();
        assert_eq!(kernel.vaddr_start, link_base);
        let base = 0x80_0000;
        let bias = kernel.bias(base);
        assert_eq!(bias, base - link_base);
        assert_eq!(kernel.image_range(bias), base..base + IMAGE_SIZE);
        assert_eq!(kernel.entry_point(bias), base + ENTRY);
        assert_eq!(kernel.tls_info(bias).unwrap().start, base + DATA_VADDR);
        let (image, stats) = load(&kernel, bias).unwrap();
        assert_eq!(stats.relative + stats.abs64 + stats.glob_dat, 3);
        assert_eq!(image_u64(&image, 0x3020), base + 0x1234);
        assert_eq!(image_u64(&image, 0x3028), base + DEFINED_SYMBOL_VALUE + 8);
        assert_eq!(image_u64(&image, 0x3030), base + DEFINED_SYMBOL_VALUE);
    }

    #[test]
    fn image_starts_at_the_page_of_the_lowest_segment() {
        let mut bytes = test_exec().build();
        put_u64(&mut bytes, phdr_field(RODATA_INDEX, P_VADDR), 0x80_0800);
        put_u64(&mut bytes, phdr_field(RODATA_INDEX, P_OFFSET), 0x800);
        put_u64(&mut bytes, phdr_field(RODATA_INDEX, P_FILESZ), 0x800);
        put_u64(&mut bytes, phdr_field(RODATA_INDEX, P_MEMSZ), 0x800);
        let kernel = inspect(&bytes).unwrap();
        assert_eq!(kernel.vaddr_start, 0x80_0000);
        assert_eq!(kernel.size(), IMAGE_SIZE);
        let (image, _) = load(&kernel, 0).unwrap();
        assert!(image[..0x800].iter().all(|&byte| byte == 0));
        assert_eq!(image[0x800..0x1000], bytes[0x800..0x1000]);
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
    fn segments_are_copied_and_their_tails_zeroed() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        let bias = kernel.bias(0x80_0000);
        let mut image = vec![0xaa_u8; IMAGE_SIZE as usize];
        for segment in &kernel.segments {
            kernel.load_segment(segment, bias, &mut image).unwrap();
        }
        assert_eq!(image[..RODATA_SIZE], bytes[..RODATA_SIZE]);
        assert_eq!(
            image[TEXT_OFFSET..TEXT_OFFSET + TEXT_SIZE],
            bytes[TEXT_OFFSET..TEXT_OFFSET + TEXT_SIZE]
        );
        let data = DATA_VADDR as usize;
        assert_eq!(image[data..data + DATA_FILE_SIZE], bytes[DATA_OFFSET..]);
        let bss = data + DATA_FILE_SIZE..data + DATA_MEM_SIZE as usize;
        assert!(image[bss].iter().all(|&byte| byte == 0));
        // The gaps are not touched by loading segments.
        assert!(image[TEXT_OFFSET + TEXT_SIZE..data]
            .iter()
            .all(|&byte| byte == 0xaa));
        assert!(image[data + DATA_MEM_SIZE as usize..]
            .iter()
            .all(|&byte| byte == 0xaa));
    }

    #[test]
    fn gaps_are_zeroed_and_segments_left_alone() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        let mut image = vec![0xaa_u8; IMAGE_SIZE as usize];
        kernel.zero_gaps(kernel.bias(0x80_0000), &mut image);
        let data_end = (DATA_VADDR + DATA_MEM_SIZE) as usize;
        let covered = |offset: usize| {
            offset < TEXT_OFFSET + TEXT_SIZE || (DATA_VADDR as usize..data_end).contains(&offset)
        };
        for (offset, &byte) in image.iter().enumerate() {
            let expected = if covered(offset) { 0xaa } else { 0 };
            assert_eq!(byte, expected, "image offset {offset:#x}");
        }
    }

    #[test]
    fn loading_gives_the_whole_image() {
        let bytes = test_exec().build();
        let kernel = inspect(&bytes).unwrap();
        let (image, _) = load(&kernel, 0).unwrap();
        let mut expected = vec![0_u8; IMAGE_SIZE as usize];
        expected[..TEXT_OFFSET + TEXT_SIZE].copy_from_slice(&bytes[..TEXT_OFFSET + TEXT_SIZE]);
        expected[DATA_VADDR as usize..][..DATA_FILE_SIZE].copy_from_slice(&bytes[DATA_OFFSET..]);
        assert!(image == expected);
    }

    #[test]
    fn load_segment_refuses_what_does_not_fit() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        let data = kernel.segments[2];
        let mut short_image = vec![0_u8; 0x4000];
        assert_eq!(
            kernel.load_segment(&data, 0, &mut short_image),
            Err(malformed("a PT_LOAD segment lies outside the kernel image"))
        );
        let mut image = vec![0_u8; IMAGE_SIZE as usize];
        let beyond_file = Segment {
            file_offset: 0x2040,
            ..data
        };
        assert_eq!(
            kernel.load_segment(&beyond_file, 0, &mut image),
            Err(LoadError::SegmentOutsideFile {
                index: DATA_INDEX,
                offset: 0x2040,
                size: DATA_FILE_SIZE as u64,
                file_len: FILE_SIZE as u64,
            })
        );
        let too_much_file = Segment {
            mem_size: 0x10,
            ..data
        };
        assert_eq!(
            kernel.load_segment(&too_much_file, 0, &mut image),
            Err(malformed("a PT_LOAD segment has p_filesz > p_memsz"))
        );
    }

    #[test]
    fn relocations_are_applied_with_the_bias() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        let base = 0x80_0000;
        let (image, stats) = load(&kernel, kernel.bias(base)).unwrap();
        assert_eq!(
            stats,
            RelocStats {
                relative: 1,
                abs64: 1,
                glob_dat: 1,
                skipped_weak: 1,
            }
        );
        assert_eq!(image_u64(&image, 0x3020), base + 0x1234);
        assert_eq!(image_u64(&image, 0x3028), base + DEFINED_SYMBOL_VALUE + 8);
        assert_eq!(image_u64(&image, 0x3030), base + DEFINED_SYMBOL_VALUE);
        assert_eq!(image_u64(&image, 0x3038), 0);
        // Negative addends count down from the bias.
        let bytes = described(|elf| elf.relocations = vec![(0x3020, R_X86_64_RELATIVE, 0, -16)]);
        let kernel = inspect(&bytes).unwrap();
        let (image, _) = load(&kernel, kernel.bias(base)).unwrap();
        assert_eq!(image_u64(&image, 0x3020), base - 16);
    }

    #[test]
    fn relocation_refusals() {
        let cases: Vec<(&str, Vec<TestRela>, LoadError)> = vec![
            (
                "PC-relative relocation",
                vec![(0x3020, R_X86_64_PC32, 0, 0)],
                LoadError::UnsupportedRelocation {
                    r_type: R_X86_64_PC32,
                    offset: 0x3020,
                },
            ),
            (
                "target straddles the end of the image",
                vec![(IMAGE_SIZE - 4, R_X86_64_RELATIVE, 0, 0)],
                malformed("a relocation target lies outside the kernel image"),
            ),
            (
                "target far outside the image",
                vec![(u64::MAX, R_X86_64_RELATIVE, 0, 0)],
                malformed("a relocation target lies outside the kernel image"),
            ),
            (
                "strong undefined symbol",
                vec![(0x3020, R_X86_64_64, STRONG_UNDEFINED_SYMBOL, 0)],
                malformed("a relocation refers to an undefined symbol"),
            ),
            (
                "symbol index past the symbol table's segment",
                vec![(0x3020, R_X86_64_GLOB_DAT, 0x1000, 0)],
                malformed("a relocation's symbol index lies outside the dynamic symbol table"),
            ),
            (
                "largest symbol index",
                vec![(0x3020, R_X86_64_64, u32::MAX, 0)],
                malformed("a relocation's symbol index lies outside the dynamic symbol table"),
            ),
        ];
        for (description, relocations, expected) in cases {
            let bytes = described(|elf| {
                let size = (relocations.len() * SIZEOF_RELA) as u64;
                elf.dynamic.as_mut().unwrap()[1].1 = size;
                elf.relocations = relocations;
            });
            let kernel = inspect(&bytes).unwrap_or_else(|error| panic!("{description}: {error}"));
            let result = load(&kernel, kernel.bias(0x80_0000)).map(|(_, stats)| stats);
            assert_eq!(result, Err(expected), "{description}");
        }

        let bytes = described(|elf| {
            elf.dynamic.as_mut().unwrap().truncate(3);
        });
        let kernel = inspect(&bytes).unwrap();
        assert_eq!(
            load(&kernel, 0).map(|(_, stats)| stats),
            Err(malformed(
                "a symbol relocation but no dynamic symbol table (DT_SYMTAB)"
            ))
        );
    }

    #[test]
    fn goblin_reads_the_test_application_the_same_way() {
        // The full goblin parser checks that the hand-built test file is a real ELF.
        let bytes = test_dyn().build();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        assert!(!elf.is_lib || elf.header.e_type == ET_DYN);
        assert_eq!(elf.entry, ENTRY);
        assert_eq!(elf.program_headers.len(), 6);
        let relocations: Vec<(u64, u32, usize, i64)> = elf
            .dynrelas
            .iter()
            .map(|rela| {
                (
                    rela.r_offset,
                    rela.r_type,
                    rela.r_sym,
                    rela.r_addend.unwrap_or(0),
                )
            })
            .collect();
        let expected: Vec<(u64, u32, usize, i64)> = standard_relocations(0)
            .into_iter()
            .map(|(offset, kind, symbol, addend)| (offset, kind, symbol as usize, addend))
            .collect();
        assert_eq!(relocations, expected);
    }

    /// A few random bytes of the standard application overwritten.
    fn mutated_application() -> impl Strategy<Value = Vec<u8>> {
        let byte_edits = prop::collection::vec((0..FILE_SIZE, any::<u8>()), 1..8);
        // Word edits in the metadata page reach offsets and sizes far more often
        // than single bytes anywhere do.
        let word_edits =
            prop::collection::vec((0..(SYMTAB_OFFSET + 0x100) / 8, any::<u64>()), 0..4);
        (byte_edits, word_edits, any::<bool>()).prop_map(|(bytes, words, exec)| {
            let mut file = if exec { test_exec() } else { test_dyn() }.build();
            for (position, value) in bytes {
                file[position] = value;
            }
            for (slot, value) in words {
                put_u64(&mut file, slot * 8, value);
            }
            file
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn inspect_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = inspect(&bytes);
        }

        #[test]
        fn inspect_never_panics_past_the_identification(tail in prop::collection::vec(any::<u8>(), 0..4096)) {
            // Arbitrary bytes rarely start with the magic; these always do.
            let bytes = [&b"\x7fELF\x02\x01\x01\xff"[..], &tail].concat();
            let _ = inspect(&bytes);
        }

        #[test]
        fn loading_a_mutated_application_never_panics(bytes in mutated_application(), base in any::<u64>()) {
            if let Ok(kernel) = inspect(&bytes) {
                if kernel.size() <= 16 << 20 {
                    let _ = load(&kernel, kernel.bias(base & !0x1f_ffff));
                }
            }
        }

        #[test]
        fn any_base_moves_everything_by_the_same_bias(page in 0_u64..1 << 20) {
            let base = page << 21;
            let bytes = test_dyn().build();
            let kernel = inspect(&bytes).unwrap();
            let bias = kernel.bias(base);
            prop_assert_eq!(kernel.image_range(bias), base..base + IMAGE_SIZE);
            prop_assert_eq!(kernel.entry_point(bias), base + ENTRY);
            let (image, _) = load(&kernel, bias).unwrap();
            prop_assert_eq!(image_u64(&image, 0x3020), base + 0x1234);
            prop_assert_eq!(image_u64(&image, 0x3030), base + DEFINED_SYMBOL_VALUE);
        }
    }
}
