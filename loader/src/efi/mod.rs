//! The pure part of the UEFI entry: everything the loader decides about what the
//! firmware gave it, host-tested like the Multiboot and PVH readers.
//!
//! - [`memory_map`]: the firmware's memory descriptors read from `GetMemoryMap`'s
//!   buffer, summarised per UEFI type for the trace, and turned into the map the
//!   kernel gets (Multiboot types, as after `ExitBootServices`).
//! - [`load_options`]: the loaded image's `LoadOptions` (UCS-2) as the command
//!   line, with the `initrd=` word OVMF appends taken off.
//! - [`acpi`]: the RSDP from the configuration table checked, and where its copy
//!   goes for kernels 0.6–0.10, which look for it only in the EBDA and the BIOS area.
//! - [`payload`]: the header the EFI stub reads to put the loader image in place.
//! - [`status`]: EFI status codes by name, for the refusal lines.
//!
//! The binary's `uefi` module makes the firmware calls and hands their results here.

pub mod acpi;
pub mod load_options;
pub mod memory_map;
pub mod payload;
pub mod status;
