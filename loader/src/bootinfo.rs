//! The boot information the kernel receives in `rdi`.
//!
//! Built through hermit-entry's [`BootInfo`] and converted to its 128-byte
//! `#[repr(C)]` [`RawBootInfo`], the layout every kernel with entry version 3 or 4
//! reads. Entry version 2 (kernel 0.6.0, hermit-entry 0.9.1–0.9.2) has the same
//! layout without the device-tree field: [`RawBootInfoV2`], built from the same
//! input. Like upstream Multiboot loaders, the physical memory range is left 0..0
//! (kernels take the memory map from the FDT or the MBI); the serial port is always
//! 0x3f8 because every kernel 0.6–0.13 unwraps it.

use core::num::{NonZeroU16, NonZeroU64};

use hermit_entry::boot_info::{
    BootInfo, HardwareInfo, LoadInfo, PlatformInfo, RawBootInfo, SerialPortBase, TlsInfo,
};

use crate::error::LoadError;
use crate::memory::Region;

/// The COM1 port base.
const COM1: SerialPortBase = NonZeroU16::new(0x3f8).unwrap();

/// What goes into the boot info.
#[derive(Clone, Copy, Debug)]
pub struct BootInfoInput {
    /// The kernel image as placed.
    pub kernel_image: Region,
    /// The relocated `PT_TLS` segment, if the kernel has one.
    pub tls: Option<TlsInfo>,
    /// The FDT's physical address, 0 for none.
    pub device_tree: u64,
    /// The full Multiboot command line, file name included, pointing into QEMU's
    /// buffer (which stays mapped).
    pub command_line: Option<&'static str>,
    /// The MBI's physical address.
    pub mbi_addr: u64,
}

/// The kernel's stack size, fixed by the Hermit boot ABI: the loader passes the
/// stack's lowest address and the kernel adds this itself.
pub const KERNEL_STACK_SIZE: u64 = 32 * 1024;

/// Which boot-info layout a kernel reads, decided by its HERMIT entry version (the
/// ELF validation accepts 2, 3 and 4 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoLayout {
    /// Entry version 2 (kernel 0.6.0): [`RawBootInfoV2`], no device tree.
    WithoutDeviceTree,
    /// Entry versions 3 and 4: hermit-entry's [`RawBootInfo`].
    WithDeviceTree,
}

impl BootInfoLayout {
    /// The boot info's size in this layout, in bytes.
    pub const fn size(self) -> u64 {
        match self {
            BootInfoLayout::WithoutDeviceTree => core::mem::size_of::<RawBootInfoV2>() as u64,
            BootInfoLayout::WithDeviceTree => core::mem::size_of::<RawBootInfo>() as u64,
        }
    }

    pub fn for_entry_version(entry_version: u8) -> BootInfoLayout {
        if entry_version == 2 {
            BootInfoLayout::WithoutDeviceTree
        } else {
            BootInfoLayout::WithDeviceTree
        }
    }
}

/// The boot info of entry version 2: [`RawBootInfo`] without its `device_tree`
/// field, so every later field lies 8 bytes lower; 120 bytes, like upstream's (the
/// platform union is sized for its uhyve variant, unused here).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawBootInfoV2 {
    pub phys_addr_start: u64,
    pub phys_addr_end: u64,
    /// `Option<NonZeroU16>`: 0 for none.
    pub serial_port_base: u16,
    _serial_port_padding: [u8; 6],
    pub kernel_image_addr_start: u64,
    pub kernel_image_addr_end: u64,
    pub tls_start: u64,
    pub tls_filesz: u64,
    pub tls_memsz: u64,
    pub tls_align: u64,
    /// 0 = Multiboot.
    pub platform_tag: u32,
    _platform_tag_padding: u32,
    pub command_line_data: u64,
    pub command_line_len: u64,
    pub multiboot_info_addr: u64,
    _rest_of_platform_info: [u64; 2],
}

/// The platform tag of a Multiboot boot (the same in every entry version).
const PLATFORM_MULTIBOOT: u32 = 0;

/// The [`RawBootInfoV2`] for a kernel of entry version 2: the same contents as
/// [`raw_boot_info`] gives, without the device tree (such kernels do not read one).
pub fn raw_boot_info_v2(input: &BootInfoInput) -> Result<RawBootInfoV2, LoadError> {
    if input.mbi_addr == 0 {
        return Err(LoadError::BadMultiboot {
            what: "the MBI address is 0",
        });
    }
    let tls = input.tls.unwrap_or(TlsInfo {
        start: 0,
        filesz: 0,
        memsz: 0,
        align: 0,
    });
    let command_line = input.command_line.unwrap_or("");
    Ok(RawBootInfoV2 {
        phys_addr_start: 0,
        phys_addr_end: 0,
        serial_port_base: COM1.get(),
        _serial_port_padding: [0; 6],
        kernel_image_addr_start: input.kernel_image.start,
        kernel_image_addr_end: input.kernel_image.end,
        tls_start: tls.start,
        tls_filesz: tls.filesz,
        tls_memsz: tls.memsz,
        tls_align: tls.align,
        platform_tag: PLATFORM_MULTIBOOT,
        _platform_tag_padding: 0,
        command_line_data: input.command_line.map_or(0, |line| line.as_ptr() as u64),
        command_line_len: command_line.len() as u64,
        multiboot_info_addr: input.mbi_addr,
        _rest_of_platform_info: [0; 2],
    })
}

/// The [`RawBootInfo`] the kernel gets in `rdi`: physical range 0..0, serial port
/// 0x3f8, platform Multiboot with the command line and MBI address.
///
/// Refuses an MBI address of 0, which the Multiboot platform info cannot express.
pub fn raw_boot_info(input: &BootInfoInput) -> Result<RawBootInfo, LoadError> {
    let multiboot_info_addr = NonZeroU64::new(input.mbi_addr).ok_or(LoadError::BadMultiboot {
        what: "the MBI address is 0",
    })?;
    let boot_info = BootInfo {
        hardware_info: HardwareInfo {
            phys_addr_range: 0..0,
            serial_port_base: Some(COM1),
            device_tree: NonZeroU64::new(input.device_tree),
        },
        load_info: LoadInfo {
            kernel_image_addr_range: input.kernel_image.start..input.kernel_image.end,
            tls_info: input.tls,
        },
        platform_info: PlatformInfo::Multiboot {
            command_line: input.command_line,
            multiboot_info_addr,
        },
    };
    Ok(RawBootInfo::from(boot_info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, size_of};

    /// Reads a `T` at byte `offset` of a raw boot info, as the kernel does.
    fn read<T: Copy, R>(raw: &R, offset: usize) -> T {
        assert!(offset + size_of::<T>() <= size_of::<R>());
        let base = (raw as *const R).cast::<u8>();
        // SAFETY: the read lies inside `raw` (checked above), `read_unaligned` has no
        // alignment requirement, and the callers only read fields of integer type
        // (never padding), whose every bit pattern is valid.
        unsafe { base.add(offset).cast::<T>().read_unaligned() }
    }

    #[test]
    fn offsets_match_the_abi_table() {
        assert_eq!(size_of::<RawBootInfo>(), 128);
        assert_eq!(align_of::<RawBootInfo>(), 8);

        let command_line: &'static str = Box::leak(
            "/kernels/hello -freq 2000 -- x"
                .to_string()
                .into_boxed_str(),
        );
        let input = BootInfoInput {
            kernel_image: Region::new(0x80_0000, 0xa3_4000),
            tls: Some(TlsInfo {
                start: 0x81_0000,
                filesz: 0x10,
                memsz: 0x48,
                align: 0x10,
            }),
            device_tree: 0x14_2000,
            command_line: Some(command_line),
            mbi_addr: 0x9500,
        };
        let raw = raw_boot_info(&input).unwrap();

        let u64_fields: [(usize, u64, &str); 12] = [
            (0, 0, "physical memory start"),
            (8, 0, "physical memory end"),
            (24, 0x14_2000, "device tree"),
            (32, 0x80_0000, "kernel image start"),
            (40, 0xa3_4000, "kernel image end"),
            (48, 0x81_0000, "TLS start"),
            (56, 0x10, "TLS filesz"),
            (64, 0x48, "TLS memsz"),
            (72, 0x10, "TLS align"),
            (88, command_line.as_ptr() as u64, "command line pointer"),
            (96, command_line.len() as u64, "command line length"),
            (104, 0x9500, "MBI address"),
        ];
        for (offset, expected, name) in u64_fields {
            assert_eq!(read::<u64, _>(&raw, offset), expected, "{name} at {offset}");
        }
        assert_eq!(read::<u16, _>(&raw, 16), 0x3f8, "serial port base");
        assert_eq!(read::<u32, _>(&raw, 80), 0, "platform tag Multiboot");
    }

    #[test]
    fn entry_version_2_is_version_3_without_the_device_tree() {
        assert_eq!(size_of::<RawBootInfoV2>(), 120);
        assert_eq!(align_of::<RawBootInfoV2>(), 8);
        let command_line: &'static str = "/kernels/old -freq 2000";
        for tls in [
            None,
            Some(TlsInfo {
                start: 0x81_0000,
                filesz: 0x10,
                memsz: 0x48,
                align: 0x10,
            }),
        ] {
            let input = BootInfoInput {
                kernel_image: Region::new(0x80_0000, 0xa3_4000),
                tls,
                device_tree: 0x14_2000,
                command_line: Some(command_line),
                mbi_addr: 0x9500,
            };
            let v3 = raw_boot_info(&input).unwrap();
            let v2 = raw_boot_info_v2(&input).unwrap();
            assert_eq!(
                read::<u16, _>(&v2, 16),
                read::<u16, _>(&v3, 16),
                "serial port"
            );
            for v2_offset in [0, 8, 24, 32, 40, 48, 56, 64, 80, 88, 96] {
                let v3_offset = if v2_offset < 24 {
                    v2_offset
                } else {
                    v2_offset + 8
                };
                assert_eq!(
                    read::<u64, _>(&v2, v2_offset),
                    read::<u64, _>(&v3, v3_offset),
                    "v2 offset {v2_offset}"
                );
            }
            assert_eq!(read::<u32, _>(&v2, 72), 0, "platform tag Multiboot");
        }
        let without_mbi = BootInfoInput {
            kernel_image: Region::new(0x80_0000, 0x90_0000),
            tls: None,
            device_tree: 0,
            command_line: None,
            mbi_addr: 0,
        };
        assert!(raw_boot_info_v2(&without_mbi).is_err());
    }

    #[test]
    fn the_layout_follows_the_entry_version() {
        assert_eq!(
            BootInfoLayout::for_entry_version(2),
            BootInfoLayout::WithoutDeviceTree
        );
        for version in [3, 4] {
            assert_eq!(
                BootInfoLayout::for_entry_version(version),
                BootInfoLayout::WithDeviceTree
            );
        }
    }

    #[test]
    fn absent_fields_are_zero() {
        let input = BootInfoInput {
            kernel_image: Region::new(0x80_0000, 0x90_0000),
            tls: None,
            device_tree: 0,
            command_line: None,
            mbi_addr: 0x9500,
        };
        let raw = raw_boot_info(&input).unwrap();
        for offset in [24, 48, 56, 64, 72, 88, 96] {
            assert_eq!(read::<u64, _>(&raw, offset), 0, "offset {offset}");
        }
        assert_eq!(
            read::<u16, _>(&raw, 16),
            0x3f8,
            "the serial port is always given"
        );
    }

    #[test]
    fn refuses_a_zero_mbi_address() {
        let input = BootInfoInput {
            kernel_image: Region::new(0x80_0000, 0x90_0000),
            tls: None,
            device_tree: 0,
            command_line: None,
            mbi_addr: 0,
        };
        assert_eq!(
            raw_boot_info(&input).map(|_| ()),
            Err(LoadError::BadMultiboot {
                what: "the MBI address is 0"
            })
        );
    }
}
