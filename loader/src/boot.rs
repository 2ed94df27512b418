//! The loading sequence, as stages with typed results:
//! inputs → plan → load → boot data → page tables → hand-over.
//!
//! Each stage gathers what the hardware gives, hands it to the host-tested library
//! (`rusty_loader`) for every decision, and traces what it did. Nothing here is
//! `unsafe`: raw memory comes from `arch::memory` as safe references.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, Ordering};

use rusty_loader::bootinfo::{raw_boot_info, raw_boot_info_v2, BootInfoInput, BootInfoLayout};
use rusty_loader::cmdline::{self, Shape};
use rusty_loader::elf::{self, Generation, Kernel};
use rusty_loader::error::LoadError;
use rusty_loader::fdt;
use rusty_loader::layout::{plan_layout, HandOverTables, Layout, LayoutInput};
use rusty_loader::memory::Region;
use rusty_loader::EntryProtocol;
use x86_64::structures::paging::PageTable;

use crate::arch::{self, freq, memory, HandOver};
use crate::mbi::{self, BootInputs, Module};
use crate::{heap, start_info, trace};

/// Loads the kernel and prepares everything the hand-over needs.
///
/// A boot refused before the frequency was measured still sends it, right before
/// the refusal, so that the report of a failed boot is in time too.
pub fn boot(entry: EntryProtocol, magic: u32, info_addr: u32) -> Result<HandOver, LoadError> {
    let mut command_line = "";
    let result = load_and_prepare(entry, magic, info_addr, &mut command_line);
    if result.is_err() && !FREQUENCY_SENT.load(Ordering::Relaxed) {
        frequency(command_line, Shape::of(entry));
    }
    result
}

/// Whether the `Frequency` event has been sent.
static FREQUENCY_SENT: AtomicBool = AtomicBool::new(false);

/// The stages in order; `command_line` is set as soon as it is known.
fn load_and_prepare(
    entry: EntryProtocol,
    magic: u32,
    info_addr: u32,
    command_line: &mut &'static str,
) -> Result<HandOver, LoadError> {
    let inputs = read_inputs(entry, magic, info_addr, command_line)?;
    let plan = plan(&inputs)?;
    load(&plan)?;
    let boot_info = boot_data(&inputs, &plan)?;
    let buffers = memory::take_kernel_buffers().ok_or(LoadError::BadMapping {
        what: "the loader's buffers were already handed out",
        start: 0,
        end: 0,
    })?;
    let tables = page_tables(&plan.layout, buffers.page_table_arena)?;
    // The stack is in `.noinit`: it is zeroed last, right before the jump.
    buffers.kernel_stack.fill(0);
    Ok(HandOver {
        tables,
        stack: buffers.kernel_stack.as_ptr() as u64,
        boot_info,
        entry: plan.entry,
    })
}

/// What the entry gave: the Multiboot information, or the PVH start info turned
/// into the same inputs, with an MBI the loader wrote. From here on the two entries
/// share every stage; only the command line's shape differs.
struct Inputs {
    entry: EntryProtocol,
    mbi: BootInputs,
    /// The MBI the kernel's boot info points to: the firmware's or the loader's.
    mbi_addr: u32,
    module: Module,
}

/// Reads the Multiboot information or the PVH start info, tracing it.
fn read_inputs(
    entry: EntryProtocol,
    magic: u32,
    info_addr: u32,
    command_line_out: &mut &'static str,
) -> Result<Inputs, LoadError> {
    // The memory map is traced inside, as soon as it is read.
    let mut mbi = match entry {
        EntryProtocol::Multiboot => {
            if magic != arch::MULTIBOOT_BOOTLOADER_MAGIC {
                return Err(LoadError::BadMultiboot {
                    what: "EAX does not hold the Multiboot magic",
                });
            }
            mbi::read(info_addr)?
        }
        EntryProtocol::Pvh => start_info::read(info_addr)?,
    };
    // The loader's MBI lies below 4 GiB (the writer checks), QEMU's too.
    let mbi_addr = match entry {
        EntryProtocol::Multiboot => info_addr,
        EntryProtocol::Pvh => {
            u32::try_from(mbi.mbi_region.start).map_err(|_| LoadError::BadMapping {
                what: "the MBI for the kernel lies above 4 GiB",
                start: mbi.mbi_region.start,
                end: mbi.mbi_region.end,
            })?
        }
    };
    let command_line = mbi.command_line.unwrap_or("");
    *command_line_out = command_line;
    trace::command_line(command_line, Shape::of(entry));
    // A boot without module is refused only now, after tracing what there is.
    let module = mbi.module.take().ok_or(match entry {
        EntryProtocol::Multiboot => LoadError::NoModule,
        EntryProtocol::Pvh => LoadError::NoStartInfoModule,
    })?;
    trace::module(module.region);
    Ok(Inputs {
        entry,
        mbi,
        mbi_addr,
        module,
    })
}

/// The TSC frequency: the user's `-freq` as the kernel reads it, else measured
/// across the loader's work so far (which is why it is asked for this late).
fn frequency(command_line: &str, shape: Shape) -> freq::Frequency {
    let frequency = match cmdline::freq_mhz(command_line, shape) {
        Some(mhz) => freq::Frequency {
            khz: u32::from(mhz) * 1000,
            source: freq::Source::CommandLine,
            window_us: 0,
        },
        None => freq::measure(),
    };
    trace::frequency(&frequency);
    FREQUENCY_SENT.store(true, Ordering::Relaxed);
    frequency
}

/// The command line the kernel gets: the VMM's, with `-freq <MHz>` inserted for a
/// kernel of 0.6–0.10 that was given none (they learn the frequency only there and
/// otherwise spend tens of milliseconds measuring it). Kernels from 0.11 read the
/// frequency from the device tree instead. A loader option (the word
/// `keep-cmdline` after the application's file name in `-initrd`) turns this off.
fn kernel_command_line(inputs: &Inputs, kernel: &Kernel, khz: u32) -> Option<&'static str> {
    let original = inputs.mbi.command_line?;
    if kernel.generation() != Generation::Legacy || inputs.module.keep_command_line {
        return Some(original);
    }
    match cmdline::insert_frequency(original, khz, Shape::of(inputs.entry)) {
        Some(edit) => {
            trace::command_line_edited(&edit);
            // On the loader heap, inside the loader image: mapped and below the kernel.
            Some(edit.text.leak())
        }
        None => Some(original),
    }
}

/// The validated kernel and where it goes.
struct Plan {
    kernel: Kernel<'static>,
    layout: Layout,
    /// The load bias: what every ELF address moves by.
    bias: u64,
    /// The relocated entry point.
    entry: u64,
}

/// Inspects the application and plans the memory layout.
fn plan(inputs: &Inputs) -> Result<Plan, LoadError> {
    let kernel = elf::inspect(inputs.module.bytes)?;
    let placement = kernel.placement();
    let (loader_start, loader_end) = arch::loader_image();
    let layout = plan_layout(&LayoutInput {
        ram: &inputs.mbi.ram,
        loader: Region::new(loader_start, loader_end),
        loader_parts: &memory::loader_parts(heap::area()),
        stack_guard: memory::kernel_stack_guard(),
        mbi: inputs.mbi.mbi_region,
        boot_data: inputs.mbi.boot_data,
        module: inputs.module.region,
        kernel: placement,
    })?;
    let bias = kernel.bias(layout.kernel().start);
    let entry = kernel.entry_point(bias);
    trace::kernel(&kernel, &layout, entry);
    Ok(Plan {
        kernel,
        layout,
        bias,
        entry,
    })
}

/// Copies and zeroes every segment, zeroes the gaps and applies the relocations.
fn load(plan: &Plan) -> Result<(), LoadError> {
    let image = memory::take_kernel_memory(&plan.layout).ok_or(LoadError::BadMapping {
        what: "the kernel's memory was already handed out",
        start: plan.layout.kernel().start,
        end: plan.layout.kernel().end,
    })?;
    let kernel = &plan.kernel;
    for segment in &kernel.segments {
        let ticks = kernel.load_segment_timed(segment, image, arch::rdtsc)?;
        trace::segment_loaded(segment, plan.bias, ticks);
    }
    kernel.zero_gaps(image);
    let start = arch::rdtsc();
    let relocations = kernel.relocate(plan.bias, image)?;
    trace::relocated(&relocations, arch::rdtsc() - start);
    Ok(())
}

/// Builds the device tree (for kernels that read one) and the boot info. Returns the
/// boot info's address.
///
/// Both live on the loader heap, inside the loader image, which stays mapped and
/// below the kernel: leaking them is how they are handed to the kernel.
fn boot_data(inputs: &Inputs, plan: &Plan) -> Result<u64, LoadError> {
    let tls = plan.kernel.tls_info(plan.bias);
    if let Some(tls) = &tls {
        trace::tls(tls);
    }
    let frequency = frequency(
        inputs.mbi.command_line.unwrap_or(""),
        Shape::of(inputs.entry),
    );
    let command_line = kernel_command_line(inputs, &plan.kernel, frequency.khz);
    // A kernel of entry version 2 (0.6.0) has no boot-info field for a device tree:
    // it gets none.
    let layout = BootInfoLayout::for_entry_version(plan.kernel.entry_version);
    let device_tree = match layout {
        BootInfoLayout::WithDeviceTree => {
            let start = arch::rdtsc();
            let khz = (frequency.khz > 0).then_some(frequency.khz);
            let fdt = fdt::build_fdt(&inputs.mbi.ram, command_line.unwrap_or(""), khz)?;
            let fdt: &'static [u8] = fdt.leak();
            trace::device_tree(fdt, arch::rdtsc() - start);
            fdt.as_ptr() as u64
        }
        BootInfoLayout::WithoutDeviceTree => 0,
    };
    let input = BootInfoInput {
        kernel_image: plan.layout.kernel(),
        tls,
        device_tree,
        command_line,
        mbi_addr: u64::from(inputs.mbi_addr),
    };
    Ok(match layout {
        BootInfoLayout::WithoutDeviceTree => {
            Box::leak(Box::new(raw_boot_info_v2(&input)?)) as *const _ as u64
        }
        BootInfoLayout::WithDeviceTree => {
            Box::leak(Box::new(raw_boot_info(&input)?)) as *const _ as u64
        }
    })
}

/// Builds the hand-over page tables in `arena`.
fn page_tables(layout: &Layout, arena: &mut [PageTable]) -> Result<HandOverTables, LoadError> {
    let start = arch::rdtsc();
    let arena_phys = arena.as_ptr() as u64;
    let tables = layout.build_page_tables(arena, arena_phys)?;
    trace::page_tables(layout, &tables, arch::rdtsc() - start);
    Ok(tables)
}
