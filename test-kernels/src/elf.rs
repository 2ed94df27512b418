//! Reading the kernel's own ELF header and program headers from memory, and working
//! out from them what the loader should have reported: the image range and the TLS
//! fields, both moved by the load bias.
//!
//! The test kernels are linked so that the first `PT_LOAD` starts at file offset 0,
//! which puts the ELF header and the program headers into memory at the image start.

#![forbid(unsafe_code)]

/// `e_type` of a position-dependent executable.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a position-independent executable (static PIE).
pub const ET_DYN: u16 = 3;
/// `e_machine` of x86_64.
pub const EM_X86_64: u16 = 62;
/// `p_type` of a loadable segment.
pub const PT_LOAD: u32 = 1;
/// `p_type` of the TLS template.
pub const PT_TLS: u32 = 7;
/// Dynamic tags of the relocation table: address, size, entry size.
const DT_NULL: u64 = 0;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_RELAENT: u64 = 9;
/// Size of an `Elf64_Rela`.
pub const RELA_SIZE: usize = 24;
/// `R_X86_64_RELATIVE`: the slot holds load bias + addend.
const R_X86_64_RELATIVE: u64 = 8;
/// Size of a 64-bit ELF header.
pub const EHDR_SIZE: usize = 64;
/// Size of a 64-bit program header.
pub const PHDR_SIZE: usize = 56;

/// What can be wrong with the header in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Fewer bytes than a header.
    Short,
    /// No `\x7fELF` magic.
    BadMagic,
    /// Not ELFCLASS64 little-endian x86_64.
    NotX86_64,
    /// `e_phentsize` is not 56 or the program headers do not fit.
    BadPhdrs,
    /// No `PT_LOAD`.
    NoLoad,
    /// The first `PT_LOAD` does not start at file offset 0, so the header is not
    /// where the image starts.
    HeaderNotLoaded,
    /// The dynamic section or the relocation table it names is malformed or lies
    /// outside the image.
    BadDynamic,
}

impl ElfError {
    /// A short description for failure messages.
    pub fn describe(self) -> &'static str {
        match self {
            ElfError::Short => "too short for an ELF header",
            ElfError::BadMagic => "no ELF magic",
            ElfError::NotX86_64 => "not a 64-bit little-endian x86_64 ELF",
            ElfError::BadPhdrs => "program headers malformed",
            ElfError::NoLoad => "no PT_LOAD",
            ElfError::HeaderNotLoaded => "first PT_LOAD is not at file offset 0",
            ElfError::BadDynamic => "dynamic section or relocation table malformed",
        }
    }
}

/// The header fields the kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// `EI_OSABI` (0xff on Hermit apps after the post-link patch).
    pub osabi: u8,
    /// `e_type`.
    pub e_type: u16,
    /// `e_entry` (link-time).
    pub entry: u64,
    /// `e_phoff`.
    pub phoff: u64,
    /// `e_phnum`.
    pub phnum: u16,
}

/// One program header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phdr {
    /// `p_type`.
    pub p_type: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr` (link-time).
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
}

fn le(bytes: &[u8], at: usize, n: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(n)?)?;
    Some(
        b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
    )
}

impl Header {
    /// Decodes and validates the ELF header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Header, ElfError> {
        if bytes.len() < EHDR_SIZE {
            return Err(ElfError::Short);
        }
        if bytes[..4] != *b"\x7fELF" {
            return Err(ElfError::BadMagic);
        }
        let machine = le(bytes, 18, 2).ok_or(ElfError::Short)? as u16;
        if bytes[4] != 2 || bytes[5] != 1 || machine != EM_X86_64 {
            return Err(ElfError::NotX86_64);
        }
        if le(bytes, 54, 2) != Some(PHDR_SIZE as u64) {
            return Err(ElfError::BadPhdrs);
        }
        Ok(Header {
            osabi: bytes[7],
            e_type: le(bytes, 16, 2).ok_or(ElfError::Short)? as u16,
            entry: le(bytes, 24, 8).ok_or(ElfError::Short)?,
            phoff: le(bytes, 32, 8).ok_or(ElfError::Short)?,
            phnum: le(bytes, 56, 2).ok_or(ElfError::Short)? as u16,
        })
    }

    /// Bytes from the header's start through the end of the program headers: how much
    /// of the image must be readable to call [`Header::phdr`].
    pub fn phdrs_end(&self) -> Option<u64> {
        self.phoff
            .checked_add(u64::from(self.phnum) * PHDR_SIZE as u64)
    }

    /// Decodes program header `index` from `bytes` (which start at the ELF header).
    pub fn phdr(&self, bytes: &[u8], index: u16) -> Option<Phdr> {
        if index >= self.phnum {
            return None;
        }
        let at = usize::try_from(self.phoff)
            .ok()?
            .checked_add(usize::from(index) * PHDR_SIZE)?;
        Some(Phdr {
            p_type: le(bytes, at, 4)? as u32,
            offset: le(bytes, at + 8, 8)?,
            vaddr: le(bytes, at + 16, 8)?,
            filesz: le(bytes, at + 32, 8)?,
            memsz: le(bytes, at + 40, 8)?,
            align: le(bytes, at + 48, 8)?,
        })
    }
}

/// What the program headers say about the loaded image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    /// The first `PT_LOAD` in program-header order.
    pub first_load: Phdr,
    /// End (`p_vaddr + p_memsz`) of the last `PT_LOAD` in program-header order.
    pub load_end: u64,
    /// The `PT_TLS` header, if any.
    pub tls: Option<Phdr>,
}

impl Segments {
    /// Collects the segments from the program headers.
    pub fn read(header: &Header, bytes: &[u8]) -> Result<Segments, ElfError> {
        let mut first_load = None;
        let mut load_end = 0;
        let mut tls = None;
        for i in 0..header.phnum {
            let ph = header.phdr(bytes, i).ok_or(ElfError::BadPhdrs)?;
            match ph.p_type {
                PT_LOAD => {
                    first_load.get_or_insert(ph);
                    load_end = ph.vaddr.checked_add(ph.memsz).ok_or(ElfError::BadPhdrs)?;
                }
                PT_TLS if tls.is_none() => tls = Some(ph),
                _ => {}
            }
        }
        let first_load = first_load.ok_or(ElfError::NoLoad)?;
        if first_load.offset != 0 {
            return Err(ElfError::HeaderNotLoaded);
        }
        Ok(Segments {
            first_load,
            load_end,
            tls,
        })
    }

    /// The load bias, given where the ELF header is at run time: the header is file
    /// offset 0, which the first `PT_LOAD` puts at its `p_vaddr`.
    pub fn bias(&self, header_address: u64) -> u64 {
        header_address.wrapping_sub(self.first_load.vaddr)
    }

    /// The image range the loader should report: as hermit-entry computes it, from
    /// the first `PT_LOAD`'s address to the end of the last, moved by the bias.
    pub fn image_range(&self, bias: u64) -> (u64, u64) {
        (
            self.first_load.vaddr.wrapping_add(bias),
            self.load_end.wrapping_add(bias),
        )
    }

    /// The TLS fields the loader should report: the `PT_TLS` values with the start
    /// moved by the bias, or all zeros without `PT_TLS`.
    pub fn tls_fields(&self, bias: u64) -> crate::bootinfo::Tls {
        match self.tls {
            Some(t) => crate::bootinfo::Tls {
                start: t.vaddr.wrapping_add(bias),
                filesz: t.filesz,
                memsz: t.memsz,
                align: t.align,
            },
            None => crate::bootinfo::Tls::default(),
        }
    }
}

/// The relocation table the dynamic section names: its link-time address and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelaTable {
    /// `DT_RELA`.
    pub vaddr: u64,
    /// `DT_RELASZ`, a whole number of entries.
    pub size: u64,
}

/// Reads `DT_RELA`/`DT_RELASZ` from the dynamic section's bytes (up to `DT_NULL`);
/// `None` when there is no table.
pub fn rela_table(dynamic: &[u8]) -> Result<Option<RelaTable>, ElfError> {
    let (mut vaddr, mut size) = (None, None);
    for entry in dynamic.chunks_exact(16) {
        let tag = le(entry, 0, 8).ok_or(ElfError::BadDynamic)?;
        let value = le(entry, 8, 8).ok_or(ElfError::BadDynamic)?;
        match tag {
            DT_NULL => break,
            DT_RELA => vaddr = Some(value),
            DT_RELASZ => size = Some(value),
            DT_RELAENT if value != RELA_SIZE as u64 => return Err(ElfError::BadDynamic),
            _ => {}
        }
    }
    match (vaddr, size) {
        (None, None) => Ok(None),
        (Some(vaddr), Some(size)) if size.is_multiple_of(RELA_SIZE as u64) => {
            Ok(Some(RelaTable { vaddr, size }))
        }
        _ => Err(ElfError::BadDynamic),
    }
}

/// A relative relocation whose slot does not hold what the loader should have
/// written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unapplied {
    /// The slot's link-time address (`r_offset`).
    pub slot: u64,
    /// What it holds (None: it lies outside the memory `read_slot` reaches).
    pub got: Option<u64>,
    /// Load bias + addend.
    pub want: u64,
}

/// The first `R_X86_64_RELATIVE` entry of `table` (the bytes of a `DT_RELA` table)
/// whose slot, read by `read_slot` at its link-time address, does not hold
/// `bias` + addend.
pub fn first_unapplied(
    table: &[u8],
    bias: u64,
    read_slot: impl Fn(u64) -> Option<u64>,
) -> Option<Unapplied> {
    for entry in table.chunks_exact(RELA_SIZE) {
        let (Some(slot), Some(info), Some(addend)) =
            (le(entry, 0, 8), le(entry, 8, 8), le(entry, 16, 8))
        else {
            continue;
        };
        if info & 0xffff_ffff != R_X86_64_RELATIVE {
            continue;
        }
        let want = bias.wrapping_add(addend);
        let got = read_slot(slot);
        if got != Some(want) {
            return Some(Unapplied { slot, got, want });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn ehdr(e_type: u16, entry: u64, phnum: u16) -> Vec<u8> {
        let mut h = vec![0u8; EHDR_SIZE];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[6] = 1;
        h[7] = 0xff;
        h[16..18].copy_from_slice(&e_type.to_le_bytes());
        h[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        h[24..32].copy_from_slice(&entry.to_le_bytes());
        h[32..40].copy_from_slice(&64u64.to_le_bytes());
        h[52..54].copy_from_slice(&64u16.to_le_bytes());
        h[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        h[56..58].copy_from_slice(&phnum.to_le_bytes());
        h
    }

    fn phdr(p_type: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64, align: u64) -> Vec<u8> {
        let mut p = vec![0u8; PHDR_SIZE];
        p[0..4].copy_from_slice(&p_type.to_le_bytes());
        p[8..16].copy_from_slice(&offset.to_le_bytes());
        p[16..24].copy_from_slice(&vaddr.to_le_bytes());
        p[24..32].copy_from_slice(&vaddr.to_le_bytes());
        p[32..40].copy_from_slice(&filesz.to_le_bytes());
        p[40..48].copy_from_slice(&memsz.to_le_bytes());
        p[48..56].copy_from_slice(&align.to_le_bytes());
        p
    }

    /// A static PIE shaped like the hello-dyn link: R, RX, RW segments and PT_TLS.
    fn pie() -> Vec<u8> {
        let mut f = ehdr(ET_DYN, 0x1230, 5);
        f.extend(phdr(6, 64, 64, 5 * 56, 5 * 56, 8)); // PT_PHDR
        f.extend(phdr(PT_LOAD, 0, 0, 0x800, 0x800, 0x1000));
        f.extend(phdr(PT_LOAD, 0x1000, 0x1000, 0x3000, 0x3000, 0x1000));
        f.extend(phdr(PT_TLS, 0x4000, 0x4000, 8, 0x48, 32));
        f.extend(phdr(PT_LOAD, 0x4000, 0x4000, 0x200, 0x1_2345, 0x1000));
        f
    }

    #[test]
    fn pie_image_and_tls_move_by_the_bias() {
        let f = pie();
        let h = Header::parse(&f).unwrap();
        assert_eq!(h.e_type, ET_DYN);
        assert_eq!(h.osabi, 0xff);
        assert_eq!(h.entry, 0x1230);
        assert_eq!(h.phdrs_end(), Some(64 + 5 * 56));
        let s = Segments::read(&h, &f).unwrap();
        let bias = s.bias(0x20_0000);
        assert_eq!(bias, 0x20_0000);
        assert_eq!(s.image_range(bias), (0x20_0000, 0x21_6345));
        assert_eq!(
            s.tls_fields(bias),
            crate::bootinfo::Tls {
                start: 0x20_4000,
                filesz: 8,
                memsz: 0x48,
                align: 32
            }
        );
    }

    #[test]
    fn exec_has_no_bias_and_no_tls_means_zeros() {
        let mut f = ehdr(ET_EXEC, 0x80_1000, 2);
        f.extend(phdr(PT_LOAD, 0, 0x80_0000, 0x1000, 0x1000, 0x1000));
        f.extend(phdr(PT_LOAD, 0x1000, 0x80_1000, 0x1000, 0x2_1000, 0x1000));
        let h = Header::parse(&f).unwrap();
        let s = Segments::read(&h, &f).unwrap();
        assert_eq!(s.bias(0x80_0000), 0);
        assert_eq!(s.image_range(0), (0x80_0000, 0x82_2000));
        assert_eq!(s.tls_fields(0), crate::bootinfo::Tls::default());
    }

    #[test]
    fn bad_headers_are_named() {
        let f = pie();
        assert_eq!(Header::parse(&f[..63]), Err(ElfError::Short));
        let mut bad = f.clone();
        bad[0] = 0;
        assert_eq!(Header::parse(&bad), Err(ElfError::BadMagic));
        let mut bad = f.clone();
        bad[4] = 1;
        assert_eq!(Header::parse(&bad), Err(ElfError::NotX86_64));
        let mut bad = f.clone();
        bad[54] = 32;
        assert_eq!(Header::parse(&bad), Err(ElfError::BadPhdrs));

        // Program headers past the end of the bytes given.
        let h = Header::parse(&f).unwrap();
        assert_eq!(Segments::read(&h, &f[..200]), Err(ElfError::BadPhdrs));

        let mut none = ehdr(ET_DYN, 0, 1);
        none.extend(phdr(PT_TLS, 0, 0, 0, 0, 1));
        let h = Header::parse(&none).unwrap();
        assert_eq!(Segments::read(&h, &none), Err(ElfError::NoLoad));

        let mut moved = ehdr(ET_DYN, 0, 1);
        moved.extend(phdr(PT_LOAD, 0x1000, 0x1000, 0x10, 0x10, 0x1000));
        let h = Header::parse(&moved).unwrap();
        assert_eq!(Segments::read(&h, &moved), Err(ElfError::HeaderNotLoaded));
        assert!(!ElfError::HeaderNotLoaded.describe().is_empty());
    }

    fn dynamic(entries: &[(u64, u64)]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|&(tag, value)| [tag.to_le_bytes(), value.to_le_bytes()])
            .flatten()
            .collect()
    }

    #[test]
    fn the_dynamic_section_names_the_relocation_table() {
        let table = dynamic(&[(DT_RELA, 0x318), (DT_RELASZ, 48), (DT_RELAENT, 24), (0, 0)]);
        assert_eq!(
            rela_table(&table),
            Ok(Some(RelaTable {
                vaddr: 0x318,
                size: 48
            }))
        );
        // Entries after DT_NULL are not read.
        assert_eq!(rela_table(&dynamic(&[(0, 0), (DT_RELA, 8)])), Ok(None));
        for bad in [
            dynamic(&[(DT_RELA, 0x318), (0, 0)]),
            dynamic(&[(DT_RELA, 0x318), (DT_RELASZ, 50)]),
            dynamic(&[(DT_RELA, 0x318), (DT_RELASZ, 48), (DT_RELAENT, 16)]),
        ] {
            assert_eq!(rela_table(&bad), Err(ElfError::BadDynamic));
        }
    }

    #[test]
    fn an_unapplied_relative_relocation_is_found() {
        let rela = |slot: u64, kind: u64, addend: u64| -> Vec<u8> {
            [slot, kind, addend]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        };
        let table = [
            rela(0x10, 8, 0x100),
            rela(0x18, 1, 0x5),
            rela(0x20, 8, 0x200),
        ]
        .concat();
        let bias = 0x20_0000;
        let memory = |applied_last: bool| {
            move |slot: u64| match slot {
                0x10 => Some(0x20_0100),
                0x20 if applied_last => Some(0x20_0200),
                0x20 => Some(0x200),
                _ => None,
            }
        };
        assert_eq!(first_unapplied(&table, bias, memory(true)), None);
        assert_eq!(
            first_unapplied(&table, bias, memory(false)),
            Some(Unapplied {
                slot: 0x20,
                got: Some(0x200),
                want: 0x20_0200
            })
        );
        assert_eq!(
            first_unapplied(&table, bias, |_| None).map(|u| u.got),
            Some(None)
        );
    }
}
