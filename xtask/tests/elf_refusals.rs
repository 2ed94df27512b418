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

use common::mutants::{self, Mutant};
use common::{artifacts, boot, config, entered, shown, xtask};
use rusty_loader::error::ExitCode;
use trace_decoder::decode::{decode_recording, TraceTable};
use xtask::qemu::{BootProtocol, Machine, QemuConfig};

/// The entries every mutant is booted through: both of the loader's, on `pc`.
const BOTH_ENTRIES: [(BootProtocol, Machine); 2] = [
    (BootProtocol::Multiboot, Machine::Pc),
    (BootProtocol::Pvh, Machine::Pc),
];

/// Boots `mutant` through both entries; each boot must end with its code's status,
/// an error line naming the code that contains its message, and a `Refused` event
/// with the code.
fn check_refused(mutant: &Mutant) {
    for (entry, machine) in BOTH_ENTRIES {
        let config = entered(config(&mutant.path), entry, machine);
        check_refused_on(&config, mutant.code, &mutant.message);
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
    check_refused(&mutants::relasz_tag_turned_undefined());
}

/// The same mutation to a tag in a defined range that the loader does not read: the
/// table is left without its size, which is refused as such.
#[test]
fn relasz_tag_turned_into_another_defined_tag() {
    check_refused(&mutants::relasz_tag_turned_into_another_defined_tag());
}

#[test]
fn relacount_above_the_table() {
    check_refused(&mutants::relacount_above_the_table());
}

#[test]
fn relocation_entry_size_16() {
    check_refused(&mutants::relocation_entry_size_16());
}

/// The second mutant: the `PT_LOAD` of the data segment (`.tdata`,
/// `.data.rel.ro`, `.dynamic`, `.got`) given an undefined type.
#[test]
fn data_segment_type_turned_undefined() {
    check_refused(&mutants::data_segment_type_turned_undefined());
}

/// The second mutant with a defined type (`PT_NULL`): the segment is gone, and with
/// it the `PT_DYNAMIC` it held.
#[test]
fn data_segment_turned_into_pt_null() {
    check_refused(&mutants::data_segment_turned_into_pt_null());
}

#[test]
fn tls_template_moved_into_a_gap() {
    check_refused(&mutants::tls_template_moved_into_a_gap());
}

#[test]
fn relocation_table_outside_the_segments() {
    check_refused(&mutants::relocation_table_outside_the_segments());
}

/// A relocation aimed between the first two segments: found while relocating, after
/// the segments are loaded, still before the hand-over.
#[test]
fn relocation_into_a_gap() {
    check_refused(&mutants::relocation_into_a_gap());
}

/// The last relocation moved to straddle the end of the last segment.
#[test]
fn relocation_across_a_segment_end() {
    check_refused(&mutants::relocation_across_a_segment_end());
}

/// An executable's entry point moved into its read-only first segment.
#[test]
fn entry_point_outside_the_code() {
    check_refused(&mutants::entry_point_outside_the_code());
}

#[test]
fn segments_out_of_order() {
    check_refused(&mutants::segments_out_of_order());
}

#[test]
fn file_size_above_memory_size() {
    check_refused(&mutants::file_size_above_memory_size());
}

#[test]
fn file_offset_not_congruent_with_the_address() {
    check_refused(&mutants::file_offset_not_congruent_with_the_address());
}

#[test]
fn every_segment_empty() {
    check_refused(&mutants::every_segment_empty());
}

/// What a user sees: `cargo xtask trace` on the first mutant reports the
/// loader's refusal, with its status, and nowhere blames the kernel.
#[test]
fn the_report_blames_the_file_not_the_kernel() {
    let app = mutants::relasz_tag_turned_undefined().path;
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
