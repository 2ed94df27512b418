//! Fault injection: the loader built with the feature `faults` breaks the hand-over
//! as QEMU's fw_cfg names a fault, and the test kernels must catch each fault with
//! the check group and the check this table expects, so that every check group is
//! seen to fail end to end. The faults that make the loader itself end (exit codes
//! loader-panic, bad-mapping, fdt-build, which only a loader bug can cause) are
//! booted in `refusals.rs` with the other exit codes. Also: the fault build boots
//! cleanly without a fault, `cargo xtask run/trace --inject` work as a user runs
//! them, and no normal build carries any of the injection code.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::{artifacts, boot, fault_config, fault_loader, shown, xtask};
use goblin::elf::program_header::PT_LOAD;
use goblin::elf::Elf;
use rusty_loader::faults::{Fault, FW_CFG_FILE};
use xtask::qemu::{BootProtocol, QemuConfig};

/// Which test kernel boots with the fault, and how it must end: QEMU's status and
/// the check its `tk: FAIL` line names.
struct Expected {
    fault: Fault,
    kernel: fn() -> PathBuf,
    status: i32,
    check: &'static str,
}

fn hello_dyn() -> PathBuf {
    artifacts().kernels.hello_dyn.clone()
}

fn legacy_dyn() -> PathBuf {
    artifacts().kernels.legacy_dyn.clone()
}

/// The check groups' QEMU statuses (test-kernels/src/lib.rs, "Exit values").
const BOOTINFO: i32 = 5;
const CPU_STATE: i32 = 7;
const STACK: i32 = 9;
const IMAGE: i32 = 11;
const RELOCATION: i32 = 13;
const BSS: i32 = 15;
const TLS: i32 = 17;
const CMDLINE: i32 = 19;
const MEMORY: i32 = 21;
const FDT: i32 = 23;
const PAGING: i32 = 25;

/// One fault (at least) per check group of the test kernels.
fn expectations() -> Vec<Expected> {
    let expect = |fault, kernel, status, check| Expected {
        fault,
        kernel,
        status,
        check,
    };
    vec![
        expect(
            Fault::BootInfoMisaligned,
            hello_dyn,
            BOOTINFO,
            "bootinfo-pointer",
        ),
        expect(Fault::RsiNotZero, hello_dyn, CPU_STATE, "rsi-zero"),
        expect(Fault::StackMisaligned, hello_dyn, STACK, "stack-aligned"),
        expect(Fault::ImageStartOffByOne, hello_dyn, IMAGE, "image-start"),
        expect(
            Fault::RelocationLeftOut,
            legacy_dyn,
            RELOCATION,
            "relocated-all",
        ),
        expect(Fault::BssNotZeroed, hello_dyn, BSS, "bss-zeroed"),
        expect(Fault::TlsTemplateMoved, hello_dyn, TLS, "tls-fields"),
        expect(
            Fault::CommandLineCutShort,
            hello_dyn,
            CMDLINE,
            "cmdline-matches-mbi",
        ),
        expect(
            Fault::MbiMemoryMap,
            hello_dyn,
            MEMORY,
            "image-in-usable-ram",
        ),
        expect(Fault::FdtMemoryMap, hello_dyn, FDT, "fdt-memory"),
        expect(
            Fault::RecursiveEntryMissing,
            legacy_dyn,
            PAGING,
            "recursive-pml4",
        ),
        expect(
            Fault::TablesUnmapped,
            hello_dyn,
            PAGING,
            "tables-identity-mapped",
        ),
    ]
}

/// The faults that end the loader itself, each with its exit code (booted in
/// refusals.rs; the last three through the UEFI entry).
const LOADER_ENDINGS: [Fault; 6] = [
    Fault::LoaderPanic,
    Fault::PageTablesMisaligned,
    Fault::FdtBuildFails,
    Fault::ExitBootServicesFails,
    Fault::UefiMapUnusable,
    Fault::LoaderAreaTaken,
];

/// What a boot with `config` printed, if it did not end as `expected` says.
fn mismatch(config: &QemuConfig, expected: &Expected) -> Option<String> {
    let run = boot(config);
    let serial = run.serial_text();
    let failures: Vec<&str> = serial
        .lines()
        .filter_map(|line| line.strip_prefix("tk: FAIL "))
        .collect();
    let announced = format!("rusty-loader: fault injected: {}: ", expected.fault.name());
    let check = failures.first().and_then(|line| line.split(':').next());
    let right = run.status == Some(expected.status)
        && failures.len() == 1
        && check == Some(expected.check)
        && serial.lines().any(|line| line.starts_with(&announced));
    (!right).then(|| {
        format!(
            "{} ({:?}): want status {} and `tk: FAIL {}`, got status {:?}\ncommand: {}\nserial:\n{serial}",
            expected.fault.name(),
            config.boot,
            expected.status,
            expected.check,
            run.status,
            config.display()
        )
    })
}

#[test]
fn the_table_covers_every_fault_and_every_check_group() {
    let listed: BTreeSet<&str> = expectations()
        .iter()
        .map(|e| e.fault.name())
        .chain(LOADER_ENDINGS.map(Fault::name))
        .collect();
    let all: BTreeSet<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(listed, all);
    // `cargo xtask run --inject` boots, by default, the kernel the table expects.
    for e in expectations() {
        let kernel = (e.kernel)();
        let name = kernel.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            name,
            e.fault.kernel().unwrap_or("hello-dyn"),
            "{}",
            e.fault.name()
        );
    }
    let groups: BTreeSet<i32> = expectations().iter().map(|e| e.status).collect();
    assert_eq!(
        groups,
        BTreeSet::from([
            BOOTINFO, CPU_STATE, STACK, IMAGE, RELOCATION, BSS, TLS, CMDLINE, MEMORY, FDT, PAGING
        ]),
        "a fault for each check group"
    );
}

/// Every fault, through the Multiboot entry (what the hooks change comes after the
/// entries join); all mismatches reported at once.
#[test]
fn every_check_group_catches_its_fault() {
    let mismatches: Vec<String> = expectations()
        .iter()
        .filter_map(|expected| {
            mismatch(&fault_config((expected.kernel)(), expected.fault), expected)
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// The faults on the boot data and the hand-over through the PVH entry too, whose
/// MBI and command line are the loader's own copies.
#[test]
fn boot_data_faults_through_pvh() {
    let mismatches: Vec<String> = expectations()
        .iter()
        .filter(|e| {
            matches!(
                e.fault,
                Fault::CommandLineCutShort | Fault::MbiMemoryMap | Fault::BootInfoMisaligned
            )
        })
        .filter_map(|expected| {
            // A PVH command line is the -append text alone: give it one to cut.
            let config = QemuConfig {
                boot: BootProtocol::Pvh,
                append: Some("-- pvh".to_string()),
                ..fault_config((expected.kernel)(), expected.fault)
            };
            mismatch(&config, expected)
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// Without a fault the fault build boots every kernel generation as the normal one.
#[test]
fn without_a_fault_the_fault_build_boots() {
    for app in [hello_dyn(), legacy_dyn()] {
        let config = QemuConfig::new(&fault_loader().image, &app);
        let run = boot(&config);
        let serial = run.serial_text();
        assert_eq!(
            run.status,
            Some(3),
            "{}\nserial:\n{serial}",
            config.display()
        );
        assert!(!serial.contains("fault injected"), "serial:\n{serial}");
    }
}

/// The names of the code and data the injection adds, as the fault build shows them:
/// its module's symbols and the fw_cfg file's name in its loaded bytes.
fn fault_code_in(elf_path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(elf_path).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    let mut found: Vec<String> = elf
        .syms
        .iter()
        .filter_map(|sym| elf.strtab.get_at(sym.st_name))
        .filter(|name| name.contains("6inject") || name.contains("6faults"))
        .map(str::to_string)
        .collect();
    let loaded = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .map(|p| &bytes[p.p_offset as usize..(p.p_offset + p.p_filesz) as usize]);
    let strings = [FW_CFG_FILE, Fault::TablesUnmapped.description()];
    for segment in loaded {
        for string in strings {
            if segment
                .windows(string.len())
                .any(|w| w == string.as_bytes())
            {
                found.push(format!("{string:?} in a PT_LOAD segment"));
            }
        }
    }
    found
}

/// The injection code exists only in the fault build: the normal builds (traced
/// and untraced) hold none of its symbols or strings, which the fault build does.
#[test]
fn normal_builds_carry_no_fault_code() {
    let in_fault_build = fault_code_in(&fault_loader().elf);
    assert!(
        in_fault_build.iter().any(|f| f.contains("in a PT_LOAD"))
            && in_fault_build.iter().any(|f| f.contains("inject")),
        "the fault build shows what the check looks for: {in_fault_build:?}"
    );
    for normal in [&artifacts().loader.elf, &artifacts().loader_notrace.elf] {
        assert_eq!(
            fault_code_in(normal),
            Vec::<String>::new(),
            "{}",
            normal.display()
        );
    }
}

/// `--inject` as a user runs it: `run` with the demo app, `trace` with the default
/// app for a fault only kernels 0.6-0.10 notice (legacy-dyn), and both `--help`s.
#[test]
fn run_and_trace_inject() {
    let run = xtask(&["run", "--inject", "stack-misaligned"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(STACK), "{}", shown(&run));
    assert!(
        stdout.contains("tk: FAIL stack-aligned: rsp at entry "),
        "{}",
        shown(&run)
    );

    let trace = xtask(&["trace", "--inject", "recursive-entry-missing"]);
    let stdout = String::from_utf8_lossy(&trace.stdout);
    assert_eq!(trace.status.code(), Some(PAGING), "{}", shown(&trace));
    assert!(
        stdout.contains("tk: kernel=legacy-dyn"),
        "{}",
        shown(&trace)
    );
    assert!(
        stdout.contains("tk: FAIL recursive-pml4: PML4[511] = 0x0 is not present"),
        "{}",
        shown(&trace)
    );
    // The trace's report follows.
    assert!(
        stdout.contains("rusty-trace boot report"),
        "{}",
        shown(&trace)
    );

    for command in ["run", "trace"] {
        let help = xtask(&[command, "--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        for fault in Fault::ALL {
            let listed = |line: &str| {
                line.trim_start()
                    .strip_prefix(&format!("- {}:", fault.name()))
                    .is_some_and(|rest| rest.trim() == fault.description())
            };
            assert!(
                text.lines().any(listed),
                "`{command} --help` lists {}:\n{text}",
                fault.name()
            );
        }
    }
    let unknown = xtask(&["run", "--inject", "no-such-fault"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", shown(&unknown));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("bss-not-zeroed"),
        "the refusal lists the faults: {}",
        shown(&unknown)
    );
}
