//! Group `bulk` (big-dyn only): the kernel's 576 KiB of data arrived word for word,
//! and each of the 2304 references into it was relocated to where it should point
//! (see [`crate::bulk`]). Failures count as the `image` group (the data) and the
//! `relocation` group (the references).

use super::verdict::fail;
use super::Context;
use crate::arch::memory::volatile_load;
use crate::bulk::{self, BULK_POINTERS, BULK_WORDS};
use crate::emit;
use crate::report::{self, Dec, Group, Hex};

/// Checks every word of the bulk data and every reference in the table. The loads
/// are volatile, so the compiler cannot answer them from what it put in the file.
pub fn run(ctx: &mut Context) {
    let base = BULK_WORDS.as_ptr() as u64;
    let end = base + core::mem::size_of_val(&BULK_WORDS) as u64;
    report::fact_range(&mut ctx.out, "bulk", base, end);
    emit!(
        &mut ctx.out,
        "tk: bulk-pointers=",
        Dec(BULK_POINTERS.len() as u64),
        "\n"
    );

    let words = BULK_WORDS.iter().map(volatile_load);
    if let Some((i, got)) = bulk::first_wrong_word(words) {
        fail(Group::Image, "bulk-data-copied", &|s| {
            emit!(s, "word ", Dec(i as u64), " at ", Hex(base + 8 * i as u64));
            emit!(s, " holds ", Hex(got), ", want ", Hex(bulk::word(i)))
        });
    }

    let table = BULK_POINTERS.iter().map(|entry| {
        let target = volatile_load(entry);
        (target as *const u64 as u64, volatile_load(target))
    });
    if let Some((i, got)) = bulk::first_wrong_pointer(base, table) {
        let want = base + (i * bulk::STRIDE * 8) as u64;
        fail(Group::Relocation, "relocated-bulk-table", &|s| {
            emit!(s, "entry ", Dec(i as u64), " points at ", Hex(got));
            emit!(
                s,
                ", want ",
                Hex(want),
                " holding ",
                Hex(bulk::word(i * bulk::STRIDE))
            )
        });
    }
    report::passed(&mut ctx.out, "bulk");
}
