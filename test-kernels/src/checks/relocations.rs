//! Group `relocation`: statics that hold addresses. In the static PIE these are
//! `R_X86_64_RELATIVE` slots the loader must fill with base + addend; reading them
//! with a volatile load and comparing with addresses taken PC-relative shows whether
//! it did. (The entry stub has already checked one slot before any call:
//! `relocated-early`.) Those slots are a handful of the hundreds a kernel has:
//! legacy-dyn's extra group [`table`] checks every relative relocation of its own
//! `DT_RELA` table (`relocated-all`), so that a loader that left out any one is
//! caught. (Only there: the demo app's and big-dyn's size is part of the loader's
//! instruction budget, `xtask/tests/budget.rs`, which a check in every kernel
//! would move.)

use super::verdict::{check, check_eq, fail, unmapped};
use super::Context;
use crate::arch::memory::{mapped_bytes, mapped_u64, volatile_load};
use crate::arch::serial::Serial;
use crate::arch::symbols::{dynamic_address, ehdr_address, end_address};
use crate::elf;
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

/// The extra group of legacy-dyn (relocation group): every `R_X86_64_RELATIVE`
/// slot of the kernel's own `DT_RELA` table holds load bias + addend, the table
/// found through `_DYNAMIC` (an executable has none). The test kernels' static PIEs
/// are linked at 0, so the bias is where their ELF header is.
pub fn table(ctx: &mut Context) {
    let Some(dynamic) = dynamic_address() else {
        report::passed(&mut ctx.out, "relocation-table");
        return;
    };
    let bias = ehdr_address();
    let read = |addr: u64, len: u64| {
        mapped_bytes(addr, len).unwrap_or_else(|va| unmapped("image-mapped", va))
    };
    let found =
        elf::rela_table(read(dynamic, end_address().saturating_sub(dynamic))).map(|table| {
            let table = table.map_or(&[][..], |t| read(bias.wrapping_add(t.vaddr), t.size));
            elf::first_unapplied(table, bias, |slot| mapped_u64(bias.wrapping_add(slot)).ok())
        });
    if found != Ok(None) {
        fail(Group::Relocation, "relocated-all", &|s| match found {
            Ok(Some(u)) => {
                emit!(s, "the slot at ", Hex(u.slot), " (+ bias) holds ");
                emit!(s, Hex(u.got.unwrap_or(0)), ", want ", Hex(u.want))
            }
            Err(e) => emit!(s, "own dynamic section: ", e.describe()),
            Ok(None) => {}
        });
    }
    report::passed(&mut ctx.out, "relocation-table");
}
