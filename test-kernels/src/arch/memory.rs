//! Reading memory: volatile loads, the live page tables through their identity
//! mapping, and memory the loader handed over, read only after every page of it was
//! found present.

use crate::paging::{self, Tables};

use super::cpu::cr3;

/// Reads a value through a reference with a volatile load, so the compiler cannot
/// replace it by what it knows the value was at link time. This is how the kernels
/// see whether the loader applied relocations.
pub fn volatile_load<T: Copy>(r: &T) -> T {
    // SAFETY: a reference is valid and aligned for reads.
    unsafe { core::ptr::read_volatile(r) }
}

/// The live page tables, read through their identity mapping.
#[derive(Clone, Copy, Debug)]
pub struct IdentityTables;

impl Tables for IdentityTables {
    fn entry(&self, table: u64, index: usize) -> u64 {
        let addr = (table & paging::ADDR_MASK) + 8 * (index as u64 & 511);
        // SAFETY: `addr` is an aligned u64 inside a page-table page reachable from CR3.
        // The loader's layout identity-maps its tables (the newer kernels require it);
        // if one were not mapped the read faults and the exception handler reports it,
        // so no value is ever made up.
        unsafe { core::ptr::read_volatile(addr as *const u64) }
    }
}

/// `[addr, addr + len)` as bytes, if every page of it is present in the live page
/// tables; otherwise the first address that is not.
pub fn mapped_bytes(addr: u64, len: u64) -> Result<&'static [u8], u64> {
    if len == 0 {
        return Ok(&[]);
    }
    // The last byte, not one past it: a range may end at the top of the address
    // space (the recursive PML4 view does).
    let last = addr.checked_add(len - 1).ok_or(addr)?;
    let cr3 = cr3();
    let mut va = addr & !(paging::SIZE_4K - 1);
    loop {
        let m = paging::translate(&IdentityTables, cr3, va).ok_or(va.max(addr))?;
        match m.virt.checked_add(m.size) {
            Some(next) if next <= last => va = next,
            _ => break,
        }
    }
    let len = usize::try_from(len).map_err(|_| addr)?;
    // SAFETY: every page of the range is mapped, so reading cannot fault. The memory
    // belongs to the loader's hand-over (or to this image), which nothing in these
    // kernels writes to while the slice is alive: they write only their own statics
    // and stack.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
}

/// The aligned u64 at `addr`, if its page is present in the live page tables;
/// otherwise `addr`. Unlike [`mapped_bytes`] this can read the very top of the address
/// space (a slice may not end at 2^64).
pub fn mapped_u64(addr: u64) -> Result<u64, u64> {
    if !addr.is_multiple_of(8) || paging::translate(&IdentityTables, cr3(), addr).is_none() {
        return Err(addr);
    }
    // SAFETY: aligned, and its page is present, so the read cannot fault.
    Ok(unsafe { core::ptr::read_volatile(addr as *const u64) })
}

/// The first non-zero u64 in `[start, end)` (both 8-byte aligned), after checking
/// every page is mapped; `Err` with the first unmapped address.
pub fn first_nonzero_word(start: u64, end: u64) -> Result<Option<(u64, u64)>, u64> {
    let bytes = mapped_bytes(start, end.saturating_sub(start))?;
    let mut at = start;
    for chunk in bytes.chunks_exact(8) {
        // SAFETY: the chunk lies in the mapped range; a volatile read keeps the
        // compiler from assuming anything about memory it did not write.
        let word = unsafe { core::ptr::read_volatile(chunk.as_ptr() as *const u64) };
        if word != 0 {
            return Ok(Some((at, word)));
        }
        at += 8;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_load_reads_the_value() {
        static X: u64 = 42;
        assert_eq!(volatile_load(&X), 42);
    }
}
