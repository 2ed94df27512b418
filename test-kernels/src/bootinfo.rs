//! Decoding the 128-byte `RawBootInfo` that `rdi` points to at entry, from its bytes.
//!
//! The offsets are those of hermit-entry's `RawBootInfo` (entry ABI versions 3 and 4);
//! entry version 2 (kernel 0.6.0) has the same fields without the device tree, so
//! every field after the serial port lies 8 bytes lower (120 bytes in all). The
//! kernels decode them by hand so that they test the layout rather than share it with
//! the loader.

#![forbid(unsafe_code)]

/// Size of the raw boot info (entry versions 3 and 4; the buffer for every version).
pub const RAW_SIZE: usize = 128;

/// Size of the raw boot info of an entry version.
pub const fn raw_size(entry_version: u8) -> usize {
    if entry_version == 2 {
        RAW_SIZE - 8
    } else {
        RAW_SIZE
    }
}

/// Byte offsets of the fields.
pub mod offset {
    /// Physical memory start (u64).
    pub const PHYS_START: usize = 0;
    /// Physical memory end (u64).
    pub const PHYS_END: usize = 8;
    /// Serial port base, `Option<NonZeroU16>` (u16).
    pub const SERIAL_PORT: usize = 16;
    /// Device tree address, 0 = none (u64).
    pub const DEVICE_TREE: usize = 24;
    /// Kernel image start (u64).
    pub const IMAGE_START: usize = 32;
    /// Kernel image end (u64).
    pub const IMAGE_END: usize = 40;
    /// TLS start (u64).
    pub const TLS_START: usize = 48;
    /// TLS file size (u64).
    pub const TLS_FILESZ: usize = 56;
    /// TLS memory size (u64).
    pub const TLS_MEMSZ: usize = 64;
    /// TLS alignment (u64).
    pub const TLS_ALIGN: usize = 72;
    /// Platform tag (u32).
    pub const PLATFORM: usize = 80;
    /// Multiboot: command line pointer (u64).
    pub const CMDLINE_PTR: usize = 88;
    /// Multiboot: command line length without NUL (u64).
    pub const CMDLINE_LEN: usize = 96;
    /// Multiboot: MBI address (u64).
    pub const MBI: usize = 104;
}

/// The platform tag of the Multiboot platform.
pub const PLATFORM_MULTIBOOT: u32 = 0;

/// The serial port every Hermit kernel 0.6–0.13 expects (it unwraps the field).
pub const SERIAL_PORT: u16 = 0x3f8;

/// The TLS fields, in boot-info order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// Start of the TLS initialisation image (relocated).
    pub start: u64,
    /// Bytes of initialised data (`.tdata`).
    pub filesz: u64,
    /// Bytes in all (`.tdata` + `.tbss`).
    pub memsz: u64,
    /// Alignment.
    pub align: u64,
}

/// The decoded boot info.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootInfo {
    /// Physical memory start.
    pub phys_start: u64,
    /// Physical memory end.
    pub phys_end: u64,
    /// Serial port base (0 = none).
    pub serial_port: u16,
    /// FDT address (0 = none).
    pub device_tree: u64,
    /// Kernel image start.
    pub image_start: u64,
    /// Kernel image end (exclusive).
    pub image_end: u64,
    /// TLS fields.
    pub tls: Tls,
    /// Platform tag.
    pub platform: u32,
    /// Command line pointer.
    pub cmdline_ptr: u64,
    /// Command line length.
    pub cmdline_len: u64,
    /// MBI address.
    pub mbi: u64,
}

fn u64_at(raw: &[u8; RAW_SIZE], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&raw[at..at + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(raw: &[u8; RAW_SIZE], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&raw[at..at + 4]);
    u32::from_le_bytes(b)
}

impl BootInfo {
    /// Decodes the raw bytes as the layout of `entry_version` (2, or 3 and 4). For
    /// version 2 `device_tree` is 0: there is no such field.
    pub fn parse(raw: &[u8; RAW_SIZE], entry_version: u8) -> BootInfo {
        // Offsets after the device-tree field move down 8 bytes where it is absent.
        let (device_tree, shift) = if entry_version == 2 {
            (0, 8)
        } else {
            (u64_at(raw, offset::DEVICE_TREE), 0)
        };
        let after = |at: usize| at - shift;
        BootInfo {
            phys_start: u64_at(raw, offset::PHYS_START),
            phys_end: u64_at(raw, offset::PHYS_END),
            serial_port: u16::from_le_bytes([
                raw[offset::SERIAL_PORT],
                raw[offset::SERIAL_PORT + 1],
            ]),
            device_tree,
            image_start: u64_at(raw, after(offset::IMAGE_START)),
            image_end: u64_at(raw, after(offset::IMAGE_END)),
            tls: Tls {
                start: u64_at(raw, after(offset::TLS_START)),
                filesz: u64_at(raw, after(offset::TLS_FILESZ)),
                memsz: u64_at(raw, after(offset::TLS_MEMSZ)),
                align: u64_at(raw, after(offset::TLS_ALIGN)),
            },
            platform: u32_at(raw, after(offset::PLATFORM)),
            cmdline_ptr: u64_at(raw, after(offset::CMDLINE_PTR)),
            cmdline_len: u64_at(raw, after(offset::CMDLINE_LEN)),
            mbi: u64_at(raw, after(offset::MBI)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(raw: &mut [u8; RAW_SIZE], at: usize, bytes: &[u8]) {
        raw[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Builds raw bytes with a distinct value in every field, as a loader would.
    fn sample() -> [u8; RAW_SIZE] {
        let mut raw = [0u8; RAW_SIZE];
        put(&mut raw, 0, &0x11u64.to_le_bytes());
        put(&mut raw, 8, &0x22u64.to_le_bytes());
        put(&mut raw, 16, &0x3f8u16.to_le_bytes());
        put(&mut raw, 24, &0x5000u64.to_le_bytes());
        put(&mut raw, 32, &0x20_0000u64.to_le_bytes());
        put(&mut raw, 40, &0x23_4567u64.to_le_bytes());
        put(&mut raw, 48, &0x21_0000u64.to_le_bytes());
        put(&mut raw, 56, &8u64.to_le_bytes());
        put(&mut raw, 64, &0x48u64.to_le_bytes());
        put(&mut raw, 72, &32u64.to_le_bytes());
        put(&mut raw, 80, &0u32.to_le_bytes());
        put(&mut raw, 88, &0x10_2000u64.to_le_bytes());
        put(&mut raw, 96, &17u64.to_le_bytes());
        put(&mut raw, 104, &0x9500u64.to_le_bytes());
        raw
    }

    #[test]
    fn entry_version_2_has_no_device_tree_field() {
        // The sample without its device-tree field: what a version-2 loader writes.
        let v3 = sample();
        let mut v2 = [0u8; RAW_SIZE];
        v2[..24].copy_from_slice(&v3[..24]);
        v2[24..120].copy_from_slice(&v3[32..]);
        assert_eq!(raw_size(2), 120);
        assert_eq!(raw_size(4), 128);
        let expected = BootInfo {
            device_tree: 0,
            ..BootInfo::parse(&v3, 4)
        };
        assert_eq!(BootInfo::parse(&v2, 2), expected);
    }

    /// Each field from the offset `offset` names (checked against hermit-entry's own
    /// `RawBootInfo` in tests/hermit_entry.rs).
    #[test]
    fn every_field_is_read_at_its_offset() {
        let bi = BootInfo::parse(&sample(), 4);
        assert_eq!(
            bi,
            BootInfo {
                phys_start: 0x11,
                phys_end: 0x22,
                serial_port: 0x3f8,
                device_tree: 0x5000,
                image_start: 0x20_0000,
                image_end: 0x23_4567,
                tls: Tls {
                    start: 0x21_0000,
                    filesz: 8,
                    memsz: 0x48,
                    align: 32
                },
                platform: 0,
                cmdline_ptr: 0x10_2000,
                cmdline_len: 17,
                mbi: 0x9500,
            }
        );
    }

    #[test]
    fn platform_tag_is_a_u32_and_padding_is_ignored() {
        let mut raw = sample();
        put(&mut raw, 80, &3u32.to_le_bytes());
        // Bytes after the serial port (its Option padding) and after the tag are not
        // fields; garbage there must not leak into the decoded values.
        put(&mut raw, 18, &[0xaa; 6]);
        put(&mut raw, 84, &[0xbb; 4]);
        put(&mut raw, 112, &[0xcc; 16]);
        let bi = BootInfo::parse(&raw, 3);
        assert_eq!(bi.platform, 3);
        assert_eq!(bi.serial_port, 0x3f8);
        assert_eq!(bi.device_tree, 0x5000);
        assert_eq!(bi.cmdline_ptr, 0x10_2000);
    }
}
