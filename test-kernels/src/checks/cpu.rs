//! Group `cpu-state`: the CPU as the loader handed it over (rsi, interrupts, long
//! mode).

use super::verdict::{check, check_eq};
use crate::arch::cpu::{cr0, cr4, rdmsr, MSR_EFER};
use crate::arch::entry::EntryState;
use crate::arch::serial::Serial;
use crate::emit;
use crate::report::{self, Group, Hex};

const CR0_PE: u64 = 1 << 0;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// EFER.NXE: whether NX bits in page tables are allowed (the paging group asks).
pub(super) const EFER_NXE: u64 = 1 << 11;
const RFLAGS_IF: u64 = 1 << 9;

/// Runs before the boot info is read: it needs nothing from the loader's memory.
pub(super) fn run(entry: &EntryState, out: &mut Serial) {
    const G: Group = Group::CpuState;
    check_eq(G, "rsi-zero", "rsi", entry.rsi, 0);
    check(entry.rflags & RFLAGS_IF == 0, G, "interrupts-off", &|s| {
        emit!(s, "RFLAGS ", Hex(entry.rflags), " has IF set")
    });
    let (cr0, cr4, efer) = (cr0(), cr4(), rdmsr(MSR_EFER));
    report::fact_hex(out, "efer", efer);
    let long_mode = cr0 & (CR0_PE | CR0_PG) == (CR0_PE | CR0_PG)
        && cr4 & CR4_PAE != 0
        && efer & (EFER_LME | EFER_LMA) == (EFER_LME | EFER_LMA);
    check(long_mode, G, "long-mode", &|s| {
        emit!(s, "CR0 ", Hex(cr0), " CR4 ", Hex(cr4), " EFER ", Hex(efer))
    });
    report::passed(out, "cpu-state");
}
