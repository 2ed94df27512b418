//! The Multiboot entry's boot information: the magic in EAX and the MBI at EBX,
//! read through the library's `rusty_loader::multiboot`, which decides every range
//! it reads (pointers, lengths, string ends, what lies in usable RAM). Physical
//! memory is `arch::memory::IdentityMemory`. The kernel gets this MBI as QEMU
//! wrote it, so what it points to stays where it is (`boot.rs` keeps it mapped).

use rusty_loader::error::LoadError;
use rusty_loader::memory::{MemoryMap, Region};
use rusty_loader::multiboot::Mbi;
use rusty_loader::Module;

use crate::arch::memory::IdentityMemory;
use crate::arch::MULTIBOOT_BOOTLOADER_MAGIC;
use crate::boot::BootSource;

/// The MBI a Multiboot loader (QEMU's `-kernel`) handed over.
pub struct Multiboot {
    mbi: Mbi<'static, IdentityMemory>,
    address: u32,
}

impl Multiboot {
    /// Checks the magic in EAX and reads the fixed part of the MBI at `address`
    /// (EBX).
    pub fn read(magic: u32, address: u32) -> Result<Self, LoadError> {
        if magic != MULTIBOOT_BOOTLOADER_MAGIC {
            return Err(LoadError::BadMultiboot {
                what: "EAX does not hold the Multiboot magic",
            });
        }
        Ok(Multiboot {
            mbi: Mbi::read(u64::from(address), &IdentityMemory)?,
            address,
        })
    }
}

impl BootSource for Multiboot {
    fn memory_map(&self) -> Result<MemoryMap, LoadError> {
        self.mbi.memory_map()
    }

    fn command_line(&self, usable: &[Region]) -> Result<Option<(&'static str, Region)>, LoadError> {
        self.mbi.command_line(usable)
    }

    fn firmware_mbi(&self) -> Option<(u32, Region)> {
        Some((self.address, self.mbi.region()))
    }

    fn module(&self, usable: &[Region]) -> Result<Option<Module<'static>>, LoadError> {
        self.mbi.module(usable)
    }

    fn missing_module(&self) -> LoadError {
        LoadError::NoModule
    }
}
