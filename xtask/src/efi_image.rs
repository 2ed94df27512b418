//! The UEFI image: the EFI stub (a static PIE ELF) turned into a PE32+ EFI
//! application with real base relocations, and given the Linux boot-protocol
//! header fields QEMU wants before it accepts `-initrd` with a `-kernel` file.
//!
//! Why not `objcopy -O pei-x86-64`: GNU objcopy copies the ELF's sections but
//! turns none of its dynamic relocations into PE base relocations (gnu-efi's
//! images relocate themselves at run time for that reason), places the PE
//! headers as it likes (the Linux fields must not collide with the section
//! table) and is not on every machine that has `rust-objcopy`. The conversion is
//! small when the ELF is a static PIE whose relocations are all
//! `R_X86_64_RELATIVE`: each `PT_LOAD` becomes a section at the same relative
//! address (shifted by one page, for the headers), each relocation is applied for
//! the preferred base and listed as a `DIR64` base relocation, and the firmware
//! applies the difference wherever it loads the image.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use goblin::elf::{program_header::PT_LOAD, reloc::R_X86_64_RELATIVE, Elf};
use xshell::Shell;

use crate::build::{
    cargo_build, in_progress, Action, CargoBuild, Profile, EFI_STUB_FLAGS, HOST_TARGET,
};
use crate::project_root;

/// The payload the stub carries for the loader ELF `elf`: the header (load
/// address, end of the loader's range, `uefi_start64`) and the loaded bytes from
/// `__loader_start`.
pub fn payload_from_elf(elf_bytes: &[u8]) -> Result<Vec<u8>> {
    let elf = Elf::parse(elf_bytes).context("parsing the loader ELF")?;
    let symbol = |name: &str| -> Result<u64> {
        elf.syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
            .map(|s| s.st_value)
            .with_context(|| format!("the loader ELF has no symbol {name}"))
    };
    let start = symbol("__loader_start")?;
    let end = symbol("__loader_end")?;
    let entry = symbol("uefi_start64")?;
    let loaded: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_filesz > 0)
        .collect();
    let bytes_end = loaded
        .iter()
        .map(|p| p.p_paddr + p.p_filesz)
        .max()
        .context("the loader ELF has no loaded bytes")?;
    ensure!(
        bytes_end <= end,
        "the loader's bytes end after __loader_end"
    );
    let mut bytes = vec![0u8; usize::try_from(bytes_end - start)?];
    for p in loaded {
        ensure!(p.p_paddr >= start, "a segment lies below __loader_start");
        let at = usize::try_from(p.p_paddr - start)?;
        let from = usize::try_from(p.p_offset)?;
        let len = usize::try_from(p.p_filesz)?;
        let data = elf_bytes
            .get(from..from + len)
            .context("a loader segment lies outside the file")?;
        bytes[at..at + len].copy_from_slice(data);
    }
    let mut payload = rusty_loader::efi::payload::header(start, end, entry).to_vec();
    payload.extend_from_slice(&bytes);
    // The stub's own check, run here too: a payload it would refuse fails the build.
    rusty_loader::efi::payload::parse(&payload)
        .map_err(|what| anyhow::anyhow!("the EFI payload is unusable: {what}"))?;
    Ok(payload)
}

/// Where the stub of one loader build is built: one directory per output, so that
/// builds of several trace levels do not rebuild each other's stub.
fn stub_dir(efi: &Path) -> PathBuf {
    let name = efi
        .file_stem()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    let flavour = efi
        .parent()
        .and_then(|p| p.file_name())
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    project_root()
        .join("target/bare-metal/efi-stub")
        .join(format!("{flavour}-{name}"))
}

fn cargo_stub(
    sh: &Shell,
    profile: Profile,
    faults: bool,
    target_dir: &Path,
    payload: &Path,
    action: Action,
) -> Result<PathBuf> {
    let _payload = sh.push_env("RUSTY_LOADER_EFI_PAYLOAD", payload);
    cargo_build(
        sh,
        CargoBuild {
            action,
            package: "rusty-loader",
            bins: &["rusty-loader-efi-stub"],
            features: if faults { "stub-faults" } else { "efi-stub" },
            profile,
            target_dir,
            rustflags: EFI_STUB_FLAGS,
            defmt_log: "error",
            release_profile: &[],
        },
    )
}

/// Builds `rusty-loader.efi` for the loader ELF `elf` (its bytes, build identity
/// stamped): the payload, the stub with it, the PE with the Linux header fields;
/// written beside the other artifacts and renamed into place.
/// `faults`: the stub of a fault-injection build, which injects
/// `loader-area-taken` itself.
pub fn build_efi(sh: &Shell, profile: Profile, faults: bool, elf: &[u8], efi: &Path) -> Result<()> {
    let dir = stub_dir(efi);
    std::fs::create_dir_all(&dir)?;
    let payload_path = dir.join("payload.bin");
    let payload = payload_from_elf(elf)?;
    // Rewritten only when it changed, so that cargo rebuilds the stub only then.
    if std::fs::read(&payload_path).ok().as_deref() != Some(&payload[..]) {
        std::fs::write(&payload_path, &payload).context("writing the EFI payload")?;
    }
    let out = cargo_stub(
        sh,
        profile,
        faults,
        &dir.join("target"),
        &payload_path,
        Action::Build,
    )?;
    let stub = std::fs::read(out.join("rusty-loader-efi-stub")).context("reading the EFI stub")?;
    let mut image = elf_to_efi(&stub)?;
    if image.len() < linux_header::MIN_FILE_SIZE {
        image.resize(linux_header::MIN_FILE_SIZE, 0);
    }
    patch_linux_header(&mut image)?;
    let part = in_progress(efi);
    std::fs::write(&part, &image).context("writing the EFI application")?;
    std::fs::rename(&part, efi).context("writing the EFI application")?;
    Ok(())
}

/// Clippy on the stub, with a payload of the right shape (its contents do not
/// matter to the lints).
pub fn lint_stub(sh: &Shell) -> Result<()> {
    let dir = project_root().join("target/bare-metal/efi-stub/lint");
    std::fs::create_dir_all(&dir)?;
    let payload = dir.join("payload.bin");
    let mut placeholder =
        rusty_loader::efi::payload::header(0x10_0000, 0x10_1000, 0x10_0000).to_vec();
    placeholder.push(0xc3);
    std::fs::write(&payload, placeholder)?;
    for faults in [false, true] {
        cargo_stub(
            sh,
            Profile::Debug,
            faults,
            &dir.join("target"),
            &payload,
            Action::Clippy,
        )?;
    }
    Ok(())
}

// The stub is built for the host target like every bare-metal binary.
const _: &str = HOST_TARGET;

/// Where the PE header starts (`e_lfanew`): right after the 64-byte DOS header.
const PE_HEADER_AT: usize = 0x40;
const COFF_HEADER_SIZE: usize = 20;
/// The PE32+ optional header with its 16 data directories.
const OPTIONAL_HEADER_SIZE: usize = 112 + 16 * 8;
const SECTION_HEADER_SIZE: usize = 40;
/// Where the section table starts.
const SECTION_TABLE_AT: usize = PE_HEADER_AT + 4 + COFF_HEADER_SIZE + OPTIONAL_HEADER_SIZE;
/// Where Linux's setup header begins (`setup_sects`): the PE headers must end
/// before it, since QEMU reads and rewrites fields from here on.
pub const LINUX_SETUP_HEADER_AT: usize = 0x1f1;
/// The most sections whose table ends before the Linux setup header.
pub const MAX_SECTIONS: usize = (LINUX_SETUP_HEADER_AT - SECTION_TABLE_AT) / SECTION_HEADER_SIZE;
const FILE_ALIGNMENT: u64 = 0x200;
const SECTION_ALIGNMENT: u64 = 0x1000;
/// The headers' size in the file: the PE headers and the Linux setup header
/// (which ends at 0x268 in the latest protocol), rounded to the file alignment.
const SIZE_OF_HEADERS: u64 = 0x400;
/// Where the ELF's lowest page goes: one page up, the headers take the first.
const FIRST_SECTION_RVA: u64 = SECTION_ALIGNMENT;
/// The preferred load address. EDK2 tries it first when it is at least 1 MiB; 0
/// leaves the choice to the firmware (it allocates from the top of memory), which
/// keeps the image clear of the low memory the stub copies the loader to.
const IMAGE_BASE: u64 = 0;
/// `IMAGE_SUBSYSTEM_EFI_APPLICATION`.
const SUBSYSTEM_EFI_APPLICATION: u16 = 10;
const MACHINE_AMD64: u16 = 0x8664;
/// `IMAGE_FILE_EXECUTABLE_IMAGE | IMAGE_FILE_LARGE_ADDRESS_AWARE |
/// IMAGE_FILE_LINE_NUMS_STRIPPED | IMAGE_FILE_LOCAL_SYMS_STRIPPED |
/// IMAGE_FILE_DEBUG_STRIPPED`.
const FILE_CHARACTERISTICS: u16 = 0x0002 | 0x0020 | 0x0004 | 0x0008 | 0x0200;
/// `IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE`: the image can be loaded anywhere.
const DLL_CHARACTERISTICS: u16 = 0x0040;
/// The base relocation table's index among the data directories.
const BASE_RELOCATION_DIRECTORY: usize = 5;
/// `IMAGE_REL_BASED_DIR64` and `IMAGE_REL_BASED_ABSOLUTE` (padding).
const REL_BASED_DIR64: u16 = 10;
const REL_BASED_ABSOLUTE: u16 = 0;

const SCN_CNT_CODE: u32 = 0x0000_0020;
const SCN_CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
const SCN_MEM_DISCARDABLE: u32 = 0x0200_0000;
const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
const SCN_MEM_READ: u32 = 0x4000_0000;
const SCN_MEM_WRITE: u32 = 0x8000_0000;

/// One section of the image being written.
struct Section {
    name: [u8; 8],
    rva: u64,
    virtual_size: u64,
    data: Vec<u8>,
    characteristics: u32,
}

/// Converts a static PIE (`ET_DYN`, x86_64, only `R_X86_64_RELATIVE` relocations,
/// page-aligned `PT_LOAD`s) into a PE32+ EFI application.
pub fn elf_to_efi(elf_bytes: &[u8]) -> Result<Vec<u8>> {
    let elf = Elf::parse(elf_bytes).context("the EFI stub is not an ELF file")?;
    ensure!(
        elf.header.e_type == goblin::elf::header::ET_DYN,
        "the EFI stub must be position independent (ET_DYN), not e_type {}",
        elf.header.e_type
    );
    ensure!(
        elf.header.e_machine == goblin::elf::header::EM_X86_64,
        "the EFI stub is not for x86_64"
    );
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect();
    ensure!(!loads.is_empty(), "the EFI stub has no PT_LOAD segment");
    let lowest = loads[0].p_vaddr & !(SECTION_ALIGNMENT - 1);
    let rva = |vaddr: u64| vaddr - lowest + FIRST_SECTION_RVA;

    let mut sections = Vec::new();
    for (index, load) in loads.iter().enumerate() {
        ensure!(
            load.p_vaddr.is_multiple_of(SECTION_ALIGNMENT) || index == 0,
            "PT_LOAD {index} at {:#x} is not page aligned (link with -z separate-loadable-segments)",
            load.p_vaddr
        );
        let start = usize::try_from(load.p_offset)?;
        let end = start + usize::try_from(load.p_filesz)?;
        let data = elf_bytes
            .get(start..end)
            .with_context(|| format!("PT_LOAD {index} lies outside the file"))?;
        // The first segment may start inside its page (the ELF header is there):
        // its section starts at the page, zero-filled before the data.
        let lead = usize::try_from(load.p_vaddr - (load.p_vaddr & !(SECTION_ALIGNMENT - 1)))?;
        let mut bytes = vec![0; lead];
        bytes.extend_from_slice(data);
        let (name, characteristics) = if load.is_executable() {
            (
                *b".text\0\0\0",
                SCN_CNT_CODE | SCN_MEM_EXECUTE | SCN_MEM_READ,
            )
        } else if load.is_write() {
            (
                *b".data\0\0\0",
                SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ | SCN_MEM_WRITE,
            )
        } else {
            (*b".rdata\0\0", SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ)
        };
        sections.push(Section {
            name,
            rva: rva(load.p_vaddr & !(SECTION_ALIGNMENT - 1)),
            virtual_size: lead as u64 + load.p_memsz,
            data: bytes,
            characteristics,
        });
    }
    for pair in sections.windows(2) {
        ensure!(
            pair[0].rva + pair[0].virtual_size <= pair[1].rva,
            "the EFI stub's segments overlap or are out of order"
        );
    }

    // Apply each relocation for the preferred base and list where it is.
    let mut fixups = Vec::new();
    for rela in elf.dynrelas.iter() {
        ensure!(
            rela.r_type == R_X86_64_RELATIVE,
            "the EFI stub has a relocation of type {} at {:#x}; only R_X86_64_RELATIVE can become a PE base relocation",
            rela.r_type,
            rela.r_offset
        );
        let addend = u64::try_from(rela.r_addend.context("a RELA entry without addend")?)
            .context("a negative relocation addend")?;
        let at = rva(rela.r_offset);
        let section = sections
            .iter_mut()
            .find(|s| at >= s.rva && at + 8 <= s.rva + s.data.len() as u64)
            .with_context(|| {
                format!(
                    "relocation at {:#x} is outside the file's bytes",
                    rela.r_offset
                )
            })?;
        let offset = (at - section.rva) as usize;
        section.data[offset..offset + 8].copy_from_slice(&(IMAGE_BASE + rva(addend)).to_le_bytes());
        fixups.push(at);
    }
    fixups.sort_unstable();
    let relocations = base_relocation_table(&fixups);
    let reloc_rva = sections
        .last()
        .map(|s| (s.rva + s.virtual_size).next_multiple_of(SECTION_ALIGNMENT))
        .unwrap_or(FIRST_SECTION_RVA);
    sections.push(Section {
        name: *b".reloc\0\0",
        rva: reloc_rva,
        virtual_size: relocations.len() as u64,
        data: relocations.clone(),
        characteristics: SCN_CNT_INITIALIZED_DATA | SCN_MEM_DISCARDABLE | SCN_MEM_READ,
    });
    ensure!(
        sections.len() <= MAX_SECTIONS,
        "the EFI stub has {} sections with .reloc; at most {MAX_SECTIONS} fit before the Linux setup header at {LINUX_SETUP_HEADER_AT:#x} (link with -z norelro)",
        sections.len()
    );

    let entry = rva(elf.header.e_entry);
    Ok(write_pe(
        &sections,
        entry,
        reloc_rva,
        relocations.len() as u64,
    ))
}

/// The `.reloc` section: one block per 4 KiB page, `DIR64` entries, each block
/// padded to four bytes.
fn base_relocation_table(sorted_rvas: &[u64]) -> Vec<u8> {
    let mut table = Vec::new();
    let mut i = 0;
    while i < sorted_rvas.len() {
        let page = sorted_rvas[i] & !0xfff;
        let mut entries = Vec::new();
        while i < sorted_rvas.len() && sorted_rvas[i] & !0xfff == page {
            entries.push((REL_BASED_DIR64 << 12) | (sorted_rvas[i] & 0xfff) as u16);
            i += 1;
        }
        if entries.len() % 2 == 1 {
            entries.push(REL_BASED_ABSOLUTE << 12);
        }
        table.extend_from_slice(&(page as u32).to_le_bytes());
        table.extend_from_slice(&((8 + 2 * entries.len()) as u32).to_le_bytes());
        for entry in entries {
            table.extend_from_slice(&entry.to_le_bytes());
        }
    }
    table
}

fn put_u16(out: &mut [u8], at: usize, value: u16) {
    out[at..at + 2].copy_from_slice(&value.to_le_bytes());
}
fn put_u32(out: &mut [u8], at: usize, value: u32) {
    out[at..at + 4].copy_from_slice(&value.to_le_bytes());
}
fn put_u64(out: &mut [u8], at: usize, value: u64) {
    out[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Lays the headers and the sections out.
fn write_pe(sections: &[Section], entry: u64, reloc_rva: u64, reloc_size: u64) -> Vec<u8> {
    let mut file_offset = SIZE_OF_HEADERS;
    let mut raw = Vec::new();
    for section in sections {
        let size = (section.data.len() as u64).next_multiple_of(FILE_ALIGNMENT);
        raw.push((file_offset, size));
        file_offset += size;
    }
    let mut out = vec![0u8; file_offset as usize];
    // DOS header: the magic and where the PE header is.
    out[0..2].copy_from_slice(b"MZ");
    put_u32(&mut out, 0x3c, PE_HEADER_AT as u32);
    out[PE_HEADER_AT..PE_HEADER_AT + 4].copy_from_slice(b"PE\0\0");
    let coff = PE_HEADER_AT + 4;
    put_u16(&mut out, coff, MACHINE_AMD64);
    put_u16(&mut out, coff + 2, sections.len() as u16);
    put_u16(&mut out, coff + 16, OPTIONAL_HEADER_SIZE as u16);
    put_u16(&mut out, coff + 18, FILE_CHARACTERISTICS);

    let sum = |filter: &dyn Fn(&Section) -> bool| -> u32 {
        sections
            .iter()
            .filter(|s| filter(s))
            .map(|s| (s.data.len() as u64).next_multiple_of(FILE_ALIGNMENT) as u32)
            .sum()
    };
    let code = sum(&|s| s.characteristics & SCN_CNT_CODE != 0);
    let data = sum(&|s| s.characteristics & SCN_CNT_INITIALIZED_DATA != 0);
    let base_of_code = sections
        .iter()
        .find(|s| s.characteristics & SCN_CNT_CODE != 0)
        .map_or(0, |s| s.rva);
    let size_of_image = (reloc_rva + reloc_size).next_multiple_of(SECTION_ALIGNMENT);

    let opt = coff + COFF_HEADER_SIZE;
    put_u16(&mut out, opt, 0x20b); // PE32+
    put_u32(&mut out, opt + 4, code);
    put_u32(&mut out, opt + 8, data);
    put_u32(&mut out, opt + 16, entry as u32);
    put_u32(&mut out, opt + 20, base_of_code as u32);
    put_u64(&mut out, opt + 24, IMAGE_BASE);
    put_u32(&mut out, opt + 32, SECTION_ALIGNMENT as u32);
    put_u32(&mut out, opt + 36, FILE_ALIGNMENT as u32);
    put_u16(&mut out, opt + 48, 1); // subsystem version 1.0
    put_u32(&mut out, opt + 56, size_of_image as u32);
    put_u32(&mut out, opt + 60, SIZE_OF_HEADERS as u32);
    put_u16(&mut out, opt + 68, SUBSYSTEM_EFI_APPLICATION);
    put_u16(&mut out, opt + 70, DLL_CHARACTERISTICS);
    // Stack and heap reserve/commit: the firmware gives its own stack; unused.
    put_u64(&mut out, opt + 72, 0x10000);
    put_u64(&mut out, opt + 80, 0x10000);
    put_u32(&mut out, opt + 108, 16); // number of data directories
    let directory = opt + 112 + BASE_RELOCATION_DIRECTORY * 8;
    put_u32(&mut out, directory, reloc_rva as u32);
    put_u32(&mut out, directory + 4, reloc_size as u32);

    for (i, (section, (offset, size))) in sections.iter().zip(&raw).enumerate() {
        let header = SECTION_TABLE_AT + i * SECTION_HEADER_SIZE;
        out[header..header + 8].copy_from_slice(&section.name);
        put_u32(&mut out, header + 8, section.virtual_size as u32);
        put_u32(&mut out, header + 12, section.rva as u32);
        put_u32(&mut out, header + 16, *size as u32);
        put_u32(&mut out, header + 20, *offset as u32);
        put_u32(&mut out, header + 36, section.characteristics);
        let at = *offset as usize;
        out[at..at + section.data.len()].copy_from_slice(&section.data);
    }
    out
}

/// The Linux boot-protocol fields QEMU reads from a `-kernel` file, and the values
/// the loader's image carries.
pub mod linux_header {
    /// `"HdrS"`: the setup header is present.
    pub const MAGIC_AT: usize = 0x202;
    pub const MAGIC: &[u8; 4] = b"HdrS";
    /// The boot-protocol version: 2.06. At least 2.00 for QEMU to load an initrd;
    /// 2.02 and later so that QEMU puts the command line pointer at 0x228 instead
    /// of rewriting bytes 0x20–0x23 (inside the DOS header); 2.03 and later read
    /// the initrd limit below; below 2.09, so that QEMU 7.2 adds no `setup_data`
    /// (its RNG seed) to the image.
    pub const VERSION_AT: usize = 0x206;
    pub const VERSION: u16 = 0x0206;
    /// `loadflags`: bit 0, `LOADED_HIGH` (QEMU then places its copy at 1 MiB;
    /// OVMF ignores where, the flag only keeps QEMU's checks on the modern path).
    pub const LOADFLAGS_AT: usize = 0x211;
    pub const LOADED_HIGH: u8 = 0x01;
    /// `initrd_addr_max`: the highest address of the initrd. QEMU refuses an
    /// initrd as large as this (and lowers it to the RAM below 4 GiB itself).
    pub const INITRD_ADDR_MAX_AT: usize = 0x22c;
    pub const INITRD_ADDR_MAX: u32 = 0x7fff_ffff;
    /// The last byte these fields and the ones QEMU rewrites (up to
    /// `cmd_line_ptr` at 0x228 and the limit at 0x22c) reach.
    pub const END: usize = 0x230;
    /// QEMU's smallest `-kernel` file: `(setup_sects + 1) * 512` bytes, with 0 in
    /// `setup_sects` (0x1f1) counted as 4.
    pub const MIN_FILE_SIZE: usize = 5 * 512;
}

/// Writes the Linux boot-protocol fields into a PE image's header padding. The
/// bytes from `setup_sects` (0x1f1) to the end of the fields must be zero (the PE
/// headers end before them) and the file large enough for QEMU.
pub fn patch_linux_header(image: &mut [u8]) -> Result<()> {
    use linux_header::*;
    ensure!(image.starts_with(b"MZ"), "not a PE image (no MZ)");
    ensure!(
        image.len() >= MIN_FILE_SIZE,
        "the image has {} bytes; QEMU wants at least {MIN_FILE_SIZE} for a -kernel file with a Linux header",
        image.len()
    );
    let sections = u16::from_le_bytes([image[PE_HEADER_AT + 6], image[PE_HEADER_AT + 7]]);
    let table_end = SECTION_TABLE_AT + usize::from(sections) * SECTION_HEADER_SIZE;
    if table_end > LINUX_SETUP_HEADER_AT {
        bail!("the PE section table ends at {table_end:#x}, inside the Linux setup header at {LINUX_SETUP_HEADER_AT:#x}");
    }
    if let Some(at) = image[LINUX_SETUP_HEADER_AT..END]
        .iter()
        .position(|&b| b != 0)
    {
        bail!(
            "byte {:#x} of the image, inside the Linux setup header, is not padding",
            LINUX_SETUP_HEADER_AT + at
        );
    }
    image[MAGIC_AT..MAGIC_AT + 4].copy_from_slice(MAGIC);
    put_u16(image, VERSION_AT, VERSION);
    image[LOADFLAGS_AT] = LOADED_HIGH;
    put_u32(image, INITRD_ADDR_MAX_AT, INITRD_ADDR_MAX);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal static PIE: ELF header, program headers for an R page at 0 and
    /// an RW page at 0x1000 holding one pointer, a dynamic section with one
    /// R_X86_64_RELATIVE relocation to 0x1010.
    fn tiny_pie(r_type: u32, second_at: u64) -> Vec<u8> {
        let mut file = vec![0u8; 0x2000];
        file[0..4].copy_from_slice(b"\x7fELF");
        file[4] = 2; // 64-bit
        file[5] = 1; // little endian
        file[6] = 1;
        put_u16(&mut file, 16, 3); // ET_DYN
        put_u16(&mut file, 18, 62); // x86_64
        put_u32(&mut file, 20, 1);
        put_u64(&mut file, 24, 0x123); // entry
        put_u64(&mut file, 32, 64); // phoff
        put_u16(&mut file, 52, 64);
        put_u16(&mut file, 54, 56);
        put_u16(&mut file, 56, 3); // phnum
        put_u16(&mut file, 58, 64);
        let ph = |file: &mut Vec<u8>,
                  i: usize,
                  p_type: u32,
                  flags: u32,
                  off: u64,
                  vaddr: u64,
                  size: u64| {
            let at = 64 + i * 56;
            put_u32(file, at, p_type);
            put_u32(file, at + 4, flags);
            put_u64(file, at + 8, off);
            put_u64(file, at + 16, vaddr);
            put_u64(file, at + 24, vaddr);
            put_u64(file, at + 32, size);
            put_u64(file, at + 40, size);
            put_u64(file, at + 48, 0x1000);
        };
        ph(&mut file, 0, PT_LOAD, 4, 0, 0, 0x400);
        ph(&mut file, 1, PT_LOAD, 6, 0x1000, second_at, 0x100);
        ph(
            &mut file,
            2,
            goblin::elf::program_header::PT_DYNAMIC,
            6,
            0x1020,
            second_at + 0x20,
            0x40,
        );
        // Dynamic: DT_RELA 0x300, DT_RELASZ 24, DT_RELAENT 24, DT_NULL.
        let dynamic = [(7u64, 0x300u64), (8, 24), (9, 24), (0, 0)];
        for (i, (tag, value)) in dynamic.iter().enumerate() {
            put_u64(&mut file, 0x1020 + i * 16, *tag);
            put_u64(&mut file, 0x1028 + i * 16, *value);
        }
        // One RELA entry: at 0x1000 (the pointer), addend 0x1010.
        put_u64(&mut file, 0x300, second_at);
        put_u64(&mut file, 0x308, u64::from(r_type));
        put_u64(&mut file, 0x310, second_at + 0x10);
        file
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn converts_a_static_pie_with_base_relocations() {
        let pe = elf_to_efi(&tiny_pie(R_X86_64_RELATIVE, 0x1000)).unwrap();
        let parsed = goblin::pe::PE::parse(&pe).expect("goblin reads the image as PE");
        assert!(parsed.is_64);
        let opt = parsed.header.optional_header.unwrap();
        assert_eq!(opt.windows_fields.subsystem, SUBSYSTEM_EFI_APPLICATION);
        assert_eq!(opt.standard_fields.address_of_entry_point, 0x1123);
        assert_eq!(parsed.sections.len(), 3);
        assert_eq!(parsed.sections[0].virtual_address, 0x1000);
        assert_eq!(parsed.sections[1].virtual_address, 0x2000);
        // The pointer holds the preferred base plus its target's RVA...
        let data_at = parsed.sections[1].pointer_to_raw_data as usize;
        assert_eq!(
            u64::from_le_bytes(pe[data_at..data_at + 8].try_into().unwrap()),
            0x2010
        );
        // ...and one DIR64 base relocation points at it.
        let reloc = &parsed.sections[2];
        let at = reloc.pointer_to_raw_data as usize;
        assert_eq!(u32_at(&pe, at), 0x2000, "page RVA");
        assert_eq!(u32_at(&pe, at + 4), 12, "block size, padded to four bytes");
        assert_eq!(u16::from_le_bytes([pe[at + 8], pe[at + 9]]), 0xa000);
        assert_eq!(u16::from_le_bytes([pe[at + 10], pe[at + 11]]), 0);
        let directory = opt.data_directories.get_base_relocation_table().unwrap();
        assert_eq!((directory.virtual_address, directory.size), (0x3000, 12));
        let table_end = SECTION_TABLE_AT + parsed.sections.len() * SECTION_HEADER_SIZE;
        assert!(table_end <= LINUX_SETUP_HEADER_AT, "{table_end:#x}");
    }

    #[test]
    fn refuses_what_cannot_become_a_pe_base_relocation() {
        let err = elf_to_efi(&tiny_pie(1, 0x1000)).unwrap_err().to_string();
        assert!(err.contains("relocation of type 1"), "{err}");
        let err = elf_to_efi(&tiny_pie(R_X86_64_RELATIVE, 0x1234))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not page aligned"), "{err}");
    }

    #[test]
    fn relocation_blocks_split_by_page_and_pad() {
        let table = base_relocation_table(&[0x1008, 0x1010, 0x1ff8, 0x3000]);
        // Block 1: page 0x1000, three entries + one pad = 8 + 8 bytes.
        assert_eq!(u32_at(&table, 0), 0x1000);
        assert_eq!(u32_at(&table, 4), 16);
        assert_eq!(u16::from_le_bytes([table[12], table[13]]), 0xaff8);
        assert_eq!(u16::from_le_bytes([table[14], table[15]]), 0);
        // Block 2: page 0x3000, one entry + pad.
        assert_eq!(u32_at(&table, 16), 0x3000);
        assert_eq!(u32_at(&table, 20), 12);
        assert_eq!(table.len(), 28);
    }

    #[test]
    fn linux_header_fields_go_into_the_padding() {
        let mut pe = elf_to_efi(&tiny_pie(R_X86_64_RELATIVE, 0x1000)).unwrap();
        pe.resize(pe.len().max(linux_header::MIN_FILE_SIZE), 0);
        patch_linux_header(&mut pe).unwrap();
        assert_eq!(&pe[0x202..0x206], b"HdrS");
        assert_eq!(u16::from_le_bytes([pe[0x206], pe[0x207]]), 0x0206);
        assert_eq!(pe[0x211], 1);
        assert_eq!(u32_at(&pe, 0x22c), 0x7fff_ffff);
        assert_eq!(pe[0x1f1], 0, "setup_sects 0: QEMU counts four");
        // Still a PE image after the patch.
        assert!(goblin::pe::PE::parse(&pe).is_ok());
        // A second patch finds the fields taken.
        let err = patch_linux_header(&mut pe).unwrap_err().to_string();
        assert!(err.contains("not padding"), "{err}");
        // A file too short for QEMU is refused.
        let mut short = elf_to_efi(&tiny_pie(R_X86_64_RELATIVE, 0x1000)).unwrap();
        short.truncate(0x800);
        assert!(patch_linux_header(&mut short)
            .unwrap_err()
            .to_string()
            .contains("at least 2560"));
    }
}
