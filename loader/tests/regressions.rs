//! The loader's fuzz targets (`loading`, `layout`, `cmdline`), replayed on stable:
//! every input of `fuzz/regressions/<target>/` (crashes and slow inputs the fuzzers
//! found, and the known hostile cases) and of `fuzz/seeds/<target>/` runs through the
//! same check as the target, which is included here by path. The checks assert
//! everything the targets do except time.
//!
//! The `layout` and `cmdline` seeds are written by the harness (`seeds()`); the
//! `loading` seeds are the ELF tests' applications (`loader/src/elf/tests.rs`).
//! After a change to either, rewrite them and review the diff:
//!
//! ```text
//! UPDATE_SEEDS=1 cargo test -p rusty-loader
//! ```

#[allow(dead_code)]
#[path = "../../fuzz/src/cmdline.rs"]
mod cmdline;
#[allow(dead_code)]
#[path = "../../fuzz/src/fdt_reader.rs"]
mod fdt_reader;
#[allow(dead_code)]
#[path = "../../fuzz/src/input.rs"]
mod input;
#[allow(dead_code)]
#[path = "../../fuzz/src/layout.rs"]
mod layout;
#[allow(dead_code)]
#[path = "../../fuzz/src/loading.rs"]
mod loading;

use std::path::{Path, PathBuf};

use rusty_loader::elf::{self, MAX_PROGRAM_HEADERS};
use rusty_loader::error::LoadError;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted (none when it does not exist).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every regression input and seed of `target`; returns how many
/// there were.
fn replay(target: &str, mut check: impl FnMut(&[u8])) -> usize {
    let mut count = 0;
    for kind in ["regressions", "seeds"] {
        for file in inputs(&fuzz_dir().join(kind).join(target)) {
            eprintln!("{}", file.display());
            check(&std::fs::read(&file).expect("a corpus file"));
            count += 1;
        }
    }
    count
}

/// Checks that `fuzz/seeds/<target>/` holds exactly these seeds, or writes them with
/// `UPDATE_SEEDS=1`.
fn check_seeds(target: &str, seeds: &[(&str, Vec<u8>)]) {
    let dir = fuzz_dir().join("seeds").join(target);
    let update = std::env::var_os("UPDATE_SEEDS").is_some_and(|v| v == "1");
    for (name, bytes) in seeds {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, bytes).unwrap();
        }
        assert!(
            std::fs::read(&path).unwrap_or_default() == *bytes,
            "{} is not current: UPDATE_SEEDS=1 cargo test -p rusty-loader --test regressions",
            path.display()
        );
    }
}

#[test]
fn seeds_are_current() {
    check_seeds("layout", &layout::seeds());
    check_seeds("cmdline", &cmdline::seeds());
}

#[test]
fn loading_regressions() {
    let mut reached = Vec::new();
    let count = replay("loading", |data| reached.push(loading::check(data)));
    assert!(count >= 4, "{count} inputs");
    // The seeds load all the way (they are the last inputs replayed).
    let seeds = inputs(&fuzz_dir().join("seeds/loading")).len();
    assert!(seeds >= 4);
    assert!(
        reached[count - seeds..]
            .iter()
            .all(|&r| r == loading::Reached::HandOver),
        "{reached:?}"
    );
}

#[test]
fn layout_regressions() {
    assert!(replay("layout", layout::check) >= 3);
}

#[test]
fn cmdline_regressions() {
    assert!(replay("cmdline", cmdline::check) >= 5);
}

#[test]
fn the_layout_seeds_are_accepted() {
    for (name, seed) in layout::seeds() {
        let plan = layout::Plan::read(&mut input::Input::new(&seed));
        let planned = rusty_loader::layout::plan_layout(&plan.input());
        assert!(planned.is_ok(), "{name}: {planned:?}");
    }
}

/// An ELF header and `count` `PT_NOTE` program headers, each naming the same empty
/// range: 3.6 MB for 65 534 of them, made here rather than stored.
fn many_notes(count: u16) -> Vec<u8> {
    let mut bytes = vec![0u8; 64];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2; // ELFCLASS64
    bytes[5] = 1; // ELFDATA2LSB
    bytes[6] = 1; // EI_VERSION
    bytes[7] = 0xff; // EI_OSABI: standalone
    bytes[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
    bytes[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
    bytes[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    bytes[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    bytes[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    bytes[56..58].copy_from_slice(&count.to_le_bytes()); // e_phnum
    for _ in 0..count {
        let mut header = [0u8; 56];
        header[..4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        header[8..16].copy_from_slice(&64u64.to_le_bytes()); // p_offset
        header[48..56].copy_from_slice(&4u64.to_le_bytes()); // p_align
        bytes.extend_from_slice(&header);
    }
    bytes
}

#[test]
fn a_module_of_65534_notes_is_refused_by_its_bound() {
    let module = many_notes(65_534);
    assert_eq!(module.len(), 64 + 65_534 * 56);
    assert_eq!(
        elf::inspect(&module).map(|kernel| kernel.entry),
        Err(LoadError::ElfTooComplex {
            what: "program headers",
            found: 65_534,
            limit: u64::from(MAX_PROGRAM_HEADERS),
        })
    );
    assert_eq!(loading::check(&module), loading::Reached::Inspection);
}
