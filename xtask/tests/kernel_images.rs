//! The test kernels as files: each built kernel has the ELF shape the loader and the
//! boot tests rely on, read here independently of both with goblin. The build
//! itself (flags, `EI_OSABI` patch) is `xtask/src/build.rs`; this says what it must
//! produce:
//!
//! - `EI_OSABI` 0xff (standalone), as real Hermit apps carry after their post-link
//!   patch;
//! - the ELF type: `ET_DYN` static PIEs, or `ET_EXEC` with its first `PT_LOAD` at
//!   0x800000 from file offset 0;
//! - exactly one `PT_NOTE` (upstream loaders scan only the first), holding the
//!   HERMIT entry-version note of the kernel's version and, for the newer
//!   generation, the GNU ABI tag {6 (Hermit), 0, 13, 0};
//! - `PT_TLS` with the kernels' TLS (16 bytes of `.tdata`, 80 in all, aligned to 32)
//!   or none;
//! - relocations: only `R_X86_64_RELATIVE` in a static PIE, no `DT_NEEDED`; none at
//!   all in the `ET_EXEC` kernel;
//! - big-dyn the size of a real Hermit application: at least 500 KB of `PT_LOAD`
//!   file bytes and 2000 relocations.

mod common;

use std::path::Path;

use common::artifacts;
use goblin::elf::header::{ET_DYN, ET_EXEC};
use goblin::elf::note::NT_GNU_ABI_TAG;
use goblin::elf::program_header::{PT_LOAD, PT_NOTE, PT_TLS};
use goblin::elf::reloc::R_X86_64_RELATIVE;
use goblin::elf::Elf;

/// The note type of the HERMIT entry-version note.
const NT_HERMIT_ENTRY_VERSION: u32 = 0x5a00;
/// Where position-dependent Hermit apps are linked.
const EXEC_BASE: u64 = 0x80_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dyn,
    Exec,
}

/// What one kernel file must be.
struct Expected {
    kind: Kind,
    entry_version: u8,
    /// The GNU ABI tag's descriptor, if the kernel carries one.
    abi_tag: Option<[u32; 4]>,
    /// Whether it has the kernels' TLS.
    tls: bool,
}

/// The kernels' TLS: two `.tdata` words and a 64-byte `.tbss` variable, `.tdata`
/// aligned to 32 so that the alignment differs from the default (see
/// test-kernels' `tls_image!`).
const TLS_FILESZ: u64 = 0x10;
const TLS_MEMSZ: u64 = 0x50;
const TLS_ALIGN: u64 = 0x20;

/// Checks one kernel file against what it must be; returns its parsed bytes for
/// kernel-specific checks.
fn check_image(path: &Path, expected: &Expected) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy();
    let elf = Elf::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));

    assert_eq!(elf.header.e_ident[7], 0xff, "{name}: EI_OSABI");
    let want_type = match expected.kind {
        Kind::Dyn => ET_DYN,
        Kind::Exec => ET_EXEC,
    };
    assert_eq!(elf.header.e_type, want_type, "{name}: e_type");

    let notes = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_NOTE)
        .count();
    assert_eq!(notes, 1, "{name}: exactly one PT_NOTE");
    let notes: Vec<_> = elf
        .iter_note_headers(&bytes)
        .expect("a PT_NOTE")
        .map(|n| n.unwrap_or_else(|e| panic!("{name}: malformed note: {e}")))
        .collect();
    let hermit: Vec<&[u8]> = notes
        .iter()
        .filter(|n| n.name == "HERMIT" && n.n_type == NT_HERMIT_ENTRY_VERSION)
        .map(|n| n.desc)
        .collect();
    assert_eq!(
        hermit,
        [&[expected.entry_version][..]],
        "{name}: one HERMIT note"
    );
    let abi_tags: Vec<Vec<u32>> = notes
        .iter()
        .filter(|n| n.name == "GNU" && n.n_type == NT_GNU_ABI_TAG)
        .map(|n| {
            n.desc
                .chunks(4)
                .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
                .collect()
        })
        .collect();
    let want_tags: Vec<Vec<u32>> = expected.abi_tag.iter().map(|t| t.to_vec()).collect();
    assert_eq!(abi_tags, want_tags, "{name}: GNU ABI tag");

    let tls: Vec<(u64, u64, u64)> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_TLS)
        .map(|p| (p.p_filesz, p.p_memsz, p.p_align))
        .collect();
    let want_tls: Vec<(u64, u64, u64)> = if expected.tls {
        vec![(TLS_FILESZ, TLS_MEMSZ, TLS_ALIGN)]
    } else {
        Vec::new()
    };
    assert_eq!(tls, want_tls, "{name}: PT_TLS (filesz, memsz, align)");

    match expected.kind {
        Kind::Dyn => {
            assert!(
                !elf.dynrelas.is_empty(),
                "{name}: a static PIE has relocations"
            );
            let other: Vec<u32> = elf
                .dynrelas
                .iter()
                .map(|r| r.r_type)
                .filter(|&t| t != R_X86_64_RELATIVE)
                .collect();
            assert!(
                other.is_empty(),
                "{name}: relocation types other than R_X86_64_RELATIVE: {other:?}"
            );
            assert!(elf.dynrels.is_empty(), "{name}: REL relocations");
            assert!(elf.pltrelocs.is_empty(), "{name}: PLT relocations");
            assert!(
                elf.libraries.is_empty(),
                "{name}: DT_NEEDED {:?}",
                elf.libraries
            );
        }
        Kind::Exec => {
            let first = elf
                .program_headers
                .iter()
                .find(|p| p.p_type == PT_LOAD)
                .expect("a PT_LOAD");
            assert_eq!(
                (first.p_vaddr, first.p_offset),
                (EXEC_BASE, 0),
                "{name}: first PT_LOAD at 0x800000 from file offset 0"
            );
            assert!(elf.dynamic.is_none(), "{name}: no dynamic section");
            let relocations: usize = elf.shdr_relocs.iter().map(|(_, r)| r.len()).sum();
            assert_eq!(relocations, 0, "{name}: no relocations");
        }
    }
    bytes
}

#[test]
fn hello_dyn_is_a_newer_generation_static_pie() {
    check_image(
        &artifacts().kernels.hello_dyn,
        &Expected {
            kind: Kind::Dyn,
            entry_version: 4,
            abi_tag: Some([6, 0, 13, 0]),
            tls: true,
        },
    );
}

#[test]
fn legacy_dyn_is_an_older_generation_static_pie_without_tls() {
    check_image(
        &artifacts().kernels.legacy_dyn,
        &Expected {
            kind: Kind::Dyn,
            entry_version: 4,
            abi_tag: None,
            tls: false,
        },
    );
}

#[test]
fn legacy_v2_declares_entry_version_2() {
    check_image(
        &artifacts().kernels.legacy_v2,
        &Expected {
            kind: Kind::Dyn,
            entry_version: 2,
            abi_tag: None,
            tls: true,
        },
    );
}

#[test]
fn hello_exec_is_linked_at_0x800000() {
    check_image(
        &artifacts().kernels.hello_exec,
        &Expected {
            kind: Kind::Exec,
            entry_version: 4,
            abi_tag: None,
            tls: true,
        },
    );
}

#[test]
fn calibrating_declares_entry_version_3_like_kernel_0_6() {
    check_image(
        &artifacts().kernels.calibrating,
        &Expected {
            kind: Kind::Dyn,
            entry_version: 3,
            abi_tag: None,
            tls: true,
        },
    );
}

#[test]
fn big_dyn_is_the_size_of_a_real_application() {
    let expected = Expected {
        kind: Kind::Dyn,
        entry_version: 4,
        abi_tag: Some([6, 0, 13, 0]),
        tls: true,
    };
    let bytes = check_image(&artifacts().kernels.big_dyn, &expected);
    let elf = Elf::parse(&bytes).unwrap();
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect();
    let file_bytes: u64 = loads.iter().map(|p| p.p_filesz).sum();
    // A Hermit 0.6.9 hello world: ~870 KB file, 4 segments, ~570 KB copied, ~2245
    // relocations.
    assert!(file_bytes >= 500_000, "{file_bytes} bytes of PT_LOAD");
    assert!(loads.len() >= 4, "{} PT_LOADs", loads.len());
    let relative = elf
        .dynrelas
        .iter()
        .filter(|r| r.r_type == R_X86_64_RELATIVE)
        .count();
    assert!(relative >= 2000, "{relative} R_X86_64_RELATIVE relocations");
    println!(
        "big-dyn: {} PT_LOADs, {file_bytes} file bytes, {relative} relocations",
        loads.len()
    );
}
