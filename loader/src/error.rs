//! Every way a boot can be refused, each with its own isa-debug-exit code.
//!
//! The loader writes `code` to the isa-debug-exit port (0xf4); QEMU then exits with
//! status `(code << 1) | 1`. Codes 0 and 1 are what Hermit kernels themselves write
//! (QEMU status 1 and 3), so the loader's codes start at 0x10 and never collide with
//! a kernel's own result. CPU exceptions use `0x40 + vector` (QEMU status
//! `129 + 2 * vector`). The table in `docs/exit-codes.md` lists them; a test keeps
//! the two in step.

use core::fmt;

/// Lists every exit code once: its variant, port value, stable name and meaning.
/// Expanded here into [`ExitCode`], and in the loader binary into the interned
/// names its `Refused` event sends, so the two cannot drift apart.
#[macro_export]
macro_rules! exit_codes {
    ($callback:ident) => {
        $callback! {
            /// No module: QEMU was started without `-initrd` (none in the Multiboot
            /// information, `nr_modules` 0 in the PVH start info).
            NoModule = 0x10, "no-module";
            /// The module does not start with the ELF magic (or is empty).
            NotElf = 0x11, "not-elf";
            /// ELF, but not 64-bit little endian.
            WrongClass = 0x12, "wrong-class";
            /// ELF64, but not for x86_64.
            WrongMachine = 0x13, "wrong-machine";
            /// Neither `ET_EXEC` nor `ET_DYN`.
            WrongType = 0x14, "wrong-type";
            /// Headers, notes or dynamic section are broken or point outside the file.
            MalformedElf = 0x15, "malformed-elf";
            /// No HERMIT note: not a Hermit application.
            NoHermitNote = 0x16, "no-hermit-note";
            /// A HERMIT note with an entry version this loader cannot serve.
            UnsupportedEntryVersion = 0x17, "unsupported-entry-version";
            /// `DT_NEEDED`: the application wants shared libraries.
            NeedsSharedLibrary = 0x18, "needs-shared-library";
            /// A `PT_LOAD` segment's file range lies outside the file.
            SegmentOutsideFile = 0x19, "segment-outside-file";
            /// A relocation type the loader does not implement.
            UnsupportedRelocation = 0x1a, "unsupported-relocation";
            /// The kernel image would overlap the loader, the MBI, the module or the area
            /// reserved for boot data.
            LayoutOverlap = 0x1b, "layout-overlap";
            /// Not enough RAM for the kernel image or for boot data.
            NotEnoughMemory = 0x1c, "not-enough-memory";
            /// The Multiboot hand-over itself is unusable (magic, missing memory map).
            BadMultiboot = 0x1d, "bad-multiboot";
            /// A bug in the loader: a Rust panic.
            LoaderPanic = 0x1e, "loader-panic";
            /// The identity mappings for the hand-over page tables are inconsistent
            /// (misaligned, overlapping, not identity-mappable) or leave the tables unmapped.
            BadMapping = 0x1f, "bad-mapping";
            /// The flattened device tree for the kernel could not be built.
            FdtBuild = 0x20, "fdt-build";
            /// The module exceeds a bound the loader puts on its work (program headers,
            /// bytes of notes), which no real application comes near.
            ElfTooComplex = 0x21, "elf-too-complex";
            /// A word after the application's file name in `-initrd` that is not one of
            /// the loader's options.
            UnknownOption = 0x22, "unknown-option";
            /// The PVH start info is unusable: its magic or version, a pointer or length
            /// in it, or a memory map whose entries overlap.
            BadStartInfo = 0x23, "bad-start-info";
            /// The dynamic section describes the relocation or symbol table
            /// inconsistently: a table without its size or entry size (or the reverse),
            /// an entry size other than 24, a size that is not whole entries, a
            /// `DT_RELACOUNT` the table does not bear out, a tag given twice with two
            /// values.
            InconsistentDynamic = 0x24, "inconsistent-dynamic";
            /// A dynamic tag or a program header type in no range the ELF specification
            /// defines: a corrupted entry, whose meaning the loader cannot know.
            UndefinedTag = 0x25, "undefined-tag";
            /// The `DT_RELA` or `DT_SYMTAB` table does not lie in the file bytes of a
            /// `PT_LOAD` segment.
            TableOutsideSegments = 0x26, "table-outside-segments";
            /// The `PT_DYNAMIC` segment is not loaded where it says: it lies outside
            /// the file bytes of every `PT_LOAD` segment, or at another file offset.
            DynamicOutsideSegments = 0x27, "dynamic-outside-segments";
            /// The `PT_TLS` template is not loaded where it says: it lies outside the
            /// file bytes of every `PT_LOAD` segment, or at another file offset.
            TlsOutsideSegments = 0x28, "tls-outside-segments";
            /// A relocation's 8-byte target does not lie inside one `PT_LOAD`
            /// segment's memory: in a gap between segments, outside the image, or
            /// across a segment's end.
            RelocationOutsideSegments = 0x29, "relocation-outside-segments";
            /// The entry point does not lie in the file bytes of an executable
            /// (`PF_X`) `PT_LOAD` segment.
            EntryOutsideCode = 0x2a, "entry-outside-code";
            /// Two `PT_LOAD` segments overlap in memory, or are not in ascending
            /// address order.
            OverlappingSegments = 0x2b, "overlapping-segments";
            /// A `PT_LOAD` or `PT_TLS` segment has more file bytes than memory
            /// (`p_filesz` > `p_memsz`).
            FileSizeAboveMemorySize = 0x2c, "filesz-above-memsz";
            /// A `PT_LOAD` segment's alignment cannot be kept: `p_align` not a power of
            /// two, `p_offset` and `p_vaddr` not congruent, or (position-independent
            /// kernels) an image start that is not a multiple of a segment's alignment.
            MisalignedSegment = 0x2d, "misaligned-segment";
            /// The `PT_LOAD` segments occupy no memory: there is nothing to run.
            EmptyImage = 0x2e, "empty-image";
            /// UEFI entry: the firmware offers the application neither through LoadFile2
            /// (QEMU's `-initrd`) nor as a file (`initrd=PATH` in the load options, or
            /// `initrd` next to the loader), or the file is empty.
            NoApplication = 0x30, "no-application";
            /// UEFI entry: a boot-services call the loader needs failed.
            FirmwareCallFailed = 0x31, "firmware-call-failed";
            /// UEFI entry: `ExitBootServices` failed twice, the second time with a
            /// memory map read right before it.
            ExitBootServicesFailed = 0x32, "exit-boot-services-failed";
            /// UEFI entry: the firmware's memory map cannot be read or describes no
            /// memory a kernel can use.
            UnusableUefiMemoryMap = 0x33, "unusable-uefi-memory-map";
            /// UEFI entry: the memory the loader image is linked at (from 1 MiB) is
            /// not free, so the EFI stub cannot put the loader there.
            LoaderAreaTaken = 0x34, "loader-area-taken";
            /// A CPU exception while the loader runs; the real code is `CpuException + vector`.
            CpuException = 0x40, "cpu-exception";
        }
    };
}

macro_rules! define_exit_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $value:literal, $name:literal;)*) => {
        /// The loader's exit codes, as written to the isa-debug-exit port.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum ExitCode {
            $($(#[doc = $doc])* $variant = $value,)*
        }

        impl ExitCode {
            /// Every code, in table order (for docs and tests).
            pub const ALL: &'static [ExitCode] = &[$(ExitCode::$variant),*];

            /// A short stable name, used in messages and in the docs table.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ExitCode::$variant => $name,)*
                }
            }
        }
    };
}

exit_codes!(define_exit_codes);

impl ExitCode {
    /// The value written to the isa-debug-exit port.
    pub const fn port_value(self) -> u8 {
        self as u8
    }

    /// The exit status QEMU reports for this code.
    pub const fn qemu_status(self) -> i32 {
        ((self as i32) << 1) | 1
    }

    /// The exit status QEMU reports for CPU exception `vector`.
    pub const fn exception_status(vector: u8) -> i32 {
        (((ExitCode::CpuException as u8 + vector) as i32) << 1) | 1
    }
}

/// Why the loader refuses to boot, with the context the message names.
///
/// `Display` gives the one line the loader prints before it exits; it always names
/// what was found, so the user does not need a debugger to see why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    NoModule,
    /// The PVH start info lists no module.
    NoStartInfoModule,
    /// Module 0 holds no byte: `-initrd` named an empty file.
    EmptyModule,
    NotElf {
        magic: [u8; 4],
    },
    WrongClass {
        class: u8,
        data: u8,
    },
    WrongMachine {
        machine: u16,
    },
    WrongType {
        e_type: u16,
    },
    MalformedElf {
        what: &'static str,
    },
    NoHermitNote,
    UnsupportedEntryVersion {
        version: u8,
    },
    NeedsSharedLibrary,
    SegmentOutsideFile {
        index: usize,
        offset: u64,
        size: u64,
        file_len: u64,
    },
    UnsupportedRelocation {
        r_type: u32,
        offset: u64,
    },
    /// `what` overlaps `other`; both ranges are physical `[start, end)`.
    LayoutOverlap {
        what: &'static str,
        start: u64,
        end: u64,
        other: &'static str,
        other_start: u64,
        other_end: u64,
    },
    NotEnoughMemory {
        what: &'static str,
        start: u64,
        end: u64,
    },
    /// A relocatable kernel's first place `kernel` overlaps the module, and above
    /// the module, up to `above_end`, there is no RAM for it.
    NoRoomBesideModule {
        kernel: (u64, u64),
        module: (u64, u64),
        above_end: u64,
    },
    BadMultiboot {
        what: &'static str,
    },
    /// The PVH start info is unusable: `what` says why.
    BadStartInfo {
        what: &'static str,
    },
    /// EBX at the PVH entry does not point at a start info.
    StartInfoMagic {
        address: u64,
        magic: u32,
    },
    /// Two entries of the PVH memory map claim the same memory.
    OverlappingMemoryMap {
        first: (u64, u64),
        second: (u64, u64),
    },
    /// A page mapping `[start, end)` cannot be built: `what` says why.
    BadMapping {
        what: &'static str,
        start: u64,
        end: u64,
    },
    /// The device-tree writer refused: `what` says why.
    FdtBuild {
        what: &'static str,
    },
    /// `option`, after the application's file name in `-initrd`, is not a loader
    /// option.
    UnknownOption {
        option: &'static str,
    },
    /// UEFI: no application from the firmware; `tried` says where the loader looked.
    NoApplication {
        tried: &'static str,
    },
    /// UEFI: the application file the firmware offers is empty.
    EmptyApplication {
        source: &'static str,
    },
    /// UEFI: the boot-services call `call` returned the error `status`.
    FirmwareCall {
        call: &'static str,
        status: u64,
    },
    /// UEFI: `ExitBootServices` returned `first`, then after a fresh memory map
    /// `second`.
    ExitBootServices {
        first: u64,
        second: u64,
    },
    /// UEFI: the memory map is unusable: `what` says why.
    UnusableUefiMemoryMap {
        what: &'static str,
    },
    /// UEFI: the stub could not allocate `[start, end)` for the loader image.
    LoaderAreaTaken {
        start: u64,
        end: u64,
        status: u64,
    },
    /// The module has `found` of `what` where the loader reads at most `limit`.
    ElfTooComplex {
        what: &'static str,
        found: u64,
        limit: u64,
    },
    /// The dynamic section has the tag `present` but not `missing`, which says how
    /// to read the table `present` names (or names the table `missing` describes).
    DynamicTagMissing {
        present: &'static str,
        missing: &'static str,
    },
    /// The dynamic tag `tag` gives `value` as the size of an entry; `expected` is the
    /// size of the record the loader reads.
    DynamicEntrySize {
        tag: &'static str,
        value: u64,
        expected: u64,
    },
    /// `DT_RELASZ` is not a whole number of 24-byte entries.
    RelocationTableSize {
        size: u64,
    },
    /// `DT_RELACOUNT` counts more relative relocations than the table holds entries.
    RelativeCountAboveEntries {
        count: u64,
        entries: u64,
    },
    /// Entry `index` of the relocation table is of type `r_type`, but lies among the
    /// first `count` entries, which `DT_RELACOUNT` says are `R_X86_64_RELATIVE`.
    RelativeCountDisagrees {
        index: usize,
        count: u64,
        r_type: u32,
    },
    /// The dynamic tag `tag` appears twice, with two values.
    RepeatedDynamicTag {
        tag: &'static str,
        first: u64,
        second: u64,
    },
    /// Relocations of a kind the loader does not apply: `tag` names `size` bytes of them.
    UnappliedRelocations {
        tag: &'static str,
        size: u64,
    },
    /// Entry `index` of the dynamic section has a tag in no range the ELF
    /// specification defines.
    UndefinedDynamicTag {
        index: usize,
        tag: u64,
    },
    /// Program header `index` has a type in no range the ELF specification defines.
    UndefinedSegmentType {
        index: usize,
        p_type: u32,
    },
    /// The `table` the dynamic section names at `start` (to `end`, when its size is
    /// known) does not lie in the file bytes of one `PT_LOAD` segment.
    TableOutsideSegments {
        table: &'static str,
        start: u64,
        end: Option<u64>,
    },
    /// `what` (`PT_DYNAMIC` or the `PT_TLS` template), at `[start, end)` and file
    /// offset `file_offset`, is not what the `PT_LOAD` segments place there: no
    /// segment's file bytes hold those addresses (`loaded_from` is `None`), or the one
    /// that does loads them from the file offset `loaded_from`.
    NotLoadedAsSaid {
        what: NotLoaded,
        start: u64,
        end: u64,
        file_offset: u64,
        loaded_from: Option<u64>,
    },
    /// Relocation `index` writes 8 bytes at `target`, not inside one `PT_LOAD`
    /// segment's memory.
    RelocationOutsideSegments {
        index: usize,
        target: u64,
    },
    /// The entry point `entry` is not in the file bytes of an executable `PT_LOAD`
    /// segment.
    EntryOutsideCode {
        entry: u64,
    },
    /// `PT_LOAD` program header `index` starts at `vaddr`, below the start
    /// `previous_vaddr` of the one before it, `previous_index`.
    SegmentsOutOfOrder {
        index: usize,
        vaddr: u64,
        previous_index: usize,
        previous_vaddr: u64,
    },
    /// `PT_LOAD` program header `index`, at `[start, end)`, overlaps the one before
    /// it, `previous_index`, which ends at `previous_end`.
    OverlappingSegments {
        index: usize,
        start: u64,
        end: u64,
        previous_index: usize,
        previous_end: u64,
    },
    /// Program header `index` (a `segment_type`) has `p_filesz` > `p_memsz`.
    FileSizeAboveMemorySize {
        index: usize,
        segment_type: &'static str,
        file_size: u64,
        mem_size: u64,
    },
    /// Program header `index` (a `segment_type`) has a `p_align` that is neither 0,
    /// 1 nor a power of two.
    AlignmentNotPowerOfTwo {
        index: usize,
        segment_type: &'static str,
        align: u64,
    },
    /// `PT_LOAD` program header `index` has `p_offset` and `p_vaddr` that differ
    /// modulo `modulus`.
    OffsetNotCongruent {
        index: usize,
        offset: u64,
        vaddr: u64,
        modulus: u64,
    },
    /// A position-independent kernel whose image starts at `image_start`, not a
    /// multiple of the alignment `align` of `PT_LOAD` program header `index`.
    ImageStartMisaligned {
        index: usize,
        align: u64,
        image_start: u64,
    },
    /// Every `PT_LOAD` segment has `p_memsz` 0.
    EmptyImage {
        segments: usize,
    },
}

/// What [`LoadError::NotLoadedAsSaid`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotLoaded {
    /// The `PT_DYNAMIC` segment.
    Dynamic,
    /// The `PT_TLS` segment's template (its file bytes).
    TlsTemplate,
}

impl NotLoaded {
    const fn name(self) -> &'static str {
        match self {
            NotLoaded::Dynamic => "PT_DYNAMIC",
            NotLoaded::TlsTemplate => "the PT_TLS template",
        }
    }
}

impl LoadError {
    pub const fn exit_code(&self) -> ExitCode {
        match self {
            LoadError::NoModule | LoadError::NoStartInfoModule => ExitCode::NoModule,
            LoadError::NotElf { .. } | LoadError::EmptyModule => ExitCode::NotElf,
            LoadError::WrongClass { .. } => ExitCode::WrongClass,
            LoadError::WrongMachine { .. } => ExitCode::WrongMachine,
            LoadError::WrongType { .. } => ExitCode::WrongType,
            LoadError::MalformedElf { .. } => ExitCode::MalformedElf,
            LoadError::NoHermitNote => ExitCode::NoHermitNote,
            LoadError::UnsupportedEntryVersion { .. } => ExitCode::UnsupportedEntryVersion,
            LoadError::NeedsSharedLibrary => ExitCode::NeedsSharedLibrary,
            LoadError::SegmentOutsideFile { .. } => ExitCode::SegmentOutsideFile,
            LoadError::UnsupportedRelocation { .. } => ExitCode::UnsupportedRelocation,
            LoadError::LayoutOverlap { .. } => ExitCode::LayoutOverlap,
            LoadError::NotEnoughMemory { .. } | LoadError::NoRoomBesideModule { .. } => {
                ExitCode::NotEnoughMemory
            }
            LoadError::BadMultiboot { .. } => ExitCode::BadMultiboot,
            LoadError::BadStartInfo { .. }
            | LoadError::StartInfoMagic { .. }
            | LoadError::OverlappingMemoryMap { .. } => ExitCode::BadStartInfo,
            LoadError::BadMapping { .. } => ExitCode::BadMapping,
            LoadError::FdtBuild { .. } => ExitCode::FdtBuild,
            LoadError::ElfTooComplex { .. } => ExitCode::ElfTooComplex,
            LoadError::UnknownOption { .. } => ExitCode::UnknownOption,
            LoadError::DynamicTagMissing { .. }
            | LoadError::DynamicEntrySize { .. }
            | LoadError::RelocationTableSize { .. }
            | LoadError::RelativeCountAboveEntries { .. }
            | LoadError::RelativeCountDisagrees { .. }
            | LoadError::RepeatedDynamicTag { .. } => ExitCode::InconsistentDynamic,
            LoadError::UnappliedRelocations { .. } => ExitCode::UnsupportedRelocation,
            LoadError::UndefinedDynamicTag { .. } | LoadError::UndefinedSegmentType { .. } => {
                ExitCode::UndefinedTag
            }
            LoadError::TableOutsideSegments { .. } => ExitCode::TableOutsideSegments,
            LoadError::NotLoadedAsSaid { what, .. } => match what {
                NotLoaded::Dynamic => ExitCode::DynamicOutsideSegments,
                NotLoaded::TlsTemplate => ExitCode::TlsOutsideSegments,
            },
            LoadError::RelocationOutsideSegments { .. } => ExitCode::RelocationOutsideSegments,
            LoadError::EntryOutsideCode { .. } => ExitCode::EntryOutsideCode,
            LoadError::SegmentsOutOfOrder { .. } | LoadError::OverlappingSegments { .. } => {
                ExitCode::OverlappingSegments
            }
            LoadError::FileSizeAboveMemorySize { .. } => ExitCode::FileSizeAboveMemorySize,
            LoadError::AlignmentNotPowerOfTwo { .. }
            | LoadError::OffsetNotCongruent { .. }
            | LoadError::ImageStartMisaligned { .. } => ExitCode::MisalignedSegment,
            LoadError::EmptyImage { .. } => ExitCode::EmptyImage,
            LoadError::NoApplication { .. } | LoadError::EmptyApplication { .. } => {
                ExitCode::NoApplication
            }
            LoadError::FirmwareCall { .. } => ExitCode::FirmwareCallFailed,
            LoadError::ExitBootServices { .. } => ExitCode::ExitBootServicesFailed,
            LoadError::UnusableUefiMemoryMap { .. } => ExitCode::UnusableUefiMemoryMap,
            LoadError::LoaderAreaTaken { .. } => ExitCode::LoaderAreaTaken,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoModule => {
                write!(f, "no Multiboot module: pass the Hermit application with -initrd")
            }
            LoadError::NoStartInfoModule => write!(
                f,
                "the PVH start info lists no module (nr_modules 0): pass the Hermit application with -initrd"
            ),
            LoadError::EmptyModule => write!(
                f,
                "the module is empty (0 bytes): -initrd names an empty file"
            ),
            LoadError::NotElf { magic } => write!(
                f,
                "the module is not an ELF file (starts with {:02x} {:02x} {:02x} {:02x})",
                magic[0], magic[1], magic[2], magic[3]
            ),
            LoadError::WrongClass { class, data } => write!(
                f,
                "the module is not a 64-bit little-endian ELF (EI_CLASS {class}, EI_DATA {data})"
            ),
            LoadError::WrongMachine { machine } => {
                write!(f, "the module is not for x86_64 (e_machine {machine})")
            }
            LoadError::WrongType { e_type } => write!(
                f,
                "the module is neither ET_EXEC nor ET_DYN (e_type {e_type})"
            ),
            LoadError::MalformedElf { what } => write!(f, "malformed ELF: {what}"),
            LoadError::NoHermitNote => write!(
                f,
                "no HERMIT note (type 0x5a00) in the module: not a Hermit application"
            ),
            LoadError::UnsupportedEntryVersion { version } => write!(
                f,
                "HERMIT entry version {version} is not supported (this loader serves 2, 3 and 4)"
            ),
            LoadError::NeedsSharedLibrary => write!(
                f,
                "the application needs shared libraries (DT_NEEDED): Hermit apps must be static"
            ),
            LoadError::SegmentOutsideFile { index, offset, size, file_len } => write!(
                f,
                "PT_LOAD segment {index} (file offset {offset:#x}, size {size:#x}) lies outside the {file_len:#x}-byte file"
            ),
            LoadError::UnsupportedRelocation { r_type, offset } => write!(
                f,
                "unsupported relocation type {r_type} at offset {offset:#x}"
            ),
            LoadError::LayoutOverlap { what, start, end, other, other_start, other_end } => write!(
                f,
                "{what} [{start:#x}, {end:#x}) overlaps {other} [{other_start:#x}, {other_end:#x})"
            ),
            LoadError::NotEnoughMemory { what, start, end } => {
                write!(
                    f,
                    "not enough RAM: {what} [{start:#x}, {end:#x}) is not in usable memory"
                )?;
                ram_to_reach(f, "", *end)
            }
            LoadError::NoRoomBesideModule {
                kernel,
                module,
                above_end,
            } => {
                write!(
                    f,
                    "not enough RAM: the kernel image [{:#x}, {:#x}) would overlap the module [{:#x}, {:#x}), and above the module there is no room for it",
                    kernel.0, kernel.1, module.0, module.1
                )?;
                // Either the kernel goes above the module, or (where the VMM puts the
                // module at the top of RAM, as PVH does) more RAM moves the module up
                // past the kernel: RAM reaches at least as far as the nearer of both.
                let both = kernel.1.saturating_add(module.1.saturating_sub(module.0));
                ram_to_reach(f, "", both.min(*above_end))
            }
            LoadError::BadMultiboot { what } => write!(f, "unusable Multiboot information: {what}"),
            LoadError::BadStartInfo { what } => write!(f, "unusable PVH start info: {what}"),
            LoadError::StartInfoMagic { address, magic } => write!(
                f,
                "unusable PVH start info: EBX points at {address:#x}, which holds {magic:#010x} where the start info's magic 0x336ec578 belongs"
            ),
            LoadError::OverlappingMemoryMap { first, second } => write!(
                f,
                "unusable PVH start info: memory-map entries [{:#x}, {:#x}) and [{:#x}, {:#x}) overlap",
                first.0, first.1, second.0, second.1
            ),
            LoadError::BadMapping { what, start, end } => {
                write!(f, "bad page mapping [{start:#x}, {end:#x}): {what}")
            }
            LoadError::FdtBuild { what } => write!(f, "cannot build the device tree: {what}"),
            LoadError::UnknownOption { option } => write!(
                f,
                "unknown loader option {option:?} after the application's file name in -initrd (the loader knows: {})",
                crate::cmdline::LOADER_OPTIONS
            ),
            LoadError::NoApplication { tried } => write!(
                f,
                "no application: {tried} (pass the Hermit application with -initrd, or put it next to the loader as `initrd`)"
            ),
            LoadError::EmptyApplication { source } => {
                write!(f, "the application is empty (0 bytes): {source}")
            }
            LoadError::FirmwareCall { call, status } => write!(
                f,
                "the firmware call {call} failed: {}",
                crate::efi::status::Shown(*status)
            ),
            LoadError::ExitBootServices { first, second } => write!(
                f,
                "ExitBootServices failed twice: {}, then with a fresh memory map {}",
                crate::efi::status::Shown(*first),
                crate::efi::status::Shown(*second)
            ),
            LoadError::UnusableUefiMemoryMap { what } => {
                write!(f, "unusable UEFI memory map: {what}")
            }
            LoadError::LoaderAreaTaken { start, end, status } => write!(
                f,
                "the loader's memory [{start:#x}, {end:#x}) is not free under this firmware ({}): the EFI stub cannot place the loader there",
                crate::efi::status::Shown(*status)
            ),
            LoadError::ElfTooComplex { what, found, limit } => write!(
                f,
                "the module is too complex to load: {found} {what}, where the loader reads at most {limit}"
            ),
            LoadError::DynamicTagMissing { present, missing } => write!(
                f,
                "the dynamic section has {present} but no {missing}: the relocations cannot be applied as the file says"
            ),
            LoadError::DynamicEntrySize { tag, value, expected } => write!(
                f,
                "{tag} is {value}, where the loader's records are {expected} bytes"
            ),
            LoadError::RelocationTableSize { size } => write!(
                f,
                "DT_RELASZ {size:#x} is not a whole number of 24-byte relocations"
            ),
            LoadError::RelativeCountAboveEntries { count, entries } => write!(
                f,
                "DT_RELACOUNT says {count} relative relocations, but the table (DT_RELASZ) holds {entries}"
            ),
            LoadError::RelativeCountDisagrees { index, count, r_type } => write!(
                f,
                "relocation {index} is of type {r_type}, but DT_RELACOUNT says the first {count} are R_X86_64_RELATIVE"
            ),
            LoadError::RepeatedDynamicTag { tag, first, second } => write!(
                f,
                "the dynamic section gives {tag} twice, as {first:#x} and {second:#x}"
            ),
            LoadError::UnappliedRelocations { tag, size } => write!(
                f,
                "the dynamic section names {size:#x} bytes of {tag} relocations, which the loader does not apply (it applies DT_RELA)"
            ),
            LoadError::UndefinedDynamicTag { index, tag } => write!(
                f,
                "dynamic entry {index} has tag {tag:#x}, which no ELF specification defines: the dynamic section is corrupted"
            ),
            LoadError::UndefinedSegmentType { index, p_type } => write!(
                f,
                "program header {index} has type {p_type:#x}, which no ELF specification defines: the program header table is corrupted"
            ),
            LoadError::TableOutsideSegments { table, start, end: Some(end) } => write!(
                f,
                "the {table} table [{start:#x}, {end:#x}) does not lie in the file bytes of one PT_LOAD segment"
            ),
            LoadError::TableOutsideSegments { table, start, end: None } => write!(
                f,
                "the {table} table at {start:#x} does not lie in the file bytes of a PT_LOAD segment"
            ),
            LoadError::NotLoadedAsSaid { what, start, end, file_offset: _, loaded_from: None } => write!(
                f,
                "{} [{start:#x}, {end:#x}) does not lie in the file bytes of one PT_LOAD segment: the kernel would not find it there",
                what.name()
            ),
            LoadError::NotLoadedAsSaid { what, start, end, file_offset, loaded_from: Some(loaded_from) } => write!(
                f,
                "{} [{start:#x}, {end:#x}) says file offset {file_offset:#x}, but its PT_LOAD segment places the bytes from {loaded_from:#x} there",
                what.name()
            ),
            LoadError::RelocationOutsideSegments { index, target } => write!(
                f,
                "relocation {index} writes 8 bytes at {target:#x}, which do not lie in one PT_LOAD segment"
            ),
            LoadError::EntryOutsideCode { entry } => write!(
                f,
                "the entry point {entry:#x} is not in the file bytes of an executable PT_LOAD segment"
            ),
            LoadError::SegmentsOutOfOrder { index, vaddr, previous_index, previous_vaddr } => write!(
                f,
                "PT_LOAD segments out of address order: program header {index} starts at {vaddr:#x}, below program header {previous_index} at {previous_vaddr:#x}"
            ),
            LoadError::OverlappingSegments { index, start, end, previous_index, previous_end } => write!(
                f,
                "PT_LOAD segments overlap: program header {index} [{start:#x}, {end:#x}) starts before program header {previous_index} ends at {previous_end:#x}"
            ),
            LoadError::FileSizeAboveMemorySize { index, segment_type, file_size, mem_size } => write!(
                f,
                "{segment_type} program header {index} has p_filesz {file_size:#x} > p_memsz {mem_size:#x}"
            ),
            LoadError::AlignmentNotPowerOfTwo { index, segment_type, align } => write!(
                f,
                "{segment_type} program header {index} has p_align {align:#x}, not a power of two"
            ),
            LoadError::OffsetNotCongruent { index, offset, vaddr, modulus } => write!(
                f,
                "PT_LOAD program header {index} has p_offset {offset:#x} and p_vaddr {vaddr:#x}, which differ modulo {modulus:#x}"
            ),
            LoadError::ImageStartMisaligned { index, align, image_start } => write!(
                f,
                "PT_LOAD program header {index} needs {align:#x} alignment, but the image starts at {image_start:#x}: moved as a whole, the segment would lose it"
            ),
            LoadError::EmptyImage { segments } => write!(
                f,
                "the {segments} PT_LOAD segments occupy no memory (every p_memsz is 0): nothing to run"
            ),
        }
    }
}

/// Says how far RAM must reach at least for `end` to be in it, as the `-m` that
/// gives that much: a lower bound, since the firmware keeps some RAM for itself.
/// Nothing for an end no RAM size can reach.
fn ram_to_reach(f: &mut fmt::Formatter<'_>, what: &str, end: u64) -> fmt::Result {
    const MIB: u64 = 1 << 20;
    if end == 0 || end > 1 << 48 {
        return Ok(());
    }
    write!(
        f,
        "; RAM must reach past {end:#x}{what}: -m {}M at least",
        end.div_ceil(MIB)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_clear_of_kernel_results() {
        let mut seen = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for &code in ExitCode::ALL {
            assert!(
                code.port_value() >= 0x10,
                "{code:?} collides with kernel codes"
            );
            assert!(seen.insert(code.port_value()), "{code:?} repeats a value");
            assert!(names.insert(code.name()), "{code:?} repeats a name");
        }
        // Exception codes stay within an 8-bit exit status and above the refusals.
        assert_eq!(ExitCode::exception_status(0), 129);
        assert_eq!(ExitCode::exception_status(31), 191);
        assert_eq!(ExitCode::NoModule.qemu_status(), 33);
    }

    #[test]
    fn a_memory_refusal_names_the_ram_size_it_needs_at_least() {
        let kernel = LoadError::NotEnoughMemory {
            what: "kernel image",
            start: 0x80_0000,
            end: 0x84_c000,
        };
        assert_eq!(
            kernel.to_string(),
            "not enough RAM: kernel image [0x800000, 0x84c000) is not in usable memory; RAM must reach past 0x84c000: -m 9M at least"
        );
        // A place no RAM can reach gets no size.
        let nowhere = LoadError::NotEnoughMemory {
            what: "kernel image",
            start: 0x80_0000,
            end: u64::MAX,
        };
        assert!(nowhere.to_string().ends_with("is not in usable memory"));
    }
}
