//! The boot trace's wire contract, defined once: the format version, the frame
//! marker, and every event with its fields, level, defmt format string and meaning.
//!
//! [`loader_events!`] lists the events. It is expanded twice: here, into the
//! [`EVENTS`] table and the typed [`LoaderEvent`] a decoder produces, and in the
//! loader binary (`src/trace.rs`), into one emitting function per event. So the
//! loader, the decoder and `docs/trace-format.md` (checked by `tests/docs.rs`) cannot
//! disagree on an event's fields.
//!
//! Each event is written as
//! `/// meaning`, `level Name function(field: type, ...) => "format string";`.
//! Field types are a small vocabulary, each with one wire encoding, one type for the
//! emitter and one for the decoded event:
//!
//! | type | defmt | emitter takes | decoded as |
//! | --- | --- | --- | --- |
//! | `u8` `u16` `u32` `u64` | `{=uN}` | `uN` | `uN` |
//! | `bool` | `{=bool}` | `bool` | `bool` |
//! | `str` | `{=str}` | `&str` | `String` |
//! | `istr` | `{=istr}` | an interned name | `String` |
//! | `memory_map` | `{=[?]}` of [`MapEntry`] | `&[MapEntry]` | `Vec<MapEntry>` |
//! | `words` | `{=[?]}` of [`Word`] | `&[Word]` | `Vec<u64>` |
//!
//! The format strings follow one grammar, `Name key=value ...`, so that a stock
//! `defmt-print` shows readable lines; the decoder does not depend on it (it reads
//! the values by their types).

use alloc::string::String;
use alloc::vec::Vec;

/// The trace format version in `LoaderStart`. Bump it when an event's meaning or
/// fields change; adding an event, or a field at the end of one, does not change it.
pub const FORMAT_VERSION: u8 = 3;

/// Written before every frame, so that text and frames share one stream: a frame
/// ends at its `00`, text runs from there to the next `FF 00`.
pub const FRAME_MARKER: [u8; 2] = [0xFF, 0x00];

/// How the loader's own text lines start (its fatal-error line, `rusty-loader:
/// error: ...`): a decoder tells them from the kernel's by it.
pub const TEXT_LINE_PREFIX: &str = "rusty-loader: ";

/// The defmt timestamp of every frame: the TSC ticks since the previous frame.
pub const TIMESTAMP_FORMAT: &str = "{=u32}";

/// One memory-map entry as the trace sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    /// 1 usable, 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, 5 defective.
    pub kind: u8,
}

/// The defmt format of one [`MapEntry`] inside `MemoryMap`: `start-end:kind`.
pub const MAP_ENTRY_FORMAT: &str = "{=u64:#x}-{=u64:#x}:{=u8}";

#[cfg(feature = "trace")]
impl defmt::Format for MapEntry {
    fn format(&self, f: defmt::Formatter) {
        // The literal is MAP_ENTRY_FORMAT (defmt needs a literal); the decoder's
        // tests check the two agree through a real loader ELF.
        defmt::write!(
            f,
            "{=u64:#x}-{=u64:#x}:{=u8}",
            self.start,
            self.end,
            self.kind
        )
    }
}

/// One 64-bit word of memory as the trace sends it in a list (a stack dump).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word(pub u64);

/// The defmt format of one [`Word`] inside a list: `0x...`.
pub const WORD_FORMAT: &str = "{=u64:#x}";

#[cfg(feature = "trace")]
impl defmt::Format for Word {
    fn format(&self, f: defmt::Formatter) {
        // The literal is WORD_FORMAT, as for MapEntry.
        defmt::write!(f, "{=u64:#x}", self.0)
    }
}

/// One UEFI memory type's total in `UefiMemoryMap`, packed into a word: the type
/// in the top 8 bits (types above 254 as 255), the descriptor count in the next 16
/// (saturating), the pages in the low 40 (saturating).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeTotalWord {
    pub kind: u8,
    pub descriptors: u16,
    pub pages: u64,
}

impl TypeTotalWord {
    const PAGES_MASK: u64 = (1 << 40) - 1;

    /// Packs a type's total, saturating each part.
    pub fn pack(kind: u32, descriptors: u32, pages: u64) -> u64 {
        let kind = u64::from(u8::try_from(kind).unwrap_or(u8::MAX));
        let descriptors = u64::from(u16::try_from(descriptors).unwrap_or(u16::MAX));
        kind << 56 | descriptors << 40 | pages.min(Self::PAGES_MASK)
    }

    /// Unpacks a word of `UefiMemoryMap.types`.
    pub fn unpack(word: u64) -> TypeTotalWord {
        TypeTotalWord {
            kind: (word >> 56) as u8,
            descriptors: (word >> 40) as u16,
            pages: word & Self::PAGES_MASK,
        }
    }
}

/// The most words a `CpuException` carries from the stack: enough for a few
/// return addresses, small enough for one short frame.
pub const STACK_WORDS: usize = 16;

/// A defmt log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The level's name as defmt writes it (`info`).
    pub const fn name(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The type of one field (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    U8,
    U16,
    U32,
    U64,
    Bool,
    Str,
    IStr,
    MemoryMap,
    /// A list of [`Word`]s.
    Words,
}

impl FieldType {
    /// The format of one element, for the list types.
    pub const fn element_format(self) -> Option<&'static str> {
        match self {
            FieldType::MemoryMap => Some(MAP_ENTRY_FORMAT),
            FieldType::Words => Some(WORD_FORMAT),
            _ => None,
        }
    }
}

/// One field of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
}

/// One event of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// The event's name, the first word of its format string.
    pub name: &'static str,
    /// The loader's function that emits it.
    pub function: &'static str,
    pub level: Level,
    /// The defmt format string.
    pub format: &'static str,
    /// The fields, in wire order.
    pub fields: &'static [FieldSpec],
    /// The meaning, one doc-comment line per line.
    pub doc: &'static str,
}

/// A decoded value, before it becomes a field of a [`LoaderEvent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Any unsigned integer.
    Unsigned(u64),
    Bool(bool),
    /// A `str` or an interned string.
    Str(String),
    /// A list of formatted values (each a list of its own values), as `{=[?]}` sends.
    List(Vec<Vec<Value>>),
}

/// Why values do not make an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContractError {
    /// No event of this name exists in the contract.
    UnknownEvent,
    /// Fewer values than fields, or one of the wrong type or range.
    BadField(&'static str),
}

/// Lists every event of the trace, in the order a boot emits them; expanded with a
/// macro that takes the list (see the module comment).
#[macro_export]
macro_rules! loader_events {
    ($callback:ident) => {
        $callback! {
            /// First event, timed at the loader's entry (time 0): the trace format version,
            /// the build identity (see "Identity" in docs/trace-format.md) and the address
            /// EBX held at the entry: the MBI, or after a PVH entry (see `Entry`) the PVH
            /// start info; 0 after a UEFI entry (the firmware's pointers are in
            /// `UefiEntry`'s stead). The loader image's own range is in the ELF (symbols
            /// `__loader_start`, `__loader_end`).
            info LoaderStart loader_start(format: u8, build: u32, mbi: u32)
                => "LoaderStart format={=u8} build={=u32:#x} mbi={=u32:#x}";
            /// Paging is on: sent after `LoaderStart` with the time the 32-bit start-up code
            /// recorded, before any Rust ran.
            info PagingEnabled paging_enabled() => "PagingEnabled";
            /// The first 64-bit instruction: sent with the time the start-up code recorded.
            info LongModeEntered long_mode_entered() => "LongModeEntered";
            /// The boot protocol the loader was entered through: `multiboot` (`start32`, the
            /// 32-bit image), `pvh` (`pvh_start32`, the 64-bit ELF's Xen PVH note) or `uefi`
            /// (`uefi_start64`, through the EFI stub of `rusty-loader.efi`; no
            /// `PagingEnabled` and `LongModeEntered` then: the firmware runs it in long
            /// mode).
            info Entry entry(protocol: istr) => "Entry protocol={=istr}";
            /// UEFI entry: the firmware (the system table's revision, its vendor) and the
            /// TSC when the EFI stub began, the loader's time 0, counted from the CPU's
            /// reset: the firmware's time before the loader, in TSC ticks.
            info UefiEntry uefi_entry(revision: u32, vendor: str, tsc_at_entry: u64)
                => "UefiEntry revision={=u32:#x} vendor={=str} tsc_at_entry={=u64}";
            /// UEFI entry: one boot-services call, in the order the loader made them:
            /// which, the EFI status it returned (0 success), the bytes it delivered (the
            /// application's size or bytes read, the map's size; else 0) and its ticks.
            info FirmwareCall firmware_call(call: istr, status: u64, bytes: u64, ticks: u64)
                => "FirmwareCall call={=istr} status={=u64:#x} bytes={=u64} ticks={=u64}";
            /// UEFI entry: where the application came from: `load-file2` (the initrd the
            /// firmware offers on the Linux initrd media device path: QEMU's `-initrd`) or
            /// `file` (the file `path` on the loader's volume).
            info UefiApplication uefi_application(source: istr, path: str)
                => "UefiApplication source={=istr} path={=str}";
            /// UEFI entry: the firmware's memory map as `ExitBootServices` took it, per UEFI
            /// memory type (`types`: one word per type, see `wire::TypeTotalWord`), its
            /// descriptor count and size. The map the kernel gets follows as `MemoryMap`.
            info UefiMemoryMap uefi_memory_map(descriptors: u16, descriptor_size: u16, types: words)
                => "UefiMemoryMap descriptors={=u16} descriptor_size={=u16} types={=[?]}";
            /// The memory map (Multiboot's, or the PVH start info's), every entry as
            /// `start-end:kind` (kind 1 usable RAM, 2 reserved, 3 ACPI reclaimable, 4 ACPI
            /// NVS, 5 defective; other PVH types are sent as 2). One event for the
            /// whole map (up to 32 entries; a longer map takes more events), which costs a
            /// third of one event per entry.
            info MemoryMap memory_map(regions: memory_map) => "MemoryMap regions={=[?]}";
            /// UEFI entry: the ACPI RSDP the configuration table gives (0: none; revision
            /// and copies 0 when it is not a valid RSDP), its revision and its copies: at
            /// the start of the EBDA the loader made (its segment at 0x40E; reserved in
            /// `MemoryMap`), where kernels 0.6–0.10 scan, and on the loader heap, which the
            /// device tree's `/hermit,rsdp` names for kernels 0.11+.
            info Rsdp rsdp(firmware: u64, revision: u8, ebda: u64, heap: u64)
                => "Rsdp firmware={=u64:#x} revision={=u8} ebda={=u64:#x} heap={=u64:#x}";
            /// The command line: after a Multiboot entry the file name, then kernel
            /// arguments from byte `kernel_args_at` (after a PVH entry, the arguments only),
            /// then app arguments (after `--`) from `app_args_at` (65535 where absent).
            info CommandLine command_line(kernel_args_at: u16, app_args_at: u16, text: str)
                => "CommandLine kernel_args_at={=u16} app_args_at={=u16} text={=str}";
            /// After a PVH entry: the Multiboot information the loader wrote for the kernel
            /// (memory map, command line) on its heap, inside the loader image.
            info MbiBuilt mbi_built(addr: u32, size: u32) => "MbiBuilt addr={=u32:#x} size={=u32}";
            /// Module 0, the application file.
            info Module module(start: u64, end: u64) => "Module start={=u64:#x} end={=u64:#x}";
            /// The validated application: ELF type, HERMIT entry version, kernel version from
            /// the GNU ABI-tag note (0.0.0 when absent, as on kernels before 0.10), the
            /// generation whose rules it relies on, its PT_LOAD count, load base and relocated
            /// entry point.
            info Kernel kernel(kind: istr, entry_version: u8, major: u8, minor: u8, patch: u8, generation: istr, segments: u8, base: u64, entry: u64)
                => "Kernel kind={=istr} entry_version={=u8} version={=u8}.{=u8}.{=u8} generation={=istr} segments={=u8} base={=u64:#x} entry={=u64:#x}";
            /// One PT_LOAD segment copied and zeroed, in program-header order: where it went
            /// (its ELF address plus the load bias: for `dyn`, `Kernel.base` minus the
            /// lowest segment's page address, 0 in Hermit kernels; for `exec`, 0), its sizes,
            /// flags (PF_X 1, PF_W 2, PF_R 4) and the ticks spent copying and zeroing.
            info SegmentLoaded segment_loaded(addr: u64, filesz: u64, memsz: u64, flags: u8, copy_ticks: u64, zero_ticks: u64)
                => "SegmentLoaded addr={=u64:#x} filesz={=u64:#x} memsz={=u64:#x} flags={=u8} copy_ticks={=u64} zero_ticks={=u64}";
            /// Relocations applied, per type, and the ticks spent.
            info Relocated relocated(relative: u32, abs64: u32, glob_dat: u32, weak_skipped: u32, ticks: u64)
                => "Relocated relative={=u32} abs64={=u32} glob_dat={=u32} weak_skipped={=u32} ticks={=u64}";
            /// The TLS image as passed in the boot info (relocated).
            info Tls tls(start: u64, filesz: u64, memsz: u64, align: u64)
                => "Tls start={=u64:#x} filesz={=u64:#x} memsz={=u64:#x} align={=u64:#x}";
            /// The TSC frequency that turns ticks into time and that the kernel is given,
            /// where it came from (`cmdline`, `cpuid-15h`, `cpuid-16h`, `hypervisor`; `pit`
            /// or `apic-timer`: measured against that counter across the loader's work;
            /// `unknown`: 0 kHz) and how long the measurement window was (0 when not
            /// measured).
            info Frequency frequency(khz: u32, source: istr, window_us: u32)
                => "Frequency khz={=u32} source={=istr} window_us={=u32}";
            /// The loader changed the command line the kernel gets: it inserted `inserted`
            /// at byte `at` (`-freq <MHz>` for a kernel of 0.6–0.10 given none, which
            /// would otherwise measure the TSC itself).
            info CommandLineEdited command_line_edited(at: u16, inserted: str)
                => "CommandLineEdited at={=u16} inserted={=str}";
            /// The flattened device tree handed to the kernel (not for entry version 2,
            /// whose boot info has no field for it).
            info DeviceTree device_tree(addr: u64, size: u32, ticks: u64)
                => "DeviceTree addr={=u64:#x} size={=u32} ticks={=u64}";
            /// One identity mapping of the hand-over page tables (page size in KiB).
            debug Mapping mapping(start: u64, end: u64, page_kib: u32, writable: bool)
                => "Mapping start={=u64:#x} end={=u64:#x} page_kib={=u32} writable={=bool}";
            /// The hand-over page tables: the rules they follow (`universal`: one layout for
            /// every kernel generation), PML4 address, table pages used, bytes mapped per page
            /// size, and the ticks spent building them.
            info PageTables page_tables(contract: istr, pml4: u64, tables: u16, bytes_4k: u64, bytes_2m: u64, ticks: u64)
                => "PageTables contract={=istr} pml4={=u64:#x} tables={=u16} bytes_4k={=u64:#x} bytes_2m={=u64:#x} ticks={=u64}";
            /// The last event: the jump into the kernel, at the event's time (the TSC is
            /// read as the frame starts; nothing but the jump follows). `rdi` is the boot
            /// info (a `RawBootInfo` of 128 bytes, 120 for entry version 2), `rsp` the lowest
            /// address of the zeroed 32 KiB stack (both sizes are fixed by the ABI);
            /// `trace_ticks` the ticks spent writing the trace before this frame.
            info HandOver hand_over(entry: u64, rdi: u64, rsp: u64, trace_ticks: u64)
                => "HandOver entry={=u64:#x} rdi={=u64:#x} rsp={=u64:#x} trace_ticks={=u64}";
            /// The loader refuses to boot: the exit code and its name, the ticks spent
            /// writing the trace before this frame; the text line follows with the details.
            error Refused refused(code: u8, name: istr, trace_ticks: u64, text: str)
                => "Refused code={=u8} name={=istr} trace_ticks={=u64} text={=str}";
            /// A CPU exception, in the loader or in the kernel before it has its own IDT,
            /// and the ticks spent writing the trace before this frame; then the state
            /// a diagnosis needs: `rsp`, `rflags` and `cr3` when it happened, and up to
            /// 16 words of the stack from `rsp` up, as far as the active page tables map
            /// them (read only while they are the loader's own: none once the kernel
            /// switched CR3, nor when `rsp` itself is unmapped, as after a stack
            /// overflow).
            error CpuException cpu_exception(vector: u8, error_code: u64, rip: u64, cr2: u64, in_kernel: bool, trace_ticks: u64, rsp: u64, rflags: u64, cr3: u64, stack: words)
                => "CpuException vector={=u8} error_code={=u64:#x} rip={=u64:#x} cr2={=u64:#x} in_kernel={=bool} trace_ticks={=u64} rsp={=u64:#x} rflags={=u64:#x} cr3={=u64:#x} stack={=[?]}";
        }
    };
}

/// The decoded Rust type of a field type.
macro_rules! decoded_type {
    (u8) => { u8 };
    (u16) => { u16 };
    (u32) => { u32 };
    (u64) => { u64 };
    (bool) => { bool };
    (str) => { String };
    (istr) => { String };
    (memory_map) => { Vec<MapEntry> };
    (words) => { Vec<u64> };
}

/// The [`FieldType`] of a field type.
macro_rules! field_type {
    (u8) => {
        FieldType::U8
    };
    (u16) => {
        FieldType::U16
    };
    (u32) => {
        FieldType::U32
    };
    (u64) => {
        FieldType::U64
    };
    (bool) => {
        FieldType::Bool
    };
    (str) => {
        FieldType::Str
    };
    (istr) => {
        FieldType::IStr
    };
    (memory_map) => {
        FieldType::MemoryMap
    };
    (words) => {
        FieldType::Words
    };
}

/// The [`Level`] of a level keyword.
macro_rules! level {
    (error) => {
        Level::Error
    };
    (warn) => {
        Level::Warn
    };
    (info) => {
        Level::Info
    };
    (debug) => {
        Level::Debug
    };
    (trace) => {
        Level::Trace
    };
}

/// Reads one field of type `$ty` named `$name` from a value.
macro_rules! take_value {
    ($ty:ident, $name:ident, $value:expr) => {
        take_value!(@ $ty, $value).ok_or(ContractError::BadField(stringify!($name)))
    };
    (@ bool, $value:expr) => {
        match $value {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    };
    (@ str, $value:expr) => { take_string($value) };
    (@ istr, $value:expr) => { take_string($value) };
    (@ memory_map, $value:expr) => { take_memory_map($value) };
    (@ words, $value:expr) => { take_words($value) };
    (@ $int:ident, $value:expr) => {
        match $value {
            Some(Value::Unsigned(n)) => <$int>::try_from(*n).ok(),
            _ => None,
        }
    };
}

/// The [`Value`] of a field of type `$ty`.
macro_rules! to_value {
    (bool, $field:expr) => {
        Value::Bool(*$field)
    };
    (str, $field:expr) => {
        Value::Str($field.clone())
    };
    (istr, $field:expr) => {
        Value::Str($field.clone())
    };
    (memory_map, $field:expr) => {
        Value::List(
            $field
                .iter()
                .map(|e| {
                    alloc::vec![
                        Value::Unsigned(e.start),
                        Value::Unsigned(e.end),
                        Value::Unsigned(u64::from(e.kind)),
                    ]
                })
                .collect(),
        )
    };
    (words, $field:expr) => {
        Value::List(
            $field
                .iter()
                .map(|w| alloc::vec![Value::Unsigned(*w)])
                .collect(),
        )
    };
    ($int:ident, $field:expr) => {
        Value::Unsigned(u64::from(*$field))
    };
}

fn take_string(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

fn take_memory_map(value: Option<&Value>) -> Option<Vec<MapEntry>> {
    let Some(Value::List(items)) = value else {
        return None;
    };
    items
        .iter()
        .map(|item| match item.as_slice() {
            [Value::Unsigned(start), Value::Unsigned(end), Value::Unsigned(kind)] => {
                Some(MapEntry {
                    start: *start,
                    end: *end,
                    kind: u8::try_from(*kind).ok()?,
                })
            }
            _ => None,
        })
        .collect()
}

fn take_words(value: Option<&Value>) -> Option<Vec<u64>> {
    let Some(Value::List(items)) = value else {
        return None;
    };
    items
        .iter()
        .map(|item| match item.as_slice() {
            [Value::Unsigned(word)] => Some(*word),
            _ => None,
        })
        .collect()
}

/// Expands the event list into the contract's table and its typed events.
macro_rules! define_contract {
    ($(
        $(#[doc = $doc:literal])*
        $level:ident $name:ident $function:ident($($field:ident: $ty:ident),* $(,)?) => $format:literal;
    )*) => {
        /// Every event of the contract, in the order a boot emits them.
        pub static EVENTS: &[EventSpec] = &[$(
            EventSpec {
                name: stringify!($name),
                function: stringify!($function),
                level: level!($level),
                format: $format,
                fields: &[$(FieldSpec { name: stringify!($field), ty: field_type!($ty) }),*],
                doc: concat!($($doc, "\n"),*),
            },
        )*];

        /// A decoded loader event: one variant per event of the contract, its fields
        /// typed as the loader sent them.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum LoaderEvent {
            $(
                $(#[doc = $doc])*
                $name { $($field: decoded_type!($ty)),* },
            )*
            /// An event the contract does not define (from a newer loader): its name
            /// and its message as displayed.
            Unknown { name: String, message: String },
        }

        impl LoaderEvent {
            /// The event's name (`SegmentLoaded`).
            pub fn name(&self) -> &str {
                match self {
                    $(LoaderEvent::$name { .. } => stringify!($name),)*
                    LoaderEvent::Unknown { name, .. } => name,
                }
            }

            /// The event's entry in [`EVENTS`]; `None` for an unknown event (even one
            /// that carries a known name in another format).
            pub fn spec(&self) -> Option<&'static EventSpec> {
                match self {
                    LoaderEvent::Unknown { .. } => None,
                    known => EVENTS.iter().find(|spec| spec.name == known.name()),
                }
            }

            /// Builds the event `name` from its values in wire order. Values beyond
            /// the contract's fields (a newer loader's trailing fields) are ignored.
            pub fn from_values(name: &str, values: &[Value]) -> Result<LoaderEvent, ContractError> {
                match name {
                    $(stringify!($name) => {
                        #[allow(unused_mut, unused_variables)]
                        let mut values = values.iter();
                        Ok(LoaderEvent::$name {
                            $($field: take_value!($ty, $field, values.next())?,)*
                        })
                    })*
                    _ => Err(ContractError::UnknownEvent),
                }
            }

            /// The event's values in wire order (empty for an unknown event).
            pub fn values(&self) -> Vec<Value> {
                match self {
                    $(LoaderEvent::$name { $($field),* } => alloc::vec![$(to_value!($ty, $field)),*],)*
                    LoaderEvent::Unknown { .. } => Vec::new(),
                }
            }
        }
    };
}

loader_events!(define_contract);

impl LoaderEvent {
    /// False for the events sent with a time recorded earlier (`LoaderStart`,
    /// `PagingEnabled`, `LongModeEntered` carry the start-up code's stamps); true for
    /// every other, whose time is when it was sent.
    pub fn timed_when_sent(&self) -> bool {
        !matches!(
            self,
            LoaderEvent::LoaderStart { .. }
                | LoaderEvent::PagingEnabled {}
                | LoaderEvent::LongModeEntered {}
        )
    }

    /// The level the contract gives the event (`Info` for an unknown one).
    pub fn level(&self) -> Level {
        self.spec().map_or(Level::Info, |spec| spec.level)
    }
}

/// An event field's value narrowed to the field's width: a value too large for it
/// is sent as the field's maximum, never wrapped.
pub fn saturate<T: Bounded, V: TryInto<T>>(value: V) -> T {
    value.try_into().unwrap_or(T::MAX)
}

/// An unsigned type with a maximum, for [`saturate`].
pub trait Bounded {
    const MAX: Self;
}

impl Bounded for u8 {
    const MAX: u8 = u8::MAX;
}
impl Bounded for u16 {
    const MAX: u16 = u16::MAX;
}
impl Bounded for u32 {
    const MAX: u32 = u32::MAX;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_fields_matching_its_format_string() {
        for spec in EVENTS {
            assert!(
                spec.format.starts_with(spec.name),
                "{} starts its format",
                spec.name
            );
            let parameters = spec.format.matches("{=").count();
            assert_eq!(parameters, spec.fields.len(), "fields of {}", spec.name);
            // Every `key=` before a parameter names the field it shows (the three
            // version parts share one key).
            for field in spec.fields {
                let shown = spec.format.contains(&alloc::format!("{}=", field.name))
                    || (spec.name == "Kernel" && ["major", "minor", "patch"].contains(&field.name));
                assert!(shown, "{}.{} is shown in the format", spec.name, field.name);
            }
            let expected = match spec.level {
                Level::Error => "error",
                Level::Debug => "debug",
                _ => "info",
            };
            assert_eq!(spec.level.name(), expected, "level of {}", spec.name);
        }
    }

    #[test]
    fn names_are_unique_and_values_round_trip() {
        for (i, a) in EVENTS.iter().enumerate() {
            assert!(EVENTS[i + 1..]
                .iter()
                .all(|b| b.name != a.name && b.format != a.format));
        }
        let event = LoaderEvent::MemoryMap {
            regions: alloc::vec![MapEntry {
                start: 0,
                end: 0x9fc00,
                kind: 1
            }],
        };
        assert_eq!(
            LoaderEvent::from_values("MemoryMap", &event.values()),
            Ok(event)
        );
        let kernel = LoaderEvent::Kernel {
            kind: "dyn".into(),
            entry_version: 4,
            major: 0,
            minor: 13,
            patch: 0,
            generation: "0.11+".into(),
            segments: 4,
            base: 0x800000,
            entry: 0x8043e0,
        };
        let mut values = kernel.values();
        assert_eq!(values.len(), 9);
        values.push(Value::Unsigned(7));
        assert_eq!(
            LoaderEvent::from_values("Kernel", &values),
            Ok(kernel.clone()),
            "a newer loader's trailing field is ignored"
        );
        assert_eq!(
            LoaderEvent::from_values("Kernel", &values[..3]),
            Err(ContractError::BadField("minor"))
        );
        values[1] = Value::Unsigned(300);
        assert_eq!(
            LoaderEvent::from_values("Kernel", &values),
            Err(ContractError::BadField("entry_version")),
            "a value too wide for its field is refused, not wrapped"
        );
        assert_eq!(
            LoaderEvent::from_values("Nonsense", &[]),
            Err(ContractError::UnknownEvent)
        );
        assert!(!LoaderEvent::PagingEnabled {}.timed_when_sent());
        assert_eq!(kernel.level(), Level::Info);
    }

    #[test]
    fn type_totals_pack_into_a_word() {
        let word = TypeTotalWord::pack(7, 5, 0x3000);
        assert_eq!(
            TypeTotalWord::unpack(word),
            TypeTotalWord {
                kind: 7,
                descriptors: 5,
                pages: 0x3000
            }
        );
        let huge = TypeTotalWord::unpack(TypeTotalWord::pack(0x7000_0000, 70_000, u64::MAX));
        assert_eq!(
            (huge.kind, huge.descriptors, huge.pages),
            (255, 65535, (1 << 40) - 1)
        );
    }

    #[test]
    fn saturates_instead_of_wrapping() {
        assert_eq!(saturate::<u8, _>(300_u32), 255);
        assert_eq!(saturate::<u8, _>(7_usize), 7);
        assert_eq!(saturate::<u16, _>(u64::MAX), u16::MAX);
        assert_eq!(saturate::<u32, _>(5_u64), 5);
    }
}
