//! Boots through the UEFI entry: `rusty-loader.efi` started by OVMF, with `-kernel`
//! and `-initrd` (the application through LoadFile2) and from an EFI system
//! partition (the application as the file `initrd` next to `BOOTX64.EFI`). Every
//! checking test kernel once, alternating q35 and pc (OVMF takes seconds under TCG,
//! so each kernel boots once rather than on both machines); the kernels check the
//! hand-over from inside, including the ACPI RSDP where kernels 0.6–0.10 scan. The
//! trace is decoded and checked against what the firmware gave.
//!
//! The refusals that can be provoked from outside go through the entry: no
//! application, a module that is not ELF, an `ET_EXEC` kernel where OVMF keeps
//! memory for S3 resume, and a firmware call failing (an initrd too large for the
//! firmware to allocate twice). `ExitBootServices` failing twice and an unusable
//! memory map cannot be provoked with OVMF: the library's tests cover their
//! decisions (`loader/src/efi/memory_map.rs`), the exit codes are in the table.

mod common;

use std::path::{Path, PathBuf};

use common::{artifacts, boot, config, parse_hex, parse_range, KernelReport};
use rusty_loader::wire::{LoaderEvent, TypeTotalWord};
use trace_decoder::decode::{decode_recording, Event, TraceTable};
use xtask::qemu::{BootProtocol, Captured, Machine, QemuConfig, DEFAULT_OVMF};

/// Where the loader puts its EBDA with the RSDP copy under OVMF (the top KiB of
/// the 640 KiB of low memory).
const EBDA: u64 = 0x9_fc00;

fn table() -> TraceTable {
    let elf = std::fs::read(&artifacts().loader.elf).unwrap();
    TraceTable::from_elf(&elf).expect("the loader ELF has a defmt table")
}

/// A UEFI boot of `app` on `machine` with the standard UEFI command line.
fn uefi(app: &Path, machine: Machine) -> QemuConfig {
    assert!(
        Path::new(DEFAULT_OVMF).is_file(),
        "OVMF is missing at {DEFAULT_OVMF}: install the ovmf package (.ci/run does)"
    );
    let mut config = config(app);
    config.boot = BootProtocol::Uefi;
    config.machine = machine;
    config.memory = "256M".into();
    config.append = Some("-- first second".into());
    config
}

fn events(run: &Captured) -> Vec<Event> {
    decoded(run).0
}

/// The run's events and its text without the frames (the kernel's first line
/// follows the last frame on the same line otherwise).
fn decoded(run: &Captured) -> (Vec<Event>, String) {
    let decoded = decode_recording(&table(), &run.serial).expect("the stream decodes");
    assert_eq!(decoded.malformed_frames, 0, "{}", run.serial_text());
    // OVMF's own text (ANSI sequences) ends without a line break: the kernel's first
    // line starts on a line of its own all the same.
    let text = String::from_utf8_lossy(&decoded.text).replacen("tk: ", "\ntk: ", 1);
    (decoded.events, text)
}

/// Boots `name` through UEFI on `machine` and checks the kernel's report and the
/// trace.
fn boots_through_uefi(app: &Path, name: &str, machine: Machine) {
    let config = uefi(app, machine);
    let run = boot(&config);
    let (events, serial) = decoded(&run);
    assert_eq!(
        run.status,
        Some(3),
        "{name} on {machine:?}\ncommand: {}\nserial:\n{serial}",
        config.display()
    );
    let report = KernelReport::parse(&serial);
    assert_eq!(report.verdict.as_deref(), Some("ok"), "serial:\n{serial}");
    assert_eq!(report.one("kernel"), name);

    // The command line is the load options without OVMF's `initrd=initrd`; a kernel
    // of 0.6-0.10 gets `-freq` first, as after PVH.
    let expected = match report.facts.iter().find(|(k, _)| k == "freq-inserted") {
        Some((_, mhz)) => format!("-freq {mhz} -- first second"),
        None => "-- first second".into(),
    };
    assert_eq!(report.one("cmdline"), expected, "serial:\n{serial}");
    assert_eq!(report.one("args"), "first second");

    // ACPI where kernels 0.6-0.10 scan: the loader's EBDA copy, found through 0x40E.
    assert_eq!(parse_hex(report.one("rsdp")), EBDA, "serial:\n{serial}");
    assert_eq!(report.one("rsdp-source"), "ebda");
    // And in the device tree for kernels that have one.
    let fdt_rsdp = report.all("fdt-rsdp");
    let has_device_tree = report.all("check").contains(&"fdt");
    assert_eq!(
        fdt_rsdp.len(),
        usize::from(has_device_tree),
        "serial:\n{serial}"
    );
    // The EBDA is not usable RAM in the kernel's map.
    for (start, end) in report.all("mem").into_iter().map(parse_range) {
        assert!(
            end <= EBDA || start >= EBDA + 1024,
            "usable {start:#x}-{end:#x} holds the EBDA"
        );
    }

    let protocol = events.iter().find_map(|e| match &e.kind {
        LoaderEvent::Entry { protocol } => Some(protocol.as_str()),
        _ => None,
    });
    assert_eq!(protocol, Some("uefi"));
    let calls: Vec<(&str, u64)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            LoaderEvent::FirmwareCall { call, status, .. } => Some((call.as_str(), *status)),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls.last(),
        Some(&("ExitBootServices", 0)),
        "the last firmware call exits boot services: {calls:?}"
    );
    assert!(
        calls.iter().any(|&(c, s)| c == "LoadFile2(read)" && s == 0),
        "{calls:?}"
    );
    let (entry_tsc, types) = events
        .iter()
        .find_map(|e| match &e.kind {
            LoaderEvent::UefiEntry { tsc_at_entry, .. } => Some(*tsc_at_entry),
            _ => None,
        })
        .zip(events.iter().find_map(|e| match &e.kind {
            LoaderEvent::UefiMemoryMap { types, .. } => Some(types.clone()),
            _ => None,
        }))
        .expect("UefiEntry and UefiMemoryMap");
    assert!(entry_tsc > 0, "the firmware ran before the loader");
    assert!(
        types
            .iter()
            .any(|&w| TypeTotalWord::unpack(w).kind == 7 && TypeTotalWord::unpack(w).pages > 0),
        "conventional memory in the UEFI map"
    );
    let rsdp = events.iter().find_map(|e| match &e.kind {
        LoaderEvent::Rsdp {
            firmware,
            revision,
            ebda,
            ..
        } => Some((*firmware, *revision, *ebda)),
        _ => None,
    });
    let (firmware, revision, ebda) = rsdp.expect("an Rsdp event");
    assert!(firmware > 0 && revision == 2 && ebda == EBDA, "{rsdp:x?}");
    let map = events
        .iter()
        .find_map(|e| match &e.kind {
            LoaderEvent::MemoryMap { regions } => Some(regions.clone()),
            _ => None,
        })
        .expect("a MemoryMap event");
    assert!(
        map.iter()
            .any(|e| e.start == EBDA && e.end == EBDA + 1024 && e.kind == 2),
        "the EBDA is reserved in the map: {map:x?}"
    );
}

#[test]
fn hello_dyn_boots_through_uefi_on_q35() {
    boots_through_uefi(&artifacts().kernels.hello_dyn, "hello-dyn", Machine::Q35);
}

#[test]
fn legacy_dyn_boots_through_uefi_on_pc() {
    boots_through_uefi(&artifacts().kernels.legacy_dyn, "legacy-dyn", Machine::Pc);
}

#[test]
fn legacy_v2_boots_through_uefi_on_q35() {
    boots_through_uefi(&artifacts().kernels.legacy_v2, "legacy-v2", Machine::Q35);
}

#[test]
fn hello_exec_boots_through_uefi_on_pc() {
    boots_through_uefi(&artifacts().kernels.hello_exec, "hello-exec", Machine::Pc);
}

#[test]
fn big_dyn_boots_through_uefi_on_q35() {
    boots_through_uefi(&artifacts().kernels.big_dyn, "big-dyn", Machine::Q35);
}

#[test]
fn calibrating_boots_through_uefi_on_pc() {
    boots_through_uefi(&artifacts().kernels.calibrating, "calibrating", Machine::Pc);
}

/// Boots `config`, expecting the loader's refusal with `status` and `text` in its
/// line.
fn refused(config: &QemuConfig, status: i32, text: &str) {
    let run = boot(config);
    let serial = run.serial_text();
    assert_eq!(
        run.status,
        Some(status),
        "command: {}\nserial:\n{serial}",
        config.display()
    );
    assert!(
        serial.contains(text),
        "expected {text:?}\nserial:\n{serial}"
    );
    let refusal = events(&run).into_iter().find_map(|e| match e.kind {
        LoaderEvent::Refused { code, .. } => Some(i32::from(code) * 2 + 1),
        _ => None,
    });
    assert_eq!(refusal, Some(status), "the Refused event carries the code");
}

#[test]
fn no_application_is_refused() {
    // Without -initrd, QEMU's file system still has an `initrd`: of 0 bytes.
    let mut config = uefi(&artifacts().kernels.hello_dyn, Machine::Q35);
    config.app = None;
    refused(&config, 97, "the application is empty");
}

#[test]
fn a_module_that_is_not_elf_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "#!/bin/sh\necho hello\n").unwrap();
    refused(&uefi(&text, Machine::Pc), 35, "is not an ELF file");
}

#[test]
fn an_exec_kernel_where_ovmf_keeps_s3_memory_is_refused() {
    // With S3 on, OVMF keeps 0x800000-0x900000 as ACPI NVS for its resume path:
    // an ET_EXEC kernel linked there cannot be loaded. (The later -global wins.)
    let mut config = uefi(&artifacts().kernels.hello_exec, Machine::Q35);
    config.extra_args = vec!["-global".into(), "ICH9-LPC.disable_s3=0".into()];
    refused(&config, 57, "kernel image [0x800000");
}

#[test]
fn a_failing_firmware_call_is_refused() {
    // OVMF holds the initrd QEMU gave it; a second copy of 120 MiB does not fit in
    // what is left of 256 MiB, so AllocatePages fails. (With less RAM OVMF cannot
    // hold the initrd itself and never starts the loader.)
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.elf");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(120 << 20).unwrap();
    let config = uefi(&huge, Machine::Pc);
    refused(
        &config,
        99,
        "AllocatePages(application) failed: EFI_OUT_OF_RESOURCES",
    );
}

#[test]
fn boots_from_an_efi_system_partition() {
    // The loader as EFI/BOOT/BOOTX64.EFI, the application as `initrd` next to it.
    let dir = tempfile::tempdir().unwrap();
    let boot_dir: PathBuf = dir.path().join("EFI/BOOT");
    std::fs::create_dir_all(&boot_dir).unwrap();
    std::fs::copy(artifacts().loader.efi(), boot_dir.join("BOOTX64.EFI")).unwrap();
    std::fs::copy(&artifacts().kernels.hello_dyn, boot_dir.join("initrd")).unwrap();
    let mut config = uefi(&artifacts().kernels.hello_dyn, Machine::Q35);
    config.efi_system_partition = Some(dir.path().to_path_buf());
    let run = boot(&config);
    let (events, serial) = decoded(&run);
    assert_eq!(
        run.status,
        Some(3),
        "command: {}\nserial:\n{serial}",
        config.display()
    );
    let report = KernelReport::parse(&serial);
    assert_eq!(report.one("kernel"), "hello-dyn");
    assert_eq!(report.one("rsdp-source"), "ebda");
    let source = events.into_iter().find_map(|e| match e.kind {
        LoaderEvent::UefiApplication { source, path } => Some((source, path)),
        _ => None,
    });
    assert_eq!(
        source,
        Some(("file".to_string(), "\\EFI\\BOOT\\initrd".to_string())),
        "the application is read from the file next to the loader"
    );
}
