//! The boot-services calls the UEFI entry makes, each a safe function over the
//! firmware's tables (types from `uefi-raw`). This file is the only place that
//! dereferences the firmware's pointers; it decides nothing (the library's `efi`
//! module does) and traces nothing (`uefi/mod.rs` times and traces every call).
//!
//! Everything here runs before `ExitBootServices`, while the firmware's identity
//! map, IDT and GDT are live, on the only CPU.
//!
//! Interrupts: the loader is built for a target whose leaf functions keep data
//! below `rsp` (the red zone), which an interrupt on the same stack overwrites. The
//! firmware's timer interrupt is on while boot services run, so the loader keeps
//! interrupts off (`uefi_start64` clears IF) and every call here clears IF again
//! when the firmware returns: boot services lower their priority level on the way
//! out, which turns interrupts back on. Only the firmware's own code, which keeps
//! nothing below `rsp`, runs with them on; a call returns into a function that made
//! a call, which is no leaf.

use alloc::vec::Vec;
use core::ffi::c_void;

use rusty_loader::efi::status;
use rusty_loader::layout::LOADER_REACH;
use uefi_raw::protocol::device_path::DevicePathProtocol;
use uefi_raw::protocol::file_system::{
    FileAttribute, FileInfo, FileMode, FileProtocolV1, SimpleFileSystemProtocol,
};
use uefi_raw::protocol::loaded_image::LoadedImageProtocol;
use uefi_raw::protocol::media::LoadFile2Protocol;
use uefi_raw::table::boot::{AllocateType, BootServices, MemoryType};
use uefi_raw::table::configuration::ConfigurationTable;
use uefi_raw::table::system::SystemTable;
use uefi_raw::{guid, Guid, Handle, Status};

/// A boot-services call, named for the trace and the refusal lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `HandleProtocol(image, LoadedImage)`: the load options and where the loader
    /// was loaded from.
    LoadedImage,
    /// `LocateDevicePath(LoadFile2, Linux initrd media path)` and `HandleProtocol`.
    LocateInitrd,
    /// `LoadFile2` with no buffer: the initrd's size.
    InitrdSize,
    /// `AllocatePages` for the application.
    AllocateApplication,
    /// `LoadFile2` into the buffer.
    ReadInitrd,
    /// `HandleProtocol(device, SimpleFileSystem)` and `OpenVolume`.
    OpenVolume,
    /// `Open` of a file on that volume.
    OpenFile,
    /// `GetInfo(FileInfo)`: the file's size.
    FileSize,
    /// `Read` of the file.
    ReadFile,
    /// `GetMemoryMap`.
    GetMemoryMap,
    /// `ExitBootServices`.
    ExitBootServices,
}

impl Call {
    /// The call as the refusal lines name it.
    pub const fn name(self) -> &'static str {
        match self {
            Call::LoadedImage => "HandleProtocol(LoadedImage)",
            Call::LocateInitrd => "LocateDevicePath(LoadFile2 initrd)",
            Call::InitrdSize => "LoadFile2(size)",
            Call::AllocateApplication => "AllocatePages(application)",
            Call::ReadInitrd => "LoadFile2(read)",
            Call::OpenVolume => "OpenVolume",
            Call::OpenFile => "Open",
            Call::FileSize => "GetInfo(FileInfo)",
            Call::ReadFile => "Read",
            Call::GetMemoryMap => "GetMemoryMap",
            Call::ExitBootServices => "ExitBootServices",
        }
    }
}

/// The vendor media GUID of the device path under which Linux-style firmware
/// offers the initrd through LoadFile2 (QEMU's `-initrd`, under OVMF).
const LINUX_INITRD_MEDIA: Guid = guid!("5568e427-68fc-4f3d-ac74-ca555231cc68");

/// That device path: one vendor media node, then the end node.
#[repr(C, align(4))]
struct InitrdDevicePath([u8; 24]);
static INITRD_DEVICE_PATH: InitrdDevicePath = {
    let guid = LINUX_INITRD_MEDIA.to_bytes();
    let mut path = [0u8; 24];
    // Media (4), vendor (3), 20 bytes long; the GUID.
    path[0] = 4;
    path[1] = 3;
    path[2] = 20;
    let mut i = 0;
    while i < 16 {
        path[4 + i] = guid[i];
        i += 1;
    }
    // End of the whole path: type 0x7f, subtype 0xff, 4 bytes long.
    path[20] = 0x7f;
    path[21] = 0xff;
    path[22] = 4;
    InitrdDevicePath(path)
};

/// The ACPI 2.0 and 1.0 tables' GUIDs in the configuration table.
const ACPI_20_TABLE: Guid = guid!("8868e871-e4f1-11d3-bc22-0080c73c8881");
const ACPI_10_TABLE: Guid = guid!("eb9d2d30-2d88-11d3-9a16-0090273fc14d");

/// A failed call's status.
pub type Failed = u64;

/// After every firmware call: interrupts off again (see the module comment).
fn returned(status: Status) -> Status {
    x86_64::instructions::interrupts::disable();
    status
}

fn check(status: Status) -> Result<(), Failed> {
    if status == Status::SUCCESS {
        Ok(())
    } else {
        Err(status.0 as u64)
    }
}

/// The firmware, as the stub handed it over.
pub struct Firmware {
    image: Handle,
    system_table: &'static SystemTable,
    boot: &'static BootServices,
}

/// What the loaded image protocol says about the loader.
pub struct LoadedImage {
    /// The load options' bytes (empty when there are none).
    pub load_options: &'static [u8],
    /// The device the loader was loaded from (its file system holds files next to
    /// it).
    pub device: Handle,
    /// The loader's file path on that device, UCS-2, when the image's path is one
    /// file-path node (OVMF's `-kernel`: `kernel`; an ESP:
    /// `\EFI\BOOT\BOOTX64.EFI`).
    pub file_path: Option<&'static [u16]>,
}

/// A file the firmware opened, closed when dropped.
struct File(*mut FileProtocolV1);

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful `open`/`open_volume` and is
        // closed once, here. A failed close leaves nothing to do.
        let _ = returned(unsafe { ((*self.0).close)(self.0) });
    }
}

impl Firmware {
    /// The firmware from the stub's pointers, if they are one: a system table with
    /// its signature and boot services.
    pub fn new(image_handle: u64, system_table: u64) -> Option<Firmware> {
        if image_handle == 0 || system_table == 0 || !system_table.is_multiple_of(8) {
            return None;
        }
        // SAFETY: the EFI stub passed the pointer the firmware called it with, to
        // the system table, which stays valid until ExitBootServices (and this
        // struct is consumed by `exit_boot_services`).
        let system_table = unsafe { &*(system_table as *const SystemTable) };
        if system_table.header.signature != SystemTable::SIGNATURE
            || system_table.boot_services.is_null()
        {
            return None;
        }
        // SAFETY: as above; the boot services table belongs to the system table.
        let boot = unsafe { &*system_table.boot_services };
        Some(Firmware {
            image: image_handle as Handle,
            system_table,
            boot,
        })
    }

    /// The system table's revision.
    pub fn revision(&self) -> u32 {
        self.system_table.header.revision.0
    }

    /// The firmware vendor's name, UCS-2 without its NUL (at most 64 characters).
    pub fn vendor(&self) -> &'static [u16] {
        let vendor = self.system_table.firmware_vendor;
        if vendor.is_null() {
            return &[];
        }
        // SAFETY: a NUL-terminated UCS-2 string of the firmware's, valid until
        // ExitBootServices; read up to the NUL, at most 64 characters.
        unsafe {
            let mut len = 0;
            while len < 64 && *vendor.add(len) != 0 {
                len += 1;
            }
            core::slice::from_raw_parts(vendor.cast::<u16>(), len)
        }
    }

    /// `HandleProtocol(handle, guid)`.
    fn protocol<T>(&self, handle: Handle, guid: &Guid) -> Result<*mut T, Failed> {
        let mut interface: *mut c_void = core::ptr::null_mut();
        // SAFETY: a boot service called with a valid handle and GUID and a place
        // for the result.
        check(returned(unsafe {
            (self.boot.handle_protocol)(handle, guid, &mut interface)
        }))?;
        if interface.is_null() {
            return Err(status::NOT_FOUND);
        }
        Ok(interface.cast())
    }

    /// The loader's loaded image protocol.
    pub fn loaded_image(&self) -> Result<LoadedImage, Failed> {
        let image: *mut LoadedImageProtocol =
            self.protocol(self.image, &LoadedImageProtocol::GUID)?;
        // SAFETY: the firmware's protocol instance for this image, valid until
        // ExitBootServices; its load options are `load_options_size` bytes (or
        // NULL), its file path a device path of the firmware's.
        unsafe {
            let image = &*image;
            let load_options = if image.load_options.is_null() || image.load_options_size == 0 {
                &[][..]
            } else {
                core::slice::from_raw_parts(
                    image.load_options.cast::<u8>(),
                    image.load_options_size as usize,
                )
            };
            Ok(LoadedImage {
                load_options,
                device: image.device_handle,
                file_path: file_path_node(image.file_path),
            })
        }
    }

    /// The LoadFile2 protocol on the Linux initrd media device path, to read the
    /// initrd with; `EFI_NOT_FOUND` when the firmware offers none.
    pub fn locate_initrd(&self) -> Result<*mut LoadFile2Protocol, Failed> {
        let mut path = INITRD_DEVICE_PATH.0.as_ptr().cast::<DevicePathProtocol>();
        let mut handle: Handle = core::ptr::null_mut();
        // SAFETY: a boot service called with the protocol GUID, a well-formed
        // device path of ours (it advances the pointer within it) and a place for
        // the handle.
        let located = returned(unsafe {
            (self.boot.locate_device_path)(&LoadFile2Protocol::GUID, &mut path, &mut handle)
        });
        check(located)?;
        self.protocol(handle, &LoadFile2Protocol::GUID)
    }

    /// The initrd's size: `LoadFile` with no buffer answers `EFI_BUFFER_TOO_SMALL`
    /// and the size (0 bytes answers success).
    pub fn initrd_size(&self, load_file: *mut LoadFile2Protocol) -> Result<usize, Failed> {
        let mut size = 0usize;
        // SAFETY: the protocol the firmware gave for our device path; a NULL
        // buffer with size 0 asks for the size.
        let status = returned(unsafe {
            ((*load_file).load_file)(
                load_file,
                INITRD_DEVICE_PATH.0[20..].as_ptr().cast(),
                false.into(),
                &mut size,
                core::ptr::null_mut(),
            )
        });
        match status.0 as u64 {
            status::BUFFER_TOO_SMALL | status::SUCCESS => Ok(size),
            other => Err(other),
        }
    }

    /// Reads the initrd into `buffer`.
    pub fn read_initrd(
        &self,
        load_file: *mut LoadFile2Protocol,
        buffer: &mut [u8],
    ) -> Result<usize, Failed> {
        let mut size = buffer.len();
        // SAFETY: as in `initrd_size`; the buffer is ours, `size` bytes long.
        check(returned(unsafe {
            ((*load_file).load_file)(
                load_file,
                INITRD_DEVICE_PATH.0[20..].as_ptr().cast(),
                false.into(),
                &mut size,
                buffer.as_mut_ptr().cast(),
            )
        }))?;
        Ok(size)
    }

    /// Pages for `size` bytes below the loader's reach (4 GiB), as loader data: the
    /// application, which the loader reads before the hand-over (after
    /// ExitBootServices the pages are free RAM again).
    pub fn allocate(&self, size: usize) -> Result<&'static mut [u8], Failed> {
        let pages = size.div_ceil(4096).max(1);
        let mut address = LOADER_REACH - 1;
        // SAFETY: a boot service called with a type, a memory type, a count and a
        // place for the address.
        check(returned(unsafe {
            (self.boot.allocate_pages)(
                AllocateType::MAX_ADDRESS,
                MemoryType::LOADER_DATA,
                pages,
                &mut address,
            )
        }))?;
        // SAFETY: the firmware gave `pages` pages at `address`, identity-mapped
        // and ours until ExitBootServices, and the pages stay out of every other
        // allocation until then.
        Ok(unsafe { core::slice::from_raw_parts_mut(address as *mut u8, size) })
    }

    /// Opens the file system the loader was loaded from.
    fn volume(&self, device: Handle) -> Result<File, Failed> {
        let fs: *mut SimpleFileSystemProtocol =
            self.protocol(device, &SimpleFileSystemProtocol::GUID)?;
        let mut root: *mut FileProtocolV1 = core::ptr::null_mut();
        // SAFETY: the firmware's file-system protocol for the device; a place for
        // the root directory's handle.
        check(returned(unsafe { ((*fs).open_volume)(fs, &mut root) }))?;
        if root.is_null() {
            return Err(status::NOT_FOUND);
        }
        Ok(File(root))
    }

    /// Opens `path` (NUL-terminated UCS-2) on the loader's volume for reading: the
    /// open file, or `None` when there is no such file.
    pub fn open(&self, device: Handle, path: &[u16]) -> Result<Option<OpenFile>, (Call, Failed)> {
        let root = self.volume(device).map_err(|s| (Call::OpenVolume, s))?;
        let mut file: *mut FileProtocolV1 = core::ptr::null_mut();
        // SAFETY: the open root directory, a NUL-terminated name of ours, a place
        // for the handle.
        let opened = returned(unsafe {
            ((*root.0).open)(
                root.0,
                &mut file,
                path.as_ptr().cast(),
                FileMode::READ,
                FileAttribute::empty(),
            )
        });
        match opened.0 as u64 {
            status::NOT_FOUND => Ok(None),
            _ => {
                check(opened).map_err(|s| (Call::OpenFile, s))?;
                if file.is_null() {
                    return Ok(None);
                }
                Ok(Some(OpenFile(File(file))))
            }
        }
    }

    /// The configuration table's ACPI RSDP: the ACPI 2.0 table if there is one, else
    /// the 1.0 one; `None` without either.
    pub fn rsdp(&self) -> Option<u64> {
        let table = self.system_table.configuration_table;
        let count = self.system_table.number_of_configuration_table_entries;
        if table.is_null() || count > 1024 {
            return None;
        }
        // SAFETY: the firmware's configuration table, `count` entries long, valid
        // until ExitBootServices (its vendor tables stay: ACPI memory).
        let entries: &[ConfigurationTable] = unsafe { core::slice::from_raw_parts(table, count) };
        [ACPI_20_TABLE, ACPI_10_TABLE].iter().find_map(|guid| {
            entries
                .iter()
                .find(|e| e.vendor_guid == *guid && !e.vendor_table.is_null())
                .map(|e| e.vendor_table as u64)
        })
    }

    /// `GetMemoryMap` into `buffer`; on `EFI_BUFFER_TOO_SMALL` the buffer grows to
    /// the size the firmware asks (and room for a few more descriptors, which the
    /// growth itself does not need: the heap is the loader's own) and the call is
    /// made again. Returns the map's size, its key and the descriptor size.
    pub fn memory_map(&self, buffer: &mut Vec<u64>) -> Result<MapRead, Failed> {
        for _ in 0..2 {
            let mut size = buffer.len() * 8;
            let mut key = 0usize;
            let mut descriptor_size = 0usize;
            let mut version = 0u32;
            // SAFETY: a boot service called with our buffer of `size` bytes, 8-byte
            // aligned, and places for its answers.
            let status = returned(unsafe {
                (self.boot.get_memory_map)(
                    &mut size,
                    buffer.as_mut_ptr().cast(),
                    &mut key,
                    &mut descriptor_size,
                    &mut version,
                )
            });
            match status.0 as u64 {
                status::SUCCESS => {
                    return Ok(MapRead {
                        size,
                        key,
                        descriptor_size,
                    })
                }
                status::BUFFER_TOO_SMALL => {
                    let words = (size + 8 * descriptor_size.max(48)).div_ceil(8);
                    buffer
                        .try_reserve_exact(words.saturating_sub(buffer.len()))
                        .map_err(|_| status::BUFFER_TOO_SMALL)?;
                    buffer.resize(words, 0);
                }
                other => return Err(other),
            }
        }
        Err(status::BUFFER_TOO_SMALL)
    }

    /// `ExitBootServices` with the key of the last map read. On success the
    /// firmware is gone; on failure it still runs and `self` comes back.
    pub fn exit_boot_services(self, key: usize) -> Result<(), (Firmware, Failed)> {
        // SAFETY: a boot service called with the image handle the firmware started
        // us with and the key of the last `GetMemoryMap`. After success nothing of
        // the firmware is used again: `self` is consumed.
        let status = returned(unsafe { (self.boot.exit_boot_services)(self.image, key) });
        match check(status) {
            Ok(()) => Ok(()),
            Err(failed) => Err((self, failed)),
        }
    }
}

/// The RSDP's first 36 bytes (the ACPI 2.0 structure; revision 0 uses 20 of
/// them) at the address the configuration table gives.
pub fn rsdp_bytes(address: u64) -> &'static [u8] {
    if address == 0 || address.checked_add(36).is_none_or(|end| end > LOADER_REACH) {
        return &[];
    }
    // SAFETY: the configuration table's ACPI entry points at the RSDP, in memory the
    // firmware keeps (ACPI reclaim or NVS, also after ExitBootServices) and
    // identity-maps; 36 bytes lie in it (an ACPI 1.0 RSDP of 20 is followed by more
    // of the firmware's ACPI memory, and only its first 20 bytes are used then).
    unsafe { core::slice::from_raw_parts(address as *const u8, 36) }
}

/// What `GetMemoryMap` answered.
#[derive(Clone, Copy, Debug)]
pub struct MapRead {
    pub size: usize,
    pub key: usize,
    pub descriptor_size: usize,
}

/// A file opened for reading.
pub struct OpenFile(File);

impl OpenFile {
    /// The file's size, from its `FileInfo`.
    pub fn size(&self) -> Result<u64, Failed> {
        // FileInfo's fixed part (80 bytes) and a name of up to 100 characters.
        let mut info = [0u64; 48];
        let mut size = core::mem::size_of_val(&info);
        // SAFETY: the open file; our 8-byte-aligned buffer of `size` bytes.
        check(returned(unsafe {
            ((*self.0 .0).get_info)(
                self.0 .0,
                &FileInfo::ID,
                &mut size,
                info.as_mut_ptr().cast(),
            )
        }))?;
        // `file_size` is the second u64.
        Ok(info[1])
    }

    /// Reads the file into `buffer`; returns the bytes read.
    pub fn read(&self, buffer: &mut [u8]) -> Result<usize, Failed> {
        let mut size = buffer.len();
        // SAFETY: the open file; our buffer of `size` bytes.
        check(returned(unsafe {
            ((*self.0 .0).read)(self.0 .0, &mut size, buffer.as_mut_ptr().cast())
        }))?;
        Ok(size)
    }
}

/// The UCS-2 name of a device path that is one file-path node (media type 4,
/// subtype 4) before its end, as the loaded image's `FilePath` is for a file
/// loaded from a volume; `None` for any other path.
///
/// # Safety
/// `path` is NULL or a device path of the firmware's, valid until
/// ExitBootServices.
unsafe fn file_path_node(path: *const DevicePathProtocol) -> Option<&'static [u16]> {
    if path.is_null() {
        return None;
    }
    // SAFETY: per the contract, the node's four header bytes are readable.
    let header = unsafe { core::slice::from_raw_parts(path.cast::<u8>(), 4) };
    let length = usize::from(u16::from_le_bytes([header[2], header[3]]));
    if header[0] != 4 || header[1] != 4 || length < 6 || !length.is_multiple_of(2) {
        return None;
    }
    // SAFETY: a file-path node holds `length` bytes: the header and the UCS-2 name,
    // which starts 4 bytes in (2-aligned, as the firmware lays device paths out
    // for its own UCS-2 readers; read unaligned all the same).
    let name = unsafe { core::slice::from_raw_parts(path.cast::<u8>().add(4), length - 4) };
    let units: Vec<u16> = name
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    Some(units.leak())
}
