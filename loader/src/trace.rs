//! The boot trace: every event the loader emits, defined once, here.
//!
//! Each `event!` line below defines one function and one defmt format string. The
//! format strings follow one grammar so that a decoder can read them back from the
//! displayed text without the defmt argument types: `Name key=value key=value ...`,
//! values without spaces, except a final `text=` field of type `str`, which takes
//! the rest of the line. `docs/trace-format.md` describes every event; a test keeps
//! that table and this list in step.
//!
//! Timestamps are TSC ticks since the Multiboot entry (the first instruction of the
//! loader). With the `trace` feature off every function here is empty, and only the
//! fatal-error text line remains.

/// The trace format version in `LoaderStart`. Bump it when an event's meaning or
/// fields change; adding an event does not change it.
pub const FORMAT_VERSION: u8 = 1;

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
    /// First event: the trace format version and the build identity (see "Identity"
    /// in docs/trace-format.md), and the MBI address. The loader image's own range is
    /// in the ELF (symbols `__loader_start`, `__loader_end`).
    info loader_start(format: u8, build: u64, mbi: u64)
    => "LoaderStart format={=u8} build={=u64:#x} mbi={=u64:#x}"
);
event!(
    /// The mode switch, timed by the 32-bit start-up code before any Rust ran: ticks
    /// from the Multiboot entry (time 0) to paging on, and to the first 64-bit
    /// instruction.
    info mode_switch(paging: u64, long_mode: u64) => "ModeSwitch paging={=u64} long_mode={=u64}"
);
event!(
    /// One entry of the Multiboot memory map; kind 1 is usable RAM.
    info memory_region(start: u64, end: u64, kind: u32)
    => "MemoryRegion start={=u64:#x} end={=u64:#x} kind={=u32}"
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
    /// One PT_LOAD segment copied and zeroed: its ELF address, where it went, sizes,
    /// flags (PF_X 1, PF_W 2, PF_R 4) and the ticks spent copying and zeroing.
    info segment_loaded(index: u8, vaddr: u64, addr: u64, filesz: u64, memsz: u64, flags: u8, copy_ticks: u64, zero_ticks: u64)
    => "SegmentLoaded index={=u8} vaddr={=u64:#x} addr={=u64:#x} filesz={=u64:#x} memsz={=u64:#x} flags={=u8} copy_ticks={=u64} zero_ticks={=u64}"
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
    /// The flattened device tree handed to the kernel.
    info device_tree(addr: u64, size: u32, ticks: u64)
    => "DeviceTree addr={=u64:#x} size={=u32} ticks={=u64}"
);
event!(
    /// The last event: the jump into the kernel. `rdi` is the boot info (a 128-byte
    /// `RawBootInfo`), `rsp` the lowest address of the zeroed 32 KiB stack (both sizes
    /// are fixed by the ABI), `tsc` the ticks at the jump.
    info hand_over(entry: u64, rdi: u64, rsp: u64, tsc: u64)
    => "HandOver entry={=u64:#x} rdi={=u64:#x} rsp={=u64:#x} tsc={=u64}"
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
