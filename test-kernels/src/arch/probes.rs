//! Probe statics: what `.bss` and `.data` should hold if the loader did its job.

use core::cell::UnsafeCell;

/// Words in the `.bss` probe (64 KiB).
pub const BSS_PROBE_WORDS: usize = 8192;

#[repr(C, align(4096))]
struct BssProbe(UnsafeCell<[u64; BSS_PROBE_WORDS]>);

// SAFETY: only the one boot CPU runs these kernels.
unsafe impl Sync for BssProbe {}

/// A zero-initialised static: it lands in `.bss`, which the loader must zero.
static BSS_PROBE: BssProbe = BssProbe(UnsafeCell::new([0; BSS_PROBE_WORDS]));

/// The `.bss` probe's address range.
pub fn bss_probe_range() -> (u64, u64) {
    let start = BSS_PROBE.0.get() as u64;
    (start, start + (BSS_PROBE_WORDS * 8) as u64)
}

/// The first non-zero word of the `.bss` probe (index, value).
pub fn bss_probe_first_nonzero() -> Option<(usize, u64)> {
    let base = BSS_PROBE.0.get() as *const u64;
    (0..BSS_PROBE_WORDS).find_map(|i| {
        // SAFETY: `i` is in bounds of the probe array; volatile, so that the compiler
        // cannot use its knowledge that the static starts out zero.
        let w = unsafe { core::ptr::read_volatile(base.add(i)) };
        (w != 0).then_some((i, w))
    })
}

/// Writes a pattern to one word per page of the `.bss` probe and reads it back:
/// `.bss` must be writable memory, not a read-only zero page.
pub fn bss_probe_write_read() -> Option<usize> {
    let base = BSS_PROBE.0.get() as *mut u64;
    (0..BSS_PROBE_WORDS).step_by(512).find(|&i| {
        let pattern = 0xb55b_0000_0000_0000 | i as u64;
        // SAFETY: in bounds; single CPU, and no reference to the array exists.
        unsafe {
            core::ptr::write_volatile(base.add(i), pattern);
            core::ptr::read_volatile(base.add(i)) != pattern
        }
    })
}

/// What the `.data` probe holds in the file.
pub const DATA_PROBE_VALUES: [u64; 4] = [
    0x0123_4567_89ab_cdef,
    0xfedc_ba98_7654_3210,
    0x5a5a_a5a5_0ff0_f00f,
    0x1,
];

struct DataProbe(UnsafeCell<[u64; 4]>);

// SAFETY: only the one boot CPU runs these kernels.
unsafe impl Sync for DataProbe {}

/// An initialised mutable static: it lands in `.data`, which the loader must copy.
static DATA_PROBE: DataProbe = DataProbe(UnsafeCell::new(DATA_PROBE_VALUES));

/// The `.data` probe's address and its contents now.
pub fn data_probe() -> (u64, [u64; 4]) {
    let p = DATA_PROBE.0.get();
    // SAFETY: reading the whole static; volatile so the compiler does not substitute
    // the initialiser.
    (p as u64, unsafe { core::ptr::read_volatile(p) })
}
