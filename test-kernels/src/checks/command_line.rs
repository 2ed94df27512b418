//! Group `cmdline`: the command line in the boot info, byte for byte the MBI's
//! (file name included) but for the `-freq <MHz>` the loader inserts for a kernel of
//! 0.6–0.10 that was given none, and the application arguments a Hermit kernel would
//! take from it.

use super::verdict::{check, fail};
use super::{Context, Generation};
use crate::emit;
use crate::paging::SIZE_4K;
use crate::report::{self, Dec, Esc, Group, Hex};
use crate::{cmdline, mbi};

/// Longest command line read from the MBI.
const CMDLINE_MAX: u64 = 8192;

/// Reads the MBI's NUL-terminated command line, page by page so that each page is
/// found mapped before it is read.
fn mbi_cmdline(ctx: &Context, addr: u64) -> &'static [u8] {
    let mut page_end = (addr & !(SIZE_4K - 1)) + SIZE_4K;
    loop {
        let so_far = ctx.read("cmdline-mapped", addr, page_end - addr);
        if let Some(len) = mbi::c_str_len(so_far) {
            return &so_far[..len];
        }
        if page_end - addr >= CMDLINE_MAX {
            fail(Group::Cmdline, "cmdline-terminated", &|s| {
                emit!(
                    s,
                    "no NUL within ",
                    Dec(CMDLINE_MAX),
                    " bytes of ",
                    Hex(addr)
                )
            });
        }
        page_end += SIZE_4K;
    }
}

/// Whether one of the words of `line` is `word`.
fn words_contain(line: &[u8], word: &[u8]) -> bool {
    cmdline::words(line).any(|w| w == word)
}

/// Checks the command line in the boot info against the MBI's and prints it with
/// the application arguments; returns it.
pub(super) fn run(ctx: &mut Context, header: &mbi::Header) -> &'static [u8] {
    const G: Group = Group::Cmdline;
    let bi = ctx.boot_info;
    let (ptr, len) = (bi.cmdline_ptr, bi.cmdline_len);
    report::fact_hex(&mut ctx.out, "cmdline-addr", ptr);
    check(ptr != 0 || len == 0, G, "cmdline-pointer", &|s| {
        emit!(s, "null pointer with length ", Dec(len))
    });
    let ours = ctx.read("cmdline-mapped", ptr, len);
    let out = &mut ctx.out;
    report::fact_bytes(out, "cmdline", ours);
    emit!(out, "tk: args=");
    for (i, word) in cmdline::app_args(ours).enumerate() {
        emit!(out, if i == 0 { "" } else { " " }, Esc(word));
    }
    emit!(out, "\n");

    let flags = u64::from(header.flags);
    let Some(mbi_addr) = header.cmdline() else {
        fail(G, "mbi-cmdline-flag", &|s| {
            emit!(s, "MBI flags ", Hex(flags), " lack bit 2")
        })
    };
    let theirs = mbi_cmdline(ctx, mbi_addr.into());
    // The loader hands kernels of 0.6-0.10 their TSC frequency by inserting `-freq`
    // after the file name when QEMU's command line has none; nothing else changes.
    let inserted = cmdline::inserted_freq(ours, theirs);
    let legacy = ctx.spec.generation == Generation::Older;
    let no_freq_given = !words_contain(theirs, b"-freq");
    check(
        ours == theirs || (legacy && no_freq_given && inserted.is_some()),
        G,
        "cmdline-matches-mbi",
        &|s| {
            emit!(
                s,
                "boot info has ",
                Dec(len),
                " bytes, the MBI's is \"",
                Esc(theirs),
                "\""
            )
        },
    );
    if let Some(mhz) = inserted {
        report::fact_dec(&mut ctx.out, "freq-inserted", u64::from(mhz));
    }
    check(
        len == 0 || ptr + len <= bi.image_start,
        G,
        "cmdline-below-image",
        &|s| emit!(s, "command line at ", Hex(ptr), " is not below the image"),
    );
    report::passed(&mut ctx.out, "cmdline");
    ours
}
