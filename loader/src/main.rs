//! The bare-metal loader binary: a VMM starts it through Multiboot 1 or PVH, it loads
//! the Hermit application given as module 0 and jumps into it with the Hermit boot
//! ABI.
//!
//! This file starts the loader and ends it: the hand-over or the refusal, and the
//! report of a CPU exception, which `arch::exceptions` calls. The loading sequence
//! is `boot.rs` (stages that hand every decision to the host-tested `rusty_loader`
//! library), the trace `trace.rs`; the start-up assembly and every direct hardware
//! access live in `arch/x86_64`, the only place with `unsafe` besides the UART
//! (`console.rs`), the allocator (`heap.rs`), the defmt logger (`logger.rs`) and
//! the UEFI firmware calls (`uefi/firmware.rs`).
//! The entries differ only in the assembly's first lines and in the boot
//! information read here, each through its `boot::BootSource` (`mbi.rs`,
//! `start_info.rs`, `uefi/`, whose firmware calls are `uefi/firmware.rs`, with
//! `unsafe`).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

#[path = "arch/x86_64/mod.rs"]
mod arch;
mod boot;
mod console;
mod heap;
#[cfg(feature = "faults")]
mod inject;
#[cfg(feature = "trace")]
mod logger;
mod mbi;
mod start_info;
mod trace;
mod uefi;

use rusty_loader::error::{ExitCode, LoadError};
use rusty_loader::EntryProtocol;

/// Called by the start-up code in long mode with the entry it came through, EAX at
/// a Multiboot entry (0 after PVH and UEFI) and EBX: the MBI or the PVH start info
/// (0 after UEFI: the firmware's pointers are in `arch::uefi::handoff`).
extern "C" fn loader_main(entry: u32, magic: u32, info_addr: u32) -> ! {
    // Only the assembly calls this function, with one of its values.
    let entry = arch::entry_protocol(entry).unwrap_or(EntryProtocol::Multiboot);
    // Under UEFI the firmware's IDT handles its timer until its boot services
    // exit; the UEFI reader installs the loader's then.
    if entry != EntryProtocol::Uefi {
        arch::exceptions::install(report_exception);
    }
    // The reference counter for the TSC frequency runs from here across the
    // loader's work (see arch::freq).
    arch::freq::start();
    console::init();
    heap::init();
    trace::loader_started(entry, info_addr, arch::early_stamps());
    // The one place the entries differ in Rust: which boot information is read.
    let booted = match entry {
        EntryProtocol::Multiboot => boot::boot(entry, || mbi::Multiboot::read(magic, info_addr)),
        EntryProtocol::Pvh => boot::boot(entry, || start_info::Pvh::read(info_addr)),
        EntryProtocol::Uefi => boot::boot(entry, uefi::Uefi::read),
    };
    match booted {
        Ok(hand_over) => {
            #[cfg(feature = "faults")]
            let hand_over = inject::hand_over(hand_over);
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

/// Reports a CPU exception (the handler exits QEMU afterwards): the event, then the
/// line.
fn report_exception(exception: &arch::exceptions::Exception) {
    trace::cpu_exception(exception);
    let whose = if exception.in_kernel {
        "in the kernel, after hand-over"
    } else {
        "in the loader"
    };
    console::print_line(format_args!(
        "error: CPU exception {} ({}) {whose}: error code {:#x}, RIP {:#x}, RSP {:#x}, RFLAGS {:#x}, CR2 {:#x}, CR3 {:#x}; exit code cpu-exception+{}",
        exception.vector,
        exception.name,
        exception.error_code,
        exception.rip,
        exception.rsp,
        exception.rflags,
        exception.cr2,
        exception.cr3,
        exception.vector,
    ));
}

/// A panic ends like a refusal: one line naming the place, the message and the
/// code (`PanicInfo`'s own display takes two lines and names no code).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let code = ExitCode::LoaderPanic;
    let message = info.message();
    let (name, status) = (code.name(), code.qemu_status());
    match info.location() {
        Some(at) => console::print_line(format_args!(
            "error: loader bug: panicked at {at}: {message} (exit code {name}, QEMU status {status})"
        )),
        None => console::print_line(format_args!(
            "error: loader bug: panicked: {message} (exit code {name}, QEMU status {status})"
        )),
    }
    arch::exit_qemu(code.port_value())
}
