//! What a boot through the UEFI entry adds to the report: the firmware, its time
//! before the loader by the TSC, where the application came from, the UEFI memory
//! map per type and the RSDP with its copies. The firmware calls themselves are
//! stages of the timeline (`timeline.rs`).

use serde::Serialize;

use rusty_loader::efi::memory_map::type_name;
use rusty_loader::wire::{LoaderEvent, TypeTotalWord};

use super::first;
use super::format::{ser_hex, Clock};
use crate::decode::Event;

/// The UEFI entry's facts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UefiInfo {
    /// The firmware's vendor, from the system table.
    pub vendor: String,
    /// The system table's revision (0x20046: UEFI 2.70).
    pub revision: u64,
    /// The TSC at the EFI stub's entry: the ticks since the CPU's reset, most of
    /// them the firmware's.
    pub tsc_at_entry: u64,
    /// `tsc_at_entry` in microseconds, when the frequency is known: the firmware's
    /// time before the loader, as the guest's clock counts it.
    pub firmware_us: Option<f64>,
    /// Where the application came from (`load-file2` or `file`) and its path on the
    /// loader's volume (empty for LoadFile2).
    pub application: Option<(String, String)>,
    /// The firmware's memory map per UEFI type, as `ExitBootServices` took it.
    pub memory_types: Vec<MemoryType>,
    /// The ACPI RSDP and its copies, when the trace says.
    pub rsdp: Option<Rsdp>,
}

/// One UEFI memory type's total.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryType {
    /// The UEFI type's number (types above 254 as 255).
    pub kind: u64,
    /// Its name (`conventional`, `boot services data`, ...).
    pub name: &'static str,
    /// How many descriptors have it.
    pub descriptors: u64,
    /// Their bytes, added up.
    pub bytes: u64,
}

/// The RSDP the configuration table gave and where the loader copied it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rsdp {
    /// The firmware's RSDP (0: none).
    #[serde(serialize_with = "ser_hex")]
    pub firmware: u64,
    pub revision: u64,
    /// The copy in the loader's EBDA, where kernels 0.6–0.10 scan (0: none).
    #[serde(serialize_with = "ser_hex")]
    pub ebda: u64,
    /// The copy on the loader heap, which `/hermit,rsdp` names (0: none).
    #[serde(serialize_with = "ser_hex")]
    pub heap: u64,
}

/// The UEFI facts of a boot; `None` unless it went through the UEFI entry.
pub fn build(events: &[Event], clock: Clock) -> Option<UefiInfo> {
    let (vendor, revision, tsc_at_entry) = first!(events, LoaderEvent::UefiEntry { revision, vendor, tsc_at_entry } => (vendor.clone(), u64::from(*revision), *tsc_at_entry))?;
    let memory_types = first!(events, LoaderEvent::UefiMemoryMap { types, .. } => types.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|word| {
            let total = TypeTotalWord::unpack(word);
            MemoryType {
                kind: u64::from(total.kind),
                name: type_name(u32::from(total.kind)),
                descriptors: u64::from(total.descriptors),
                bytes: total.pages.saturating_mul(4096),
            }
        })
        .collect();
    Some(UefiInfo {
        vendor,
        revision,
        tsc_at_entry,
        firmware_us: clock.us(tsc_at_entry),
        application: first!(events, LoaderEvent::UefiApplication { source, path } => (source.clone(), path.clone())),
        memory_types,
        rsdp: first!(events, LoaderEvent::Rsdp { firmware, revision, ebda, heap } => Rsdp {
            firmware: *firmware,
            revision: u64::from(*revision),
            ebda: *ebda,
            heap: *heap,
        }),
    })
}

/// The system table's revision as UEFI writes versions: `2.70`.
pub fn revision_text(revision: u64) -> String {
    format!("{}.{}", revision >> 16, revision & 0xffff)
}
