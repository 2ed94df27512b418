//! The bare-metal loader binary: QEMU starts it through Multiboot 1, it loads the
//! Hermit application given as module 0 and jumps into it with the Hermit boot ABI.
//!
//! This file starts the loader and ends it: the hand-over or the refusal. The
//! loading sequence is `boot.rs` (stages that hand every decision to the host-tested
//! `rusty_loader` library), the trace `trace.rs`; the start-up assembly and every
//! direct hardware access live in `arch/x86_64`, the only place with `unsafe`
//! besides the named hardware files (`console.rs`, `heap.rs`, `logger.rs`,
//! `mbi.rs`).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

#[path = "arch/x86_64/mod.rs"]
mod arch;
mod boot;
mod console;
mod heap;
#[cfg(feature = "trace")]
mod logger;
mod mbi;
mod trace;

use rusty_loader::error::{ExitCode, LoadError};

/// Called by the start-up code in long mode with the Multiboot magic and MBI address.
extern "C" fn loader_main(magic: u32, mbi_addr: u32) -> ! {
    arch::exceptions::install();
    // The reference counter for the TSC frequency runs from here across the
    // loader's work (see arch::freq).
    arch::freq::start();
    console::init();
    heap::init();
    trace::loader_started(mbi_addr, arch::early_stamps());
    match boot::boot(magic, mbi_addr) {
        Ok(hand_over) => {
            trace::hand_over(&hand_over);
            arch::exceptions::mark_handed_over();
            arch::hand_over(&hand_over)
        }
        Err(error) => fail(&error),
    }
}

/// Prints the refusal and exits QEMU with its code.
fn fail(error: &LoadError) -> ! {
    let code = error.exit_code();
    trace::refused(error);
    console::print_line(format_args!(
        "error: {error} (exit code {}, QEMU status {})",
        code.name(),
        code.qemu_status()
    ));
    arch::exit_qemu(code.port_value())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::print_line(format_args!("error: loader bug: {info}"));
    arch::exit_qemu(ExitCode::LoaderPanic.port_value())
}
