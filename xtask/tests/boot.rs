//! Boots every test kernel through the loader in QEMU (TCG) under both machine
//! types and several memory and CPU configurations, and checks what each kernel
//! reported against what the test knows: exit status 3 (every in-kernel check
//! passed), the command line QEMU built, the app arguments, the memory map, the
//! kernel image placement.

mod common;

use common::{artifacts, boot, config, entered, parse_range, with_inserted_freq, KernelReport};
use xtask::qemu::{BootProtocol, Captured, Machine, QemuConfig};

const TWO_MIB: u64 = 2 << 20;

/// Boots and checks everything a good boot must show; returns the report.
fn check_good_boot(config: &QemuConfig, kernel_name: &str) -> KernelReport {
    check_good_run(config, &boot(config), kernel_name)
}

/// Checks everything a good boot must show in a run of `config`.
fn check_good_run(config: &QemuConfig, run: &Captured, kernel_name: &str) -> KernelReport {
    let serial = run.serial_text();
    assert_eq!(
        run.status,
        Some(3),
        "expected the kernel to report success (QEMU status 3)\ncommand: {}\nserial:\n{serial}\nstderr:\n{}",
        config.display(),
        run.stderr
    );
    let report = KernelReport::parse(&serial);
    assert_eq!(report.verdict.as_deref(), Some("ok"), "serial:\n{serial}");
    assert_eq!(report.one("kernel"), kernel_name);

    // The command line reaches the kernel unchanged, file name included, but for the
    // `-freq` the loader inserts for a kernel of 0.6-0.10 given none.
    let expected = match report.facts.iter().find(|(k, _)| k == "freq-inserted") {
        Some((_, mhz)) => {
            assert!(
                !config.command_line().contains("-freq")
                    && !config.loader_options.iter().any(|o| o == "keep-cmdline"),
                "the loader inserted -freq where it must not\nserial:\n{serial}"
            );
            match config.boot {
                BootProtocol::Multiboot => {
                    with_inserted_freq(&config.command_line(), mhz.parse().unwrap())
                }
                // No file name: the loader inserts -freq first.
                BootProtocol::Pvh | BootProtocol::Uefi => {
                    format!("-freq {mhz} {}", config.command_line())
                        .trim_end()
                        .to_string()
                }
            }
        }
        None => config.command_line(),
    };
    assert_eq!(report.one("cmdline"), expected, "serial:\n{serial}");
    let expected_args = config
        .append
        .as_deref()
        .and_then(|a| a.split_once("-- ").map(|(_, args)| args.trim().to_string()))
        .unwrap_or_default();
    assert_eq!(report.one("args"), expected_args);

    // The image lies in usable RAM as reported by the MBI memory map.
    let (image_start, image_end) = parse_range(report.one("image"));
    assert!(image_start < image_end);
    let ram: Vec<(u64, u64)> = report.all("mem").into_iter().map(parse_range).collect();
    assert!(!ram.is_empty(), "no memory regions reported\n{serial}");
    assert!(
        ram.iter().any(|&(s, e)| s <= image_start && image_end <= e),
        "image {image_start:#x}-{image_end:#x} outside RAM {ram:x?}"
    );
    report
}

fn machine_config(app: &std::path::Path, machine: Machine) -> QemuConfig {
    let mut config = config(app);
    config.machine = machine;
    config.append = Some("-freq 2800 -- first second".to_string());
    config
}

fn check_dyn_placement(report: &KernelReport) {
    let (start, _) = parse_range(report.one("image"));
    assert_eq!(
        start % TWO_MIB,
        0,
        "ET_DYN kernels are placed 2 MiB aligned"
    );
}

fn check_fdt_memory(report: &KernelReport) {
    let mut mbi: Vec<_> = report.all("mem").into_iter().map(parse_range).collect();
    let mut fdt: Vec<_> = report.all("fdt-mem").into_iter().map(parse_range).collect();
    mbi.sort();
    fdt.sort();
    assert_eq!(
        mbi, fdt,
        "FDT memory nodes must equal the MBI's usable regions"
    );
}

#[test]
fn hello_dyn_boots_on_pc() {
    let report = check_good_boot(
        &machine_config(&artifacts().kernels.hello_dyn, Machine::Pc),
        "hello-dyn",
    );
    check_dyn_placement(&report);
    check_fdt_memory(&report);
}

#[test]
fn hello_dyn_boots_on_microvm() {
    let report = check_good_boot(
        &machine_config(&artifacts().kernels.hello_dyn, Machine::Microvm),
        "hello-dyn",
    );
    check_dyn_placement(&report);
    check_fdt_memory(&report);
}

#[test]
fn legacy_dyn_boots_on_pc() {
    let report = check_good_boot(
        &machine_config(&artifacts().kernels.legacy_dyn, Machine::Pc),
        "legacy-dyn",
    );
    check_dyn_placement(&report);
}

#[test]
fn legacy_dyn_boots_on_microvm() {
    let report = check_good_boot(
        &machine_config(&artifacts().kernels.legacy_dyn, Machine::Microvm),
        "legacy-dyn",
    );
    check_dyn_placement(&report);
}

#[test]
fn legacy_v2_boots_on_pc_and_microvm() {
    for machine in [Machine::Pc, Machine::Microvm] {
        let report = check_good_boot(
            &machine_config(&artifacts().kernels.legacy_v2, machine),
            "legacy-v2",
        );
        check_dyn_placement(&report);
        // Entry version 2: no device tree (the kernel found none in its boot info,
        // so it checked none).
        assert_eq!(report.one("fdt"), "0x0");
        assert!(report.all("fdt-mem").is_empty());
    }
}

#[test]
fn hello_exec_boots_on_pc() {
    let report = check_good_boot(
        &machine_config(&artifacts().kernels.hello_exec, Machine::Pc),
        "hello-exec",
    );
    assert_eq!(parse_range(report.one("image")).0, 0x80_0000);
}

#[test]
fn hello_exec_boots_on_microvm() {
    let report = check_good_boot(
        &machine_config(&artifacts().kernels.hello_exec, Machine::Microvm),
        "hello-exec",
    );
    assert_eq!(parse_range(report.one("image")).0, 0x80_0000);
}

/// big-dyn's bulk: inside the image, and as many references as a real application
/// has relocations (the kernel itself checked every word and reference).
fn check_bulk(report: &KernelReport) {
    let (image_start, image_end) = parse_range(report.one("image"));
    let (bulk_start, bulk_end) = parse_range(report.one("bulk"));
    assert!(
        image_start <= bulk_start && bulk_end <= image_end,
        "bulk {bulk_start:#x}-{bulk_end:#x} outside the image {image_start:#x}-{image_end:#x}"
    );
    assert!(bulk_end - bulk_start >= 500_000);
    let pointers: u64 = report.one("bulk-pointers").parse().unwrap();
    assert!(pointers >= 2000, "{pointers} references");
}

#[test]
fn big_dyn_boots_on_pc() {
    let report = check_good_boot(
        &machine_config(&artifacts().kernels.big_dyn, Machine::Pc),
        "big-dyn",
    );
    check_dyn_placement(&report);
    check_fdt_memory(&report);
    check_bulk(&report);
}

#[test]
fn big_dyn_boots_on_microvm() {
    let report = check_good_boot(
        &machine_config(&artifacts().kernels.big_dyn, Machine::Microvm),
        "big-dyn",
    );
    check_dyn_placement(&report);
    check_fdt_memory(&report);
    check_bulk(&report);
}

/// Boots the calibrating kernel; returns its report and its whole serial text.
/// `keep_cmdline` asks the loader not to insert `-freq`.
fn calibrating_boot(
    machine: Machine,
    append: Option<&str>,
    keep_cmdline: bool,
) -> (KernelReport, String) {
    let mut config = config(&artifacts().kernels.calibrating);
    config.machine = machine;
    config.append = append.map(str::to_string);
    if keep_cmdline {
        config.loader_options.push("keep-cmdline".to_string());
    }
    let run = boot(&config);
    let report = check_good_run(&config, &run, "calibrating");
    check_dyn_placement(&report);
    (report, run.serial_text())
}

fn decimal(report: &KernelReport, key: &str) -> u64 {
    let value = report.one(key);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{key}={value} is not decimal"))
}

/// The TSC-based durations below follow from the arithmetic, not from the machine's
/// speed: the PIT measurement spans three 100 Hz ticks and its MHz are truncated, so
/// the span divided by them is at least 30,000 µs; the guess comes after 120,000,000
/// TSC ticks without a tick, i.e. at least 60,000 µs at the guessed 2,000 MHz.
#[test]
fn calibrating_measures_against_the_pit_on_pc() {
    let (report, _) = calibrating_boot(Machine::Pc, Some("-- first second"), true);
    assert_eq!(report.one("freq_source"), "pit");
    assert!(decimal(&report, "freq_mhz") > 0);
    assert!(decimal(&report, "calibration_us") >= 30_000);
}

#[test]
fn calibrating_takes_freq_from_its_command_line_on_pc() {
    let (report, _) = calibrating_boot(Machine::Pc, Some("-freq 2300"), false);
    assert_eq!(report.one("freq_source"), "cmdline");
    assert_eq!(decimal(&report, "freq_mhz"), 2300);
    decimal(&report, "calibration_us");
}

#[test]
fn calibrating_guesses_without_a_pit_on_microvm() {
    let (report, serial) = calibrating_boot(Machine::Microvm, None, true);
    assert_eq!(report.one("freq_source"), "guess");
    assert_eq!(decimal(&report, "freq_mhz"), 2000);
    assert!(decimal(&report, "calibration_us") >= 60_000);
    assert!(
        serial.lines().any(|l| l
            == "[0][WARN] Could not determine the processor frequency! Guess a frequency of 2Ghz!"),
        "Hermit's warning\n{serial}"
    );
}

/// Without `-freq`, the loader hands a kernel of 0.6-0.10 the frequency it measured,
/// so the kernel measures nothing: on pc (PIT) and microvm (APIC timer) alike. Under
/// `-icount`, where the TSC counts virtual nanoseconds, that is 1000 MHz to the
/// loader's stated accuracy (0.1 %; `xtask/tests/frequency.rs`), on any host.
#[test]
fn calibrating_is_handed_its_frequency_by_the_loader() {
    for machine in [Machine::Pc, Machine::Microvm] {
        let mut config = config(&artifacts().kernels.calibrating);
        config.machine = machine;
        config.append = Some("-- app".to_string());
        config.deterministic = true;
        let run = boot(&config);
        let report = check_good_run(&config, &run, "calibrating");
        let serial = run.serial_text();
        assert_eq!(
            report.one("freq_source"),
            "cmdline",
            "{machine:?}\n{serial}"
        );
        let mhz = decimal(&report, "freq_mhz");
        assert_eq!(mhz, decimal(&report, "freq-inserted"));
        assert!(
            (999..=1001).contains(&mhz),
            "{machine:?}: handed {mhz} MHz, the TSC runs at 1000 MHz under icount"
        );
    }
}

/// Every test kernel through the PVH entry (the 64-bit ELF) on both machine types:
/// the same checks as through Multiboot, on the command line the VMM hands over
/// without a file name, the memory map from the start info and the MBI the loader
/// writes (which the kernels read and compare with the boot info and device tree).
#[test]
fn every_kernel_boots_through_pvh_on_pc_and_microvm() {
    let kernels = &artifacts().kernels;
    for machine in [Machine::Pc, Machine::Microvm] {
        for kernel in kernels.checking() {
            let config = entered(machine_config(kernel, machine), BootProtocol::Pvh, machine);
            let name = kernel.file_name().unwrap().to_str().unwrap();
            let report = check_good_boot(&config, name);
            // The kernel's MBI is the one the loader wrote, inside the loader image.
            let mbi = common::parse_hex(report.one("mbi"));
            assert!(
                (0x10_0000..0x80_0000).contains(&mbi),
                "{name} on {machine:?}: MBI at {mbi:#x}"
            );
            if kernel != &kernels.legacy_v2 && kernel != &kernels.hello_exec {
                check_dyn_placement(&report);
            }
        }
    }
    // The calibrating kernel (0.6-0.10 rules) given no -freq: the loader inserts it
    // first, and the kernel measures nothing.
    for machine in [Machine::Pc, Machine::Microvm] {
        let mut config = entered(config(&kernels.calibrating), BootProtocol::Pvh, machine);
        config.append = Some("-- app".to_string());
        let report = check_good_boot(&config, "calibrating");
        assert_eq!(report.one("freq_source"), "cmdline");
    }
}

#[test]
fn boots_without_append() {
    let config = config(&artifacts().kernels.hello_dyn);
    check_good_boot(&config, "hello-dyn");
}

#[test]
fn boots_with_four_cpus() {
    for kernel in [
        &artifacts().kernels.hello_dyn,
        &artifacts().kernels.legacy_dyn,
    ] {
        let mut config = machine_config(kernel, Machine::Pc);
        config.smp = 4;
        let name = kernel.file_name().unwrap().to_str().unwrap();
        check_good_boot(&config, name);
    }
}

#[test]
fn boots_with_ram_above_4_gib() {
    // 5 GiB on pc puts RAM below the PCI hole and again above 4 GiB.
    let mut config = machine_config(&artifacts().kernels.hello_dyn, Machine::Pc);
    config.memory = "5G".to_string();
    let report = check_good_boot(&config, "hello-dyn");
    let ram: Vec<_> = report.all("mem").into_iter().map(parse_range).collect();
    assert!(
        ram.iter().any(|&(s, _)| s >= 4 << 30),
        "expected a region above 4 GiB: {ram:x?}"
    );
    check_fdt_memory(&report);
}

#[test]
fn boots_with_large_memory_on_microvm() {
    let mut config = machine_config(&artifacts().kernels.legacy_dyn, Machine::Microvm);
    config.memory = "2G".to_string();
    config.smp = 4;
    check_good_boot(&config, "legacy-dyn");
}

#[test]
fn loader_without_tracing_boots_and_sends_no_frames() {
    let mut config = machine_config(&artifacts().kernels.hello_dyn, Machine::Pc);
    config.loader = artifacts().loader_notrace.image.clone();
    let run = common::boot(&config);
    assert!(
        !run.serial.contains(&0xFF),
        "no frame markers without tracing"
    );
    check_good_boot(&config, "hello-dyn");
}
