//! Every refusal of the loader, booted in QEMU: each bad input must end with its
//! documented exit status and one clear line naming what was found — never a hang,
//! a triple fault or a panic. The bad inputs are made here from a good test kernel,
//! one defect each, or are QEMU options (a command line, a memory size). The exit
//! codes that only a loader bug can cause (loader-panic, bad-mapping, fdt-build)
//! come from the loader built with fault injection (`rusty_loader::faults`). One
//! test boots an input for every documented code and checks that the codes
//! produced are exactly the documented ones.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use common::{artifacts, boot, config, entered, fault_config, fault_loader, mutants, ENTRIES};
use goblin::elf::dynamic::{DT_NEEDED, DT_NULL, DT_RELACOUNT};
use goblin::elf::program_header::{PF_R, PT_LOAD, PT_NOTE};
use goblin::elf::Elf;
use rusty_loader::elf::{MAX_NOTE_BYTES, MAX_PROGRAM_HEADERS};
use rusty_loader::error::ExitCode;
use rusty_loader::faults::Fault;
use trace_decoder::decode::{decode_recording, TraceTable};
use xtask::qemu::{BootProtocol, Captured, Machine, QemuConfig};

/// The trace of a failed boot ends with its error event, carrying these fields.
fn check_error_event(serial: &[u8], name: &str, fields: &[(&str, &str)]) {
    check_error_event_of(&artifacts().loader.elf, serial, name, fields);
}

/// [`check_error_event`] for a stream of the loader `loader_elf`.
fn check_error_event_of(loader_elf: &Path, serial: &[u8], name: &str, fields: &[(&str, &str)]) {
    let elf = std::fs::read(loader_elf).unwrap();
    let table = TraceTable::from_elf(&elf).unwrap();
    let events = decode_recording(&table, serial)
        .expect("the stream decodes")
        .events;
    let last = events.last().expect("a trace");
    assert_eq!(last.name(), name, "the last event: {events:#?}");
    // Each field as the event shows it (`code=17`), a word of its message.
    let message = last.message();
    for (key, value) in fields {
        let field = format!("{key}={value}");
        assert!(
            message.split(' ').any(|word| word == field),
            "{field} in {message:?}"
        );
    }
}

/// Writes `bytes` to a file named after the case, in the test's scratch directory.
/// Written beside it and renamed into place: two tests that make the same case at
/// once never let QEMU read half a file.
fn write_case(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = xtask::project_root().join("target/test-inputs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let part = dir.join(format!(
        ".{name}.{}.{:?}.part",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&part, bytes).unwrap();
    std::fs::rename(&part, &path).unwrap();
    path
}

fn hello_dyn() -> Vec<u8> {
    std::fs::read(&artifacts().kernels.hello_dyn).unwrap()
}

/// Boots `app` through both entries on both machine types and checks the status and
/// that the loader's error line says `message`.
fn check_refusal(app: Option<PathBuf>, code: ExitCode, message: &str) {
    for (entry, machine) in ENTRIES {
        let mut config = entered(config("unused"), entry, machine);
        config.app = app.clone();
        check_refusal_of(&config, code, message);
    }
}

/// Boots `config` and checks the status and that the loader's error line says
/// `message`; returns the boot.
fn check_refusal_of(config: &QemuConfig, code: ExitCode, message: &str) -> Captured {
    let run = boot(config);
    let serial = run.serial_text();
    assert_eq!(
        run.status,
        Some(code.qemu_status()),
        "expected {code:?}\ncommand: {}\nserial:\n{serial}\nstderr:\n{}",
        config.display(),
        run.stderr
    );
    let line = serial
        .lines()
        .find(|l| l.starts_with("rusty-loader: error:"))
        .unwrap_or_else(|| panic!("no error line\nserial:\n{serial}"));
    assert!(
        line.contains(message),
        "error line {line:?} should mention {message:?}"
    );
    assert!(
        line.ends_with(&format!(
            " (exit code {}, QEMU status {})",
            code.name(),
            code.qemu_status()
        )),
        "error line {line:?} should name the code {}",
        code.name()
    );
    run
}

fn le16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn le64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern present")
}

#[test]
fn no_module() {
    check_refusal(None, ExitCode::NoModule, "-initrd");
    let pvh = entered(config("unused"), BootProtocol::Pvh, Machine::Pc);
    check_refusal_of(
        &QemuConfig { app: None, ..pvh },
        ExitCode::NoModule,
        "the PVH start info lists no module (nr_modules 0)",
    );
}

/// A word after the application's file name in `-initrd` is a loader option; one
/// the loader does not know is refused by name (it would otherwise be lost silently).
#[test]
fn unknown_loader_option() {
    let mut config = config(&artifacts().kernels.hello_dyn);
    config.loader_options.push("keep-cmdlin".to_string());
    let run = boot(&config);
    let serial = run.serial_text();
    assert_eq!(
        run.status,
        Some(ExitCode::UnknownOption.qemu_status()),
        "serial:\n{serial}"
    );
    assert!(
        serial.contains(
            "rusty-loader: error: unknown loader option \"keep-cmdlin\" after the application's file name in -initrd (the loader knows: keep-cmdline)"
        ),
        "{serial}"
    );
    check_error_event(&run.serial, "Refused", &[("name", "unknown-option")]);
}

fn not_elf_case() -> PathBuf {
    write_case("not-elf", b"#!/bin/sh\necho this is not a kernel\n")
}

#[test]
fn not_an_elf() {
    check_refusal(Some(not_elf_case()), ExitCode::NotElf, "23 21 2f 62");
}

/// An empty file is not "an ELF starting with 00 00 00 00": the line says it is empty.
/// QEMU's PVH boot lists no module for an empty file: there it is no module at all.
#[test]
fn empty_module() {
    let app = write_case("empty", b"");
    for (entry, machine) in ENTRIES {
        let config = QemuConfig {
            app: Some(app.clone()),
            ..entered(config("unused"), entry, machine)
        };
        let (code, message) = match entry {
            BootProtocol::Multiboot => (
                ExitCode::NotElf,
                "the module is empty (0 bytes): -initrd names an empty file",
            ),
            BootProtocol::Pvh => (ExitCode::NoModule, "-initrd"),
            BootProtocol::Uefi => unreachable!("UEFI boots are tests/uefi.rs's"),
        };
        check_refusal_of(&config, code, message);
    }
}

fn elf32_case() -> PathBuf {
    let mut elf = hello_dyn();
    elf[4] = 1; // EI_CLASS = ELFCLASS32
    write_case("elf32", &elf)
}

#[test]
fn elf32() {
    check_refusal(Some(elf32_case()), ExitCode::WrongClass, "EI_CLASS 1");
}

fn aarch64_case() -> PathBuf {
    let mut elf = hello_dyn();
    le16(&mut elf, 18, 183); // EM_AARCH64
    write_case("aarch64", &elf)
}

#[test]
fn wrong_machine() {
    check_refusal(
        Some(aarch64_case()),
        ExitCode::WrongMachine,
        "e_machine 183",
    );
}

fn et_rel_case() -> PathBuf {
    let mut elf = hello_dyn();
    le16(&mut elf, 16, 1); // ET_REL
    write_case("et-rel", &elf)
}

#[test]
fn relocatable_object() {
    check_refusal(Some(et_rel_case()), ExitCode::WrongType, "e_type 1");
}

/// A file cut short, as an interrupted copy leaves it: the ELF header is whole, the
/// program header table it points to is not.
fn truncated_case() -> PathBuf {
    let elf = hello_dyn();
    let phoff = Elf::parse(&elf).unwrap().header.e_phoff as usize;
    write_case("truncated", &elf[..phoff + 20])
}

#[test]
fn malformed_elf() {
    check_refusal(
        Some(truncated_case()),
        ExitCode::MalformedElf,
        "malformed ELF: the program header table lies outside the file",
    );
}

fn no_note_case() -> PathBuf {
    let mut elf = hello_dyn();
    let at = find(&elf, b"HERMIT\0");
    elf[at..at + 6].copy_from_slice(b"HERMIX");
    write_case("no-note", &elf)
}

#[test]
fn no_hermit_note() {
    check_refusal(Some(no_note_case()), ExitCode::NoHermitNote, "HERMIT note");
}

fn entry_v1_case() -> PathBuf {
    let mut elf = hello_dyn();
    // The 1-byte descriptor follows the 8-byte-padded name "HERMIT\0".
    let at = find(&elf, b"HERMIT\0") + 8;
    assert_eq!(elf[at], 4, "the test kernels carry entry version 4");
    // Version 1 (hermit-entry 0.8 and older) passed the stack in the boot info.
    elf[at] = 1;
    write_case("entry-v1", &elf)
}

#[test]
fn entry_version_1() {
    check_refusal(
        Some(entry_v1_case()),
        ExitCode::UnsupportedEntryVersion,
        "HERMIT entry version 1 is not supported (this loader serves 2, 3 and 4)",
    );
}

/// File offset of the first dynamic entry with tag `tag`.
fn dynamic_entry_offset(elf_bytes: &[u8], tag: u64) -> usize {
    let elf = Elf::parse(elf_bytes).unwrap();
    let dynamic = elf
        .program_headers
        .iter()
        .find(|p| p.p_type == goblin::elf::program_header::PT_DYNAMIC)
        .unwrap();
    let base = dynamic.p_offset as usize;
    (0..dynamic.p_filesz as usize / 16)
        .map(|i| base + i * 16)
        .find(|&at| u64::from_le_bytes(elf_bytes[at..at + 8].try_into().unwrap()) == tag)
        .expect("dynamic entry present")
}

fn dt_needed_case() -> PathBuf {
    let mut elf = hello_dyn();
    // Turn the terminating DT_NULL into a DT_NEEDED: the loader must refuse before
    // it would ever look for the (absent) string.
    let at = dynamic_entry_offset(&elf, DT_NULL);
    le64(&mut elf, at, DT_NEEDED);
    write_case("dt-needed", &elf)
}

#[test]
fn needs_shared_library() {
    check_refusal(
        Some(dt_needed_case()),
        ExitCode::NeedsSharedLibrary,
        "DT_NEEDED",
    );
}

fn segment_outside_case() -> PathBuf {
    let mut elf = hello_dyn();
    let parsed = Elf::parse(&elf).unwrap();
    let phoff = parsed.header.e_phoff as usize;
    let index = parsed
        .program_headers
        .iter()
        .position(|p| p.p_type == PT_LOAD && p.p_filesz > 0)
        .unwrap();
    let len = elf.len() as u64;
    // p_offset is at +8 in an ELF64 program header.
    le64(&mut elf, phoff + index * 56 + 8, len + 0x1000);
    write_case("segment-outside", &elf)
}

#[test]
fn segment_outside_file() {
    check_refusal(
        Some(segment_outside_case()),
        ExitCode::SegmentOutsideFile,
        "outside",
    );
}

fn reloc_pc32_case() -> PathBuf {
    let mut elf = hello_dyn();
    let parsed = Elf::parse(&elf).unwrap();
    let rela = parsed
        .section_headers
        .iter()
        .find(|s| parsed.shdr_strtab.get_at(s.sh_name) == Some(".rela.dyn"))
        .unwrap();
    let at = rela.sh_offset as usize + 8; // r_info of the first entry
                                          // R_X86_64_PC32 (2): never produced for a static PIE, not served by the loader.
    le64(&mut elf, at, 2);
    // DT_RELACOUNT counted the entry as relative, which would be refused as an
    // inconsistency first (elf_refusals.rs): the count goes.
    let count = dynamic_entry_offset(&elf, DT_RELACOUNT);
    le64(&mut elf, count + 8, 0);
    write_case("reloc-pc32", &elf)
}

#[test]
fn unsupported_relocation() {
    check_refusal(
        Some(reloc_pc32_case()),
        ExitCode::UnsupportedRelocation,
        "type 2",
    );
}

/// `elf` with its program header table replaced by `count` `PT_NOTE` headers that all
/// name the same `zeros` zero bytes, both appended to the file. A run of zeros is a
/// valid sequence of empty notes, so a loader that scans every header's notes does
/// `count * zeros / 12` note reads: the shape a fuzzing campaign found, which hung
/// the loader under emulation.
fn same_notes_everywhere(mut elf: Vec<u8>, count: u16, zeros: usize) -> Vec<u8> {
    elf.resize(elf.len().next_multiple_of(8), 0);
    let table = elf.len();
    let notes = (table + usize::from(count) * 56) as u64;
    le64(&mut elf, 32, table as u64); // e_phoff
    le16(&mut elf, 56, count); // e_phnum
    for _ in 0..count {
        elf.extend_from_slice(&PT_NOTE.to_le_bytes()); // p_type
        elf.extend_from_slice(&PF_R.to_le_bytes()); // p_flags
                                                    // p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
        for field in [notes, notes, notes, zeros as u64, zeros as u64, 4] {
            elf.extend_from_slice(&field.to_le_bytes());
        }
    }
    elf.resize(elf.len() + zeros, 0);
    elf
}

/// Boots `app`, which must be refused as too complex with `message`, and checks the
/// `Refused` event too.
fn check_too_complex(app: PathBuf, message: &str) {
    for (entry, machine) in ENTRIES {
        check_too_complex_on(entered(config(&app), entry, machine), message);
    }
}

fn check_too_complex_on(config: QemuConfig, message: &str) {
    let code = ExitCode::ElfTooComplex;
    let run = boot(&config);
    let serial = run.serial_text();
    assert_eq!(run.status, Some(code.qemu_status()), "serial:\n{serial}");
    let line = serial
        .lines()
        .find(|l| l.starts_with("rusty-loader: error:"))
        .unwrap_or_else(|| panic!("no error line\nserial:\n{serial}"));
    assert_eq!(
        line,
        format!(
            "rusty-loader: error: the module is too complex to load: {message} (exit code {}, QEMU status {})",
            code.name(),
            code.qemu_status()
        )
    );
    let port_value = code.port_value().to_string();
    check_error_event(
        &run.serial,
        "Refused",
        &[("code", port_value.as_str()), ("name", code.name())],
    );
}

#[test]
fn most_program_headers_over_the_same_notes() {
    // 65 534 headers (the most e_phnum can say) over the same 4 MiB: 23 billion note
    // reads for a loader that scans each header's notes.
    let elf = same_notes_everywhere(hello_dyn(), 0xfffe, 4 << 20);
    check_too_complex(
        write_case("notes-65534-headers", &elf),
        &format!("65534 program headers, where the loader reads at most {MAX_PROGRAM_HEADERS}"),
    );
}

fn notes_1mib_case() -> PathBuf {
    // As many headers as the loader reads, all over the same 1 MiB.
    let elf = same_notes_everywhere(hello_dyn(), MAX_PROGRAM_HEADERS, 1 << 20);
    write_case("notes-1mib", &elf)
}

#[test]
fn more_note_bytes_than_the_loader_reads() {
    check_too_complex(
        notes_1mib_case(),
        &format!(
            "{} bytes of PT_NOTE segments, where the loader reads at most {MAX_NOTE_BYTES}",
            1 << 20
        ),
    );
}

/// An ET_EXEC kernel must go to 0x800000; padded to 8 MiB, its own file (the
/// module, which Multiboot puts right after the loader) reaches over that address.
fn exec_overlap_case() -> PathBuf {
    let mut elf = std::fs::read(&artifacts().kernels.hello_exec).unwrap();
    elf.resize(8 << 20, 0);
    write_case("exec-overlap", &elf)
}

#[test]
fn kernel_overlaps_module() {
    // PVH puts the module at the top of RAM, clear of the kernel: it boots.
    let app = exec_overlap_case();
    for (entry, machine) in ENTRIES {
        let config = entered(config(&app), entry, machine);
        match entry {
            BootProtocol::Multiboot => {
                check_refusal_of(&config, ExitCode::LayoutOverlap, "overlaps module");
            }
            BootProtocol::Pvh => {
                let run = boot(&config);
                assert_eq!(run.status, Some(3), "serial:\n{}", run.serial_text());
            }
            BootProtocol::Uefi => unreachable!("UEFI boots are tests/uefi.rs's"),
        }
    }
}

#[test]
fn not_enough_memory() {
    for (entry, machine) in ENTRIES {
        let mut config = entered(config(&artifacts().kernels.hello_dyn), entry, machine);
        config.memory = "8M".to_string();
        check_not_enough_memory(&config);
    }
}

fn check_not_enough_memory(config: &QemuConfig) {
    let run = boot(config);
    let serial = run.serial_text();
    assert_eq!(
        run.status,
        Some(ExitCode::NotEnoughMemory.qemu_status()),
        "serial:\n{serial}"
    );
    assert!(serial.contains("not enough RAM"), "serial:\n{serial}");
    check_error_event(&run.serial, "Refused", &[("name", "not-enough-memory")]);
}

/// The entry pointed at a `ud2` inside the kernel's code: the first instruction the
/// kernel runs faults before it has an IDT of its own.
fn entry_at_ud2_case() -> PathBuf {
    let mut elf = hello_dyn();
    let parsed = Elf::parse(&elf).unwrap();
    let text = parsed
        .program_headers
        .iter()
        .find(|p| p.p_type == PT_LOAD && p.is_executable())
        .expect("an executable segment");
    let (start, end) = (
        text.p_offset as usize,
        (text.p_offset + text.p_filesz) as usize,
    );
    let ud2 = start + find(&elf[start..end], &[0x0f, 0x0b]);
    let entry = text.p_vaddr + (ud2 - start) as u64;
    le64(&mut elf, 24, entry);
    write_case("entry-at-ud2", &elf)
}

#[test]
fn fault_after_hand_over_is_reported() {
    // The loader's IDT is still live and must report the fault instead of letting
    // the machine triple-fault.
    let app = entry_at_ud2_case();
    for (entry, machine) in ENTRIES {
        check_fault_reported(&entered(config(&app), entry, machine));
    }
}

fn check_fault_reported(config: &QemuConfig) {
    let run = boot(config);
    let serial = run.serial_text();
    assert_eq!(
        run.status,
        Some(ExitCode::exception_status(6)),
        "serial:\n{serial}"
    );
    assert!(
        serial.contains("CPU exception 6 (invalid opcode) in the kernel, after hand-over"),
        "serial:\n{serial}"
    );
    check_error_event(
        &run.serial,
        "CpuException",
        &[("vector", "6"), ("in_kernel", "true")],
    );
}

#[test]
fn no_module_trace_still_shows_the_memory_map_and_command_line() {
    for (entry, machine) in ENTRIES {
        let mut config = entered(config("unused"), entry, machine);
        config.app = None;
        config.append = Some("-freq 2800".to_string());
        check_no_module_trace(&config);
    }
}

fn check_no_module_trace(config: &QemuConfig) {
    let run = boot(config);
    let elf = std::fs::read(&artifacts().loader.elf).unwrap();
    let table = TraceTable::from_elf(&elf).unwrap();
    let events = decode_recording(&table, &run.serial).unwrap().events;
    let names: Vec<&str> = events.iter().map(|e| e.name()).collect();
    assert!(names.contains(&"MemoryMap"), "{names:?}");
    assert!(names.contains(&"CommandLine"), "{names:?}");
    assert_eq!(names.last(), Some(&"Refused"), "{names:?}");
    // The trace names the entry the loader came through.
    let protocol = match config.boot {
        BootProtocol::Multiboot => "multiboot",
        BootProtocol::Pvh => "pvh",
        BootProtocol::Uefi => "uefi",
    };
    check_error_event_names_entry(&events, protocol);
}

fn check_error_event_names_entry(events: &[trace_decoder::decode::Event], protocol: &str) {
    let entry = events
        .iter()
        .find(|e| e.name() == "Entry")
        .expect("an Entry event");
    assert_eq!(entry.message(), format!("Entry protocol={protocol}"));
}

/// `config` with the `-append` text `-- café` in Latin-1, as a shell in a Latin-1
/// locale passes it: not UTF-8.
fn latin1_command_line(config: QemuConfig) -> QemuConfig {
    QemuConfig {
        append: None,
        extra_args: vec![
            OsString::from("-append"),
            OsString::from_vec(b"-- caf\xe9".to_vec()),
        ],
        ..config
    }
}

/// A command line that is not UTF-8 is refused by the entry's reader: bad-multiboot
/// through Multiboot, bad-start-info through PVH.
#[test]
fn command_line_not_utf8() {
    for (entry, machine) in ENTRIES {
        let config = latin1_command_line(entered(
            config(&artifacts().kernels.hello_dyn),
            entry,
            machine,
        ));
        let (code, message) = match entry {
            BootProtocol::Multiboot => (
                ExitCode::BadMultiboot,
                "unusable Multiboot information: the command line is not UTF-8",
            ),
            BootProtocol::Pvh => (
                ExitCode::BadStartInfo,
                "unusable PVH start info: the command line is not UTF-8",
            ),
            BootProtocol::Uefi => unreachable!("UEFI boots are tests/uefi.rs's"),
        };
        let run = check_refusal_of(&config, code, message);
        check_error_event(&run.serial, "Refused", &[("name", code.name())]);
    }
}

/// The exit codes no input can cause, only a loader bug: produced by the loader
/// built with fault injection (an injected fault, not a real input), through both
/// entries on both machine types. A panic sends no event; the others end with
/// their `Refused` event.
fn loader_bugs() -> [(Fault, ExitCode, &'static str); 3] {
    [
        (
            Fault::LoaderPanic,
            ExitCode::LoaderPanic,
            "loader bug: panicked at loader/src/inject.rs",
        ),
        (
            Fault::PageTablesMisaligned,
            ExitCode::BadMapping,
            "the page-table arena is not 4 KiB aligned",
        ),
        (
            Fault::FdtBuildFails,
            ExitCode::FdtBuild,
            "cannot build the device tree: injected fault fdt-build-fails",
        ),
    ]
}

#[test]
fn loader_bugs_through_both_entries() {
    for (fault, code, message) in loader_bugs() {
        for (entry, machine) in ENTRIES {
            let config = entered(
                fault_config(&artifacts().kernels.hello_dyn, fault),
                entry,
                machine,
            );
            let run = check_refusal_of(&config, code, message);
            if code != ExitCode::LoaderPanic {
                check_error_event_of(
                    &fault_loader().elf,
                    &run.serial,
                    "Refused",
                    &[("name", code.name())],
                );
            }
        }
    }
}

/// One input for each documented exit code, and the code it must produce: a real
/// input wherever one exists, an injected fault for the three only a loader bug
/// causes.
fn one_input_per_code() -> Vec<(ExitCode, QemuConfig)> {
    let app = |path: PathBuf| config(path);
    let hello = || artifacts().kernels.hello_dyn.clone();
    let mut inputs = vec![
        (
            ExitCode::NoModule,
            QemuConfig {
                app: None,
                ..app(hello())
            },
        ),
        (ExitCode::NotElf, app(not_elf_case())),
        (ExitCode::WrongClass, app(elf32_case())),
        (ExitCode::WrongMachine, app(aarch64_case())),
        (ExitCode::WrongType, app(et_rel_case())),
        (ExitCode::MalformedElf, app(truncated_case())),
        (ExitCode::NoHermitNote, app(no_note_case())),
        (ExitCode::UnsupportedEntryVersion, app(entry_v1_case())),
        (ExitCode::NeedsSharedLibrary, app(dt_needed_case())),
        (ExitCode::SegmentOutsideFile, app(segment_outside_case())),
        (ExitCode::UnsupportedRelocation, app(reloc_pc32_case())),
        (ExitCode::LayoutOverlap, app(exec_overlap_case())),
        (
            ExitCode::NotEnoughMemory,
            QemuConfig {
                memory: "8M".to_string(),
                ..app(hello())
            },
        ),
        (ExitCode::BadMultiboot, latin1_command_line(app(hello()))),
        (ExitCode::ElfTooComplex, app(notes_1mib_case())),
        (
            ExitCode::UnknownOption,
            QemuConfig {
                loader_options: vec!["keep-cmdlin".to_string()],
                ..app(hello())
            },
        ),
        (
            ExitCode::BadStartInfo,
            QemuConfig {
                boot: BootProtocol::Pvh,
                ..latin1_command_line(app(hello()))
            },
        ),
        (ExitCode::CpuException, app(entry_at_ud2_case())),
    ];
    for (fault, code, _) in loader_bugs() {
        inputs.push((code, fault_config(hello(), fault)));
    }
    // The UEFI entry's own codes (tests/uefi.rs has their details): no application
    // (OVMF's 0-byte `initrd` without -initrd), a firmware call failing (an
    // application too large to be held twice), and through injected faults what
    // OVMF never does.
    let uefi = |config: QemuConfig| QemuConfig {
        boot: BootProtocol::Uefi,
        memory: "256M".to_string(),
        ..config
    };
    inputs.push((
        ExitCode::NoApplication,
        uefi(QemuConfig {
            app: None,
            ..app(hello())
        }),
    ));
    inputs.push((ExitCode::FirmwareCallFailed, uefi(app(huge_case()))));
    for (fault, code) in [
        (
            Fault::ExitBootServicesFails,
            ExitCode::ExitBootServicesFailed,
        ),
        (Fault::UefiMapUnusable, ExitCode::UnusableUefiMemoryMap),
        (Fault::LoaderAreaTaken, ExitCode::LoaderAreaTaken),
    ] {
        inputs.push((code, uefi(fault_config(hello(), fault))));
    }
    // The files that parse but cannot be loaded as they say (elf_refusals.rs): the
    // first mutant of each code.
    for mutant in mutants::all() {
        if inputs.iter().all(|(code, _)| *code != mutant.code) {
            inputs.push((mutant.code, app(mutant.path)));
        }
    }
    inputs
}

/// An application of 120 MiB (sparse): OVMF holds it, a second copy does not fit in
/// 256 MiB (`AllocatePages` fails).
fn huge_case() -> PathBuf {
    let path = std::env::temp_dir().join(format!("rusty-loader-huge-{}.elf", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(120 << 20).unwrap();
    path
}

/// The exit code QEMU's `status` says the loader ended with.
fn code_of(status: i32) -> Option<ExitCode> {
    ExitCode::ALL.iter().copied().find(|code| match code {
        ExitCode::CpuException => (129..=191).contains(&status) && status % 2 == 1,
        code => code.qemu_status() == status,
    })
}

/// The codes the loader produces end to end are exactly the documented ones
/// (docs/exit-codes.md lists `ExitCode::ALL`: `loader/tests/docs.rs`).
#[test]
fn every_documented_exit_code_is_produced() {
    let inputs = one_input_per_code();
    // Two boots at a time.
    let (first, second) = inputs.split_at(inputs.len() / 2);
    fn boot_all(half: &[(ExitCode, QemuConfig)]) -> Vec<(ExitCode, Option<ExitCode>)> {
        half.iter()
            .map(|(want, config)| (*want, boot(config).status.and_then(code_of)))
            .collect()
    }
    let produced: Vec<(ExitCode, Option<ExitCode>)> = std::thread::scope(|scope| {
        let a = scope.spawn(|| boot_all(first));
        let b = scope.spawn(|| boot_all(second));
        [a, b]
            .into_iter()
            .flat_map(|h| h.join().expect("a boot thread"))
            .collect()
    });
    let wrong: Vec<_> = produced
        .iter()
        .filter(|(want, got)| Some(*want) != *got)
        .collect();
    assert!(wrong.is_empty(), "(wanted, produced): {wrong:?}");
    let produced: BTreeSet<&str> = produced
        .iter()
        .filter_map(|(_, got)| got.map(ExitCode::name))
        .collect();
    let documented: BTreeSet<&str> = ExitCode::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(produced, documented);
}
