//! The loading sequence, as stages with typed results:
//! inputs → plan → load → boot data → page tables → hand-over.
//!
//! The inputs are the same for every entry: each entry's boot information answers
//! the questions of [`BootSource`] in its own terms, and `read_inputs` makes of the
//! answers the one [`Inputs`] the later stages use, writing an MBI for the kernel
//! where the firmware left none. Each stage gathers what the hardware gives, hands
//! it to the host-tested library (`rusty_loader`) for every decision, and traces
//! what it did. Nothing here is `unsafe`: raw memory comes from `arch::memory` as
//! safe references.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use rusty_loader::bootinfo::{raw_boot_info, raw_boot_info_v2, BootInfoInput, BootInfoLayout};
use rusty_loader::cmdline::{self, Shape};
use rusty_loader::elf::{self, Generation, Kernel};
use rusty_loader::error::LoadError;
use rusty_loader::fdt;
use rusty_loader::layout::{plan_layout, HandOverTables, Layout, LayoutInput};
use rusty_loader::mbi_writer::{mbi_size, write_mbi};
use rusty_loader::memory::{merged_ram, MemoryMap, Region};
use rusty_loader::wire::MapEntry;
use rusty_loader::{EntryProtocol, Module};
use x86_64::structures::paging::PageTable;

use crate::arch::{self, freq, memory, HandOver};
#[cfg(feature = "faults")]
use crate::inject;
use crate::{heap, trace};

/// What an entry's boot information gives, each entry in its own terms: the
/// Multiboot information (`mbi.rs`), the PVH start info (`start_info.rs`), or
/// whatever another entry reads from its firmware. `read_inputs` asks in the
/// order of the methods and makes of the answers the one [`Inputs`] every later
/// stage uses.
pub trait BootSource {
    /// The memory map as the firmware gave it (traced as is) and its usable RAM.
    fn memory_map(&self) -> Result<MemoryMap, LoadError>;
    /// The command line and the range it lies in (its NUL included); `usable` is
    /// the usable RAM, merged.
    fn command_line(&self, usable: &[Region]) -> Result<Option<(&'static str, Region)>, LoadError>;
    /// The address and extent of the MBI the firmware left, which the kernel then
    /// gets as it is, with everything it points to; `None` when there is none, and
    /// the loader writes one.
    fn firmware_mbi(&self) -> Option<(u32, Region)>;
    /// Module 0, the application, if the VMM gave one; `usable` as above.
    fn module(&self, usable: &[Region]) -> Result<Option<Module<'static>>, LoadError>;
    /// The refusal when there is no module, in the entry's words.
    fn missing_module(&self) -> LoadError;
    /// The ACPI RSDP the device tree names for kernels 0.11+ (UEFI: the loader's
    /// copy); `None`: the kernels scan the BIOS areas, where the firmware put it.
    fn rsdp(&self) -> Option<u64> {
        None
    }
}

/// Loads the kernel from the boot information that `open` reads and prepares
/// everything the hand-over needs.
///
/// A boot refused before the frequency was measured still sends it, right before
/// the refusal, so that the report of a failed boot is in time too.
pub fn boot<S: BootSource>(
    entry: EntryProtocol,
    open: impl FnOnce() -> Result<S, LoadError>,
) -> Result<HandOver, LoadError> {
    let mut command_line = "";
    let result = read_and_load(entry, open, &mut command_line);
    if result.is_err() && !FREQUENCY_SENT.load(Ordering::Relaxed) {
        frequency(command_line, Shape::of(entry));
    }
    result
}

/// Opens the boot information, reads the inputs and runs the later stages;
/// `command_line` is set as soon as it is known.
fn read_and_load<S: BootSource>(
    entry: EntryProtocol,
    open: impl FnOnce() -> Result<S, LoadError>,
    command_line: &mut &'static str,
) -> Result<HandOver, LoadError> {
    let source = open()?;
    let inputs = read_inputs(entry, &source, command_line)?;
    load_and_prepare(&inputs)
}

/// The bytes of the RSDP copy the device tree names (the ACPI 2.0 structure; a
/// revision 0 one uses the first 20).
const RSDP_LENGTH: u64 = rusty_loader::efi::acpi::V2_LENGTH as u64;

/// Whether the `Frequency` event has been sent.
static FREQUENCY_SENT: AtomicBool = AtomicBool::new(false);

/// The stages after the inputs, in order.
fn load_and_prepare(inputs: &Inputs) -> Result<HandOver, LoadError> {
    let plan = plan(inputs)?;
    load(&plan)?;
    let boot_info = boot_data(inputs, &plan)?;
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

/// The boot inputs, the same for every entry: from here on the entries share every
/// stage (only the command line's shape differs, `cmdline::Shape`).
struct Inputs {
    entry: EntryProtocol,
    /// Usable RAM regions (memory map type 1), in map order.
    ram: Vec<Region>,
    /// The command line the kernel reads: the firmware's, or the copy in the MBI
    /// the loader wrote.
    command_line: Option<&'static str>,
    /// Module 0, the application.
    module: Module<'static>,
    /// The loader option `keep-cmdline`, from the module's string.
    keep_command_line: bool,
    /// The MBI the kernel's boot info points to: the firmware's or the loader's.
    mbi_addr: u32,
    /// The page(s) it and its memory map lie in.
    mbi_region: Region,
    /// Firmware memory the kernel still reads through the firmware's MBI (the
    /// command line and module strings), kept mapped and intact; empty when the
    /// loader wrote the MBI.
    boot_data: Region,
    /// The RSDP copy the device tree names ([`BootSource::rsdp`]).
    rsdp: Option<u64>,
}

/// Reads the entry's boot information into [`Inputs`], tracing it; `command_line`
/// is set as soon as it is known. The memory map is traced as soon as it is read,
/// and a missing module refused only after the command line is traced, so that a
/// refusal still shows what there was.
fn read_inputs(
    entry: EntryProtocol,
    source: &impl BootSource,
    command_line_out: &mut &'static str,
) -> Result<Inputs, LoadError> {
    let map = source.memory_map()?;
    trace::memory_map(&map.entries);
    let usable = merged_ram(&map.ram)?;
    let given_line = source.command_line(&usable)?;
    let firmware_mbi = source.firmware_mbi();
    let (mbi_addr, mbi_region, command_line) = match firmware_mbi {
        Some((address, region)) => (address, page_span(region), given_line.map(|(line, _)| line)),
        None => {
            let (address, region, line) =
                write_kernel_mbi(&map.entries, given_line.map_or("", |(line, _)| line))?;
            (address, region, Some(line))
        }
    };
    let module = source.module(&usable)?;
    let keep_command_line = match &module {
        Some(module) => cmdline::loader_options(module.string.unwrap_or(""))?.keep_command_line,
        None => false,
    };
    // What the firmware's MBI points to stays where it is, in whole pages.
    let mut boot_data = None;
    if firmware_mbi.is_some() {
        if let Some((_, region)) = given_line {
            boot_data = hull(boot_data, region);
        }
        if let Some(region) = module.as_ref().and_then(|module| module.string_region) {
            boot_data = hull(boot_data, region);
        }
    }
    let boot_data = boot_data.map_or(Region::new(0, 0), page_span);
    let line = command_line.unwrap_or("");
    *command_line_out = line;
    trace::command_line(line, Shape::of(entry));
    let module = module.ok_or_else(|| source.missing_module())?;
    trace::module(module.region);
    Ok(Inputs {
        entry,
        ram: map.ram,
        command_line,
        module,
        keep_command_line,
        mbi_addr,
        mbi_region,
        boot_data,
        rsdp: source.rsdp(),
    })
}

const PAGE: u64 = 4096;

/// The whole pages `region` touches.
fn page_span(region: Region) -> Region {
    Region::new(
        region.start & !(PAGE - 1),
        region.end.next_multiple_of(PAGE),
    )
}

/// The smallest region holding `a` (if any) and `b`.
fn hull(a: Option<Region>, b: Region) -> Option<Region> {
    Some(match a {
        None => b,
        Some(a) => Region::new(a.start.min(b.start), a.end.max(b.end)),
    })
}

/// Writes the Multiboot information for the kernel (memory sizes, the whole map, a
/// copy of `command_line`) on the loader heap, inside the loader image, where the
/// layout planning keeps it below the kernel, and traces it. Returns its address,
/// its extent and the copy of the command line, which is what the kernel reads.
fn write_kernel_mbi(
    entries: &[MapEntry],
    command_line: &str,
) -> Result<(u32, Region, &'static str), LoadError> {
    // Kept for good: the kernel reads it after the hand-over.
    let size = mbi_size(entries.len(), command_line);
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(size)
        .map_err(|_| LoadError::BadStartInfo {
            what: "the memory map and command line are too large for the loader's heap",
        })?;
    buffer.resize(size, 0);
    let buffer: &'static mut [u8] = buffer.leak();
    let address = buffer.as_ptr() as u64;
    let written = write_mbi(buffer, address, entries, command_line)?;
    let region = Region::new(address, address + buffer.len() as u64);
    trace::mbi_built(region);
    let buffer: &'static [u8] = buffer;
    let line_at = (written.command_line - address) as usize;
    let copy =
        core::str::from_utf8(&buffer[line_at..line_at + command_line.len()]).map_err(|_| {
            LoadError::BadStartInfo {
                what: "the command line changed while it was copied",
            }
        })?;
    // The heap lies in the loader image, below 4 GiB (the writer checks too).
    let address = u32::try_from(address).map_err(|_| LoadError::BadMapping {
        what: "the MBI for the kernel lies above 4 GiB",
        start: region.start,
        end: region.end,
    })?;
    Ok((address, region, copy))
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
    let original = inputs.command_line?;
    if kernel.generation() != Generation::Legacy || inputs.keep_command_line {
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
        ram: &inputs.ram,
        loader: Region::new(loader_start, loader_end),
        loader_parts: &memory::loader_parts(heap::area()),
        stack_guard: memory::kernel_stack_guard(),
        mbi: inputs.mbi_region,
        boot_data: inputs.boot_data,
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
    #[cfg(feature = "faults")]
    inject::loaded(kernel, image);
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
    let frequency = frequency(inputs.command_line.unwrap_or(""), Shape::of(inputs.entry));
    let command_line = kernel_command_line(inputs, &plan.kernel, frequency.khz);
    // A kernel of entry version 2 (0.6.0) has no boot-info field for a device tree:
    // it gets none.
    let layout = BootInfoLayout::for_entry_version(plan.kernel.entry_version);
    let device_tree = match layout {
        BootInfoLayout::WithDeviceTree => {
            let start = arch::rdtsc();
            let khz = (frequency.khz > 0).then_some(frequency.khz);
            let rsdp = inputs.rsdp.map(|at| Region::new(at, at + RSDP_LENGTH));
            let fdt = fdt::build_fdt(&inputs.ram, command_line.unwrap_or(""), khz, rsdp)?;
            #[cfg(feature = "faults")]
            let fdt = inject::device_tree(
                fdt,
                &inputs.ram,
                plan.layout.kernel(),
                command_line,
                khz,
                rsdp,
            )?;
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
    #[cfg(feature = "faults")]
    let input = inject::boot_info(input, &inputs.ram, inputs.command_line)?;
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
    #[cfg(feature = "faults")]
    let arena_phys = inject::arena_address(arena_phys);
    let tables = layout.build_page_tables(arena, arena_phys)?;
    #[cfg(feature = "faults")]
    inject::page_tables_built(arena, arena_phys, &tables);
    trace::page_tables(layout, &tables, arch::rdtsc() - start);
    Ok(tables)
}
