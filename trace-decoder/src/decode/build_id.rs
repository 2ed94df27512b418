//! The identity of a loader build: a hash of its defmt table. xtask writes it into
//! the loader (symbol `RUSTY_LOADER_BUILD_ID`) after linking; the loader sends it in
//! its first event; the decoder recomputes it from the ELF it was given and refuses
//! to decode a stream from another build instead of printing garbage.

use anyhow::{bail, Context, Result};
use goblin::elf::Elf;

/// The symbol holding the build identity in the loader.
pub const BUILD_ID_SYMBOL: &str = "RUSTY_LOADER_BUILD_ID";

/// FNV-1a, 32 bit: tiny, stable across Rust versions, and good enough to tell two
/// tables apart (this is an identity check, not a security boundary; 32 bits keep
/// the first event small).
fn fnv1a(hash: u32, bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(hash, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// FNV-1a's offset basis, 32 bit.
const FNV_BASIS: u32 = 0x811c_9dc5;

/// Hashes the defmt table of a loader ELF: every symbol in the `.defmt` section (its
/// name is the interned format string, its value the index on the wire), in order.
pub fn table_build_id(elf_bytes: &[u8]) -> Result<u32> {
    let elf = Elf::parse(elf_bytes).context("not an ELF file")?;
    let defmt_index = elf
        .section_headers
        .iter()
        .position(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".defmt"))
        .context("the ELF has no .defmt section: not a loader built with tracing")?;
    let mut entries: Vec<(u64, &str)> = elf
        .syms
        .iter()
        .filter(|s| s.st_shndx == defmt_index)
        .filter_map(|s| Some((s.st_value, elf.strtab.get_at(s.st_name)?)))
        .collect();
    if entries.is_empty() {
        bail!("the .defmt section has no symbols: the ELF was stripped");
    }
    entries.sort_unstable();
    let mut hash = FNV_BASIS;
    for (index, name) in entries {
        hash = fnv1a(hash, &index.to_le_bytes());
        hash = fnv1a(hash, name.as_bytes());
        hash = fnv1a(hash, &[0]);
    }
    Ok(hash)
}

/// The file offset of the build-identity placeholder in a loader ELF.
pub fn build_id_offset(elf_bytes: &[u8]) -> Result<usize> {
    let elf = Elf::parse(elf_bytes).context("not an ELF file")?;
    let symbol = elf
        .syms
        .iter()
        .find(|s| elf.strtab.get_at(s.st_name) == Some(BUILD_ID_SYMBOL))
        .with_context(|| format!("no {BUILD_ID_SYMBOL} symbol: not a rusty-loader ELF"))?;
    let section = elf
        .section_headers
        .get(symbol.st_shndx)
        .context("the build-identity symbol has no section")?;
    let offset = symbol
        .st_value
        .checked_sub(section.sh_addr)
        .and_then(|o| o.checked_add(section.sh_offset))
        .context("the build-identity symbol lies outside its section")?;
    Ok(offset as usize)
}

/// Writes the table's identity into the placeholder (done by xtask after linking).
pub fn stamp_build_id(elf_bytes: &mut [u8]) -> Result<u32> {
    let id = table_build_id(elf_bytes)?;
    let offset = build_id_offset(elf_bytes)?;
    let slot = elf_bytes
        .get_mut(offset..offset + 4)
        .context("the build-identity slot is outside the file")?;
    slot.copy_from_slice(&id.to_le_bytes());
    Ok(id)
}

/// Reads the identity stamped into a loader ELF.
pub fn stamped_build_id(elf_bytes: &[u8]) -> Result<u32> {
    let offset = build_id_offset(elf_bytes)?;
    let slot = elf_bytes
        .get(offset..offset + 4)
        .context("the build-identity slot is outside the file")?;
    Ok(u32::from_le_bytes(slot.try_into().expect("4 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(FNV_BASIS, b""), 0x811c_9dc5);
        assert_eq!(fnv1a(FNV_BASIS, b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(FNV_BASIS, b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn refuses_non_elf_input() {
        assert!(table_build_id(b"not an elf").is_err());
        assert!(build_id_offset(b"\x7fELF").is_err());
    }
}
