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

use super::{image_slice, malformed, records, ElfKind, Kernel};
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

impl Kernel<'_> {
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
        // `inspect` checked that the table is a whole number of entries. Read as
        // arrays: no bounds check or error path per field, which counts for kernels
        // with thousands of relocations.
        let (entries, _) = self.relocation_table.as_chunks::<SIZEOF_RELA>();
        for entry in entries {
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
}
