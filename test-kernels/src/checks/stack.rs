//! Group `stack`: the 32 KiB boot stack (aligned, mapped, zeroed, below the image),
//! and at the end of the run how much of it the kernel itself used.
//!
//! The zero scan runs first thing, before any deep call could dirty the stack; its
//! result is checked in order with the other groups.

use super::verdict::{check, fail, require, unmapped};
use super::{Context, STACK_SIZE};
use crate::arch::cpu::stack_pointer;
use crate::arch::memory::first_nonzero_word;
use crate::emit;
use crate::paging::{self, SIZE_4K};
use crate::report::{self, Group, Hex};

/// How far below the current stack pointer the zero scan stops: room for the frames
/// that ran before it (serial and IDT set-up), debug builds included.
const STACK_SCAN_MARGIN: u64 = 4096;
/// Stack the kernel leaves unused at its deepest, so that it tests the loader's
/// stack rather than its own appetite.
const STACK_HEADROOM: u64 = 8192;

/// What the stack scan at entry found, before any deep call could dirty the stack.
pub(super) struct StackScan {
    /// End of the scanned part.
    end: u64,
    /// The first non-zero word (address, value), or the first unmapped address.
    result: Result<Option<(u64, u64)>, u64>,
}

/// Scans the part of the stack below the frames that have run so far; everything
/// else in the kernel runs after this.
pub(super) fn scan(low: u64) -> StackScan {
    let top = low.wrapping_add(STACK_SIZE);
    let end = stack_pointer().saturating_sub(STACK_SCAN_MARGIN).min(top) & !7;
    let start = (low + 7) & !7;
    let result = if start < end && end <= top {
        first_nonzero_word(start, end)
    } else {
        Ok(None)
    };
    StackScan { end, result }
}

/// Checks the stack the loader handed over, and what [`scan`] found in it.
pub(super) fn run(ctx: &mut Context, scan: &StackScan) {
    const G: Group = Group::Stack;
    let low = ctx.entry.stack_low;
    report::fact_range(&mut ctx.out, "stack", low, low.wrapping_add(STACK_SIZE));
    check(low.is_multiple_of(SIZE_4K), G, "stack-aligned", &|s| {
        emit!(s, "rsp at entry ", Hex(low), " is not 4 KiB aligned")
    });
    let top = low.saturating_add(STACK_SIZE);
    require(paging::check_identity(
        &ctx.tables,
        ctx.cr3,
        "stack-mapped",
        low,
        top,
        true,
    ));
    match scan.result {
        Ok(None) => {}
        Ok(Some((at, word))) => fail(G, "stack-zeroed", &|s| {
            emit!(s, Hex(at), " holds ", Hex(word))
        }),
        Err(va) => unmapped("stack-mapped", va),
    }
    check(scan.end > low + STACK_SIZE / 2, G, "stack-zeroed", &|s| {
        emit!(
            s,
            "only ",
            Hex(scan.end.saturating_sub(low)),
            " bytes could be scanned"
        )
    });
    check(
        top <= ctx.boot_info.image_start,
        G,
        "stack-below-image",
        &|s| {
            emit!(
                s,
                "stack ",
                Hex(low),
                " is not below the image at ",
                Hex(ctx.boot_info.image_start)
            )
        },
    );
    report::passed(&mut ctx.out, "stack");
}

/// The deepest the kernel's own stack went (the zeroed stack keeps the high-water
/// mark): printed, and checked against [`STACK_HEADROOM`].
pub(super) fn check_headroom(ctx: &mut Context) {
    let low = ctx.entry.stack_low;
    let top = low + STACK_SIZE;
    let deepest = match first_nonzero_word(low, top) {
        Ok(Some((at, _))) => at,
        _ => top,
    };
    let used = top - deepest;
    report::fact_hex(&mut ctx.out, "stack-used", used);
    check(
        used + STACK_HEADROOM <= STACK_SIZE,
        Group::Stack,
        "stack-headroom",
        &|s| {
            emit!(
                s,
                "the kernel itself used ",
                Hex(used),
                " of the 32 KiB stack"
            )
        },
    );
}
