//! Group `cmdline`: the command line in the boot info, byte for byte the MBI's
//! (file name included), and the application arguments a Hermit kernel would take
//! from it.

use super::verdict::{check, fail};
use super::Context;
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
    check(ours == theirs, G, "cmdline-matches-mbi", &|s| {
        emit!(
            s,
            "boot info has ",
            Dec(len),
            " bytes, the MBI's is \"",
            Esc(theirs),
            "\""
        )
    });
    check(
        len == 0 || ptr + len <= bi.image_start,
        G,
        "cmdline-below-image",
        &|s| emit!(s, "command line at ", Hex(ptr), " is not below the image"),
    );
    report::passed(&mut ctx.out, "cmdline");
    ours
}
