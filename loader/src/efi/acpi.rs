//! The ACPI RSDP under UEFI: checked, and placed where kernels 0.6–0.10 look.
//!
//! Those kernels find the RSDP only by scanning the first KiB of the EBDA (whose
//! segment the word at 0x40E gives, used when the address is above 0x400) and
//! then 0xE0000–0xFFFFF, 16 bytes at a time, and panic without one. Under UEFI
//! the RSDP is only in the configuration table (OVMF leaves the EBDA pointer 0).
//! So the loader copies it into a 1 KiB EBDA of its own at the top of usable low
//! memory, writes the segment to 0x40E and marks the KiB reserved in the kernel's
//! memory map (where a BIOS puts its EBDA). Kernels 0.11+ get its address in the
//! device tree as well.

use alloc::vec::Vec;

use crate::memory::Region;
use crate::wire::MapEntry;

use super::memory_map::{KIND_RESERVED, KIND_USABLE};

/// `"RSD PTR "`.
pub const SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// The ACPI 1.0 RSDP, which the first checksum covers.
pub const V1_LENGTH: usize = 20;
/// The ACPI 2.0 RSDP, which the extended checksum covers.
pub const V2_LENGTH: usize = 36;
/// Where the BIOS data area holds the EBDA's segment.
pub const EBDA_POINTER: u64 = 0x40e;
/// The EBDA window the kernels scan, and the size of the loader's EBDA.
pub const EBDA_SIZE: u64 = 1024;
/// Kernels take the EBDA pointer only when it points above this.
const EBDA_MINIMUM: u64 = 0x400;
/// The end of conventional low memory (the VGA window starts here).
const LOW_MEMORY_END: u64 = 0xa_0000;
/// Pages the loader's EBDA must stay clear of: page 0 (the BIOS data area with the
/// pointer) and the page SMP kernels copy their trampoline to.
const KEEP_CLEAR: [Region; 2] = [Region::new(0, 0x1000), Region::new(0x8000, 0x9000)];

/// A checked RSDP: its revision and how many bytes of it to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    pub revision: u8,
    pub length: usize,
}

fn sums_to_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b)) == 0
}

/// Checks the RSDP at the start of `bytes` (at least [`V2_LENGTH`] bytes of it, or
/// [`V1_LENGTH`] for revision 0) as kernels do: signature, the checksum over 20
/// bytes, and for revision 2 and later the extended checksum over its length.
pub fn check(bytes: &[u8]) -> Result<Rsdp, &'static str> {
    let v1 = bytes.get(..V1_LENGTH).ok_or("shorter than 20 bytes")?;
    if &v1[..8] != SIGNATURE {
        return Err("no \"RSD PTR \" signature");
    }
    if !sums_to_zero(v1) {
        return Err("its checksum is wrong");
    }
    let revision = v1[15];
    if revision < 2 {
        return Ok(Rsdp {
            revision,
            length: V1_LENGTH,
        });
    }
    let v2 = bytes
        .get(..V2_LENGTH)
        .ok_or("an ACPI 2.0 RSDP shorter than 36 bytes")?;
    let length = u32::from_le_bytes([v2[20], v2[21], v2[22], v2[23]]) as usize;
    if length != V2_LENGTH {
        return Err("an ACPI 2.0 RSDP whose length is not 36");
    }
    if !sums_to_zero(v2) {
        return Err("its extended checksum is wrong");
    }
    Ok(Rsdp { revision, length })
}

/// Where the loader's EBDA goes: the highest KiB of usable RAM that ends at or
/// below 640 KiB, KiB aligned, clear of page 0 and the SMP trampoline page; `None`
/// when low memory has no such KiB.
pub fn plan_ebda(map: &[MapEntry]) -> Option<Region> {
    map.iter()
        .filter(|e| e.kind == KIND_USABLE && e.start < LOW_MEMORY_END)
        .filter_map(|e| {
            let mut end = e.end.min(LOW_MEMORY_END) & !(EBDA_SIZE - 1);
            loop {
                let start = end.checked_sub(EBDA_SIZE)?;
                if start < e.start || start <= EBDA_MINIMUM {
                    return None;
                }
                let candidate = Region::new(start, end);
                match KEEP_CLEAR.iter().find(|k| k.overlaps(&candidate)) {
                    Some(clear) => end = clear.start & !(EBDA_SIZE - 1),
                    None => return Some(candidate),
                }
            }
        })
        .max_by_key(|r| r.start)
}

/// The segment the EBDA pointer holds for an EBDA at `ebda` (16-byte aligned, below
/// 1 MiB: [`plan_ebda`] gives such).
pub fn ebda_segment(ebda: Region) -> u16 {
    (ebda.start >> 4) as u16
}

/// The kernel's map with `reserved` (inside one usable entry) cut out of it and
/// listed as reserved.
pub fn reserve(map: &[MapEntry], reserved: Region) -> Vec<MapEntry> {
    let mut out = Vec::with_capacity(map.len() + 2);
    for entry in map {
        let inside = entry.kind == KIND_USABLE
            && entry.start <= reserved.start
            && reserved.end <= entry.end
            && !reserved.is_empty();
        if !inside {
            out.push(*entry);
            continue;
        }
        for (start, end, kind) in [
            (entry.start, reserved.start, KIND_USABLE),
            (reserved.start, reserved.end, KIND_RESERVED),
            (reserved.end, entry.end, KIND_USABLE),
        ] {
            if end > start {
                out.push(MapEntry { start, end, kind });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OVMF's ACPI 2.0 RSDP as seen on q35 (XSDT address filled in).
    fn rsdp_v2() -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(SIGNATURE);
        r.push(0); // checksum, below
        r.extend_from_slice(b"BOCHS ");
        r.push(2);
        r.extend_from_slice(&0x3f7_e014u32.to_le_bytes());
        r.extend_from_slice(&36u32.to_le_bytes());
        r.extend_from_slice(&0x3f7_d0e8u64.to_le_bytes());
        r.push(0); // extended checksum, below
        r.extend_from_slice(&[0; 3]);
        let sum = |b: &[u8]| 0u8.wrapping_sub(b.iter().fold(0u8, |s, &x| s.wrapping_add(x)));
        r[8] = sum(&r[..20]);
        r[32] = sum(&r[..36]);
        r
    }

    #[test]
    fn checks_the_rsdp_as_kernels_do() {
        let good = rsdp_v2();
        assert_eq!(
            check(&good),
            Ok(Rsdp {
                revision: 2,
                length: 36
            })
        );
        let mut v1 = good[..20].to_vec();
        v1[15] = 0;
        v1[8] = v1[8].wrapping_add(2);
        assert_eq!(
            check(&v1),
            Ok(Rsdp {
                revision: 0,
                length: 20
            })
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(check(&bad).unwrap_err().contains("signature"));
        let mut bad = good.clone();
        bad[9] ^= 1;
        assert!(check(&bad).unwrap_err().contains("its checksum"));
        let mut bad = good.clone();
        bad[25] ^= 1;
        assert!(check(&bad).unwrap_err().contains("extended"));
        assert!(check(&good[..30]).unwrap_err().contains("shorter than 36"));
        assert!(check(&good[..10]).is_err());
    }

    fn usable(start: u64, end: u64) -> MapEntry {
        MapEntry {
            start,
            end,
            kind: 1,
        }
    }

    #[test]
    fn the_ebda_goes_to_the_top_of_low_memory() {
        let ovmf = [usable(0, 0xa_0000), usable(0x10_0000, 0x80_0000)];
        let ebda = plan_ebda(&ovmf).unwrap();
        assert_eq!(ebda, Region::new(0x9_fc00, 0xa_0000));
        assert_eq!(ebda_segment(ebda), 0x9fc0);
        // An entry that ends mid-KiB gives the KiB below.
        assert_eq!(
            plan_ebda(&[usable(0x1000, 0x9_fe00)]).unwrap().start,
            0x9_f800
        );
        // The trampoline page and page 0 are kept clear.
        assert_eq!(
            plan_ebda(&[usable(0x1000, 0x9000)]).unwrap(),
            Region::new(0x7c00, 0x8000)
        );
        assert_eq!(plan_ebda(&[usable(0x8000, 0x9000)]), None);
        assert_eq!(plan_ebda(&[usable(0, 0x1000)]), None);
        // Only usable memory below 640 KiB counts.
        assert_eq!(plan_ebda(&[usable(0x10_0000, 0x80_0000)]), None);
        assert_eq!(
            plan_ebda(&[MapEntry {
                start: 0,
                end: 0xa_0000,
                kind: 2
            }]),
            None
        );
    }

    #[test]
    fn the_ebda_is_reserved_in_the_kernels_map() {
        let map = [usable(0, 0xa_0000), usable(0x10_0000, 0x80_0000)];
        let ebda = Region::new(0x9_fc00, 0xa_0000);
        assert_eq!(
            reserve(&map, ebda),
            [
                usable(0, 0x9_fc00),
                MapEntry {
                    start: 0x9_fc00,
                    end: 0xa_0000,
                    kind: 2
                },
                usable(0x10_0000, 0x80_0000),
            ]
        );
        let middle = Region::new(0x1000, 0x1400);
        assert_eq!(reserve(&map, middle).len(), 4);
    }
}
