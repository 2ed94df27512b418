//! crashing: a kernel that fails on purpose right after the hand-over, in the way
//! its first application argument names (`-- page-fault`, `-- triple-fault`, ...;
//! see `test_kernels::crash`), before it loads an IDT of its own. The reports of
//! `cargo xtask trace` and `rusty-trace --app` are checked against it: each failure
//! is committed by a function of its own name.
//!
//! An `ET_DYN` static PIE with the HERMIT note of entry version 4 and no GNU ABI
//! tag: an older-generation kernel (0.6–0.10), which gets `-freq` and the recursive
//! page-table entry.

#![no_std]
#![no_main]

test_kernels::hermit_note!();
test_kernels::start_stub!(crashing_main);

extern "C" fn crashing_main(boot_info: u64, _rsi: u64, _stack_low: u64, _rflags: u64) -> ! {
    test_kernels::crash::run(boot_info)
}
