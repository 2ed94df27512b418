//! Recognising, placing and loading the Hermit application (the Multiboot module).
//!
//! [`inspect`] checks that the module is a Hermit application this loader can serve
//! (ELF64, x86_64, `ET_EXEC` or `ET_DYN`, a HERMIT note with entry version 2, 3 or 4,
//! no shared libraries) and records what loading needs: the `PT_LOAD` segments, the
//! TLS template, the kernel version from the GNU ABI tag and where the relocation
//! table lies. The caller chooses where the kernel goes, then calls
//! [`Kernel::load_segment_timed`] for every segment, [`Kernel::zero_gaps`] and
//! [`Kernel::relocate`] on the slice of memory that becomes the kernel image.
//!
//! The module bytes come from whoever started QEMU, so nothing here trusts them: the
//! parser reads only the ELF header, the program headers, the notes and the dynamic
//! section, each fixed-size record taken with one length check and read from an
//! array of its size (`records.rs`), and all address arithmetic is checked. A panic on bare metal is a failed boot, so every malformed
//! input ends in a [`LoadError`] instead. The work is bounded too, since a hang under
//! emulation is as bad as a panic: at most [`MAX_PROGRAM_HEADERS`] program headers and
//! [`MAX_NOTE_BYTES`] bytes of notes are read, each note byte once, and every other
//! pass is linear in what the file holds. Section headers and the symbol tables are
//! never walked as a whole (real applications carry thousands of symbols and the
//! loader's heap is small): a relocation looks its symbol up by index in the dynamic
//! symbol table.
//!
//! What is accepted loads as the file says. A file that parses but whose parts
//! disagree would otherwise be handed over and fail later as if by the kernel's own
//! fault (a `DT_RELASZ` whose tag was corrupted left a kernel unrelocated; a data
//! segment whose `PT_LOAD` lost its type was relocated into the hole): every
//! program header type and dynamic tag must lie in a defined range, the relocation
//! tags must be complete and agree, `PT_DYNAMIC` and the TLS template must be where
//! a segment loads them, segments in order, apart, with their alignment kept, the
//! entry point in an executable segment's file bytes, and every relocation target
//! inside one segment (checked while relocating). Each kind of disagreement has its
//! own exit code.
//!
//! One file per job:
//! - `program_headers`: the ELF header, the program header table and what it says
//!   about `PT_LOAD` segments and the TLS template;
//! - `notes`: the HERMIT note and the GNU ABI tag;
//! - `dynamic`: the dynamic section and the relocation and symbol tables it names;
//! - `load`: copying segments into the image and zeroing the rest;
//! - `reloc`: applying the relocations.

use alloc::vec::Vec;
use core::fmt;

use goblin::elf::header::{ET_DYN, ET_EXEC};
use goblin::elf::program_header::PF_X;
use hermit_entry::boot_info::TlsInfo;

use crate::error::{LoadError, NotLoaded};
use crate::layout::KernelPlacement;
use program_headers::SegmentTable;

#[cfg(test)]
mod consistency_tests;
mod dynamic;
mod load;
mod notes;
mod program_headers;
mod records;
mod reloc;
#[cfg(test)]
mod test_elf;
#[cfg(test)]
mod tests;

pub use load::SegmentTicks;
pub use notes::MAX_NOTE_BYTES;
pub use program_headers::MAX_PROGRAM_HEADERS;
pub use reloc::RelocStats;

/// The entry ABI versions whose boot-info layout this loader writes: 2 (kernel
/// 0.6.0), 3 (0.6.1–0.6.9) and 4 (0.7 and later).
const SUPPORTED_ENTRY_VERSIONS: [u8; 3] = [2, 3, 4];

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

/// The kernel generation, which decides the paging rules the kernel relies on.
///
/// One layout meets the rules of both generations (docs/ARCHITECTURE.md), so the
/// loader does not switch on it; it traces it, so that a reader knows which rules
/// the kernel checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// Hermit 0.6–0.10: a GNU ABI tag older than 0.11, or none at all (kernels
    /// before 0.10 carry none). These kernels reach their page tables through the
    /// recursive PML4 entry and fail on any mapping above their image's end.
    Legacy,
    /// Hermit 0.11 and later: these kernels reach their page tables through the
    /// identity mapping, so every table page must be identity-mapped, and fail on
    /// 1 GiB pages.
    Modern,
}

impl Generation {
    /// The generation's name in the `Kernel` trace event.
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

impl Segment {
    /// Whether the kernel can start at `vaddr` in this segment: it is executable and
    /// `vaddr` lies in its file bytes (not in its zeroed tail).
    fn runs(&self, vaddr: u64) -> bool {
        self.flags & PF_X != 0
            && vaddr
                .checked_sub(self.vaddr)
                .is_some_and(|offset| offset < self.file_size)
    }
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
    relocation_table: &'a [u8],
    /// How many entries at the start of the table are `R_X86_64_RELATIVE`
    /// (`DT_RELACOUNT`; 0 when the dynamic section does not say), at most all of them.
    relative_count: usize,
    /// The file bytes from `DT_SYMTAB` to the end of the segment that holds it. The
    /// dynamic section does not say how many symbols there are, so this is the most a
    /// symbol index may reach.
    symbol_table: Option<&'a [u8]>,
}

impl fmt::Debug for Kernel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The module bytes and the tables are left out: they are megabytes of machine
        // code and kilobytes of records; their lengths say enough.
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
            .field("relocation_table_len", &self.relocation_table.len())
            .field("relative_count", &self.relative_count)
            .field("symbol_table_len", &self.symbol_table.map(<[u8]>::len))
            .finish()
    }
}

/// Checks that `bytes` is a Hermit application this loader can boot and describes it.
///
/// Nothing is copied: the returned [`Kernel`] borrows `bytes`. Every refusal names
/// what it found, so the loader can print why it will not boot.
pub fn inspect(bytes: &[u8]) -> Result<Kernel<'_>, LoadError> {
    let header = program_headers::read_header(bytes)?;
    let kind = match header.e_type {
        ET_EXEC => ElfKind::Exec,
        ET_DYN => ElfKind::Dyn,
        e_type => return Err(LoadError::WrongType { e_type }),
    };
    let program_headers =
        program_headers::ProgramHeaderTable::new(bytes, &header, MAX_PROGRAM_HEADERS)?;

    // The HERMIT note decides whether this is a Hermit application at all, so it is
    // checked before anything that would only matter for one.
    let notes = notes::scan_notes(bytes, &program_headers)?;
    let entry_version = notes.entry_version.ok_or(LoadError::NoHermitNote)?;
    if !SUPPORTED_ENTRY_VERSIONS.contains(&entry_version) {
        return Err(LoadError::UnsupportedEntryVersion {
            version: entry_version,
        });
    }

    let SegmentTable {
        segments,
        extent,
        tls,
        dynamic,
    } = program_headers::collect_segments(bytes, &program_headers)?;
    // A position-independent image moves by a bias that is a multiple of its largest
    // alignment only if it starts at one (the layout aligns the base to it).
    if kind == ElfKind::Dyn && !extent.vaddr_start.is_multiple_of(extent.align) {
        return Err(LoadError::ImageStartMisaligned {
            index: extent.align_index,
            align: extent.align,
            image_start: extent.vaddr_start,
        });
    }
    if let Some(header) = &dynamic {
        program_headers::check_loaded_as_said(NotLoaded::Dynamic, header, &segments)?;
    }
    let dynamic = dynamic::scan_dynamic(bytes, dynamic.as_ref())?;
    if dynamic.needs_shared_library {
        return Err(LoadError::NeedsSharedLibrary);
    }
    let tls = program_headers::check_tls(tls, &segments)?;
    if !segments.iter().any(|segment| segment.runs(header.e_entry)) {
        return Err(LoadError::EntryOutsideCode {
            entry: header.e_entry,
        });
    }

    // Upstream loaders relocate only position-independent kernels; an executable's
    // addresses are final, whatever its dynamic section says.
    let (relocation_table, symbol_table) = match kind {
        ElfKind::Dyn => (
            dynamic::locate_relocation_table(bytes, &dynamic, &segments)?,
            dynamic::locate_symbol_table(bytes, &dynamic, &segments)?,
        ),
        ElfKind::Exec => (
            dynamic::RelocationTable {
                bytes: &[],
                relative_count: 0,
            },
            None,
        ),
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
        relocation_table: relocation_table.bytes,
        relative_count: relocation_table.relative_count,
        symbol_table,
    })
}

impl Kernel<'_> {
    /// What the layout needs to place the kernel: its size and alignment when it is
    /// position-independent, its linked range when it is not.
    pub fn placement(&self) -> KernelPlacement {
        match self.kind {
            ElfKind::Dyn => KernelPlacement::Dyn {
                size: self.size(),
                align: self.align,
            },
            ElfKind::Exec => KernelPlacement::Exec {
                start: self.vaddr_start,
                end: self.vaddr_end,
            },
        }
    }

    /// How many bytes the loaded kernel occupies: `vaddr_end - vaddr_start`.
    pub fn size(&self) -> u64 {
        self.vaddr_end.saturating_sub(self.vaddr_start)
    }

    /// The kernel generation, from the GNU ABI tag's version.
    pub fn generation(&self) -> Generation {
        // Kernels without the ABI-tag note are older than 0.10.
        match self.kernel_version {
            Some(version) if (version.major, version.minor) >= (0, 11) => Generation::Modern,
            _ => Generation::Legacy,
        }
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
