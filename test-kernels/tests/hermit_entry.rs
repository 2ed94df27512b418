//! The test kernels decode the boot info by hand, so that they check the layout the
//! loader wrote rather than share it with the loader. Here that hand-written
//! decoding is checked against hermit-entry itself: a `RawBootInfo` made by
//! hermit-entry's own conversion from a `BootInfo` (what a loader using the crate
//! hands a kernel) must decode to the same values, field by field.

use std::num::{NonZeroU16, NonZeroU64};

use hermit_entry::boot_info::{
    BootInfo as EntryBootInfo, HardwareInfo, LoadInfo, PlatformInfo, RawBootInfo, TlsInfo,
};
use test_kernels::bootinfo::{BootInfo, Tls, PLATFORM_MULTIBOOT, RAW_SIZE};

/// hermit-entry's raw boot info, as the bytes a kernel finds at `rdi`.
fn raw_bytes(info: EntryBootInfo) -> [u8; RAW_SIZE] {
    assert_eq!(std::mem::size_of::<RawBootInfo>(), RAW_SIZE);
    let raw = RawBootInfo::from(info);
    let mut bytes = [0u8; RAW_SIZE];
    // SAFETY: `raw` is a live `RawBootInfo` of RAW_SIZE bytes (checked above), read
    // as bytes only; the padding bytes this copies are never compared (the
    // decoder skips them, see `platform_tag_is_a_u32_and_padding_is_ignored`).
    let view =
        unsafe { std::slice::from_raw_parts((&raw as *const RawBootInfo).cast::<u8>(), RAW_SIZE) };
    bytes.copy_from_slice(view);
    bytes
}

const COMMAND_LINE: &str = "-freq 2800 -- first second";

/// A boot info with a distinct value in every field.
fn every_field_set() -> EntryBootInfo {
    EntryBootInfo {
        hardware_info: HardwareInfo {
            phys_addr_range: 0x11..0x4000_0022,
            serial_port_base: NonZeroU16::new(0x3f8),
            device_tree: NonZeroU64::new(0x5000),
        },
        load_info: LoadInfo {
            kernel_image_addr_range: 0x20_0000..0x23_4567,
            tls_info: Some(TlsInfo {
                start: 0x21_0000,
                filesz: 8,
                memsz: 0x48,
                align: 32,
            }),
        },
        platform_info: PlatformInfo::Multiboot {
            command_line: Some(COMMAND_LINE),
            multiboot_info_addr: NonZeroU64::new(0x9500).unwrap(),
        },
    }
}

#[test]
fn offsets_match_hermit_entry_layout() {
    // Entry versions 3 and 4 use this layout.
    for version in [3, 4] {
        assert_eq!(
            BootInfo::parse(&raw_bytes(every_field_set()), version),
            BootInfo {
                phys_start: 0x11,
                phys_end: 0x4000_0022,
                serial_port: 0x3f8,
                device_tree: 0x5000,
                image_start: 0x20_0000,
                image_end: 0x23_4567,
                tls: Tls {
                    start: 0x21_0000,
                    filesz: 8,
                    memsz: 0x48,
                    align: 32,
                },
                platform: PLATFORM_MULTIBOOT,
                cmdline_ptr: COMMAND_LINE.as_ptr() as u64,
                cmdline_len: COMMAND_LINE.len() as u64,
                mbi: 0x9500,
            },
            "entry version {version}"
        );
    }
}

#[test]
fn absent_fields_are_zero_as_hermit_entry_writes_them() {
    let info = EntryBootInfo {
        hardware_info: HardwareInfo {
            phys_addr_range: 0..0x400_0000,
            serial_port_base: None,
            device_tree: None,
        },
        load_info: LoadInfo {
            kernel_image_addr_range: 0x80_0000..0x90_0000,
            tls_info: None,
        },
        platform_info: PlatformInfo::Multiboot {
            command_line: None,
            multiboot_info_addr: NonZeroU64::new(0x9500).unwrap(),
        },
    };
    let decoded = BootInfo::parse(&raw_bytes(info), 4);
    assert_eq!(
        (decoded.serial_port, decoded.device_tree, decoded.tls),
        (0, 0, Tls::default())
    );
    assert_eq!((decoded.cmdline_ptr, decoded.cmdline_len), (0, 0));
    assert_eq!((decoded.image_start, decoded.mbi), (0x80_0000, 0x9500));
}
