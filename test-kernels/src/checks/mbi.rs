//! The Multiboot information's header, which the command-line and memory groups
//! read: its checks (`mbi-below-image`, `mbi-header`) belong to group `memory`.

use super::verdict::{check, fail};
use super::Context;
use crate::emit;
use crate::mbi;
use crate::report::{self, Group, Hex};

/// Reads the MBI header the boot info points at (below the image, mapped).
pub(super) fn read_header(ctx: &mut Context) -> mbi::Header {
    const G: Group = Group::Memory;
    let bi = &ctx.boot_info;
    let len = mbi::HEADER_LEN as u64;
    check(bi.mbi + len <= bi.image_start, G, "mbi-below-image", &|s| {
        emit!(s, "MBI ", Hex(bi.mbi), " is not below the image")
    });
    let bytes = ctx.read("mbi-mapped", bi.mbi, len);
    let header = mbi::Header::parse(bytes)
        .unwrap_or_else(|| fail(G, "mbi-header", &|s| emit!(s, "short read")));
    report::fact_hex(&mut ctx.out, "mbi-flags", header.flags.into());
    header
}
