//! The TSC frequency the loader finds on its own, without busy-waiting, on both
//! machine types: measured across its work against the PIT (pc) or the APIC timer
//! (microvm), it must be within 0.5 % of the host's TSC rate (under TCG the guest's
//! TSC is the host's), go into the trace, the device tree (kernels 0.11+) and the
//! command line (kernels 0.6-0.10, traced as `CommandLineEdited`).

mod common;

use common::{artifacts, boot, config, host_tsc_khz, KernelReport};
use rusty_loader::wire::LoaderEvent;
use trace_decoder::decode::{decode_recording, Event, TraceTable};
use xtask::qemu::{Machine, QemuConfig};

fn decode(serial: &[u8]) -> Vec<Event> {
    let elf = std::fs::read(&artifacts().loader.elf).unwrap();
    let table = TraceTable::from_elf(&elf).unwrap();
    decode_recording(&table, serial).unwrap().events
}

/// The `Frequency` event: kHz, source, window.
fn frequency(events: &[Event]) -> (u32, String, u32) {
    events
        .iter()
        .find_map(|e| match &e.kind {
            LoaderEvent::Frequency {
                khz,
                source,
                window_us,
            } => Some((*khz, source.clone(), *window_us)),
            _ => None,
        })
        .expect("a Frequency event")
}

fn machine_config(app: &std::path::Path, machine: Machine) -> QemuConfig {
    let mut config = config(app);
    config.machine = machine;
    config.append = Some("-- app".to_string());
    config
}

fn check_close_to_the_host(khz: u32, what: &str) {
    let host = host_tsc_khz() as f64;
    let error = (f64::from(khz) - host).abs() / host;
    // Shown with --nocapture: the error seen run after run.
    eprintln!(
        "{what}: loader {khz} kHz, host {host:.0} kHz: {:+.3} %",
        (f64::from(khz) - host) / host * 100.0
    );
    assert!(
        error < 0.005,
        "{what}: {khz} kHz, the host's TSC runs at {host} kHz ({:.2} % off)",
        error * 100.0
    );
}

#[test]
fn measured_without_waiting_on_both_machine_types() {
    for (machine, source) in [(Machine::Pc, "pit"), (Machine::Microvm, "apic-timer")] {
        let config = machine_config(&artifacts().kernels.hello_dyn, machine);
        let run = boot(&config);
        assert_eq!(run.status, Some(3), "{}", run.serial_text());
        let events = decode(&run.serial);
        let (khz, found, window_us) = frequency(&events);
        assert_eq!(found, source, "{machine:?}");
        check_close_to_the_host(khz, &format!("{machine:?}"));
        assert!(window_us >= 1000, "{machine:?}: a window of {window_us} µs");
        // A kernel of 0.11+ gets it in the device tree, its command line untouched.
        let report = KernelReport::parse(&run.serial_text());
        assert_eq!(report.one("fdt-tsc-khz"), khz.to_string(), "{machine:?}");
        assert!(!events
            .iter()
            .any(|e| matches!(e.kind, LoaderEvent::CommandLineEdited { .. })));
    }
}

/// Under `-icount shift=0` the TSC counts virtual nanoseconds: the loader must find
/// 1 GHz. There its work before the frequency is needed is short (tens of
/// microseconds in a release build), so this is where the window is shortest: the
/// PIT reading taken at the moment its count changes must still keep it within
/// 0.1 %.
#[test]
fn one_ghz_under_icount_on_both_machine_types() {
    for machine in [Machine::Pc, Machine::Microvm] {
        let mut config = machine_config(&artifacts().kernels.hello_dyn, machine);
        config.deterministic = true;
        let run = boot(&config);
        assert_eq!(run.status, Some(3), "{}", run.serial_text());
        let (khz, _, window_us) = frequency(&decode(&run.serial));
        let error = (f64::from(khz) - 1e6).abs() / 1e6;
        eprintln!("{machine:?} under icount: {khz} kHz over {window_us} µs");
        assert!(
            error < 0.001,
            "{machine:?}: {khz} kHz under icount, where the TSC runs at 1 GHz"
        );
    }
}

#[test]
fn a_legacy_kernel_gets_it_on_its_command_line() {
    for machine in [Machine::Pc, Machine::Microvm] {
        let config = machine_config(&artifacts().kernels.legacy_dyn, machine);
        let run = boot(&config);
        assert_eq!(run.status, Some(3), "{}", run.serial_text());
        let events = decode(&run.serial);
        let (khz, _, _) = frequency(&events);
        check_close_to_the_host(khz, &format!("{machine:?}"));
        let mhz = (u64::from(khz) + 500) / 1000;
        let (at, inserted) = events
            .iter()
            .find_map(|e| match &e.kind {
                LoaderEvent::CommandLineEdited { at, inserted } => Some((*at, inserted.clone())),
                _ => None,
            })
            .expect("a CommandLineEdited event");
        assert_eq!(inserted, format!(" -freq {mhz}"));
        let original = config.command_line();
        assert_eq!(usize::from(at), original.find(' ').unwrap());
        let report = KernelReport::parse(&run.serial_text());
        assert_eq!(report.one("freq-inserted"), mhz.to_string());
        assert_eq!(
            report.one("cmdline"),
            format!(
                "{}{inserted}{}",
                &original[..usize::from(at)],
                &original[usize::from(at)..]
            )
        );
    }
}

#[test]
fn the_users_freq_wins_and_keep_cmdline_keeps_the_line() {
    // A -freq the user gave is used and left alone.
    let mut config = machine_config(&artifacts().kernels.legacy_dyn, Machine::Pc);
    config.append = Some("-freq 1234 -- app".to_string());
    let run = boot(&config);
    let events = decode(&run.serial);
    assert_eq!(frequency(&events), (1_234_000, "cmdline".to_string(), 0));
    let report = KernelReport::parse(&run.serial_text());
    assert_eq!(report.one("cmdline"), config.command_line());

    // keep-cmdline: measured, but not inserted.
    let mut config = machine_config(&artifacts().kernels.legacy_dyn, Machine::Pc);
    config.loader_options.push("keep-cmdline".to_string());
    let run = boot(&config);
    assert_eq!(run.status, Some(3), "{}", run.serial_text());
    let events = decode(&run.serial);
    assert_eq!(frequency(&events).1, "pit");
    assert!(!events
        .iter()
        .any(|e| matches!(e.kind, LoaderEvent::CommandLineEdited { .. })));
    let report = KernelReport::parse(&run.serial_text());
    assert_eq!(report.one("cmdline"), config.command_line());
}
