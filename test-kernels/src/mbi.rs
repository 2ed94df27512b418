//! Decoding the parts of the Multiboot 1 information structure (MBI) the kernels
//! compare the boot info against: the flags, the command line pointer and the memory
//! map.

#![forbid(unsafe_code)]

/// MBI flag: `cmdline` (offset 16) is valid.
pub const FLAG_CMDLINE: u32 = 1 << 2;
/// MBI flag: `mmap_length`/`mmap_addr` (offsets 44, 48) are valid.
pub const FLAG_MMAP: u32 = 1 << 6;

/// Bytes of the MBI the kernels read: up to and including `mmap_addr`.
pub const HEADER_LEN: usize = 52;

/// Memory map entry type of usable RAM.
pub const TYPE_USABLE: u32 = 1;

/// The fields of the MBI header the kernels use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Which fields are valid.
    pub flags: u32,
    /// Physical address of the NUL-terminated command line.
    pub cmdline: u32,
    /// Length in bytes of the memory map buffer.
    pub mmap_length: u32,
    /// Physical address of the memory map buffer.
    pub mmap_addr: u32,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let lo = u32_at(bytes, at)?;
    let hi = u32_at(bytes, at + 4)?;
    Some(u64::from(lo) | (u64::from(hi) << 32))
}

impl Header {
    /// Decodes the header from at least [`HEADER_LEN`] bytes.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        if bytes.len() < HEADER_LEN {
            return None;
        }
        Some(Header {
            flags: u32_at(bytes, 0)?,
            cmdline: u32_at(bytes, 16)?,
            mmap_length: u32_at(bytes, 44)?,
            mmap_addr: u32_at(bytes, 48)?,
        })
    }

    /// The command line address, if the flag says it is valid.
    pub fn cmdline(&self) -> Option<u32> {
        (self.flags & FLAG_CMDLINE != 0).then_some(self.cmdline)
    }

    /// The memory map buffer (address, length), if the flag says it is valid.
    pub fn mmap(&self) -> Option<(u32, u32)> {
        (self.flags & FLAG_MMAP != 0).then_some((self.mmap_addr, self.mmap_length))
    }
}

/// One memory map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// Entry type (1 = usable RAM).
    pub kind: u32,
}

impl Region {
    /// One past the last byte (saturating, so a bogus entry cannot wrap).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }

    /// Whether this is usable RAM.
    pub fn usable(&self) -> bool {
        self.kind == TYPE_USABLE
    }

    /// Whether `[start, end)` lies inside this region.
    pub fn contains_range(&self, start: u64, end: u64) -> bool {
        self.base <= start && start <= end && end <= self.end()
    }
}

/// Why the memory map could not be read to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmapError {
    /// An entry's `size` field is smaller than the 20 bytes of base, length and type.
    EntryTooSmall {
        /// Offset of the entry in the buffer.
        offset: usize,
        /// Its size field.
        size: u32,
    },
    /// An entry runs past the end of the buffer.
    Truncated {
        /// Offset of the entry in the buffer.
        offset: usize,
    },
}

/// Iterates over the entries of a memory map buffer. Each entry is
/// `{size u32, base u64, len u64, type u32}` and the next one starts `size + 4` bytes
/// later. After an error the iterator ends.
pub struct Entries<'a> {
    bytes: &'a [u8],
    offset: usize,
    done: bool,
}

/// Reads the memory map from its buffer.
pub fn entries(bytes: &[u8]) -> Entries<'_> {
    Entries {
        bytes,
        offset: 0,
        done: false,
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Region, MmapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset >= self.bytes.len() {
            return None;
        }
        let at = self.offset;
        let entry = (|| {
            let size = u32_at(self.bytes, at).ok_or(MmapError::Truncated { offset: at })?;
            if size < 20 {
                return Err(MmapError::EntryTooSmall { offset: at, size });
            }
            let next = at
                .checked_add(4 + size as usize)
                .filter(|&n| n <= self.bytes.len())
                .ok_or(MmapError::Truncated { offset: at })?;
            let region = Region {
                base: u64_at(self.bytes, at + 4).ok_or(MmapError::Truncated { offset: at })?,
                len: u64_at(self.bytes, at + 12).ok_or(MmapError::Truncated { offset: at })?,
                kind: u32_at(self.bytes, at + 20).ok_or(MmapError::Truncated { offset: at })?,
            };
            Ok((region, next))
        })();
        match entry {
            Ok((region, next)) => {
                self.offset = next;
                Some(Ok(region))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The length of a NUL-terminated string at the start of `bytes`, if the NUL is there.
pub fn c_str_len(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn entry(size: u32, base: u64, len: u64, kind: u32) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&base.to_le_bytes());
        e.extend_from_slice(&len.to_le_bytes());
        e.extend_from_slice(&kind.to_le_bytes());
        // Bigger size fields leave room for future fields: pad to honour them.
        e.resize(4 + size as usize, 0xee);
        e
    }

    /// The memory map QEMU builds for 128 MiB.
    fn qemu_map() -> Vec<u8> {
        let mut m = Vec::new();
        m.extend(entry(20, 0, 0x9fc00, 1));
        m.extend(entry(20, 0x9fc00, 0x400, 2));
        m.extend(entry(20, 0xf0000, 0x10000, 2));
        m.extend(entry(20, 0x10_0000, 0x7ee_0000, 1));
        m.extend(entry(20, 0x7fe_0000, 0x2_0000, 2));
        m.extend(entry(20, 0xfffc_0000, 0x4_0000, 2));
        m
    }

    #[test]
    fn header_fields_and_flags() {
        let mut raw = [0u8; HEADER_LEN];
        raw[0..4].copy_from_slice(&(FLAG_CMDLINE | FLAG_MMAP | 1).to_le_bytes());
        raw[16..20].copy_from_slice(&0x12_3000u32.to_le_bytes());
        raw[44..48].copy_from_slice(&0x90u32.to_le_bytes());
        raw[48..52].copy_from_slice(&0x9000u32.to_le_bytes());
        let h = Header::parse(&raw).unwrap();
        assert_eq!(h.cmdline(), Some(0x12_3000));
        assert_eq!(h.mmap(), Some((0x9000, 0x90)));
        let h = Header { flags: 0, ..h };
        assert_eq!(h.cmdline(), None);
        assert_eq!(h.mmap(), None);
        assert!(Header::parse(&raw[..51]).is_none());
    }

    #[test]
    fn qemu_memory_map() {
        let map = qemu_map();
        let regions: Vec<Region> = entries(&map).map(Result::unwrap).collect();
        assert_eq!(regions.len(), 6);
        let usable: Vec<(u64, u64)> = regions
            .iter()
            .filter(|r| r.usable())
            .map(|r| (r.base, r.end()))
            .collect();
        assert_eq!(usable, [(0, 0x9fc00), (0x10_0000, 0x7fe_0000)]);
        assert!(regions[3].contains_range(0x20_0000, 0x40_0000));
        assert!(!regions[3].contains_range(0x7f0_0000, 0x800_0000));
        assert!(!regions[3].contains_range(0x30_0000, 0x20_0000));
    }

    #[test]
    fn entries_honour_the_size_field() {
        let mut map = entry(28, 0x1000, 0x2000, 1);
        map.extend(entry(20, 0x5000, 0x1000, 3));
        let regions: Vec<Region> = entries(&map).map(Result::unwrap).collect();
        assert_eq!(
            regions[0],
            Region {
                base: 0x1000,
                len: 0x2000,
                kind: 1
            }
        );
        assert_eq!(
            regions[1],
            Region {
                base: 0x5000,
                len: 0x1000,
                kind: 3
            }
        );
    }

    #[test]
    fn malformed_maps_end_with_an_error() {
        let mut map = entry(20, 0, 0x1000, 1);
        map.extend(entry(20, 0x1000, 0x1000, 1));
        let cut = &map[..map.len() - 1];
        let got: Vec<_> = entries(cut).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], Err(MmapError::Truncated { offset: 24 }));

        let mut small = entry(20, 0, 0x1000, 1);
        small[0..4].copy_from_slice(&8u32.to_le_bytes());
        let got: Vec<_> = entries(&small).collect();
        assert_eq!(got, [Err(MmapError::EntryTooSmall { offset: 0, size: 8 })]);

        assert_eq!(entries(&[]).count(), 0);
    }

    #[test]
    fn c_strings() {
        assert_eq!(c_str_len(b"loader -- a\0junk"), Some(11));
        assert_eq!(c_str_len(b"\0"), Some(0));
        assert_eq!(c_str_len(b"no end"), None);
    }
}
