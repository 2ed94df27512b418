//! Group `paging`: the live page tables. Every kernel needs page 0, the EBDA and
//! the BIOS area unmapped and no large page over the SMP trampoline; the newer
//! generation (0.11+) needs every table identity-mapped and no 1 GiB pages, the older
//! one (0.6–0.10) the recursive `PML4[511]` and nothing mapped above the image.
//! (The `*-mapped` checks of the other groups belong to this group too.)

use super::cpu::EFER_NXE;
use super::memory::Regions;
use super::verdict::{check, require, unmapped};
use super::{align_up, Context, Generation};
use crate::arch::cpu::{rdmsr, MSR_EFER};
use crate::arch::memory::{mapped_u64, IdentityTables};
use crate::emit;
use crate::paging::{self, Tables, SIZE_2M, SIZE_4K};
use crate::report::{self, Dec, Group, Hex};

/// The EBDA is unmapped, so its segment cannot be read from the BDA: take the end of
/// the usable region that starts at 0 (QEMU: 0x9fc00) as the EBDA's start.
fn ebda_page(regions: &Regions) -> u64 {
    regions
        .as_slice()
        .iter()
        .find(|&&(s, e)| s == 0 && e > 0 && e < 0xa_0000)
        .map_or(0x9_f000, |&(_, e)| e & !(SIZE_4K - 1))
}

/// Surveys the live page tables, prints what they map and checks the rules of the
/// kernel's generation.
pub(super) fn run(ctx: &mut Context, regions: &Regions) {
    let (t, cr3) = (&ctx.tables, ctx.cr3);
    let nxe = rdmsr(MSR_EFER) & EFER_NXE != 0;
    let survey = paging::survey(t, cr3);
    let out = &mut ctx.out;
    report::fact_hex(out, "cr3", cr3);
    emit!(
        out,
        "tk: page-tables=",
        Dec(survey.tables),
        " pages-4k=",
        Dec(survey.pages[0])
    );
    emit!(
        out,
        " pages-2m=",
        Dec(survey.pages[1]),
        " pages-1g=",
        Dec(survey.pages[2]),
        "\n"
    );
    let newer = ctx.spec.generation == Generation::Newer;
    require(paging::check_survey(&survey, nxe, newer, newer));

    require(paging::check_unmapped(
        t,
        cr3,
        "page-0-unmapped",
        0,
        SIZE_4K,
    ));
    require(paging::check_unmapped(
        t,
        cr3,
        "ebda-unmapped",
        0x9_f000,
        0xa_0000,
    ));
    let ebda = ebda_page(regions);
    require(paging::check_unmapped(
        t,
        cr3,
        "ebda-unmapped",
        ebda,
        ebda + SIZE_4K,
    ));
    require(paging::check_unmapped(
        t,
        cr3,
        "bios-area-unmapped",
        0xe_0000,
        0x10_0000,
    ));
    require(paging::check_no_large_page_at(
        t,
        cr3,
        "smp-trampoline-4k",
        0x8000,
    ));
    if ctx.spec.generation == Generation::Older {
        recursive_view(t, cr3);
        let above = align_up(ctx.boot_info.image_end, SIZE_2M);
        let end = paging::LOWER_HALF_END;
        require(paging::check_unmapped(
            t,
            cr3,
            "nothing-above-image",
            above,
            end,
        ));
    }
    report::passed(&mut ctx.out, "paging");
}

/// `PML4[511]` points at the PML4, and reading through 0xffff_ffff_ffff_f000 shows it.
fn recursive_view(t: &IdentityTables, cr3: u64) {
    const G: Group = Group::Paging;
    require(paging::check_recursive_entry(t, cr3));
    let root = cr3 & paging::ADDR_MASK;
    for i in 0..512 {
        let got = mapped_u64(paging::RECURSIVE_PML4 + 8 * i as u64)
            .unwrap_or_else(|va| unmapped("recursive-read", va));
        let want = t.entry(root, i);
        check(got == want, G, "recursive-read", &|s| {
            emit!(s, "entry ", Dec(i as u64), " reads ", Hex(got));
            emit!(
                s,
                " through 0xfffffffffffff000, ",
                Hex(want),
                " in the PML4"
            )
        });
    }
}
