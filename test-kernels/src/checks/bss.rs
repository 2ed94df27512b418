//! Group `bss`: a 64 KiB zero-initialised static, which the loader must zero (the
//! file holds no bytes for it) and which must be writable memory.

use super::verdict::{check, fail};
use super::Context;
use crate::arch::probes::{bss_probe_first_nonzero, bss_probe_range, bss_probe_write_read};
use crate::emit;
use crate::report::{self, Group, Hex};

/// Checks the `.bss` probe: zero, inside the image, writable.
pub(super) fn run(ctx: &mut Context) {
    const G: Group = Group::Bss;
    let (start, end) = bss_probe_range();
    check(end <= ctx.boot_info.image_end, G, "bss-zeroed", &|s| {
        emit!(s, "probe ends at ", Hex(end), ", past the image")
    });
    if let Some((i, word)) = bss_probe_first_nonzero() {
        fail(G, "bss-zeroed", &|s| {
            emit!(s, Hex(start + 8 * i as u64), " holds ", Hex(word))
        });
    }
    if let Some(i) = bss_probe_write_read() {
        fail(G, "bss-writable", &|s| {
            emit!(s, Hex(start + 8 * i as u64), " did not keep a write")
        });
    }
    report::passed(&mut ctx.out, "bss");
}
