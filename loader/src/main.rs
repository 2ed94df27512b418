//! The bare-metal loader binary: QEMU starts it through Multiboot 1, it loads the
//! Hermit application given as module 0 and jumps into it with the Hermit boot ABI.
//!
//! This file is the thin, hardware-facing part: it gathers the inputs (Multiboot
//! information, linker symbols), hands memory slices to the pure logic in the
//! `rusty_loader` library, and performs the hand-over. The start-up assembly and
//! every other direct hardware access live in `arch/x86_64`.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

#[path = "arch/x86_64/mod.rs"]
mod arch;
mod console;
mod heap;
mod mbi;

use alloc::boxed::Box;

use rusty_loader::bootinfo::{raw_boot_info, BootInfoInput};
use rusty_loader::elf::{self, ElfKind};
use rusty_loader::error::{ExitCode, LoadError};
use rusty_loader::layout::{plan_layout, KernelPlacement, LayoutInput, Region};
use rusty_loader::paging::build_page_tables;
use rusty_loader::{fdt, paging};
use x86_64::structures::paging::PageTable;

use crate::arch::HandOver;

/// How many 4 KiB pages the hand-over page tables may use: PML4, PDPT, the table of
/// 4 KiB pages below 2 MiB, and one PD per GiB mapped (up to 61 GiB).
const PAGE_TABLE_ARENA_PAGES: usize = 64;
static mut PAGE_TABLE_ARENA: [PageTable; PAGE_TABLE_ARENA_PAGES] =
    [const { PageTable::new() }; PAGE_TABLE_ARENA_PAGES];

/// The kernel's stack: the ABI asks for 32 KiB, zeroed and identity mapped.
const KERNEL_STACK_SIZE: usize = 32 * 1024;
#[repr(C, align(4096))]
struct KernelStack([u8; KERNEL_STACK_SIZE]);
static mut KERNEL_STACK: KernelStack = KernelStack([0; KERNEL_STACK_SIZE]);

/// Called by the start-up code in long mode with the Multiboot magic and MBI address.
extern "C" fn loader_main(magic: u32, mbi_addr: u32) -> ! {
    arch::exceptions::install();
    console::init();
    heap::init();
    match boot(magic, mbi_addr) {
        Ok(hand_over) => {
            arch::exceptions::mark_handed_over();
            // SAFETY: `boot` built page tables that identity-map the loader image (code,
            // GDT, IDT, stack, boot info, FDT, tables), the MBI and the kernel, and loaded
            // and relocated the kernel.
            unsafe { arch::hand_over(&hand_over) }
        }
        Err(error) => fail(&error),
    }
}

/// Loads the kernel and prepares everything the hand-over needs.
fn boot(magic: u32, mbi_addr: u32) -> Result<HandOver, LoadError> {
    if magic != arch::MULTIBOOT_BOOTLOADER_MAGIC {
        return Err(LoadError::BadMultiboot { what: "EAX does not hold the Multiboot magic" });
    }
    let info = mbi::read(mbi_addr)?;
    let kernel = elf::inspect(info.module_bytes)?;

    let (loader_start, loader_end) = arch::loader_image();
    let placement = match kernel.kind {
        ElfKind::Dyn => KernelPlacement::Dyn { size: kernel.size(), align: kernel.align },
        ElfKind::Exec => KernelPlacement::Exec { start: kernel.vaddr_start, end: kernel.vaddr_end },
    };
    let layout = plan_layout(&LayoutInput {
        ram: &info.ram,
        loader: Region { start: loader_start, end: loader_end },
        mbi: info.mbi_region,
        boot_data: info.boot_data,
        module: info.module,
        kernel: placement,
    })?;
    if layout.kernel.end > arch::BOOT_IDENTITY_LIMIT {
        return Err(LoadError::NotEnoughMemory {
            what: "kernel image (the loader reaches only the first 4 GiB)",
            start: layout.kernel.start,
            end: layout.kernel.end,
        });
    }

    // SAFETY: plan_layout checked that the kernel region is usable RAM that overlaps
    // nothing the loader uses, and the boot page tables identity-map it (checked above).
    let image = unsafe {
        core::slice::from_raw_parts_mut(layout.kernel.start as *mut u8, layout.kernel.len() as usize)
    };
    let bias = kernel.bias(layout.kernel_base);
    for segment in &kernel.segments {
        kernel.load_segment(segment, bias, image)?;
    }
    kernel.zero_gaps(bias, image);
    kernel.relocate(bias, image)?;

    let fdt = fdt::build_fdt(&info.ram, info.command_line.unwrap_or(""), None)?;
    // The heap lives in the loader image, which stays mapped and below the kernel, so
    // leaking is how these buffers are handed to the kernel.
    let fdt: &'static [u8] = fdt.leak();
    let boot_info = Box::leak(Box::new(raw_boot_info(&BootInfoInput {
        kernel_image: layout.kernel,
        tls: kernel.tls_info(bias),
        device_tree: fdt.as_ptr() as u64,
        command_line: info.command_line,
        mbi_addr: u64::from(mbi_addr),
    })));

    // SAFETY: the arena is used only here, once, on the only CPU.
    let arena = unsafe { &mut *(&raw mut PAGE_TABLE_ARENA) };
    let arena_phys = arena.as_ptr() as u64;
    let (pml4, _stats) = build_page_tables(&layout.mappings, arena, arena_phys)?;
    let _ = paging::translate;

    // SAFETY: the stack is used only here, once, before the kernel owns it.
    let stack = unsafe { &mut (*(&raw mut KERNEL_STACK)).0 };
    stack.fill(0);

    Ok(HandOver {
        pml4,
        stack: stack.as_ptr() as u64,
        boot_info: boot_info as *const _ as u64,
        entry: kernel.entry_point(bias),
    })
}

/// Prints the refusal and exits QEMU with its code.
fn fail(error: &LoadError) -> ! {
    let code = error.exit_code();
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
