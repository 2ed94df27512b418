//! Group `relocation`: statics that hold addresses. In the static PIE these are
//! `R_X86_64_RELATIVE` slots the loader must fill with base + addend; reading them
//! with a volatile load and comparing with addresses taken PC-relative shows whether
//! it did. (The entry stub has already checked one slot before any call:
//! `relocated-early`.)

use super::verdict::{check, check_eq};
use crate::arch::memory::volatile_load;
use crate::arch::serial::Serial;
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
    report::passed(out, "relocation");
}
