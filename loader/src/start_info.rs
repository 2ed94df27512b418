//! The PVH entry's boot information: the start info at EBX, read through the
//! library's `rusty_loader::pvh`, which decides every range it reads. Physical
//! memory is `arch::memory::IdentityMemory`. PVH hands the kernel no MBI: `boot.rs`
//! writes one, with a copy of the command line, so nothing of the firmware's (which
//! may lie where kernels want nothing mapped) needs to stay.

use rusty_loader::error::LoadError;
use rusty_loader::memory::{MemoryMap, Region};
use rusty_loader::pvh::StartInfo;
use rusty_loader::Module;

use crate::arch::memory::IdentityMemory;
use crate::boot::BootSource;

/// The start info a PVH VMM handed over.
pub struct Pvh {
    info: StartInfo<'static, IdentityMemory>,
}

impl Pvh {
    /// Reads the start info at `address` (EBX): its magic, its version, its fields.
    pub fn read(address: u32) -> Result<Self, LoadError> {
        Ok(Pvh {
            info: StartInfo::read(u64::from(address), &IdentityMemory)?,
        })
    }
}

impl BootSource for Pvh {
    fn memory_map(&self) -> Result<MemoryMap, LoadError> {
        self.info.memory_map()
    }

    /// The start info's command line may lie in firmware memory, outside usable RAM.
    fn command_line(
        &self,
        _usable: &[Region],
    ) -> Result<Option<(&'static str, Region)>, LoadError> {
        self.info.command_line()
    }

    fn firmware_mbi(&self) -> Option<(u32, Region)> {
        None
    }

    fn module(&self, usable: &[Region]) -> Result<Option<Module<'static>>, LoadError> {
        self.info.module(usable)
    }

    fn missing_module(&self) -> LoadError {
        LoadError::NoStartInfoModule
    }
}
