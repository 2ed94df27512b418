//! Reads what the loader needs from the PVH start info, and writes the Multiboot
//! information the kernel gets in its place. The library's `rusty_loader::pvh`
//! decides every range it reads and `rusty_loader::mbi_writer` lays out the MBI;
//! this file only reaches physical memory (through `mbi::IdentityMemory`) and puts
//! the MBI on the loader heap, inside the loader image, where the layout planning
//! keeps it below the kernel.
//!
//! After this, a PVH boot is a Multiboot boot: the same [`BootInputs`], with the
//! MBI and the command line the kernel reads on the loader heap instead of in
//! firmware memory (which may lie where kernels want nothing mapped).

use alloc::vec::Vec;

use rusty_loader::cmdline;
use rusty_loader::error::LoadError;
use rusty_loader::mbi_writer::{mbi_size, write_mbi};
use rusty_loader::memory::{merged_ram, Region};
use rusty_loader::pvh::StartInfo;

use crate::mbi::{BootInputs, IdentityMemory, Module};
use crate::trace;

/// A zeroed buffer of `size` bytes on the loader heap, kept for good (the kernel
/// reads it after the hand-over).
fn leaked_buffer(size: usize) -> Result<&'static mut [u8], LoadError> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(size)
        .map_err(|_| LoadError::BadStartInfo {
            what: "the memory map and command line are too large for the loader's heap",
        })?;
    buffer.resize(size, 0);
    Ok(buffer.leak())
}

/// Reads the start info at `start_info_addr` and writes the kernel's MBI. The
/// memory map is traced as soon as it is read, then the MBI, so that a refusal of
/// what comes next still shows them.
pub fn read(start_info_addr: u32) -> Result<BootInputs, LoadError> {
    let info = StartInfo::read(u64::from(start_info_addr), &IdentityMemory)?;
    let map = info.memory_map()?;
    trace::memory_map(&map.entries);
    let usable = merged_ram(&map.ram)?;
    let original = info.command_line()?.unwrap_or("");

    let buffer = leaked_buffer(mbi_size(map.entries.len(), original))?;
    let address = buffer.as_ptr() as u64;
    let written = write_mbi(buffer, address, &map.entries, original)?;
    let mbi_region = Region::new(address, address + buffer.len() as u64);
    trace::mbi_built(mbi_region);
    // The kernel gets the copy: the firmware's buffer stays unmapped.
    let buffer: &'static [u8] = buffer;
    let line_at = (written.command_line - address) as usize;
    let command_line =
        core::str::from_utf8(&buffer[line_at..line_at + original.len()]).map_err(|_| {
            LoadError::BadStartInfo {
                what: "the command line changed while it was copied",
            }
        })?;

    let module = match info.module(&usable)? {
        None => None,
        Some(module) => {
            let options = cmdline::loader_options(module.string.unwrap_or(""))?;
            Some(Module {
                region: module.region,
                bytes: module.bytes,
                keep_command_line: options.keep_command_line,
            })
        }
    };

    Ok(BootInputs {
        ram: map.ram,
        mbi_region,
        command_line: Some(command_line),
        // Nothing outside the loader image needs to stay: the MBI and the command
        // line the kernel reads are copies on the heap.
        boot_data: Region::new(0, 0),
        module,
    })
}
