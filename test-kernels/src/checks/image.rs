//! Group `image`: the kernel image in memory against the kernel's own ELF header
//! and program headers: placement, range, entry point, `.data` copied, and the
//! kernel's own code and statics inside the range the loader reported.

use super::verdict::{check, check_eq, fail, require, unmapped};
use super::{align_up, Context, Kind, Spec, EXEC_BASE};
use crate::arch::entry::EntryState;
use crate::arch::memory::mapped_bytes;
use crate::arch::probes::{bss_probe_range, data_probe, DATA_PROBE_VALUES};
use crate::arch::symbols::{ehdr_address, end_address, entry_address};
use crate::arch::tls::tls_area_range;
use crate::elf::{self, Segments};
use crate::emit;
use crate::paging::{self, SIZE_2M, SIZE_4K};
use crate::report::{self, Group, Hex};

/// This kernel's own program headers and load bias.
pub(super) struct Own {
    /// The kernel's program headers, as the loader saw them in the file.
    pub(super) segments: Segments,
    /// Run-time address minus link-time address.
    pub(super) bias: u64,
}

/// Finds the kernel's own ELF header where the boot info says the image starts and
/// checks the image against it.
pub(super) fn run(ctx: &mut Context) -> Own {
    const G: Group = Group::Image;
    let (start, end) = (ctx.boot_info.image_start, ctx.boot_info.image_end);
    require(paging::check_identity(
        &ctx.tables,
        ctx.cr3,
        "image-mapped",
        start,
        end,
        true,
    ));

    let ehdr = ehdr_address();
    check_eq(G, "image-start", "image start", start, ehdr);
    let header_bytes =
        mapped_bytes(ehdr, elf::EHDR_SIZE as u64).unwrap_or_else(|va| unmapped("image-mapped", va));
    let header = elf::Header::parse(header_bytes).unwrap_or_else(|e| {
        fail(G, "elf-header", &|s| {
            emit!(s, "at ", Hex(ehdr), ": ", e.describe())
        })
    });
    report::fact_hex(&mut ctx.out, "osabi", header.osabi.into());
    let want_type = match ctx.spec.kind {
        Kind::Dyn => elf::ET_DYN,
        Kind::Exec => elf::ET_EXEC,
    };
    check_eq(
        G,
        "elf-type",
        "e_type",
        header.e_type.into(),
        want_type.into(),
    );
    let phdrs_end = header.phdrs_end().unwrap_or(u64::MAX);
    let phdr_bytes =
        mapped_bytes(ehdr, phdrs_end).unwrap_or_else(|va| unmapped("image-mapped", va));
    let segments = Segments::read(&header, phdr_bytes).unwrap_or_else(|e| {
        fail(G, "elf-header", &|s| {
            emit!(s, "program headers: ", e.describe())
        })
    });
    let bias = segments.bias(ehdr);
    report::fact_hex(&mut ctx.out, "bias", bias);

    match ctx.spec.kind {
        Kind::Dyn => check(
            bias != 0 && start.is_multiple_of(SIZE_2M),
            G,
            "image-placement",
            &|s| {
                emit!(
                    s,
                    "ET_DYN image at ",
                    Hex(start),
                    " is not at a non-zero 2 MiB boundary"
                )
            },
        ),
        Kind::Exec => {
            check_eq(
                G,
                "image-placement",
                "ET_EXEC image start",
                start,
                EXEC_BASE,
            );
            check_eq(G, "image-placement", "ET_EXEC load bias", bias, 0);
        }
    }

    // hermit-entry reports [first PT_LOAD, end of the last PT_LOAD); a loader that
    // rounds the end up to a page is accepted too.
    let (want_start, want_end) = segments.image_range(bias);
    check_eq(G, "image-range", "image start", start, want_start);
    check(
        end >= want_end && end <= align_up(want_end, SIZE_4K),
        G,
        "image-range",
        &|s| emit!(s, "image end ", Hex(end), ", want ", Hex(want_end)),
    );
    own_addresses_inside(start, end);
    let entry = header.entry.wrapping_add(bias);
    check_eq(G, "entry-point", "e_entry + bias", entry, entry_address());

    let (at, data) = data_probe();
    check(data == DATA_PROBE_VALUES, G, "data-copied", &|s| {
        emit!(
            s,
            ".data probe at ",
            Hex(at),
            " reads ",
            Hex(data[0]),
            " ",
            Hex(data[1]),
            " ..."
        )
    });
    report::passed(&mut ctx.out, "image");
    Own { segments, bias }
}

/// This kernel's code and statics lie inside the image range the loader reported.
fn own_addresses_inside(start: u64, end: u64) {
    let (bss_start, bss_end) = bss_probe_range();
    let (tls_area, _) = tls_area_range();
    let kernel_start = super::start as fn(&'static Spec, EntryState) -> ! as usize as u64;
    let own = [
        ("_start", entry_address()),
        ("checks::start", kernel_start),
        (".data probe", data_probe().0),
        (".bss probe", bss_start),
        (".bss probe end", bss_end - 1),
        ("TLS area", tls_area),
        ("_end", end_address() - 1),
    ];
    for (what, a) in own {
        check(
            a >= start && a < end,
            Group::Image,
            "own-code-in-image",
            &|s| {
                emit!(
                    s,
                    what,
                    " at ",
                    Hex(a),
                    " is outside ",
                    Hex(start),
                    "-",
                    Hex(end)
                )
            },
        );
    }
}
