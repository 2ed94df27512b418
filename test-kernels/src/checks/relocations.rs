//! Group `relocation`: statics that hold addresses. In the static PIE these are
//! `R_X86_64_RELATIVE` slots the loader must fill with base + addend; reading them
//! with a volatile load and comparing with addresses taken PC-relative shows whether
//! it did. (The entry stub has already checked one slot before any call:
//! `relocated-early`.) Those slots are a handful of the hundreds a kernel has, so
//! the group also checks every relative relocation of the kernel's own `DT_RELA`
//! table (`relocated-all`): a loader that left out any one is caught.

use super::verdict::{check, check_eq, fail, unmapped};
use crate::arch::memory::{mapped_bytes, volatile_load};
use crate::arch::serial::Serial;
use crate::arch::symbols::{ehdr_address, end_address};
use crate::elf::{self, Header, Segments};
use crate::emit;
use crate::report::{self, Dec, Group, Hex};

static RELOC_TARGET: u32 = 0x5eed_0001;
static RELOC_POINTER: &u32 = &RELOC_TARGET;
static RELOC_BYTES: [u8; 15] = *b"relocated slice";
static RELOC_SLICE: &[u8] = &RELOC_BYTES;

fn reloc_a() -> u32 {
    0xa
}
fn reloc_b() -> u32 {
    0xb
}
fn reloc_c() -> u32 {
    0xc
}

static RELOC_FUNCTIONS: [fn() -> u32; 3] = [reloc_a, reloc_b, reloc_c];

/// Runs before the boot info is read, and before anything follows a relocated
/// pointer.
pub(super) fn run(out: &mut Serial) {
    const G: Group = Group::Relocation;
    let pointer = volatile_load(&RELOC_POINTER) as *const u32 as u64;
    let want = &RELOC_TARGET as *const u32 as u64;
    check_eq(G, "relocated-pointer", "pointer", pointer, want);

    // A fat pointer: the address is relocated, the length is not.
    let slice = volatile_load(&RELOC_SLICE);
    let (got, want) = (slice.as_ptr() as u64, RELOC_BYTES.as_ptr() as u64);
    check_eq(G, "relocated-slice", "slice pointer", got, want);
    check_eq(G, "relocated-slice", "slice length", slice.len() as u64, 15);

    let table = volatile_load(&RELOC_FUNCTIONS);
    let want: [fn() -> u32; 3] = [reloc_a, reloc_b, reloc_c];
    for (i, (got, want)) in table.iter().zip(want).enumerate() {
        let (got, want) = (*got as usize as u64, want as usize as u64);
        check(got == want, G, "relocated-fn-table", &|s| {
            emit!(
                s,
                "entry ",
                Dec(i as u64),
                " is ",
                Hex(got),
                ", want ",
                Hex(want)
            )
        });
    }
    // Calling through the table only after the addresses were found right.
    let results = [table[0](), table[1](), table[2]()];
    check(results == [0xa, 0xb, 0xc], G, "relocated-fn-table", &|s| {
        emit!(s, "calls returned wrong values")
    });
    all_applied();
    report::passed(out, "relocation");
}

/// Every `R_X86_64_RELATIVE` slot of the kernel's own `DT_RELA` table holds load
/// bias + addend. The table, the dynamic section and the slots are read in the
/// image as loaded (`__ehdr_start` to `_end`); an executable has no table.
fn all_applied() {
    const G: Group = Group::Relocation;
    let bad = |e: elf::ElfError| -> ! {
        fail(G, "relocated-all", &|s| emit!(s, "own ELF: ", e.describe()))
    };
    let start = ehdr_address();
    let image = mapped_bytes(start, end_address() - start)
        .unwrap_or_else(|va| unmapped("image-mapped", va));
    let header = Header::parse(image).unwrap_or_else(|e| bad(e));
    let segments = Segments::read(&header, image).unwrap_or_else(|e| bad(e));
    let Some(dynamic) = segments.dynamic else {
        return;
    };
    // The image starts with the first PT_LOAD, at its link-time address + bias.
    let base = segments.first_load.vaddr;
    let at = |vaddr: u64, len: u64| {
        let from = usize::try_from(vaddr.checked_sub(base)?).ok()?;
        image.get(from..from.checked_add(usize::try_from(len).ok()?)?)
    };
    let dynamic_bytes =
        at(dynamic.vaddr, dynamic.filesz).unwrap_or_else(|| bad(elf::ElfError::BadDynamic));
    let Some(table) = elf::rela_table(dynamic_bytes).unwrap_or_else(|e| bad(e)) else {
        return;
    };
    let table = at(table.vaddr, table.size).unwrap_or_else(|| bad(elf::ElfError::BadDynamic));
    let read_slot =
        |vaddr| at(vaddr, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    let unapplied = elf::first_unapplied(table, segments.bias(start), read_slot);
    if let Some(u) = unapplied {
        fail(G, "relocated-all", &|s| {
            emit!(s, "the slot at ", Hex(u.slot), " (+ bias) holds ");
            match u.got {
                Some(got) => emit!(s, Hex(got)),
                None => emit!(s, "nothing: it lies outside the image"),
            }
            emit!(s, ", want ", Hex(u.want))
        });
    }
}
