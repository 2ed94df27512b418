//! Group `acpi`: the ACPI RSDP where Hermit kernels 0.6–0.10 look for it, the EBDA
//! (segment at 0x40E) and then 0xE0000–0xFFFFF, found as they find it (signature,
//! checksums, 16-byte steps; see [`crate::acpi`]). Those kernels panic without one,
//! and under UEFI no firmware puts it there: the loader must. Runs after the paging
//! group, since it maps low memory for the scan (and unmaps it again).

use super::verdict::fail;
use super::Context;
use crate::acpi::{self, BIOS_AREA, EBDA_POINTER, EBDA_WINDOW};
use crate::arch::low_memory::with_low_memory;
use crate::emit;
use crate::report::{self, Group, Hex};

/// Scans low memory for the RSDP and reports where it was found.
pub(super) fn run(ctx: &mut Context) {
    const G: Group = Group::Acpi;
    // `low` starts at address 1 (a slice may not start at null).
    let scan = with_low_memory(|low| {
        let at =
            |address: u64, len: u64| &low[(address - 1) as usize..(address - 1 + len) as usize];
        let pointer =
            u16::from_le_bytes([low[EBDA_POINTER as usize - 1], low[EBDA_POINTER as usize]]);
        let window = acpi::ebda(pointer)
            .filter(|&ebda| ebda + EBDA_WINDOW <= BIOS_AREA.1)
            .map(|ebda| (ebda, at(ebda, EBDA_WINDOW)));
        let bios = at(BIOS_AREA.0, BIOS_AREA.1 - BIOS_AREA.0 - 1);
        (pointer, acpi::find(window, bios))
    });
    let Some((pointer, found)) = scan else {
        fail(G, "low-memory-mappable", &|s| {
            emit!(
                s,
                "the first 2 MiB are not mapped through a table of 4 KiB pages"
            )
        })
    };
    let Some(found) = found else {
        fail(G, "rsdp-found", &|s| {
            emit!(
                s,
                "no valid RSDP in the EBDA (segment ",
                Hex(u64::from(pointer)),
                " at 0x40e) nor in 0xe0000-0xfffff: kernels 0.6-0.10 panic"
            )
        })
    };
    let out = &mut ctx.out;
    report::fact_hex(out, "rsdp", found.address);
    report::fact_bytes(out, "rsdp-source", found.source.as_bytes());
    report::fact_hex(out, "rsdp-revision", u64::from(found.revision));
    report::passed(out, "acpi");
}
