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
#[cfg(feature = "trace")]
mod logger;
mod mbi;
mod trace;

use alloc::boxed::Box;

use rusty_loader::bootinfo::{raw_boot_info, raw_boot_info_v2, BootInfoInput, BootInfoLayout};
use rusty_loader::cmdline;
use rusty_loader::elf::{self, ElfKind, Generation};
use rusty_loader::error::{ExitCode, LoadError};
use rusty_loader::fdt;
use rusty_loader::layout::{plan_layout, KernelPlacement, LayoutInput, Region};
use rusty_loader::paging::{build_page_tables, PageSize};
use x86_64::structures::paging::PageTable;

use crate::arch::HandOver;

/// How many 4 KiB pages the hand-over page tables may use: PML4, PDPT, the table of
/// 4 KiB pages below 2 MiB, and one PD per GiB mapped (up to 61 GiB).
const PAGE_TABLE_ARENA_PAGES: usize = 64;
#[unsafe(link_section = ".noinit.page_table_arena")]
static mut PAGE_TABLE_ARENA: [PageTable; PAGE_TABLE_ARENA_PAGES] =
    [const { PageTable::new() }; PAGE_TABLE_ARENA_PAGES];

/// The kernel's stack: the ABI asks for 32 KiB, zeroed and identity mapped.
const KERNEL_STACK_SIZE: usize = 32 * 1024;
#[repr(C, align(4096))]
struct KernelStack([u8; KERNEL_STACK_SIZE]);
#[unsafe(link_section = ".noinit.kernel_stack")]
static mut KERNEL_STACK: KernelStack = KernelStack([0; KERNEL_STACK_SIZE]);

/// Called by the start-up code in long mode with the Multiboot magic and MBI address.
extern "C" fn loader_main(magic: u32, mbi_addr: u32) -> ! {
    arch::exceptions::install();
    console::init();
    heap::init();
    let stamps = arch::early_stamps();
    // The first three events carry the start-up code's stamps as their times.
    trace::at(0);
    trace::loader_start(trace::FORMAT_VERSION, build_id(), mbi_addr);
    trace::at(stamps.paging_on.wrapping_sub(stamps.entry));
    trace::paging_enabled();
    trace::at(stamps.long_mode.wrapping_sub(stamps.entry));
    trace::long_mode_entered();
    match boot(magic, mbi_addr) {
        Ok(hand_over) => {
            trace::hand_over(hand_over.entry, hand_over.boot_info, hand_over.stack);
            arch::exceptions::mark_handed_over();
            // SAFETY: `boot` built page tables that identity-map the loader image (code,
            // GDT, IDT, stack, boot info, FDT, tables), the MBI and the kernel, and loaded
            // and relocated the kernel.
            unsafe { arch::hand_over(&hand_over) }
        }
        Err(error) => fail(&error),
    }
}

/// The build identity in `LoaderStart`: xtask patches this placeholder after linking
/// with a hash of the defmt table, which the decoder recomputes from the ELF it is
/// given, so a trace is never decoded with the wrong table.
#[unsafe(no_mangle)]
#[used]
static RUSTY_LOADER_BUILD_ID: [u8; 4] = *b"BLID";

fn build_id() -> u32 {
    // A volatile read, so the compiler cannot fold in the placeholder.
    // SAFETY: a plain read of an initialised static.
    u32::from_le_bytes(unsafe { core::ptr::read_volatile(&raw const RUSTY_LOADER_BUILD_ID) })
}

/// Loads the kernel and prepares everything the hand-over needs.
fn boot(magic: u32, mbi_addr: u32) -> Result<HandOver, LoadError> {
    if magic != arch::MULTIBOOT_BOOTLOADER_MAGIC {
        return Err(LoadError::BadMultiboot {
            what: "EAX does not hold the Multiboot magic",
        });
    }
    let info = mbi::read(mbi_addr)?;
    for regions in info.memory_map.chunks(32) {
        trace::memory_map(regions);
    }
    let command_line = info.command_line.unwrap_or("");
    let split = cmdline::split(command_line);
    let offset =
        |at: Option<usize>| at.map_or(u16::MAX, |at| at.min(usize::from(u16::MAX - 1)) as u16);
    trace::command_line(
        offset(split.kernel_args_at),
        offset(split.app_args_at),
        command_line,
    );
    let (tsc_khz, source) = match cmdline::freq_mhz(command_line) {
        Some(mhz) => (mhz.saturating_mul(1000), arch::freq::Source::CommandLine),
        None => arch::freq::detect(),
    };
    trace::frequency(tsc_khz, source_name(source));
    let module = info.module.as_ref().ok_or(LoadError::NoModule)?;
    trace::module(module.region.start, module.region.end);

    let kernel = elf::inspect(module.bytes)?;
    let (loader_start, loader_end) = arch::loader_image();
    let placement = match kernel.kind {
        ElfKind::Dyn => KernelPlacement::Dyn {
            size: kernel.size(),
            align: kernel.align,
        },
        ElfKind::Exec => KernelPlacement::Exec {
            start: kernel.vaddr_start,
            end: kernel.vaddr_end,
        },
    };
    let layout = plan_layout(&LayoutInput {
        ram: &info.ram,
        loader: Region {
            start: loader_start,
            end: loader_end,
        },
        mbi: info.mbi_region,
        boot_data: info.boot_data,
        module: module.region,
        kernel: placement,
    })?;
    if layout.kernel.end > arch::BOOT_IDENTITY_LIMIT {
        return Err(LoadError::NotEnoughMemory {
            what: "kernel image (the loader reaches only the first 4 GiB)",
            start: layout.kernel.start,
            end: layout.kernel.end,
        });
    }
    let bias = kernel.bias(layout.kernel_base);
    let entry = kernel.entry_point(bias);
    let kind = match kernel.kind {
        ElfKind::Dyn => name!("dyn"),
        ElfKind::Exec => name!("exec"),
    };
    // One layout meets the rules of every kernel generation (see docs/ARCHITECTURE.md);
    // the generation is traced so a reader knows which rules the kernel relies on.
    // Each arm interns its own literal, the same as `Generation::name`.
    let generation = match kernel.generation() {
        Generation::Legacy => name!("0.6-0.10"),
        Generation::Modern => name!("0.11+"),
    };
    // Kernels without the ABI-tag note are traced as version 0.0.0.
    let version = kernel.kernel_version.unwrap_or(elf::HermitVersion {
        major: 0,
        minor: 0,
        patch: 0,
    });
    let narrow = |n: u32| n.min(u32::from(u8::MAX)) as u8;
    trace::kernel(
        kind,
        kernel.entry_version,
        narrow(version.major),
        narrow(version.minor),
        narrow(version.patch),
        generation,
        kernel.segments.len() as u8,
        layout.kernel.start,
        entry,
    );

    // SAFETY: plan_layout checked that the kernel region is usable RAM that overlaps
    // nothing the loader uses, and the boot page tables identity-map it (checked above).
    let image = unsafe {
        core::slice::from_raw_parts_mut(
            layout.kernel.start as *mut u8,
            layout.kernel.len() as usize,
        )
    };
    for segment in &kernel.segments {
        let ticks = kernel.load_segment_timed(segment, image, arch::rdtsc)?;
        trace::segment_loaded(
            segment.vaddr.wrapping_add(bias),
            segment.file_size,
            segment.mem_size,
            segment.flags as u8,
            ticks.copy,
            ticks.zero,
        );
    }
    kernel.zero_gaps(image);
    let start = arch::rdtsc();
    let relocations = kernel.relocate(bias, image)?;
    trace::relocated(
        relocations.relative,
        relocations.abs64,
        relocations.glob_dat,
        relocations.skipped_weak,
        arch::rdtsc() - start,
    );
    let tls = kernel.tls_info(bias);
    if let Some(tls) = &tls {
        trace::tls(tls.start, tls.filesz, tls.memsz, tls.align);
    }

    // A kernel of entry version 2 (0.6.0) has no boot-info field for a device tree:
    // it gets none.
    let boot_info_layout = BootInfoLayout::for_entry_version(kernel.entry_version);
    let device_tree = if boot_info_layout == BootInfoLayout::WithDeviceTree {
        let start = arch::rdtsc();
        let fdt = fdt::build_fdt(&info.ram, command_line, (tsc_khz > 0).then_some(tsc_khz))?;
        // The heap lives in the loader image, which stays mapped and below the kernel,
        // so leaking is how these buffers are handed to the kernel.
        let fdt: &'static [u8] = fdt.leak();
        trace::device_tree(fdt.as_ptr() as u64, fdt.len() as u32, arch::rdtsc() - start);
        fdt.as_ptr() as u64
    } else {
        0
    };
    let input = BootInfoInput {
        kernel_image: layout.kernel,
        tls,
        device_tree,
        command_line: info.command_line,
        mbi_addr: u64::from(mbi_addr),
    };
    let boot_info_addr = match boot_info_layout {
        BootInfoLayout::WithoutDeviceTree => {
            Box::leak(Box::new(raw_boot_info_v2(&input)?)) as *const _ as u64
        }
        BootInfoLayout::WithDeviceTree => {
            Box::leak(Box::new(raw_boot_info(&input)?)) as *const _ as u64
        }
    };

    let start = arch::rdtsc();
    let arena = &raw mut PAGE_TABLE_ARENA;
    // SAFETY: the arena is used only here, once, on the only CPU.
    let arena = unsafe { &mut *arena };
    let arena_phys = arena.as_ptr() as u64;
    let (pml4, stats) = build_page_tables(&layout.mappings, arena, arena_phys)?;
    let ticks = arch::rdtsc() - start;
    for mapping in &layout.mappings {
        let page_kib = match mapping.page_size {
            PageSize::Size4K => 4,
            PageSize::Size2M => 2048,
        };
        trace::mapping(mapping.start, mapping.end, page_kib, mapping.writable);
    }
    trace::page_tables(
        name!("universal"),
        pml4,
        stats.tables as u16,
        stats.bytes_4k,
        stats.bytes_2m,
        ticks,
    );

    let stack = &raw mut KERNEL_STACK;
    // SAFETY: the stack is used only here, once, before the kernel owns it.
    let stack = unsafe { &mut (*stack).0 };
    stack.fill(0);

    Ok(HandOver {
        pml4,
        stack: stack.as_ptr() as u64,
        boot_info: boot_info_addr,
        entry,
    })
}

fn source_name(source: arch::freq::Source) -> trace::Name {
    use arch::freq::Source;
    match source {
        Source::CommandLine => name!("cmdline"),
        Source::CpuidCrystal => name!("cpuid-15h"),
        Source::CpuidBase => name!("cpuid-16h"),
        Source::Hypervisor => name!("hypervisor"),
        Source::Pit => name!("pit"),
        Source::Unknown => name!("unknown"),
    }
}

/// Prints the refusal and exits QEMU with its code.
fn fail(error: &LoadError) -> ! {
    let code = error.exit_code();
    trace::refused(
        code.port_value(),
        code_name(code),
        &alloc::format!("{error}"),
    );
    console::print_line(format_args!(
        "error: {error} (exit code {}, QEMU status {})",
        code.name(),
        code.qemu_status()
    ));
    arch::exit_qemu(code.port_value())
}

/// The exit code's name as a trace string.
fn code_name(code: ExitCode) -> trace::Name {
    // Each arm interns its own literal; the names match `ExitCode::name`, which a host
    // test checks against this list through docs/exit-codes.md.
    macro_rules! names {
        ($($variant:ident => $name:literal),* $(,)?) => {
            match code { $(ExitCode::$variant => name!($name),)* }
        };
    }
    names!(
        NoModule => "no-module",
        NotElf => "not-elf",
        WrongClass => "wrong-class",
        WrongMachine => "wrong-machine",
        WrongType => "wrong-type",
        MalformedElf => "malformed-elf",
        NoHermitNote => "no-hermit-note",
        UnsupportedEntryVersion => "unsupported-entry-version",
        NeedsSharedLibrary => "needs-shared-library",
        SegmentOutsideFile => "segment-outside-file",
        UnsupportedRelocation => "unsupported-relocation",
        LayoutOverlap => "layout-overlap",
        NotEnoughMemory => "not-enough-memory",
        BadMultiboot => "bad-multiboot",
        LoaderPanic => "loader-panic",
        BadMapping => "bad-mapping",
        FdtBuild => "fdt-build",
        ElfTooComplex => "elf-too-complex",
        CpuException => "cpu-exception",
    )
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::print_line(format_args!("error: loader bug: {info}"));
    arch::exit_qemu(ExitCode::LoaderPanic.port_value())
}
