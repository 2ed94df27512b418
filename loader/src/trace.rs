//! The boot trace: every event the loader emits, defined once, here.
//!
//! Each `event!` line below defines one function and one defmt format string. The
//! format strings follow one grammar so that a decoder can read them back from the
//! displayed text without the defmt argument types: `Name key=value key=value ...`,
//! values without spaces, except a final `text=` field of type `str`, which takes
//! the rest of the line. `docs/trace-format.md` describes every event; a test keeps
//! that table and this list in step.
//!
//! Every frame's timestamp is the TSC ticks since the previous frame's (the first
//! frame's: since the Multiboot entry, the loader's first instruction), so it takes
//! 2–4 bytes instead of a u64; a decoder adds them up. [`at`] gives the next event a
//! time recorded earlier (the start-up code's stamps). With the `trace` feature off
//! every function here is empty, and only the fatal-error text line remains.

use crate::mbi::MapEntry;

/// The trace format version in `LoaderStart`. Bump it when an event's meaning or
/// fields change; adding an event does not change it.
pub const FORMAT_VERSION: u8 = 2;

/// Gives the next event the time `ticks` (since the Multiboot entry) instead of
/// the time it is sent: for moments recorded before the trace could be written.
pub fn at(ticks: u64) {
    #[cfg(feature = "trace")]
    crate::logger::time_next_frame(ticks);
    #[cfg(not(feature = "trace"))]
    let _ = ticks;
}

/// One memory-map entry, shown as `start-end:kind` (17 bytes on the wire).
#[cfg(feature = "trace")]
impl defmt::Format for MapEntry {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "{=u64:#x}-{=u64:#x}:{=u8}",
            self.start,
            self.end,
            self.kind
        )
    }
}

macro_rules! event {
    ($(#[$doc:meta])* $level:ident $name:ident($($arg:ident: $ty:ty),*) => $format:literal) => {
        $(#[$doc])*
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        pub fn $name($($arg: $ty),*) {
            #[cfg(feature = "trace")]
            defmt::$level!($format, $($arg),*);
            #[cfg(not(feature = "trace"))]
            let _ = ($($arg,)*);
        }
    };
}

/// A string interned in the ELF (sent as a 2-byte index), or a plain `&str` when
/// tracing is compiled out.
#[cfg(feature = "trace")]
pub type Name = defmt::Str;
#[cfg(not(feature = "trace"))]
pub type Name = &'static str;

/// Interns a string literal for a `Name` field.
#[macro_export]
macro_rules! name {
    ($s:literal) => {{
        #[cfg(feature = "trace")]
        let name = defmt::intern!($s);
        #[cfg(not(feature = "trace"))]
        let name = $s;
        name
    }};
}

event!(
    /// First event, timed at the Multiboot entry (time 0): the trace format version,
    /// the build identity (see "Identity" in docs/trace-format.md) and the MBI
    /// address. The loader image's own range is in the ELF (symbols
    /// `__loader_start`, `__loader_end`).
    info loader_start(format: u8, build: u32, mbi: u32)
    => "LoaderStart format={=u8} build={=u32:#x} mbi={=u32:#x}"
);
event!(
    /// Paging is on: sent after `LoaderStart` with the time the 32-bit start-up code
    /// recorded, before any Rust ran.
    info paging_enabled() => "PagingEnabled"
);
event!(
    /// The first 64-bit instruction: sent with the time the start-up code recorded.
    info long_mode_entered() => "LongModeEntered"
);
event!(
    /// The Multiboot memory map, every entry as `start-end:kind` (kind 1 usable RAM,
    /// 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, 5 defective). One event for the
    /// whole map (up to 32 entries; a longer map takes more events), which costs a
    /// third of one event per entry.
    info memory_map(regions: &[MapEntry]) => "MemoryMap regions={=[?]}"
);
event!(
    /// The Multiboot command line: the file name, then kernel arguments from
    /// byte `kernel_args_at`, then app arguments (after `--`) from `app_args_at`
    /// (65535 where absent).
    info command_line(kernel_args_at: u16, app_args_at: u16, text: &str)
    => "CommandLine kernel_args_at={=u16} app_args_at={=u16} text={=str}"
);
event!(
    /// The TSC frequency used to turn ticks into time, and where it came from.
    info frequency(khz: u32, source: Name) => "Frequency khz={=u32} source={=istr}"
);
event!(
    /// Module 0, the application file.
    info module(start: u64, end: u64) => "Module start={=u64:#x} end={=u64:#x}"
);
event!(
    /// The validated application: ELF type, HERMIT entry version, kernel version from
    /// the GNU ABI-tag note (0.0.0 when absent, as on kernels before 0.10), the
    /// generation whose rules it relies on, its PT_LOAD count, load base and relocated
    /// entry point.
    info kernel(kind: Name, entry_version: u8, major: u8, minor: u8, patch: u8, generation: Name, segments: u8, base: u64, entry: u64)
    => "Kernel kind={=istr} entry_version={=u8} version={=u8}.{=u8}.{=u8} generation={=istr} segments={=u8} base={=u64:#x} entry={=u64:#x}"
);
event!(
    /// One PT_LOAD segment copied and zeroed, in program-header order: where it went
    /// (its ELF address plus the load bias: for `dyn`, `Kernel.base` minus the
    /// lowest segment's page address, 0 in Hermit kernels; for `exec`, 0), its sizes,
    /// flags (PF_X 1, PF_W 2, PF_R 4) and the ticks spent copying and zeroing.
    info segment_loaded(addr: u64, filesz: u64, memsz: u64, flags: u8, copy_ticks: u64, zero_ticks: u64)
    => "SegmentLoaded addr={=u64:#x} filesz={=u64:#x} memsz={=u64:#x} flags={=u8} copy_ticks={=u64} zero_ticks={=u64}"
);
event!(
    /// Relocations applied, per type, and the ticks spent.
    info relocated(relative: u32, abs64: u32, glob_dat: u32, weak_skipped: u32, ticks: u64)
    => "Relocated relative={=u32} abs64={=u32} glob_dat={=u32} weak_skipped={=u32} ticks={=u64}"
);
event!(
    /// The TLS image as passed in the boot info (relocated).
    info tls(start: u64, filesz: u64, memsz: u64, align: u64)
    => "Tls start={=u64:#x} filesz={=u64:#x} memsz={=u64:#x} align={=u64:#x}"
);
event!(
    /// One identity mapping of the hand-over page tables (page size in KiB).
    debug mapping(start: u64, end: u64, page_kib: u32, writable: bool)
    => "Mapping start={=u64:#x} end={=u64:#x} page_kib={=u32} writable={=bool}"
);
event!(
    /// The hand-over page tables: the rules they follow (`universal`: one layout for
    /// every kernel generation), PML4 address, table pages used, bytes mapped per page
    /// size, and the ticks spent building them.
    info page_tables(contract: Name, pml4: u64, tables: u16, bytes_4k: u64, bytes_2m: u64, ticks: u64)
    => "PageTables contract={=istr} pml4={=u64:#x} tables={=u16} bytes_4k={=u64:#x} bytes_2m={=u64:#x} ticks={=u64}"
);
event!(
    /// The flattened device tree handed to the kernel (not for entry version 2,
    /// whose boot info has no field for it).
    info device_tree(addr: u64, size: u32, ticks: u64)
    => "DeviceTree addr={=u64:#x} size={=u32} ticks={=u64}"
);
event!(
    /// The last event: the jump into the kernel, at the event's time (the TSC is
    /// read as the frame starts; nothing but the jump follows). `rdi` is the boot
    /// info (a `RawBootInfo` of 128 bytes, 120 for entry version 2), `rsp` the lowest
    /// address of the zeroed 32 KiB stack (both sizes are fixed by the ABI).
    info hand_over(entry: u64, rdi: u64, rsp: u64)
    => "HandOver entry={=u64:#x} rdi={=u64:#x} rsp={=u64:#x}"
);
event!(
    /// The loader refuses to boot: the exit code and its name; the text line
    /// follows with the details.
    error refused(code: u8, name: Name, text: &str) => "Refused code={=u8} name={=istr} text={=str}"
);
event!(
    /// A CPU exception, in the loader or in the kernel before it has its own IDT.
    error cpu_exception(vector: u8, error_code: u64, rip: u64, cr2: u64, in_kernel: bool)
    => "CpuException vector={=u8} error_code={=u64:#x} rip={=u64:#x} cr2={=u64:#x} in_kernel={=bool}"
);
