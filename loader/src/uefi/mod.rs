//! The UEFI entry's boot information: what the firmware gives, read while its boot
//! services run, then `ExitBootServices` and the take-over of the machine; the
//! result answers `boot::BootSource` as the Multiboot and PVH readers do.
//!
//! In order: the loaded image (load options: the command line; where the loader
//! came from), the application (LoadFile2 on the Linux initrd media device path,
//! else the file the load options' `initrd=` word names or `initrd` next to the
//! loader), the RSDP from the configuration table, the memory map and
//! `ExitBootServices` (retried once with a fresh map, as the specification asks
//! when the map changed in between). Every boot-services call is timed and traced
//! (`FirmwareCall`). Then the loader's page tables, GDT and IDT replace the
//! firmware's, the map becomes the kernel's (Multiboot types), the RSDP is copied
//! where kernels 0.6–0.10 scan; `boot.rs` writes the MBI, as after PVH.
//! Every decision is the library's (`rusty_loader::efi`); `firmware.rs` makes the
//! calls.

mod firmware;

use alloc::string::String;
use alloc::vec::Vec;

use rusty_loader::efi::load_options::{self, LoadOptions};
use rusty_loader::efi::{acpi, memory_map, status};
use rusty_loader::error::LoadError;
use rusty_loader::memory::{MemoryMap, Region};
use rusty_loader::wire::MapEntry;
use rusty_loader::Module;

pub use firmware::Call;
use firmware::Firmware;

use crate::arch;
use crate::boot::BootSource;
use crate::trace;

/// Runs `f`, a boot-services call, timed and traced; its status on failure.
fn timed<T>(
    call: Call,
    f: impl FnOnce() -> Result<T, u64>,
    bytes: impl FnOnce(&T) -> u64,
) -> Result<T, u64> {
    let start = arch::rdtsc();
    let result = f();
    let ticks = arch::rdtsc().wrapping_sub(start);
    let (status, bytes) = match &result {
        Ok(value) => (status::SUCCESS, bytes(value)),
        Err(status) => (*status, 0),
    };
    trace::firmware_call(call, status, bytes, ticks);
    result
}

/// The refusal of a failed call.
fn failed(call: Call) -> impl FnOnce(u64) -> LoadError {
    move |status| LoadError::FirmwareCall {
        call: call.name(),
        status,
    }
}

fn none(_: &impl Sized) -> u64 {
    0
}

/// Where the application came from, for the trace.
pub enum Source {
    LoadFile2,
    File,
}

/// What the firmware gave, read and converted before its boot services exited:
/// the boot information of the UEFI entry.
pub struct Uefi {
    map: MemoryMap,
    /// The command line, a copy on the loader heap, and where it lies.
    command_line: (&'static str, Region),
    module: Module<'static>,
    /// The RSDP copy on the heap, for the device tree.
    rsdp: Option<u64>,
}

impl Uefi {
    /// Reads everything from the firmware, exits its boot services and takes the
    /// machine over (the loader's page tables, GDT and IDT).
    pub fn read() -> Result<Uefi, LoadError> {
        let handoff = arch::uefi::handoff();
        let firmware = Firmware::new(handoff.image_handle, handoff.system_table).ok_or(
            LoadError::FirmwareCall {
                call: "the EFI stub's hand-over (no system table)",
                status: status::INVALID_PARAMETER,
            },
        )?;
        trace::uefi_entry(
            firmware.revision(),
            &load_options::from_ucs2(firmware.vendor()),
            arch::early_stamps().entry,
        );

        let image = timed(Call::LoadedImage, || firmware.loaded_image(), none)
            .map_err(failed(Call::LoadedImage))?;
        let (command_line, initrd_word) = match load_options::decode(image.load_options) {
            LoadOptions::Text {
                command_line,
                initrd,
            } => (command_line, initrd),
            LoadOptions::Absent | LoadOptions::Binary => (String::new(), None),
        };

        let (source, path, application) = application(&firmware, &image, initrd_word.as_deref())?;
        trace::uefi_application(&source, &path);

        let rsdp = firmware
            .rsdp()
            .map(|address| (address, firmware::rsdp_bytes(address)));

        // The map is read last: any allocation changes its key. Tracing only writes
        // to the serial port.
        let mut buffer: Vec<u64> = Vec::new();
        buffer
            .try_reserve_exact(2048)
            .map_err(|_| LoadError::UnusableUefiMemoryMap {
                what: "no room on the loader's heap for the map",
            })?;
        buffer.resize(2048, 0);
        let read = timed(
            Call::GetMemoryMap,
            || firmware.memory_map(&mut buffer),
            |r| r.size as u64,
        )
        .map_err(failed(Call::GetMemoryMap))?;
        let read = exit(firmware, read, &mut buffer)?;

        // The firmware is gone: the loader's tables, GDT and IDT from here.
        arch::uefi::take_over();
        arch::exceptions::install(crate::report_exception);

        let used = read.size.div_ceil(8).min(buffer.len());
        let bytes: Vec<u8> = buffer[..used]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let descriptor_size = read.descriptor_size;
        #[cfg(feature = "faults")]
        let descriptor_size = crate::inject::uefi_descriptor_size(descriptor_size);
        let descriptors = memory_map::descriptors(&bytes, read.size, descriptor_size)?;
        trace::uefi_memory_map(&descriptors, read.descriptor_size);
        let mut entries = memory_map::kernel_map(&descriptors)?;
        let rsdp_copy = match rsdp {
            Some((address, bytes)) => place_rsdp(address, bytes, &mut entries),
            None => {
                trace::rsdp(0, 0, 0, 0);
                None
            }
        };
        let ram = memory_map::usable_ram(&entries);
        let line: &'static str = command_line.leak();
        let line_region = Region::new(
            line.as_ptr() as u64,
            line.as_ptr() as u64 + line.len() as u64,
        );
        let start = application.as_ptr() as u64;
        Ok(Uefi {
            map: MemoryMap { entries, ram },
            command_line: (line, line_region),
            module: Module {
                region: Region::new(start, start + application.len() as u64),
                bytes: application,
                string: None,
                string_region: None,
            },
            rsdp: rsdp_copy,
        })
    }
}

impl BootSource for Uefi {
    fn memory_map(&self) -> Result<MemoryMap, LoadError> {
        Ok(MemoryMap {
            entries: self.map.entries.clone(),
            ram: self.map.ram.clone(),
        })
    }

    /// A copy on the heap: `boot.rs` copies it once more into the MBI it writes.
    fn command_line(
        &self,
        _usable: &[Region],
    ) -> Result<Option<(&'static str, Region)>, LoadError> {
        Ok(Some(self.command_line))
    }

    fn firmware_mbi(&self) -> Option<(u32, Region)> {
        None
    }

    fn module(&self, _usable: &[Region]) -> Result<Option<Module<'static>>, LoadError> {
        Ok(Some(Module {
            region: self.module.region,
            bytes: self.module.bytes,
            string: None,
            string_region: None,
        }))
    }

    fn missing_module(&self) -> LoadError {
        LoadError::NoApplication {
            tried: "the UEFI reader found none",
        }
    }

    fn rsdp(&self) -> Option<u64> {
        self.rsdp
    }
}

/// `ExitBootServices` with the key of `read`; if the map changed since (the
/// firmware answers `EFI_INVALID_PARAMETER`), once more with a fresh map.
fn exit(
    firmware: Firmware,
    read: firmware::MapRead,
    buffer: &mut Vec<u64>,
) -> Result<firmware::MapRead, LoadError> {
    #[cfg(feature = "faults")]
    if crate::inject::exit_boot_services_fails() {
        let _ = firmware;
        return Err(LoadError::ExitBootServices {
            first: status::INVALID_PARAMETER,
            second: status::INVALID_PARAMETER,
        });
    }
    let start = arch::rdtsc();
    let first = match firmware.exit_boot_services(read.key) {
        Ok(()) => {
            trace::firmware_call(
                Call::ExitBootServices,
                0,
                0,
                arch::rdtsc().wrapping_sub(start),
            );
            return Ok(read);
        }
        Err((firmware, first)) => {
            trace::firmware_call(
                Call::ExitBootServices,
                first,
                0,
                arch::rdtsc().wrapping_sub(start),
            );
            (firmware, first)
        }
    };
    let (firmware, first) = first;
    let read = timed(
        Call::GetMemoryMap,
        || firmware.memory_map(buffer),
        |r| r.size as u64,
    )
    .map_err(failed(Call::GetMemoryMap))?;
    let start = arch::rdtsc();
    match firmware.exit_boot_services(read.key) {
        Ok(()) => {
            trace::firmware_call(
                Call::ExitBootServices,
                0,
                0,
                arch::rdtsc().wrapping_sub(start),
            );
            Ok(read)
        }
        Err((_, second)) => {
            trace::firmware_call(
                Call::ExitBootServices,
                second,
                0,
                arch::rdtsc().wrapping_sub(start),
            );
            Err(LoadError::ExitBootServices { first, second })
        }
    }
}

/// The application: through LoadFile2, else from a file on the loader's volume.
fn application(
    firmware: &Firmware,
    image: &firmware::LoadedImage,
    initrd_word: Option<&str>,
) -> Result<(Source, String, &'static [u8]), LoadError> {
    let located = timed(Call::LocateInitrd, || firmware.locate_initrd(), none);
    match located {
        Ok(load_file) => {
            let size = timed(
                Call::InitrdSize,
                || firmware.initrd_size(load_file),
                |s| *s as u64,
            )
            .map_err(failed(Call::InitrdSize))?;
            if size == 0 {
                return Err(LoadError::EmptyApplication {
                    source: "the firmware's initrd (LoadFile2) is empty",
                });
            }
            let buffer = timed(
                Call::AllocateApplication,
                || firmware.allocate(size),
                |b| b.len() as u64,
            )
            .map_err(failed(Call::AllocateApplication))?;
            let read = timed(
                Call::ReadInitrd,
                || firmware.read_initrd(load_file, buffer),
                |n| *n as u64,
            )
            .map_err(failed(Call::ReadInitrd))?;
            let bytes: &'static [u8] = &buffer[..read.min(size)];
            return Ok((Source::LoadFile2, String::new(), bytes));
        }
        Err(status::NOT_FOUND) => {}
        Err(other) => return Err(failed(Call::LocateInitrd)(other)),
    }

    // No LoadFile2 initrd: a file on the volume the loader came from.
    let path = match initrd_word {
        Some(path) => path.replace('/', "\\"),
        None => {
            let own = image
                .file_path
                .map(load_options::from_ucs2)
                .unwrap_or_default();
            load_options::sibling_path(&own, "initrd")
        }
    };
    let name = load_options::to_ucs2(&path).ok_or(LoadError::NoApplication {
        tried: "the file name given with initrd= has a character UCS-2 cannot hold",
    })?;
    let start = arch::rdtsc();
    let opened = firmware.open(image.device, &name);
    let ticks = arch::rdtsc().wrapping_sub(start);
    let file = match opened {
        Ok(file) => {
            let status = if file.is_some() {
                status::SUCCESS
            } else {
                status::NOT_FOUND
            };
            trace::firmware_call(Call::OpenFile, status, 0, ticks);
            file
        }
        Err((call, status)) => {
            trace::firmware_call(call, status, 0, ticks);
            // No file system on the loader's device: no file to read either.
            if status == status::UNSUPPORTED {
                None
            } else {
                return Err(failed(call)(status));
            }
        }
    };
    let file = file.ok_or(LoadError::NoApplication {
        tried: "the firmware offers no initrd through LoadFile2, and the loader's volume has no file `initrd` next to the loader (nor the one an initrd= word names)",
    })?;
    let size = timed(Call::FileSize, || file.size(), |s| *s).map_err(failed(Call::FileSize))?;
    if size == 0 {
        return Err(LoadError::EmptyApplication {
            source: "the application file on the loader's volume is empty (QEMU's file system has a 0-byte `initrd` without -initrd)",
        });
    }
    let size =
        usize::try_from(size).map_err(|_| failed(Call::FileSize)(status::BAD_BUFFER_SIZE))?;
    let buffer = timed(
        Call::AllocateApplication,
        || firmware.allocate(size),
        |b| b.len() as u64,
    )
    .map_err(failed(Call::AllocateApplication))?;
    let read = timed(Call::ReadFile, || file.read(buffer), |n| *n as u64)
        .map_err(failed(Call::ReadFile))?;
    let bytes: &'static [u8] = &buffer[..read.min(size)];
    Ok((Source::File, path, bytes))
}

/// Checks the firmware's RSDP, copies it into the loader's EBDA (reserved in
/// `map`) and onto the heap; traces both. Returns the heap copy's address, for the
/// device tree.
fn place_rsdp(address: u64, bytes: &'static [u8], map: &mut Vec<MapEntry>) -> Option<u64> {
    let Ok(rsdp) = acpi::check(bytes) else {
        trace::rsdp(address, 0, 0, 0);
        return None;
    };
    let bytes = &bytes[..rsdp.length];
    let heap: &'static [u8] = Vec::from(bytes).leak();
    let ebda = acpi::plan_ebda(map);
    if let Some(ebda) = ebda {
        arch::uefi::write_ebda(ebda, acpi::ebda_segment(ebda), bytes);
        *map = acpi::reserve(map, ebda);
    }
    trace::rsdp(
        address,
        rsdp.revision,
        ebda.map_or(0, |r| r.start),
        heap.as_ptr() as u64,
    );
    Some(heap.as_ptr() as u64)
}
