//! Fault injection (cargo feature `faults` only; no normal build compiles this
//! file): the fault QEMU names in the fw_cfg file `opt/rusty-loader/fault` breaks
//! the hand-over on purpose, so that the tests see each of the test kernels' check
//! groups, and each loader exit code only a loader bug can cause, fail end to end
//! (`xtask/tests/faults.rs`). The list, the names and what each fault does are
//! `rusty_loader::faults`.
//!
//! Every hook is called from a later stage of `boot.rs` (load, boot data, page
//! tables) or from `main.rs` (hand-over), after the real work, and changes its
//! result the way the fault says; none touches `arch/`, and only the UEFI reader
//! among the input readers (`uefi/mod.rs`: `ExitBootServices` and the map, whose
//! failures OVMF never produces). fw_cfg
//! is read through `arch` (its ports are named there, with the loader's others), so
//! this file has no `unsafe`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, Ordering};

use rusty_loader::bootinfo::BootInfoInput;
use rusty_loader::elf::Kernel;
use rusty_loader::error::LoadError;
use rusty_loader::faults::{
    fault_named, Fault, FwCfgFile, FW_CFG_DIR_ENTRY, FW_CFG_FILE, FW_CFG_FILE_DIR, FW_CFG_SIGNATURE,
};
use rusty_loader::fdt;
use rusty_loader::layout::HandOverTables;
use rusty_loader::mbi_writer::{mbi_size, write_mbi};
use rusty_loader::memory::Region;
use rusty_loader::wire::MapEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags};

use crate::arch::{self, HandOver};
use crate::console;

/// Most directory entries looked at (QEMU has a few dozen).
const MAX_FW_CFG_FILES: u32 = 4096;

/// Selects fw_cfg item `key` and fills `buffer` with its first bytes (on a machine
/// without fw_cfg the reads give 0xff, which the signature check rejects).
fn fw_cfg_read(key: u16, buffer: &mut [u8]) {
    arch::fw_cfg_select(key);
    for byte in buffer {
        *byte = arch::fw_cfg_read_byte();
    }
}

/// The fault fw_cfg names, if any. Continues reading the directory from where the
/// previous read left off, as fw_cfg does between selections.
fn read_fault() -> Option<Fault> {
    let mut signature = [0u8; 4];
    fw_cfg_read(FW_CFG_SIGNATURE, &mut signature);
    if &signature != b"QEMU" {
        return None;
    }
    let mut count = [0u8; 4];
    fw_cfg_read(FW_CFG_FILE_DIR, &mut count);
    let mut entry = [0u8; FW_CFG_DIR_ENTRY];
    for _ in 0..u32::from_be_bytes(count).min(MAX_FW_CFG_FILES) {
        for byte in &mut entry {
            // The directory's next entry.
            *byte = arch::fw_cfg_read_byte();
        }
        let file = FwCfgFile::parse(&entry);
        if file.name != FW_CFG_FILE.as_bytes() {
            continue;
        }
        let mut contents = [0u8; 64];
        let len = (file.size as usize).min(contents.len());
        fw_cfg_read(file.select, &mut contents[..len]);
        return match fault_named(&contents[..len]) {
            Ok(fault) => Some(fault),
            Err(name) => panic!(
                "fw_cfg {FW_CFG_FILE} names no fault this build injects: {:?}",
                core::str::from_utf8(name).unwrap_or("(not UTF-8)")
            ),
        };
    }
    None
}

/// 0: fw_cfg not read yet; 1: no fault; 2 + i: `Fault::ALL[i]`.
static SELECTED: AtomicU8 = AtomicU8::new(0);

/// Whether `fault` is the one injected in this boot. The first call reads fw_cfg
/// and says on the serial port which fault (if any) this boot injects.
fn injected(fault: Fault) -> bool {
    let selected = match SELECTED.load(Ordering::Relaxed) {
        0 => {
            let found = read_fault();
            if let Some(found) = found {
                console::print_line(format_args!(
                    "fault injected: {}: {}",
                    found.name(),
                    found.description()
                ));
            }
            let index = found.and_then(|f| Fault::ALL.iter().position(|&a| a == f));
            let value = index.map_or(1, |i| i as u8 + 2);
            SELECTED.store(value, Ordering::Relaxed);
            value
        }
        value => value,
    };
    selected >= 2 && Fault::ALL.get(usize::from(selected - 2)) == Some(&fault)
}

/// UEFI: whether `ExitBootServices` is to be taken as failed twice (and not made).
pub fn exit_boot_services_fails() -> bool {
    injected(Fault::ExitBootServicesFails)
}

/// UEFI: the descriptor size the map is read with.
pub fn uefi_descriptor_size(size: usize) -> usize {
    if injected(Fault::UefiMapUnusable) {
        0
    } else {
        size
    }
}

/// Load stage, after the segments were copied and relocated.
pub fn loaded(kernel: &Kernel, image: &mut [u8]) {
    if injected(Fault::LoaderPanic) {
        panic!("injected fault {}", Fault::LoaderPanic.name());
    }
    if injected(Fault::BssNotZeroed) {
        for segment in &kernel.segments {
            let start = segment.vaddr - kernel.vaddr_start;
            let zeroed = start + segment.file_size..start + segment.mem_size;
            if let Some(bss) = image.get_mut(zeroed.start as usize..zeroed.end as usize) {
                bss.fill(0xa5);
            }
        }
    }
    if injected(Fault::RelocationLeftOut) {
        let Some(target) = kernel.relocation_targets().last() else {
            console::print_line(format_args!("fault: the kernel has no relocation"));
            return;
        };
        // What the slot held before relocation: the file's bytes (or zeros past a
        // segment's file size).
        let mut original = [0u8; 8];
        for (i, byte) in original.iter_mut().enumerate() {
            let vaddr = target + i as u64;
            let from_file = kernel.segments.iter().find_map(|s| {
                let offset = vaddr.checked_sub(s.vaddr)?;
                (offset < s.file_size).then(|| s.file_offset + offset)
            });
            *byte = from_file.map_or(0, |at| kernel.bytes[at as usize]);
        }
        let at = (target - kernel.vaddr_start) as usize;
        image[at..at + 8].copy_from_slice(&original);
        console::print_line(format_args!(
            "fault: the relocation of the slot at {target:#x} (ELF address) left out"
        ));
    }
}

/// Boot-data stage, after the device tree was built: rebuilds it with a wrong
/// memory node, or fails.
pub fn device_tree(
    built: Vec<u8>,
    ram: &[Region],
    kernel: Region,
    command_line: Option<&str>,
    khz: Option<u32>,
    rsdp: Option<Region>,
) -> Result<Vec<u8>, LoadError> {
    if injected(Fault::FdtBuildFails) {
        return Err(LoadError::FdtBuild {
            what: "injected fault fdt-build-fails",
        });
    }
    if injected(Fault::FdtMemoryMap) {
        return fdt::build_fdt(
            &cut_at_kernel(ram, kernel),
            command_line.unwrap_or(""),
            khz,
            rsdp,
        );
    }
    Ok(built)
}

/// `ram` with the region that holds the kernel ending where the kernel starts.
fn cut_at_kernel(ram: &[Region], kernel: Region) -> Vec<Region> {
    ram.iter()
        .map(|r| match r.start <= kernel.start && kernel.start < r.end {
            true => Region::new(r.start, kernel.start),
            false => *r,
        })
        .collect()
}

/// Boot-data stage, right before the boot info is built from `input`.
/// `command_line` is the MBI's (the firmware's, or the loader's copy after PVH).
pub fn boot_info(
    mut input: BootInfoInput,
    ram: &[Region],
    command_line: Option<&str>,
) -> Result<BootInfoInput, LoadError> {
    if injected(Fault::ImageStartOffByOne) {
        input.kernel_image.start += 1;
    }
    if injected(Fault::TlsTemplateMoved) {
        if let Some(tls) = &mut input.tls {
            tls.start += 16;
        }
    }
    if injected(Fault::CommandLineCutShort) {
        match input
            .command_line
            .and_then(|line| line.char_indices().last())
        {
            Some((last, _)) => input.command_line = input.command_line.map(|l| &l[..last]),
            None => console::print_line(format_args!("fault: the command line is empty")),
        }
    }
    if injected(Fault::MbiMemoryMap) {
        // A copy of the MBI with the wrong entry, on the heap like the MBI a PVH
        // boot gets (the firmware's stays as it was).
        let entries: Vec<MapEntry> = cut_at_kernel(ram, input.kernel_image)
            .iter()
            .map(|r| MapEntry {
                start: r.start,
                end: r.end,
                kind: 1,
            })
            .collect();
        let line = command_line.unwrap_or("");
        let buffer = Vec::leak(alloc::vec![0u8; mbi_size(entries.len(), line)]);
        let address = buffer.as_ptr() as u64;
        input.mbi_addr = write_mbi(buffer, address, &entries, line)?.mbi;
    }
    Ok(input)
}

/// Page-table stage: the arena's address the tables are planned for.
pub fn arena_address(arena_phys: u64) -> u64 {
    match injected(Fault::PageTablesMisaligned) {
        true => arena_phys + 0x800,
        false => arena_phys,
    }
}

/// Page-table stage, after the tables were built in `arena` (at `arena_phys`, the
/// PML4 first).
pub fn page_tables_built(arena: &mut [PageTable], arena_phys: u64, tables: &HandOverTables) {
    if injected(Fault::RecursiveEntryMissing) {
        arena[0][511].set_unused();
    }
    if injected(Fault::TablesUnmapped) {
        let used = tables.stats().tables;
        for page in (0..used as u64).map(|i| arena_phys + i * 4096) {
            if !unmap_4k(arena, arena_phys, page) {
                console::print_line(format_args!(
                    "fault: the table page {page:#x} is not mapped by a 4 KiB page: left mapped"
                ));
            }
        }
    }
}

/// Clears the 4 KiB page-table entry that maps `virt`, walking the tables in
/// `arena` (whose table at physical `p` is `arena[(p - arena_phys) / 4096]`).
fn unmap_4k(arena: &mut [PageTable], arena_phys: u64, virt: u64) -> bool {
    let mut table = 0;
    for level in (2..=4u32).rev() {
        let entry = &arena[table][(virt >> (12 + 9 * (level - 1))) as usize & 511];
        let flags = entry.flags();
        if !flags.contains(PageTableFlags::PRESENT) || flags.contains(PageTableFlags::HUGE_PAGE) {
            return false;
        }
        table = ((entry.addr().as_u64() - arena_phys) / 4096) as usize;
    }
    arena[table][(virt >> 12) as usize & 511].set_unused();
    true
}

/// Hand-over: the registers the kernel is entered with.
pub fn hand_over(mut to: HandOver) -> HandOver {
    if injected(Fault::BootInfoMisaligned) {
        to.boot_info += 4;
    }
    if injected(Fault::StackMisaligned) {
        to.stack += 8;
    }
    if injected(Fault::RsiNotZero) {
        // `mov esi, 1; jmp [rip + 0]; .quad entry`, on the heap (mapped, executable:
        // nothing carries NX) so that the jump into the kernel goes through it.
        let mut code = [0u8; 19];
        code[..11].copy_from_slice(&[0xbe, 1, 0, 0, 0, 0xff, 0x25, 0, 0, 0, 0]);
        code[11..].copy_from_slice(&to.entry.to_le_bytes());
        to.entry = Box::leak(Box::new(code)).as_ptr() as u64;
    }
    to
}
