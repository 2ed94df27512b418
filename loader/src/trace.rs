//! The boot trace as the loader sends it.
//!
//! The events themselves are defined once, in the library's wire contract
//! (`rusty_loader::wire`, listed by `loader_events!`); expanding that list here gives
//! one emitting function per event in [`emit`], each a single defmt call with the
//! event's format string. The loader does not call them directly: the typed wrappers
//! below take the loader's own types (a `Kernel`, a `Segment`, a `LoadError`) and
//! narrow every field to its wire width in one place, saturating instead of
//! wrapping. With the `trace` feature off every function here is empty, and only
//! the fatal-error text line remains.

use rusty_loader::elf::{ElfKind, Generation, Kernel, RelocStats, Segment, SegmentTicks};
use rusty_loader::error::{ExitCode, LoadError};
use rusty_loader::layout::{HandOverTables, Layout};
use rusty_loader::memory::Region;
use rusty_loader::paging::PageSize;
use rusty_loader::wire::{saturate, MapEntry, Word, FORMAT_VERSION};
use rusty_loader::{cmdline, exit_codes, EntryProtocol};

use rusty_loader::cmdline::FrequencyInserted;

use crate::arch::exceptions::Exception;
use crate::arch::freq::{Frequency, Source};
use crate::arch::{EarlyStamps, HandOver};

/// A string interned in the ELF (sent as a 2-byte index), or a plain `&str` when
/// tracing is compiled out.
#[cfg(feature = "trace")]
pub type Name = defmt::Str;
#[cfg(not(feature = "trace"))]
pub type Name = &'static str;

/// Interns a string literal for a `Name` field.
macro_rules! name {
    ($s:literal) => {{
        #[cfg(feature = "trace")]
        let name = defmt::intern!($s);
        #[cfg(not(feature = "trace"))]
        let name = $s;
        name
    }};
}

/// The emitter's argument type for a field type of the wire contract.
macro_rules! emitted_type {
    (u8) => {
        u8
    };
    (u16) => {
        u16
    };
    (u32) => {
        u32
    };
    (u64) => {
        u64
    };
    (bool) => {
        bool
    };
    (str) => {
        &str
    };
    (istr) => {
        Name
    };
    (memory_map) => {
        &[MapEntry]
    };
    (words) => {
        &[Word]
    };
}

/// Expands the contract's event list into one function per event.
macro_rules! define_emitters {
    ($(
        $(#[doc = $doc:literal])*
        $level:ident $name:ident $function:ident($($field:ident: $ty:ident),* $(,)?) => $format:literal;
    )*) => {$(
        $(#[doc = $doc])*
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        pub fn $function($($field: emitted_type!($ty)),*) {
            #[cfg(feature = "trace")]
            defmt::$level!($format, $($field),*);
            #[cfg(not(feature = "trace"))]
            let _ = ($($field,)*);
        }
    )*};
}

/// One function per event of the wire contract, sending it as is.
pub mod emit {
    use super::{MapEntry, Name, Word};
    rusty_loader::loader_events!(define_emitters);
}

/// Gives the next event the time `ticks` (since the Multiboot entry) instead of the
/// time it is sent: for moments recorded before the trace could be written.
fn at(ticks: u64) {
    #[cfg(feature = "trace")]
    crate::logger::time_next_frame(ticks);
    #[cfg(not(feature = "trace"))]
    let _ = ticks;
}

/// The first four events: `LoaderStart` at the entry, then the start-up code's
/// two stamps, each carried as its event's time, and the entry protocol.
pub fn loader_started(entry: EntryProtocol, info: u32, stamps: EarlyStamps) {
    at(0);
    emit::loader_start(FORMAT_VERSION, build_id(), info);
    if entry == EntryProtocol::Uefi {
        // No mode switch: the firmware runs the loader in long mode.
        emit::entry(name!("uefi"));
        return;
    }
    at(stamps.paging_on.wrapping_sub(stamps.entry));
    emit::paging_enabled();
    at(stamps.long_mode.wrapping_sub(stamps.entry));
    emit::long_mode_entered();
    emit::entry(match entry {
        EntryProtocol::Multiboot => name!("multiboot"),
        EntryProtocol::Pvh => name!("pvh"),
        EntryProtocol::Uefi => name!("uefi"),
    });
}

/// The firmware and the TSC at the EFI stub's entry (UEFI).
pub fn uefi_entry(revision: u32, vendor: &str, tsc_at_entry: u64) {
    emit::uefi_entry(revision, vendor, tsc_at_entry);
}

/// One boot-services call (UEFI).
pub fn firmware_call(call: crate::uefi::Call, status: u64, bytes: u64, ticks: u64) {
    use crate::uefi::Call;
    let name = match call {
        Call::LoadedImage => name!("HandleProtocol(LoadedImage)"),
        Call::LocateInitrd => name!("LocateDevicePath(LoadFile2 initrd)"),
        Call::InitrdSize => name!("LoadFile2(size)"),
        Call::AllocateApplication => name!("AllocatePages(application)"),
        Call::ReadInitrd => name!("LoadFile2(read)"),
        Call::OpenVolume => name!("OpenVolume"),
        Call::OpenFile => name!("Open"),
        Call::FileSize => name!("GetInfo(FileInfo)"),
        Call::ReadFile => name!("Read"),
        Call::GetMemoryMap => name!("GetMemoryMap"),
        Call::ExitBootServices => name!("ExitBootServices"),
    };
    emit::firmware_call(name, status, bytes, ticks);
}

/// Where the application came from (UEFI).
pub fn uefi_application(source: &crate::uefi::Source, path: &str) {
    let source = match source {
        crate::uefi::Source::LoadFile2 => name!("load-file2"),
        crate::uefi::Source::File => name!("file"),
    };
    emit::uefi_application(source, path);
}

/// The firmware's memory map per UEFI type (UEFI).
pub fn uefi_memory_map(
    descriptors: &[rusty_loader::efi::memory_map::Descriptor],
    descriptor_size: usize,
) {
    let totals = rusty_loader::efi::memory_map::summary(descriptors);
    let words: alloc::vec::Vec<Word> = totals
        .iter()
        .map(|t| {
            Word(rusty_loader::wire::TypeTotalWord::pack(
                t.kind,
                t.descriptors,
                t.pages,
            ))
        })
        .collect();
    emit::uefi_memory_map(
        saturate(descriptors.len()),
        saturate(descriptor_size),
        &words,
    );
}

/// The RSDP and its copies (UEFI).
pub fn rsdp(firmware: u64, revision: u8, ebda: u64, heap: u64) {
    emit::rsdp(firmware, revision, ebda, heap);
}

/// The MBI the loader wrote for the kernel (PVH).
pub fn mbi_built(region: Region) {
    emit::mbi_built(saturate(region.start), saturate(region.len()));
}

/// The build identity `LoaderStart` sends (see the logger).
fn build_id() -> u32 {
    #[cfg(feature = "trace")]
    let id = crate::logger::build_id();
    #[cfg(not(feature = "trace"))]
    let id = 0;
    id
}

/// How many memory-map entries one `MemoryMap` event carries: a longer map takes
/// several events, each frame staying small.
const MAP_ENTRIES_PER_EVENT: usize = 32;

/// The whole memory map, in as many `MemoryMap` events as it takes.
pub fn memory_map(entries: &[MapEntry]) {
    for chunk in entries.chunks(MAP_ENTRIES_PER_EVENT) {
        emit::memory_map(chunk);
    }
}

/// The command line and where its parts start (65535 where a part is absent; an
/// offset beyond 65534 is sent as 65534).
pub fn command_line(text: &str, shape: cmdline::Shape) {
    let split = cmdline::split(text, shape);
    let offset =
        |at: Option<usize>| at.map_or(u16::MAX, |at| saturate::<u16, _>(at).min(u16::MAX - 1));
    emit::command_line(
        offset(split.kernel_args_at),
        offset(split.app_args_at),
        text,
    );
}

/// The TSC frequency, its source and the measurement window.
pub fn frequency(frequency: &Frequency) {
    let source = match frequency.source {
        Source::CommandLine => name!("cmdline"),
        Source::CpuidCrystal => name!("cpuid-15h"),
        Source::CpuidBase => name!("cpuid-16h"),
        Source::Hypervisor => name!("hypervisor"),
        Source::Pit => name!("pit"),
        Source::ApicTimer => name!("apic-timer"),
        Source::Unknown => name!("unknown"),
    };
    emit::frequency(frequency.khz, source, frequency.window_us);
}

/// The loader's change to the kernel's command line.
pub fn command_line_edited(edit: &FrequencyInserted) {
    emit::command_line_edited(saturate(edit.at), &edit.inserted);
}

/// The ticks spent writing the trace so far.
fn trace_ticks() -> u64 {
    #[cfg(feature = "trace")]
    let ticks = crate::logger::output_ticks();
    #[cfg(not(feature = "trace"))]
    let ticks = 0;
    ticks
}

/// Module 0, the application file.
pub fn module(region: Region) {
    emit::module(region.start, region.end);
}

/// The validated application and where it goes.
pub fn kernel(kernel: &Kernel, layout: &Layout, entry: u64) {
    let kind = match kernel.kind {
        ElfKind::Dyn => name!("dyn"),
        ElfKind::Exec => name!("exec"),
    };
    let generation = match kernel.generation() {
        Generation::Legacy => name!("0.6-0.10"),
        Generation::Modern => name!("0.11+"),
    };
    // Kernels without the ABI-tag note are shown as 0.0.0.
    let (major, minor, patch) = kernel
        .kernel_version
        .map_or((0, 0, 0), |v| (v.major, v.minor, v.patch));
    emit::kernel(
        kind,
        kernel.entry_version,
        saturate(major),
        saturate(minor),
        saturate(patch),
        generation,
        saturate(kernel.segments.len()),
        layout.kernel().start,
        entry,
    );
}

/// One segment copied and zeroed, at its loaded address.
pub fn segment_loaded(segment: &Segment, bias: u64, ticks: SegmentTicks) {
    emit::segment_loaded(
        segment.vaddr.wrapping_add(bias),
        segment.file_size,
        segment.mem_size,
        saturate(segment.flags),
        ticks.copy,
        ticks.zero,
    );
}

/// The relocations applied.
pub fn relocated(stats: &RelocStats, ticks: u64) {
    emit::relocated(
        stats.relative,
        stats.abs64,
        stats.glob_dat,
        stats.skipped_weak,
        ticks,
    );
}

/// The TLS image as the boot info describes it.
pub fn tls(tls: &hermit_entry::boot_info::TlsInfo) {
    emit::tls(tls.start, tls.filesz, tls.memsz, tls.align);
}

/// The device tree handed to the kernel.
pub fn device_tree(fdt: &[u8], ticks: u64) {
    emit::device_tree(fdt.as_ptr() as u64, saturate(fdt.len()), ticks);
}

/// The hand-over page tables (and, at `debug`, each mapping).
pub fn page_tables(layout: &Layout, tables: &HandOverTables, ticks: u64) {
    let stats = tables.stats();
    for mapping in layout.mappings() {
        let page_kib = match mapping.page_size {
            PageSize::Size4K => 4,
            PageSize::Size2M => 2048,
        };
        emit::mapping(mapping.start, mapping.end, page_kib, mapping.writable);
    }
    emit::page_tables(
        name!("universal"),
        tables.pml4(),
        saturate(stats.tables),
        stats.bytes_4k,
        stats.bytes_2m,
        ticks,
    );
}

/// The jump into the kernel.
pub fn hand_over(to: &HandOver) {
    emit::hand_over(to.entry, to.boot_info, to.stack, trace_ticks());
}

/// The refusal: its code, the code's name and the message.
pub fn refused(error: &LoadError) {
    let code = error.exit_code();
    emit::refused(
        code.port_value(),
        code_name(code),
        trace_ticks(),
        &alloc::format!("{error}"),
    );
}

/// A CPU exception, in the loader or in the kernel before it has its own IDT. Not
/// sent when the exception came in the middle of writing a frame, which must not
/// start another one.
pub fn cpu_exception(exception: &Exception) {
    #[cfg(feature = "trace")]
    if crate::logger::frame_in_progress() {
        return;
    }
    emit::cpu_exception(
        exception.vector,
        exception.error_code,
        exception.rip,
        exception.cr2,
        exception.in_kernel,
        trace_ticks(),
        exception.rsp,
        exception.rflags,
        exception.cr3,
        exception.stack,
    );
}

/// Expands the exit-code list into the interned name of each code.
macro_rules! define_code_names {
    ($($(#[doc = $doc:literal])* $variant:ident = $value:literal, $name:literal;)*) => {
        /// The exit code's name as an interned trace string (`ExitCode::name`).
        fn code_name(code: ExitCode) -> Name {
            match code {
                $(ExitCode::$variant => name!($name),)*
            }
        }
    };
}
exit_codes!(define_code_names);
