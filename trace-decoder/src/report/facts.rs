//! The facts of a boot the report states as they are: the loader's identity and
//! inputs, the TSC frequency, the application, its relocations and the hand-over
//! page tables, each section read from its event (the first of its kind in the
//! boot) by its own `of`.

use serde::Serialize;

use rusty_loader::wire::LoaderEvent;

use super::first;
use super::format::{self, ser_opt_hex};
use crate::decode::Event;

/// The loader's identity and inputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoaderInfo {
    /// The trace format version (`LoaderStart.format`).
    pub format: Option<u64>,
    /// The build identity, as a `0x` hex string.
    #[serde(serialize_with = "ser_opt_hex")]
    pub build: Option<u64>,
    /// The address EBX held at the entry: the Multiboot information's, or after a
    /// PVH entry the start info's (0 after a UEFI entry).
    #[serde(serialize_with = "ser_opt_hex")]
    pub mbi: Option<u64>,
    /// The boot protocol the loader was entered through (`multiboot`, `pvh`,
    /// `uefi`), when the trace names it (`Entry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// The MBI the loader wrote for the kernel after a PVH entry: address, size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mbi_built: Option<BuiltMbi>,
    /// The Multiboot command line.
    pub command_line: Option<CommandLine>,
    /// After a UEFI entry: the firmware, its time before the loader, the UEFI
    /// memory map per type, the RSDP (set once the clock is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uefi: Option<super::uefi::UefiInfo>,
    /// The level the loader was built to trace at (the finest of its ELF's
    /// table: `error`, `warn`, `info`, `debug`, `trace`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_level: Option<&'static str>,
}

/// The Multiboot information the loader wrote (after a PVH entry).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BuiltMbi {
    /// Its address, as a `0x` hex string.
    #[serde(serialize_with = "format::ser_hex")]
    pub addr: u64,
    /// Its size in bytes, memory map and command line included.
    pub size: u64,
}

/// The Multiboot command line, as the loader split it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandLine {
    /// The whole line, unchanged.
    pub text: String,
    /// Where the kernel arguments start (byte offset), if there are any.
    pub kernel_args_at: Option<u64>,
    /// Where the application arguments (after `--`) start, if there are any.
    pub app_args_at: Option<u64>,
}

/// The TSC frequency that turns ticks into time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Frequency {
    /// kHz; 0 when unknown (then every time in the report is in ticks).
    pub khz: u64,
    /// Where the loader got it (`cmdline`, `cpuid-15h`, `pit`, ...).
    pub source: Option<String>,
    /// How long the loader measured it, in microseconds (None when it was not
    /// measured, or the trace does not say).
    pub window_us: Option<u64>,
    /// Whether ticks can be turned into time.
    pub known: bool,
}

/// The validated application (`Kernel`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelInfo {
    /// `dyn` or `exec`.
    pub kind: String,
    /// The HERMIT note's entry version.
    pub entry_version: Option<u64>,
    /// The kernel version from the ABI-tag note (`0.0.0` when absent).
    pub version: String,
    /// The kernel generation whose rules it relies on.
    pub generation: String,
    /// The number of `PT_LOAD` segments.
    pub segments: Option<u64>,
    /// The load base.
    #[serde(serialize_with = "ser_opt_hex")]
    pub base: Option<u64>,
    /// The relocated entry point.
    #[serde(serialize_with = "ser_opt_hex")]
    pub entry: Option<u64>,
}

/// The relocations applied (`Relocated`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Relocations {
    /// `R_X86_64_RELATIVE` relocations.
    pub relative: Option<u64>,
    /// `R_X86_64_64` relocations.
    pub abs64: Option<u64>,
    /// `R_X86_64_GLOB_DAT` relocations.
    pub glob_dat: Option<u64>,
    /// Weak undefined symbols skipped.
    pub weak_skipped: Option<u64>,
}

/// The hand-over page tables (`PageTables`, `Mapping`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageTables {
    /// The rules they follow.
    pub contract: String,
    /// The PML4's address.
    #[serde(serialize_with = "ser_opt_hex")]
    pub pml4: Option<u64>,
    /// Table pages used.
    pub tables: Option<u64>,
    /// Bytes mapped with 4 KiB pages.
    pub bytes_4k: Option<u64>,
    /// Bytes mapped with 2 MiB pages.
    pub bytes_2m: Option<u64>,
    /// `Mapping` events seen (only in `debug` builds).
    pub mappings: usize,
}

impl LoaderInfo {
    /// From `LoaderStart`, `Entry`, `MbiBuilt` and `CommandLine` (the trace level
    /// is the record's, see [`crate::decode::BootRecord::trace_level`]).
    pub fn of(events: &[Event]) -> LoaderInfo {
        let start = first!(events, LoaderEvent::LoaderStart { format, build, mbi } => (*format, *build, *mbi));
        LoaderInfo {
            format: start.map(|(format, _, _)| u64::from(format)),
            build: start.map(|(_, build, _)| u64::from(build)),
            mbi: start.map(|(_, _, mbi)| u64::from(mbi)),
            entry: first!(events, LoaderEvent::Entry { protocol } => protocol.clone()),
            mbi_built: first!(events, LoaderEvent::MbiBuilt { addr, size } => BuiltMbi {
                addr: u64::from(*addr),
                size: u64::from(*size),
            }),
            command_line: first!(events, LoaderEvent::CommandLine { kernel_args_at, app_args_at, text } => {
                // 65535 marks an absent part.
                let at = |offset: u16| (offset != u16::MAX).then_some(u64::from(offset));
                CommandLine {
                    text: text.clone(),
                    kernel_args_at: at(*kernel_args_at),
                    app_args_at: at(*app_args_at),
                }
            }),
            uefi: None,
            trace_level: None,
        }
    }
}

impl Frequency {
    /// From `Frequency`; `None` with it when the boot has no such event.
    pub fn of(events: &[Event]) -> (Frequency, bool) {
        let event = first!(events, LoaderEvent::Frequency { khz, source, window_us } => (u64::from(*khz), source.clone(), u64::from(*window_us)));
        let khz = event.as_ref().map_or(0, |(khz, _, _)| *khz);
        let frequency = Frequency {
            khz,
            source: event.as_ref().map(|(_, source, _)| source.clone()),
            window_us: event
                .as_ref()
                .map(|(_, _, window)| *window)
                .filter(|&w| w > 0),
            known: khz > 0,
        };
        (frequency, event.is_some())
    }
}

impl KernelInfo {
    /// From `Kernel`.
    pub fn of(events: &[Event]) -> Option<KernelInfo> {
        first!(events, LoaderEvent::Kernel { kind, entry_version, major, minor, patch, generation, segments, base, entry } => KernelInfo {
            kind: kind.clone(),
            entry_version: Some(u64::from(*entry_version)),
            version: format!("{major}.{minor}.{patch}"),
            generation: generation.clone(),
            segments: Some(u64::from(*segments)),
            base: Some(*base),
            entry: Some(*entry),
        })
    }
}

impl Relocations {
    /// From `Relocated`.
    pub fn of(events: &[Event]) -> Option<Relocations> {
        first!(events, LoaderEvent::Relocated { relative, abs64, glob_dat, weak_skipped, .. } => Relocations {
            relative: Some(u64::from(*relative)),
            abs64: Some(u64::from(*abs64)),
            glob_dat: Some(u64::from(*glob_dat)),
            weak_skipped: Some(u64::from(*weak_skipped)),
        })
    }
}

impl PageTables {
    /// From `PageTables`, with the `Mapping` events counted.
    pub fn of(events: &[Event]) -> Option<PageTables> {
        let mappings = events
            .iter()
            .filter(|e| matches!(e.kind, LoaderEvent::Mapping { .. }))
            .count();
        first!(events, LoaderEvent::PageTables { contract, pml4, tables, bytes_4k, bytes_2m, .. } => PageTables {
            contract: contract.clone(),
            pml4: Some(*pml4),
            tables: Some(u64::from(*tables)),
            bytes_4k: Some(*bytes_4k),
            bytes_2m: Some(*bytes_2m),
            mappings,
        })
    }
}
