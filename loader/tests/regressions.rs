//! The loader's fuzz targets (`loading`, `as_said`, `layout`, `cmdline`), replayed on stable:
//! every input of `fuzz/regressions/<target>/` (crashes and slow inputs the fuzzers
//! found, and the known hostile cases), which must be those
//! `fuzz/regressions/manifest.txt` lists, and of `fuzz/seeds/<target>/` runs through
//! the same check as the target, which is included here by path. The checks assert
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
#[path = "../../fuzz/src/as_said.rs"]
mod as_said;
#[allow(dead_code)]
#[path = "../../fuzz/src/cmdline.rs"]
mod cmdline;
#[allow(dead_code)]
#[path = "../../fuzz/src/corpus.rs"]
mod corpus;
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

use corpus::{check_files, fuzz_dir, inputs, replay};
use rusty_loader::elf::{self, MAX_PROGRAM_HEADERS};
use rusty_loader::error::LoadError;

#[test]
fn seeds_are_current() {
    check_files("seeds", "layout", &layout::seeds());
    check_files("seeds", "cmdline", &cmdline::seeds());
}

#[test]
fn loading_regressions() {
    let reached: Vec<loading::Reached> = replay("loading", loading::check)
        .into_iter()
        .map(|(_, reached)| reached)
        .collect();
    let count = reached.len();
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

/// The release test kernels the `as_said` seeds are cut from (`as_said::loadable_part`):
/// each shape a linker writes for them once (kernel 0.11+ with TLS, 0.6-0.10 without
/// an ABI tag, entry version 2, and the smallest).
const AS_SAID_SEEDS: [&str; 4] = ["hello-dyn", "legacy-dyn", "legacy-v2", "crashing"];

/// The `as_said` seeds are real test kernels, which only a build makes; they are
/// rewritten from `target/test-kernels/release/` with `UPDATE_SEEDS=1` (after
/// `cargo xtask build --release`) and otherwise only read. Each must load all the
/// way, as its file says.
#[test]
fn as_said_seeds_are_test_kernels_and_load_as_they_say() {
    let dir = fuzz_dir().join("seeds/as_said");
    if std::env::var_os("UPDATE_SEEDS").is_some_and(|v| v == "1") {
        let kernels = fuzz_dir().join("../target/test-kernels/release");
        std::fs::create_dir_all(&dir).unwrap();
        for name in AS_SAID_SEEDS {
            let kernel = std::fs::read(kernels.join(name))
                .unwrap_or_else(|e| panic!("{name}: {e}: run cargo xtask build --release first"));
            std::fs::write(dir.join(name), as_said::loadable_part(&kernel)).unwrap();
        }
    }
    for name in AS_SAID_SEEDS {
        let seed = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(as_said::check(&seed), as_said::Reached::Loaded, "{name}");
        let kernel = elf::inspect(&seed).unwrap();
        assert_eq!(kernel.kind, elf::ElfKind::Dyn, "{name}");
    }
}

#[test]
fn as_said_regressions() {
    let reached = replay("as_said", as_said::check);
    assert!(reached.len() >= AS_SAID_SEEDS.len() + 3, "{reached:?}");
    // The issue's mutants of the smallest seed, kept as regression inputs, are
    // refused by inspection; the seeds load.
    for (name, reached) in &reached {
        let expected = if AS_SAID_SEEDS.contains(&name.as_str()) {
            as_said::Reached::Loaded
        } else if [
            "relasz-tag-0xffff0008",
            "data-load-undefined-type",
            "data-load-null",
        ]
        .contains(&name.as_str())
        {
            as_said::Reached::Inspection
        } else {
            continue;
        };
        assert_eq!(*reached, expected, "{name}");
    }
}

#[test]
fn layout_regressions() {
    assert!(replay("layout", layout::check).len() >= 3);
}

#[test]
fn cmdline_regressions() {
    assert!(replay("cmdline", cmdline::check).len() >= 5);
}

/// The regression inputs still say what their names say (an input format that
/// changed under them would make them other inputs).
#[test]
fn the_regressions_are_what_their_names_say() {
    let read = |file: &str| std::fs::read(fuzz_dir().join("regressions").join(file)).unwrap();
    let plan = layout::Plan::read(&mut input::Input::new(&read(
        "layout/module-below-the-loader",
    )));
    assert!(
        plan.module.end <= plan.loader.start,
        "module {:?}, loader {:?}",
        plan.module,
        plan.loader
    );
    // A frequency, then no text at all.
    assert_eq!(read("cmdline/no-file-name").len(), 4);
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
