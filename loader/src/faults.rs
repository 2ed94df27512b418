//! The faults a test build of the loader can inject, to show that the test kernels'
//! checks and the loader's exit codes are seen to fail end to end.
//!
//! Only a loader built with the cargo feature `faults` (`cargo xtask run --inject
//! FAULT`, built into a target directory of its own) contains the code that injects
//! them (the binary's `src/inject.rs`); a normal build never references this module,
//! so none of it is linked into the loader (`xtask/tests/faults.rs` checks this).
//! The fault is chosen at boot, not at build time, so that one build serves every
//! fault: QEMU passes its name in the fw_cfg file [`FW_CFG_FILE`] (`-fw_cfg
//! name=opt/rusty-loader/fault,string=NAME`), which neither the kernel nor the boot
//! info sees and which works through both entries on both machine types (a loader
//! option after the application's file name would not: QEMU's PVH boot passes no
//! module string).
//!
//! This module is the list, the names and the fw_cfg directory's format; it builds
//! and is tested on the host like the rest of the library.

/// The fw_cfg file that names the fault to inject.
pub const FW_CFG_FILE: &str = "opt/rusty-loader/fault";

macro_rules! faults {
    ($($(#[doc = $doc:literal])* $variant:ident, $name:literal, $kernel:expr, $description:literal;)*) => {
        /// A fault the `faults` build of the loader can inject.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Fault {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Fault {
            /// Every fault, in the order `--help` lists them.
            pub const ALL: &'static [Fault] = &[$(Fault::$variant),*];

            /// The name `--inject` takes and fw_cfg carries.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Fault::$variant => $name,)*
                }
            }

            /// What the loader does wrong, in one line (`--help` prints it).
            pub const fn description(self) -> &'static str {
                match self {
                    $(Fault::$variant => $description,)*
                }
            }

            /// The test kernel (`test-kernels/`) that checks what the fault breaks,
            /// when the demo app (hello-dyn) does not: `cargo xtask run --inject`
            /// boots it by default.
            pub const fn kernel(self) -> Option<&'static str> {
                match self {
                    $(Fault::$variant => $kernel,)*
                }
            }
        }
    };
}

faults! {
    /// Hand-over: the kernel is entered through a trampoline that sets rsi.
    RsiNotZero, "rsi-not-zero", None,
        "the kernel is entered with rsi = 1 (what an application processor gets) instead of 0";
    /// Hand-over: rdi is 4 bytes past the boot info.
    BootInfoMisaligned, "boot-info-misaligned", None,
        "rdi points 4 bytes past the boot info, which is then not 8-byte aligned";
    /// Hand-over: rsp is 8 bytes above the stack's lowest address.
    StackMisaligned, "stack-misaligned", None,
        "rsp is 8 bytes above the lowest address of the kernel's stack";
    /// Boot data: the boot info's image start is one byte high.
    ImageStartOffByOne, "image-start-off-by-one", None,
        "the boot info's kernel image start is one byte too high";
    /// Load: the last relocation of the table is not applied.
    RelocationLeftOut, "relocation-left-out", Some("legacy-dyn"),
        "the last relocation of the kernel's DT_RELA table is not applied (its slot keeps the file's bytes)";
    /// Load: the segments' zero-filled parts hold what memory held.
    BssNotZeroed, "bss-not-zeroed", None,
        "the zero-filled part of each segment (.bss) is left as memory a previous boot could leave it: 0xa5 bytes (QEMU's fresh RAM is zero)";
    /// Boot data: the TLS template's start is moved.
    TlsTemplateMoved, "tls-template-moved", None,
        "the boot info's TLS template starts 16 bytes past PT_TLS's";
    /// Boot data: the command line loses its last character.
    CommandLineCutShort, "command-line-cut-short", None,
        "the command line in the boot info loses its last character";
    /// Boot data: the kernel's MBI has a wrong memory-map entry.
    MbiMemoryMap, "mbi-memory-map", None,
        "the MBI the kernel gets lists the usable region that holds the kernel as ending where the kernel starts";
    /// Boot data: the device tree has a wrong memory node.
    FdtMemoryMap, "fdt-memory-map", None,
        "the device tree's memory node for the region that holds the kernel ends where the kernel starts";
    /// Page tables: no recursive entry.
    RecursiveEntryMissing, "recursive-entry-missing", Some("legacy-dyn"),
        "PML4[511] is left empty (kernels 0.6-0.10 reach their tables through it)";
    /// Page tables: the tables' own pages are unmapped.
    TablesUnmapped, "tables-unmapped", None,
        "the identity map leaves out the page tables' own pages (kernels 0.11+ read their tables through it)";
    /// Load: a Rust panic in the loader.
    LoaderPanic, "loader-panic", None,
        "the loader panics while it loads the kernel (exit code loader-panic)";
    /// Page tables: the arena's address is given 2 KiB off.
    PageTablesMisaligned, "page-tables-misaligned", None,
        "the page tables are planned for an address 2 KiB off the arena's (exit code bad-mapping)";
    /// Boot data: the device tree cannot be built.
    FdtBuildFails, "fdt-build-fails", None,
        "building the device tree fails (exit code fdt-build)";
    /// UEFI: ExitBootServices fails twice.
    ExitBootServicesFails, "exit-boot-services-fails", None,
        "UEFI entry: both ExitBootServices calls are taken as failed with EFI_INVALID_PARAMETER, and not made (exit code exit-boot-services-failed)";
    /// UEFI: the memory map cannot be read.
    UefiMapUnusable, "uefi-map-unusable", None,
        "UEFI entry: the firmware's memory map is read with a descriptor size of 0 (exit code unusable-uefi-memory-map)";
    /// UEFI: the loader's range is taken.
    LoaderAreaTaken, "loader-area-taken", None,
        "UEFI entry: the EFI stub allocates the loader's range once before it asks for it, so that the firmware refuses (exit code loader-area-taken)";
}

impl Fault {
    /// The fault named `name`.
    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// fw_cfg's selector of its file directory (QEMU `FW_CFG_FILE_DIR`).
pub const FW_CFG_FILE_DIR: u16 = 0x19;
/// fw_cfg's selector of its signature, which reads `QEMU`.
pub const FW_CFG_SIGNATURE: u16 = 0;
/// The size of one directory entry: size, select, reserved, a 56-byte name.
pub const FW_CFG_DIR_ENTRY: usize = 64;

/// One entry of the fw_cfg file directory (all fields big-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FwCfgFile<'a> {
    /// The file's size in bytes.
    pub size: u32,
    /// The selector that reads it.
    pub select: u16,
    /// Its name, without the NUL padding.
    pub name: &'a [u8],
}

impl<'a> FwCfgFile<'a> {
    /// Reads one directory entry.
    pub fn parse(entry: &'a [u8; FW_CFG_DIR_ENTRY]) -> FwCfgFile<'a> {
        let name = &entry[8..];
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        FwCfgFile {
            size: u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]),
            select: u16::from_be_bytes([entry[4], entry[5]]),
            name: &name[..len],
        }
    }
}

/// The fault named by the contents of [`FW_CFG_FILE`] (a trailing newline or NUL,
/// which `-fw_cfg file=` would bring, ignored); `Err` with the text when it names
/// none.
pub fn fault_named(contents: &[u8]) -> Result<Fault, &[u8]> {
    let name = contents
        .strip_suffix(b"\0")
        .unwrap_or(contents)
        .trim_ascii_end();
    core::str::from_utf8(name)
        .ok()
        .and_then(Fault::from_name)
        .ok_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_round_trip() {
        let mut names = std::collections::HashSet::new();
        for &fault in Fault::ALL {
            assert!(names.insert(fault.name()), "{fault:?} repeats a name");
            assert_eq!(Fault::from_name(fault.name()), Some(fault));
            assert!(!fault.description().is_empty());
            // fw_cfg's `string=` ends at a comma.
            assert!(!fault.name().contains(','), "{fault:?}");
        }
        assert_eq!(Fault::from_name("no-such-fault"), None);
    }

    #[test]
    fn directory_entries_are_read_big_endian() {
        let mut entry = [0u8; FW_CFG_DIR_ENTRY];
        entry[..4].copy_from_slice(&14u32.to_be_bytes());
        entry[4..6].copy_from_slice(&0x0020u16.to_be_bytes());
        entry[8..8 + FW_CFG_FILE.len()].copy_from_slice(FW_CFG_FILE.as_bytes());
        let file = FwCfgFile::parse(&entry);
        assert_eq!(file.size, 14);
        assert_eq!(file.select, 0x20);
        assert_eq!(file.name, FW_CFG_FILE.as_bytes());
        // A name that fills all 56 bytes has no NUL.
        let mut full = [b'x'; FW_CFG_DIR_ENTRY];
        full[..8].fill(0);
        assert_eq!(FwCfgFile::parse(&full).name.len(), 56);
    }

    #[test]
    fn the_file_names_a_fault() {
        assert_eq!(fault_named(b"bss-not-zeroed"), Ok(Fault::BssNotZeroed));
        assert_eq!(fault_named(b"bss-not-zeroed\n"), Ok(Fault::BssNotZeroed));
        assert_eq!(fault_named(b"bss-not-zeroed\0"), Ok(Fault::BssNotZeroed));
        assert_eq!(fault_named(b"bss"), Err(&b"bss"[..]));
        assert_eq!(fault_named(b"\xff"), Err(&b"\xff"[..]));
    }
}
