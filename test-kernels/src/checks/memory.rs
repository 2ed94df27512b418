//! Group `memory`: the MBI's memory map (flag, well-formed entries, at least one
//! usable region) and the image inside usable RAM.

use super::verdict::{check, fail};
use super::Context;
use crate::emit;
use crate::mbi;
use crate::report::{self, Dec, Group, Hex};

/// Most usable memory regions compared.
pub(super) const MAX_REGIONS: usize = 32;

/// The usable regions of the MBI memory map, as (start, end).
pub(super) struct Regions {
    list: [(u64, u64); MAX_REGIONS],
    len: usize,
}

impl Regions {
    /// The regions found, in MBI order.
    pub(super) fn as_slice(&self) -> &[(u64, u64)] {
        &self.list[..self.len]
    }
}

/// Reads the MBI memory map, prints its usable regions and checks that the image
/// lies in one of them; returns them.
pub(super) fn run(ctx: &mut Context, header: &mbi::Header) -> Regions {
    const G: Group = Group::Memory;
    let flags = u64::from(header.flags);
    let Some((addr, len)) = header.mmap() else {
        fail(G, "mmap-flag", &|s| {
            emit!(s, "MBI flags ", Hex(flags), " lack bit 6")
        })
    };
    let bytes = ctx.read("mmap-mapped", addr.into(), len.into());
    let mut regions = Regions {
        list: [(0, 0); MAX_REGIONS],
        len: 0,
    };
    for entry in mbi::entries(bytes) {
        let region = entry.unwrap_or_else(|e| {
            let at = match e {
                mbi::MmapError::EntryTooSmall { offset, .. }
                | mbi::MmapError::Truncated { offset } => offset as u64,
            };
            fail(G, "mmap-entries", &|s| {
                emit!(s, "malformed entry at offset ", Dec(at))
            })
        });
        if !region.usable() {
            continue;
        }
        report::fact_range(&mut ctx.out, "mem", region.base, region.end());
        check(regions.len < MAX_REGIONS, G, "mmap-entries", &|s| {
            emit!(s, "more than ", Dec(MAX_REGIONS as u64), " usable regions")
        });
        regions.list[regions.len] = (region.base, region.end());
        regions.len += 1;
    }
    check(regions.len > 0, G, "mmap-usable", &|s| {
        emit!(s, "no usable region")
    });
    let (start, end) = (ctx.boot_info.image_start, ctx.boot_info.image_end);
    let fits = regions
        .as_slice()
        .iter()
        .any(|&(s, e)| s <= start && end <= e);
    check(fits, G, "image-in-usable-ram", &|s| {
        emit!(
            s,
            "image ",
            Hex(start),
            "-",
            Hex(end),
            " is not inside one usable region"
        )
    });
    report::passed(&mut ctx.out, "memory");
    regions
}
