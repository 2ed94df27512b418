//! The ELF header and the program header table: the identification checks, the
//! bounded table, and the passes over it that find the `PT_LOAD` segments, the image
//! they span and the `PT_TLS` template.
//!
//! Each pass walks the table at most once, and the table holds at most
//! [`MAX_PROGRAM_HEADERS`] entries, so no input makes this part read more than a few
//! hundred headers.

use alloc::vec::Vec;

use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB, ELFMAG, EM_X86_64};
use goblin::elf::program_header::{PT_DYNAMIC, PT_HIPROC, PT_LOAD, PT_LOOS, PT_NULL, PT_TLS};
use goblin::elf64::header::{Header, SIZEOF_EHDR};
use goblin::elf64::program_header::{ProgramHeader, SIZEOF_PHDR};

use super::{file_len, file_slice, malformed, records, Segment, TlsSegment};
use crate::error::{LoadError, NotLoaded};

/// The most program headers [`super::inspect`] reads.
///
/// Real Hermit applications have 10 to 14 (`PHDR`, four or five `PT_LOAD`, `PT_TLS`,
/// `PT_DYNAMIC`, one or two `PT_NOTE`, `GNU_RELRO`, `GNU_EH_FRAME`, `GNU_STACK`), so
/// 128 leaves a margin of eight and more. The bound keeps the passes over the table
/// and the loader's heap use for segments and note ranges small, and lets the
/// segment count fit the trace's one-byte field.
pub const MAX_PROGRAM_HEADERS: u16 = 128;

/// `e_phnum` value announcing extended numbering (the real count is in section header 0).
pub(super) const PN_XNUM: u16 = 0xffff;
/// The loader places and zeroes the kernel image in whole pages.
const PAGE_SIZE: u64 = 0x1000;

/// Checks the identification and machine and reads the ELF header.
pub(super) fn read_header(bytes: &[u8]) -> Result<Header, LoadError> {
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
    let header = bytes
        .first_chunk::<SIZEOF_EHDR>()
        .map(records::header)
        .ok_or(malformed("the file is shorter than the ELF header"))?;
    if header.e_machine != EM_X86_64 {
        return Err(LoadError::WrongMachine {
            machine: header.e_machine,
        });
    }
    Ok(header)
}

/// The program header table, checked to lie inside the file, read one entry at a time
/// so that the table costs no memory.
pub(super) struct ProgramHeaderTable<'a> {
    /// Exactly the table's bytes: `e_phnum` entries of [`SIZEOF_PHDR`] bytes.
    table: &'a [u8],
}

impl<'a> ProgramHeaderTable<'a> {
    /// The table `header` describes, refused if it holds more than `max_count`
    /// entries ([`super::inspect`] passes [`MAX_PROGRAM_HEADERS`]; tests pass more, to
    /// show that the note scan is bounded on its own).
    pub(super) fn new(bytes: &'a [u8], header: &Header, max_count: u16) -> Result<Self, LoadError> {
        if header.e_phnum == PN_XNUM {
            return Err(malformed(
                "extended program header numbering (PN_XNUM) is not supported",
            ));
        }
        if header.e_phnum == 0 {
            return Err(malformed("no PT_LOAD segment"));
        }
        if header.e_phnum > max_count {
            return Err(LoadError::ElfTooComplex {
                what: "program headers",
                found: u64::from(header.e_phnum),
                limit: u64::from(max_count),
            });
        }
        if usize::from(header.e_phentsize) != SIZEOF_PHDR {
            return Err(malformed("the program header entry size is not 56 bytes"));
        }
        let table_size = u64::from(header.e_phnum) * SIZEOF_PHDR as u64;
        let table = file_slice(bytes, header.e_phoff, table_size)
            .ok_or(malformed("the program header table lies outside the file"))?;
        Ok(ProgramHeaderTable { table })
    }

    /// Every program header with its index.
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, ProgramHeader)> + '_ {
        // The table is a whole number of entries.
        let (entries, _) = self.table.as_chunks::<SIZEOF_PHDR>();
        entries
            .iter()
            .enumerate()
            .map(|(index, entry)| (index, records::program_header(entry)))
    }

    /// Every program header of type `p_type` with its index.
    pub(super) fn of_type(&self, p_type: u32) -> impl Iterator<Item = (usize, ProgramHeader)> + '_ {
        self.iter()
            .filter(move |(_, header)| header.p_type == p_type)
    }
}

/// The page-rounded addresses the segments span and their largest alignment.
pub(super) struct ImageExtent {
    pub(super) vaddr_start: u64,
    pub(super) vaddr_end: u64,
    pub(super) align: u64,
    /// The index of the program header whose `p_align` is `align` (the first such),
    /// for the message when the image cannot keep it.
    pub(super) align_index: usize,
}

/// What the pass over the program header table finds besides the notes: the
/// `PT_LOAD` segments, the image they span, and the first `PT_TLS` and
/// `PT_DYNAMIC` headers.
pub(super) struct SegmentTable {
    pub(super) segments: Vec<Segment>,
    pub(super) extent: ImageExtent,
    pub(super) tls: Option<(usize, ProgramHeader)>,
    pub(super) dynamic: Option<ProgramHeader>,
}

/// Whether `p_type` lies in a range the ELF specification defines: the generic types
/// up to `PT_TLS`, and the operating-system and processor-specific ranges (which hold
/// GNU's `PT_GNU_*`). Anything else is a corrupted header, whose segment the loader
/// would silently leave out.
const fn segment_type_is_defined(p_type: u32) -> bool {
    matches!(p_type, PT_NULL..=PT_TLS | PT_LOOS..=PT_HIPROC)
}

/// Whether `align` is an alignment the ELF specification allows: 0 and 1 (none) or a
/// power of two.
const fn alignment_is_valid(align: u64) -> bool {
    align <= 1 || align.is_power_of_two()
}

/// Checks every program header's type, collects the `PT_LOAD` segments, checks each
/// lies inside the file, holds no more file bytes than memory, keeps its alignment,
/// fits the address space and starts at or after the previous one's end, and returns
/// the image they span with the first `PT_TLS` and `PT_DYNAMIC` headers.
///
/// The ELF specification requires ascending `p_vaddr` order; requiring in addition
/// that segments do not overlap makes the load order irrelevant, lets
/// [`super::Kernel::zero_gaps`] find the gaps in one walk, puts the image's start in
/// the first segment and its end in the last, and lets a relocation find its
/// segment by binary search.
pub(super) fn collect_segments(
    bytes: &[u8],
    program_headers: &ProgramHeaderTable,
) -> Result<SegmentTable, LoadError> {
    let mut count = 0;
    let mut tls = None;
    let mut dynamic = None;
    for (index, header) in program_headers.iter() {
        match header.p_type {
            PT_LOAD => count += 1,
            PT_TLS if tls.is_none() => tls = Some((index, header)),
            PT_DYNAMIC if dynamic.is_none() => dynamic = Some(header),
            p_type if !segment_type_is_defined(p_type) => {
                return Err(LoadError::UndefinedSegmentType { index, p_type });
            }
            _ => {}
        }
    }
    let mut segments = Vec::new();
    // The count is bounded by the table's, but the heap is small and an allocation
    // failure on bare metal is a panic, so a failure is still a refusal.
    segments
        .try_reserve_exact(count)
        .map_err(|_| malformed("too many PT_LOAD segments for the loader's heap"))?;

    // The previous segment's index, start and end.
    let mut previous: Option<(usize, u64, u64)> = None;
    let mut largest_align = 0;
    let mut align_index = 0;
    let mut occupies_memory = false;
    for (index, header) in program_headers.of_type(PT_LOAD) {
        if header.p_filesz > header.p_memsz {
            return Err(LoadError::FileSizeAboveMemorySize {
                index,
                segment_type: "PT_LOAD",
                file_size: header.p_filesz,
                mem_size: header.p_memsz,
            });
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
        check_alignment(index, &header)?;
        if let Some((previous_index, previous_vaddr, previous_end)) = previous {
            if header.p_vaddr < previous_vaddr {
                return Err(LoadError::SegmentsOutOfOrder {
                    index,
                    vaddr: header.p_vaddr,
                    previous_index,
                    previous_vaddr,
                });
            }
            if header.p_vaddr < previous_end {
                return Err(LoadError::OverlappingSegments {
                    index,
                    start: header.p_vaddr,
                    end,
                    previous_index,
                    previous_end,
                });
            }
        }
        previous = Some((index, header.p_vaddr, end));
        occupies_memory |= header.p_memsz != 0;
        if header.p_align > largest_align {
            largest_align = header.p_align;
            align_index = index;
        }
        segments.push(Segment {
            index,
            file_offset: header.p_offset,
            file_size: header.p_filesz,
            mem_size: header.p_memsz,
            vaddr: header.p_vaddr,
            flags: header.p_flags,
        });
    }

    let (Some(first), Some((_, _, highest_end))) = (segments.first(), previous) else {
        return Err(malformed("no PT_LOAD segment"));
    };
    if !occupies_memory {
        return Err(LoadError::EmptyImage {
            segments: segments.len(),
        });
    }
    let vaddr_end = highest_end
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(malformed(
            "a PT_LOAD segment reaches past the end of the address space",
        ))?;
    let extent = ImageExtent {
        vaddr_start: first.vaddr - first.vaddr % PAGE_SIZE,
        vaddr_end,
        align: largest_align.max(PAGE_SIZE),
        align_index,
    };
    Ok(SegmentTable {
        segments,
        extent,
        tls,
        dynamic,
    })
}

/// Checks that a `PT_LOAD` segment's alignment is valid and that its file offset and
/// address agree modulo it, up to a page.
///
/// The loader copies rather than maps, so it would not itself trip over an offset
/// that disagrees with the address; but then the other headers, which give both an
/// offset and an address (`PT_TLS`, `PT_DYNAMIC`, `PT_GNU_RELRO`) and the section
/// headers a debugger reads, describe other bytes than the ones at those addresses,
/// and every mapping loader refuses such a file. Beyond a page the rule is not
/// enforced: the test application's data segment asks for 2 MiB and lies 4 KiB
/// apart, as linkers that honour only the page size write it.
fn check_alignment(index: usize, header: &ProgramHeader) -> Result<(), LoadError> {
    if !alignment_is_valid(header.p_align) {
        return Err(LoadError::AlignmentNotPowerOfTwo {
            index,
            segment_type: "PT_LOAD",
            align: header.p_align,
        });
    }
    let modulus = header.p_align.clamp(1, PAGE_SIZE);
    if (header.p_offset ^ header.p_vaddr) & (modulus - 1) != 0 {
        return Err(LoadError::OffsetNotCongruent {
            index,
            offset: header.p_offset,
            vaddr: header.p_vaddr,
            modulus,
        });
    }
    Ok(())
}

/// Checks the `PT_TLS` header: its template must be where a `PT_LOAD` segment puts
/// it, since the kernel copies every thread's TLS block from there.
pub(super) fn check_tls(
    tls: Option<(usize, ProgramHeader)>,
    segments: &[Segment],
) -> Result<Option<TlsSegment>, LoadError> {
    let Some((index, header)) = tls else {
        return Ok(None);
    };
    if header.p_filesz > header.p_memsz {
        return Err(LoadError::FileSizeAboveMemorySize {
            index,
            segment_type: "PT_TLS",
            file_size: header.p_filesz,
            mem_size: header.p_memsz,
        });
    }
    if !alignment_is_valid(header.p_align) {
        return Err(LoadError::AlignmentNotPowerOfTwo {
            index,
            segment_type: "PT_TLS",
            align: header.p_align,
        });
    }
    check_loaded_as_said(NotLoaded::TlsTemplate, &header, segments)?;
    Ok(Some(TlsSegment {
        vaddr: header.p_vaddr,
        file_size: header.p_filesz,
        mem_size: header.p_memsz,
        align: header.p_align,
    }))
}

/// Checks that the file bytes `header` describes (`p_filesz` bytes at `p_offset`)
/// are what the `PT_LOAD` segments place at its addresses (`p_vaddr`): inside one
/// segment's file bytes, at the same offset from the segment's start in the file as
/// in memory.
///
/// A header without file bytes names only an address; it must lie in a segment's
/// memory (its end included).
pub(super) fn check_loaded_as_said(
    what: NotLoaded,
    header: &ProgramHeader,
    segments: &[Segment],
) -> Result<(), LoadError> {
    let start = header.p_vaddr;
    let size = header.p_filesz;
    let end = start.checked_add(size);
    let refusal = |loaded_from| LoadError::NotLoadedAsSaid {
        what,
        start,
        end: end.unwrap_or(u64::MAX),
        file_offset: header.p_offset,
        loaded_from,
    };
    let end = end.ok_or(refusal(None))?;
    for segment in segments {
        let Some(offset_in_segment) = start.checked_sub(segment.vaddr) else {
            continue;
        };
        if size == 0 {
            if offset_in_segment <= segment.mem_size {
                return Ok(());
            }
            continue;
        }
        if end - segment.vaddr > segment.file_size {
            continue;
        }
        // Inside the file, as the segment is; no overflow.
        let loaded_from = segment.file_offset + offset_in_segment;
        if loaded_from != header.p_offset {
            return Err(refusal(Some(loaded_from)));
        }
        return Ok(());
    }
    Err(refusal(None))
}

#[cfg(test)]
mod tests {
    use super::super::inspect;
    use super::super::test_elf::*;
    use super::*;

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
    fn more_program_headers_than_the_bound_are_refused() {
        for count in [MAX_PROGRAM_HEADERS + 1, PN_XNUM - 1] {
            let bytes = edited(|bytes| put(bytes, 56, &count.to_le_bytes()));
            assert_eq!(
                inspect(&bytes).map(|kernel| kernel.entry),
                Err(LoadError::ElfTooComplex {
                    what: "program headers",
                    found: u64::from(count),
                    limit: u64::from(MAX_PROGRAM_HEADERS),
                }),
                "{count} program headers"
            );
        }
    }
}
