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
    /// First event: the format version and the build identity, then where the loader
    /// and the MBI are.
    info loader_start(format: u8, build: u64, image_start: u64, image_end: u64, mbi: u64)
    => "LoaderStart format={=u8} build={=u64:#x} image_start={=u64:#x} image_end={=u64:#x} mbi={=u64:#x}"
);
event!(
    /// The TSC at the Multiboot entry (0 by definition: the time base).
    info multiboot_entry(tsc: u64) => "MultibootEntry tsc={=u64}"
);
event!(
    /// The TSC right after paging was enabled by the 32-bit start-up code.
    info paging_enabled(tsc: u64) => "PagingEnabled tsc={=u64}"
);
event!(
    /// The TSC at the first 64-bit instruction.
    info long_mode_entered(tsc: u64) => "LongModeEntered tsc={=u64}"
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
    /// The validated application: ELF type, HERMIT entry version, its load base and
    /// relocated entry point, the number of PT_LOAD segments.
    info kernel(kind: Name, entry_version: u8, segments: u8, base: u64, entry: u64)
    => "Kernel kind={=istr} entry_version={=u8} segments={=u8} base={=u64:#x} entry={=u64:#x}"
);
event!(
    /// The kernel version from the GNU ABI-tag note (absent on kernels before 0.10).
    info kernel_version(major: u32, minor: u32, patch: u32)
    => "KernelVersion major={=u32} minor={=u32} patch={=u32}"
);
event!(
    /// Which paging rules the hand-over tables follow and why.
    info generation(generation: Name, contract: Name)
    => "Generation generation={=istr} contract={=istr}"
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
    /// The hand-over page tables: PML4 address, table pages used, bytes mapped per
    /// page size, and the ticks spent building them.
    info page_tables(pml4: u64, tables: u16, bytes_4k: u64, bytes_2m: u64, ticks: u64)
    => "PageTables pml4={=u64:#x} tables={=u16} bytes_4k={=u64:#x} bytes_2m={=u64:#x} ticks={=u64}"
);
event!(
    /// The flattened device tree handed to the kernel.
    info device_tree(addr: u64, size: u32, ticks: u64)
    => "DeviceTree addr={=u64:#x} size={=u32} ticks={=u64}"
);
event!(
    /// The boot info (rdi).
    info boot_info(addr: u64, size: u32) => "BootInfo addr={=u64:#x} size={=u32}"
);
event!(
    /// The kernel's zeroed stack (rsp is its lowest address).
    info stack(bottom: u64, size: u32) => "Stack bottom={=u64:#x} size={=u32}"
);
event!(
    /// The last event: the jump into the kernel.
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
