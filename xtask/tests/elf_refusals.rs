//! Applications that parse but cannot be loaded as they say (issue 20, item 8),
//! booted in QEMU: each is a copy of a real test kernel with one inconsistency, and
//! each must be refused before the hand-over with its own exit status, one line
//! naming what was found and a `Refused` event — never handed over half relocated,
//! to fail as if by the kernel's own fault.
//!
//! The first two mutants are the issue's: `DT_RELASZ`'s tag turned into 0xffff0008
//! (the loader applied nothing and handed over), and the data segment's `PT_LOAD`
//! given another type (the loader relocated into the hole and the boot hung).

mod common;

use std::path::PathBuf;

use common::{artifacts, boot, config, entered, shown, xtask};
use goblin::elf::dynamic::{DT_RELA, DT_RELACOUNT, DT_RELAENT, DT_RELASZ};
use goblin::elf::program_header::{PT_DYNAMIC, PT_LOAD, PT_NULL, PT_TLS};
use goblin::elf::Elf;
use rusty_loader::error::ExitCode;
use trace_decoder::decode::{decode_recording, TraceTable};
use xtask::qemu::{BootProtocol, Machine, QemuConfig};

/// The entries every mutant is booted through: both of the loader's, on `pc`.
const BOTH_ENTRIES: [(BootProtocol, Machine); 2] = [
    (BootProtocol::Multiboot, Machine::Pc),
    (BootProtocol::Pvh, Machine::Pc),
];

/// Program header field offsets (ELF64).
const P_TYPE: usize = 0;
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;

/// A test kernel's bytes with what the tests need to find in them.
struct Kernel {
    bytes: Vec<u8>,
}

impl Kernel {
    fn read(path: &std::path::Path) -> Kernel {
        Kernel {
            bytes: std::fs::read(path).unwrap(),
        }
    }

    fn hello_dyn() -> Kernel {
        Kernel::read(&artifacts().kernels.hello_dyn)
    }

    fn elf(&self) -> Elf<'_> {
        Elf::parse(&self.bytes).unwrap()
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().unwrap())
    }

    fn set_u64(&mut self, at: usize, value: u64) {
        self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// File offset of field `field` of program header `index`.
    fn phdr_field(&self, index: usize, field: usize) -> usize {
        // e_phoff, read directly: a mutant need not parse any more.
        self.u64_at(32) as usize + index * 56 + field
    }

    /// The index of the `nth` program header of type `p_type`.
    fn phdr_index(&self, p_type: u32, nth: usize) -> usize {
        self.elf()
            .program_headers
            .iter()
            .enumerate()
            .filter(|(_, header)| header.p_type == p_type)
            .nth(nth)
            .unwrap_or_else(|| panic!("program header {p_type} number {nth}"))
            .0
    }

    fn set_phdr(&mut self, index: usize, field: usize, value: u64) {
        let at = self.phdr_field(index, field);
        self.set_u64(at, value);
    }

    fn set_phdr_type(&mut self, index: usize, p_type: u32) {
        let at = self.phdr_field(index, P_TYPE);
        self.bytes[at..at + 4].copy_from_slice(&p_type.to_le_bytes());
    }

    /// File offset and index of the dynamic entry with tag `tag`.
    fn dynamic_entry(&self, tag: u64) -> (usize, usize) {
        let elf = self.elf();
        let dynamic = elf
            .program_headers
            .iter()
            .find(|p| p.p_type == PT_DYNAMIC)
            .unwrap();
        let base = dynamic.p_offset as usize;
        (0..dynamic.p_filesz as usize / 16)
            .map(|i| (base + i * 16, i))
            .find(|&(at, _)| self.u64_at(at) == tag)
            .unwrap_or_else(|| panic!("dynamic tag {tag:#x}"))
    }

    /// File offset of the first entry of the `.rela.dyn` table and its entries'
    /// targets.
    fn relocations(&self) -> (usize, Vec<u64>) {
        let elf = self.elf();
        let (rela, _) = self.dynamic_entry(DT_RELA);
        let vaddr = self.u64_at(rela + 8);
        let offset = elf
            .program_headers
            .iter()
            .find(|p| p.p_type == PT_LOAD && (p.p_vaddr..p.p_vaddr + p.p_filesz).contains(&vaddr))
            .map(|p| (vaddr - p.p_vaddr + p.p_offset) as usize)
            .unwrap();
        let targets = elf.dynrelas.iter().map(|rela| rela.r_offset).collect();
        (offset, targets)
    }

    /// Writes the mutant to a file named after the case.
    fn write(&self, name: &str) -> PathBuf {
        let dir = xtask::project_root().join("target/test-inputs/elf-refusals");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &self.bytes).unwrap();
        path
    }
}

/// Boots `app` through both entries; each boot must end with `code`'s status, an
/// error line naming the code that contains `message`, and a `Refused` event with
/// the code.
fn check_refused(app: &std::path::Path, code: ExitCode, message: &str) {
    for (entry, machine) in BOTH_ENTRIES {
        check_refused_on(&entered(config(app), entry, machine), code, message);
    }
}

fn check_refused_on(config: &QemuConfig, code: ExitCode, message: &str) {
    let run = boot(config);
    let serial = run.serial_text();
    let context = format!(
        "expected {code:?}\ncommand: {}\nserial:\n{serial}\nstderr:\n{}",
        config.display(),
        run.stderr
    );
    assert_eq!(run.status, Some(code.qemu_status()), "{context}");
    let lines: Vec<&str> = serial
        .lines()
        .filter(|line| line.starts_with("rusty-loader: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line\n{context}");
    let expected_end = format!(
        "(exit code {}, QEMU status {})",
        code.name(),
        code.qemu_status()
    );
    assert!(
        lines[0].contains(message) && lines[0].ends_with(&expected_end),
        "error line {:?} should say {message:?} and end {expected_end:?}",
        lines[0]
    );
    // Nothing was handed over: the trace ends with the refusal.
    let elf = std::fs::read(&artifacts().loader.elf).unwrap();
    let table = TraceTable::from_elf(&elf).unwrap();
    let events = decode_recording(&table, &run.serial).unwrap().events;
    let names: Vec<&str> = events.iter().map(|event| event.name()).collect();
    assert!(!names.contains(&"HandOver"), "{names:?}");
    let last = events.last().expect("a trace");
    assert_eq!(last.name(), "Refused", "{names:?}");
    let message = last.message();
    for field in [
        format!("code={}", code.port_value()),
        format!("name={}", code.name()),
    ] {
        assert!(
            message.split(' ').any(|word| word == field),
            "{field} in {message:?}"
        );
    }
}

/// The first mutant: `DT_RELASZ`'s tag turned into an undefined one leaves
/// `DT_RELA` and `DT_RELACOUNT` without a size.
#[test]
fn relasz_tag_turned_undefined() {
    let mut kernel = Kernel::hello_dyn();
    let (at, index) = kernel.dynamic_entry(DT_RELASZ);
    kernel.set_u64(at, 0xffff_0008);
    check_refused(
        &kernel.write("relasz-tag-0xffff0008"),
        ExitCode::UndefinedTag,
        &format!("dynamic entry {index} has tag 0xffff0008, which no ELF specification defines"),
    );
}

/// The same mutation to a tag in a defined range that the loader does not read: the
/// table is left without its size, which is refused as such.
#[test]
fn relasz_tag_turned_into_another_defined_tag() {
    let mut kernel = Kernel::hello_dyn();
    let (at, _) = kernel.dynamic_entry(DT_RELASZ);
    kernel.set_u64(at, 0x6fff_fd08);
    check_refused(
        &kernel.write("relasz-tag-gnu"),
        ExitCode::InconsistentDynamic,
        "the dynamic section has DT_RELA but no DT_RELASZ",
    );
}

#[test]
fn relacount_above_the_table() {
    let mut kernel = Kernel::hello_dyn();
    let (at, _) = kernel.dynamic_entry(DT_RELACOUNT);
    let (size_at, _) = kernel.dynamic_entry(DT_RELASZ);
    let entries = kernel.u64_at(size_at + 8) / 24;
    kernel.set_u64(at + 8, entries + 1);
    check_refused(
        &kernel.write("relacount-above"),
        ExitCode::InconsistentDynamic,
        &format!(
            "DT_RELACOUNT says {} relative relocations, but the table (DT_RELASZ) holds {entries}",
            entries + 1
        ),
    );
}

#[test]
fn relocation_entry_size_16() {
    let mut kernel = Kernel::hello_dyn();
    let (at, _) = kernel.dynamic_entry(DT_RELAENT);
    kernel.set_u64(at + 8, 16);
    check_refused(
        &kernel.write("relaent-16"),
        ExitCode::InconsistentDynamic,
        "DT_RELAENT is 16, where the loader's records are 24 bytes",
    );
}

/// The second mutant: the `PT_LOAD` of the data segment (`.tdata`,
/// `.data.rel.ro`, `.dynamic`, `.got`) given an undefined type.
#[test]
fn data_segment_type_turned_undefined() {
    let mut kernel = Kernel::hello_dyn();
    let index = kernel.phdr_index(PT_LOAD, 2);
    kernel.set_phdr_type(index, 0x1234_5678);
    check_refused(
        &kernel.write("data-load-undefined-type"),
        ExitCode::UndefinedTag,
        &format!("program header {index} has type 0x12345678"),
    );
}

/// The second mutant with a defined type (`PT_NULL`): the segment is gone, and with
/// it the `PT_DYNAMIC` it held.
#[test]
fn data_segment_turned_into_pt_null() {
    let mut kernel = Kernel::hello_dyn();
    let index = kernel.phdr_index(PT_LOAD, 2);
    kernel.set_phdr_type(index, PT_NULL);
    check_refused(
        &kernel.write("data-load-null"),
        ExitCode::DynamicOutsideSegments,
        "PT_DYNAMIC [",
    );
}

#[test]
fn tls_template_moved_into_a_gap() {
    let mut kernel = Kernel::hello_dyn();
    let elf = kernel.elf();
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .cloned()
        .collect();
    // The page-aligned address between the first two segments.
    let gap = (loads[0].p_vaddr + loads[0].p_memsz).next_multiple_of(0x1000);
    assert!(
        gap < loads[1].p_vaddr,
        "a gap between the first two segments"
    );
    let index = kernel.phdr_index(PT_TLS, 0);
    kernel.set_phdr(index, P_VADDR, gap);
    check_refused(
        &kernel.write("tls-in-gap"),
        ExitCode::TlsOutsideSegments,
        &format!("the PT_TLS template [{gap:#x}, "),
    );
}

#[test]
fn relocation_table_outside_the_segments() {
    let mut kernel = Kernel::hello_dyn();
    let (at, _) = kernel.dynamic_entry(DT_RELA);
    kernel.set_u64(at + 8, 0x4000_0000);
    check_refused(
        &kernel.write("rela-outside"),
        ExitCode::TableOutsideSegments,
        "the DT_RELA table [0x40000000, ",
    );
}

/// A relocation aimed between the first two segments: found while relocating, after
/// the segments are loaded, still before the hand-over.
#[test]
fn relocation_into_a_gap() {
    let mut kernel = Kernel::hello_dyn();
    let elf = kernel.elf();
    let first = elf
        .program_headers
        .iter()
        .find(|p| p.p_type == PT_LOAD)
        .unwrap();
    let gap = (first.p_vaddr + first.p_memsz).next_multiple_of(0x1000);
    let (table, targets) = kernel.relocations();
    let index = targets.len() / 2;
    kernel.set_u64(table + index * 24, gap);
    check_refused(
        &kernel.write("relocation-into-gap"),
        ExitCode::RelocationOutsideSegments,
        &format!("relocation {index} writes 8 bytes at {gap:#x}, which do not lie in one PT_LOAD segment"),
    );
}

/// The last relocation moved to straddle the end of the last segment.
#[test]
fn relocation_across_a_segment_end() {
    let mut kernel = Kernel::hello_dyn();
    let elf = kernel.elf();
    let last = elf
        .program_headers
        .iter()
        .rfind(|p| p.p_type == PT_LOAD)
        .unwrap();
    let target = last.p_vaddr + last.p_memsz - 4;
    let (table, targets) = kernel.relocations();
    let index = targets.len() - 1;
    kernel.set_u64(table + index * 24, target);
    check_refused(
        &kernel.write("relocation-across-end"),
        ExitCode::RelocationOutsideSegments,
        &format!("relocation {index} writes 8 bytes at {target:#x}"),
    );
}

/// An executable's entry point moved into its read-only first segment.
#[test]
fn entry_point_outside_the_code() {
    let mut kernel = Kernel::read(&artifacts().kernels.hello_exec);
    let entry = kernel
        .elf()
        .program_headers
        .iter()
        .find(|p| p.p_type == PT_LOAD)
        .unwrap()
        .p_vaddr
        + 0x100;
    kernel.set_u64(24, entry);
    check_refused(
        &kernel.write("entry-in-rodata"),
        ExitCode::EntryOutsideCode,
        &format!(
            "the entry point {entry:#x} is not in the file bytes of an executable PT_LOAD segment"
        ),
    );
}

#[test]
fn segments_out_of_order() {
    let mut kernel = Kernel::hello_dyn();
    let (first, second) = (kernel.phdr_index(PT_LOAD, 0), kernel.phdr_index(PT_LOAD, 1));
    let (a, b) = (kernel.phdr_field(first, 0), kernel.phdr_field(second, 0));
    let original = kernel.bytes.clone();
    kernel.bytes[a..a + 56].copy_from_slice(&original[b..b + 56]);
    kernel.bytes[b..b + 56].copy_from_slice(&original[a..a + 56]);
    check_refused(
        &kernel.write("loads-swapped"),
        ExitCode::OverlappingSegments,
        "PT_LOAD segments out of address order",
    );
}

#[test]
fn file_size_above_memory_size() {
    let mut kernel = Kernel::hello_dyn();
    let index = kernel.phdr_index(PT_LOAD, 1);
    let file_size = kernel.u64_at(kernel.phdr_field(index, P_FILESZ));
    kernel.set_phdr(index, P_MEMSZ, file_size - 8);
    check_refused(
        &kernel.write("filesz-above-memsz"),
        ExitCode::FileSizeAboveMemorySize,
        &format!("PT_LOAD program header {index} has p_filesz {file_size:#x} > p_memsz"),
    );
}

#[test]
fn file_offset_not_congruent_with_the_address() {
    let mut kernel = Kernel::hello_dyn();
    let index = kernel.phdr_index(PT_LOAD, 1);
    let offset = kernel.u64_at(kernel.phdr_field(index, P_OFFSET));
    kernel.set_phdr(index, P_OFFSET, offset + 8);
    check_refused(
        &kernel.write("offset-not-congruent"),
        ExitCode::MisalignedSegment,
        &format!("has p_offset {:#x} and p_vaddr", offset + 8),
    );
}

#[test]
fn every_segment_empty() {
    let mut kernel = Kernel::hello_dyn();
    let count = kernel
        .elf()
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .count();
    let indices: Vec<usize> = (0..count)
        .map(|nth| kernel.phdr_index(PT_LOAD, nth))
        .collect();
    for index in indices {
        kernel.set_phdr(index, P_FILESZ, 0);
        kernel.set_phdr(index, P_MEMSZ, 0);
    }
    check_refused(
        &kernel.write("empty-image"),
        ExitCode::EmptyImage,
        &format!("the {count} PT_LOAD segments occupy no memory"),
    );
}

/// What a user sees: `cargo xtask trace` on the first mutant reports the
/// loader's refusal, with its status, and nowhere blames the kernel.
#[test]
fn the_report_blames_the_file_not_the_kernel() {
    let mut kernel = Kernel::hello_dyn();
    let (at, _) = kernel.dynamic_entry(DT_RELASZ);
    kernel.set_u64(at, 0xffff_0008);
    let app = kernel.write("relasz-tag-0xffff0008-traced");
    let output = xtask(&["trace", "--color=never", app.to_str().unwrap()]);
    let shown = shown(&output);
    let code = ExitCode::UndefinedTag;
    assert_eq!(output.status.code(), Some(code.qemu_status()), "{shown}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("Outcome") && line.contains("refused (undefined-tag)")),
        "{shown}"
    );
    assert!(!stdout.contains("hand-over"), "{shown}");
    assert!(!stdout.contains("in the kernel"), "{shown}");
}
