//! Reading low memory the loader leaves unmapped, as Hermit kernels 0.6–0.10 do to
//! find the ACPI RSDP: they identity-map page 0, the EBDA and the BIOS area
//! themselves. Here the pages below 1 MiB are mapped read-only in the page table
//! that covers the first 2 MiB (the loader maps its image there with 4 KiB pages),
//! read, and unmapped again, so the layout the paging group checked is restored.

use crate::paging::{self, Tables, ADDR_MASK, HUGE, PRESENT};

use super::cpu::cr3;
use super::memory::IdentityTables;

/// The pages below 1 MiB.
const LOW_PAGES: usize = 256;

/// Runs `f` with `[0, 1 MiB)` readable, then unmaps what it mapped. `None` when
/// the first 2 MiB are not mapped through a table of 4 KiB pages (nowhere to put
/// the mappings).
pub fn with_low_memory<R>(f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    let cr3 = cr3();
    let tables = IdentityTables;
    let mut table = cr3 & ADDR_MASK;
    for level in [4u8, 3, 2] {
        let entry = tables.entry(table, 0);
        if entry & PRESENT == 0 || (level < 4 && entry & HUGE != 0) {
            return None;
        }
        table = entry & ADDR_MASK;
    }
    // SAFETY: `table` is the page table for the first 2 MiB, found from CR3; the
    // loader keeps its tables identity-mapped and writable. Only entries that are
    // not present are written (identity, read-only), the TLB is flushed by reloading
    // CR3, and they are cleared again before returning: nothing else runs meanwhile.
    unsafe {
        let entries = table as *mut u64;
        let mut added = [false; LOW_PAGES];
        for (page, added) in added.iter_mut().enumerate() {
            let entry = entries.add(page);
            if core::ptr::read_volatile(entry) & PRESENT == 0 {
                core::ptr::write_volatile(entry, (page as u64 * paging::SIZE_4K) | PRESENT);
                *added = true;
            }
        }
        core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack, preserves_flags));
        // The first 1 MiB as bytes, from address 0: a slice may not start at null,
        // so page 0 is passed from its second byte and the caller is told so.
        let low = core::slice::from_raw_parts(
            core::ptr::with_exposed_provenance::<u8>(1),
            LOW_PAGES * 4096 - 1,
        );
        let result = f(low);
        for (page, added) in added.iter().enumerate() {
            if *added {
                core::ptr::write_volatile(entries.add(page), 0);
            }
        }
        core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack, preserves_flags));
        Some(result)
    }
}
