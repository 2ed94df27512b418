//! Relocation: applying the `DT_RELA` table of a position-independent kernel to its
//! loaded image.
//!
//! The work is one pass over the table, whose size [`super::inspect`] bounded by the
//! file, and each symbol relocation reads its one symbol by index, so relocating costs
//! time linear in the table whatever the symbols say.

use goblin::elf::reloc::{R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_NONE, R_X86_64_RELATIVE};
use goblin::elf::section_header::SHN_UNDEF;
use goblin::elf::sym::{st_bind, STB_WEAK};
use goblin::elf64::reloc::{r_sym, r_type, SIZEOF_RELA};
use goblin::elf64::sym::{Sym, SIZEOF_SYM};

use super::{malformed, records, ElfKind, Kernel};
use crate::error::LoadError;

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

/// The addresses a relocation may write 8 bytes at without a search: those of the
/// segment the previous target lay in, as `start` and the number of addresses from
/// there at which 8 bytes still fit in the segment (`room`; 0 before the first).
///
/// Linkers sort relocations by address, so nearly every target lies in the previous
/// one's segment, and checking that a target lies inside one segment costs one
/// subtraction and one comparison, which also replace the check against the image's
/// bounds.
#[derive(Clone, Copy, Default)]
struct Window {
    start: u64,
    room: u64,
}

impl Kernel<'_> {
    /// Applies the `DT_RELA` relocations to the loaded `image` (after all segments).
    ///
    /// `R_X86_64_RELATIVE` stores bias + addend; `R_X86_64_64` stores bias + symbol
    /// value + addend and `R_X86_64_GLOB_DAT` the same without the addend. Relocations
    /// against weak undefined symbols are skipped and counted, `R_X86_64_NONE` is
    /// ignored, and any other type is refused. Executables are not relocated.
    /// (`inspect` refuses REL and PLT relocations, `DT_REL` and `DT_JMPREL`: nothing
    /// would apply them.)
    ///
    /// Every 8 bytes written lie inside one `PT_LOAD` segment's memory: a target in a
    /// gap between segments, outside the image or across a segment's end is refused
    /// (a file whose data segment is missing would otherwise be relocated into the
    /// hole and start). The first `DT_RELACOUNT` entries must be
    /// `R_X86_64_RELATIVE`, as the dynamic section says.
    ///
    /// Never inlined: this loop is the loader's hottest code (thousands of entries),
    /// and inlined into a large caller its registers depend on that caller's code.
    #[inline(never)]
    pub fn relocate(&self, bias: u64, image: &mut [u8]) -> Result<RelocStats, LoadError> {
        let mut stats = RelocStats::default();
        if self.kind == ElfKind::Exec {
            return Ok(stats);
        }
        // `inspect` checked that the table is a whole number of entries and that
        // `relative_count` is at most their number. Read as arrays: no bounds check
        // or error path per field, which counts for kernels with thousands of
        // relocations.
        let (entries, _) = self.relocation_table.as_chunks::<SIZEOF_RELA>();
        let (relative, others) = entries.split_at(self.relative_count.min(entries.len()));
        let mut window = Window::default();
        for entry in relative {
            let relocation = records::rela(entry);
            if r_type(relocation.r_info) != R_X86_64_RELATIVE {
                return Err(LoadError::RelativeCountDisagrees {
                    index: self.relocation_index(entry),
                    count: relative.len() as u64,
                    r_type: r_type(relocation.r_info),
                });
            }
            let value = bias.wrapping_add_signed(relocation.r_addend);
            self.store(image, &mut window, entry, relocation.r_offset, value)?;
        }
        stats.relative = u32::try_from(relative.len()).unwrap_or(u32::MAX);
        for entry in others {
            let relocation = records::rela(entry);
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
            self.store(image, &mut window, entry, relocation.r_offset, value)?;
        }
        Ok(stats)
    }

    /// Writes `value` at `target` (an address as the ELF writes it) into `image`, if
    /// its 8 bytes lie inside one segment's memory; `entry` is the relocation, for the
    /// message.
    #[inline(always)]
    fn store(
        &self,
        image: &mut [u8],
        window: &mut Window,
        entry: &[u8; SIZEOF_RELA],
        target: u64,
        value: u64,
    ) -> Result<(), LoadError> {
        if target.wrapping_sub(window.start) >= window.room {
            *window = self
                .window_at(target)
                .ok_or_else(|| self.outside_segments(entry, target))?;
        }
        // Inside a segment, so at or above `vaddr_start`; the image is the caller's.
        let slot = usize::try_from(target - self.vaddr_start)
            .ok()
            .and_then(|offset| image.get_mut(offset..)?.first_chunk_mut::<8>())
            .ok_or(malformed(
                "a relocation target lies outside the kernel image",
            ))?;
        *slot = value.to_le_bytes();
        Ok(())
    }

    /// The window of the segment whose memory holds the 8 bytes at `target`, if one
    /// does. Segments are in ascending address order and apart (`inspect` checks
    /// this), so a binary search finds the only candidate.
    #[cold]
    #[inline(never)]
    fn window_at(&self, target: u64) -> Option<Window> {
        let after = self
            .segments
            .partition_point(|segment| segment.vaddr <= target);
        let segment = self.segments.get(after.checked_sub(1)?)?;
        let window = Window {
            start: segment.vaddr,
            room: segment.mem_size.saturating_sub(7),
        };
        (target - window.start < window.room).then_some(window)
    }

    /// The refusal of relocation `entry`, whose target is not inside a segment.
    #[cold]
    #[inline(never)]
    fn outside_segments(&self, entry: &[u8; SIZEOF_RELA], target: u64) -> LoadError {
        LoadError::RelocationOutsideSegments {
            index: self.relocation_index(entry),
            target,
        }
    }

    /// The index of `entry` in the relocation table, for messages.
    fn relocation_index(&self, entry: &[u8; SIZEOF_RELA]) -> usize {
        (entry.as_ptr() as usize - self.relocation_table.as_ptr() as usize) / SIZEOF_RELA
    }

    /// The address (as written in the ELF, before relocation) that each relocation
    /// of the `DT_RELA` table writes, in table order (`R_X86_64_NONE` entries, which
    /// write nothing, left out); none for an executable. Fault injection leaves one
    /// out (`rusty_loader::faults`).
    pub fn relocation_targets(&self) -> impl Iterator<Item = u64> + '_ {
        let (entries, _) = self.relocation_table.as_chunks::<SIZEOF_RELA>();
        entries
            .iter()
            .map(records::rela)
            .filter(|relocation| r_type(relocation.r_info) != R_X86_64_NONE)
            .map(|relocation| relocation.r_offset)
    }

    /// Reads entry `index` of the dynamic symbol table: one bounds-checked read,
    /// whatever the index.
    fn dynamic_symbol(&self, index: u32) -> Result<Sym, LoadError> {
        let table = self.symbol_table.ok_or(malformed(
            "a symbol relocation but no dynamic symbol table (DT_SYMTAB)",
        ))?;
        usize::try_from(index)
            .ok()
            .and_then(|index| index.checked_mul(SIZEOF_SYM))
            .and_then(|offset| table.get(offset..)?.first_chunk::<SIZEOF_SYM>())
            .map(records::symbol)
            .ok_or(malformed(
                "a relocation's symbol index lies outside the dynamic symbol table",
            ))
    }
}

/// One `Elf64_Rela` from its little-endian bytes.
#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use goblin::elf::reloc::R_X86_64_PC32;
    use goblin::elf64::reloc::SIZEOF_RELA;

    use super::super::inspect;
    use super::super::test_elf::*;
    use super::*;

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
    fn relocation_targets_are_listed_in_table_order() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        assert_eq!(
            kernel.relocation_targets().collect::<Vec<_>>(),
            [0x3020, 0x3028, 0x3030, 0x3038]
        );
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
                LoadError::RelocationOutsideSegments {
                    index: 0,
                    target: IMAGE_SIZE - 4,
                },
            ),
            (
                "target far outside the image",
                vec![(u64::MAX, R_X86_64_RELATIVE, 0, 0)],
                LoadError::RelocationOutsideSegments {
                    index: 0,
                    target: u64::MAX,
                },
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
                let entries = elf.dynamic.as_mut().unwrap();
                entries[DYN_RELASZ].1 = size;
                entries[DYN_RELACOUNT].1 = 0;
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
}
