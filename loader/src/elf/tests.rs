//! Tests of [`super::inspect`] as a whole: the refusal of each defect, wherever it
//! is found, what a valid application is described as, and that no input makes
//! inspecting or loading panic.

use alloc::vec::Vec;

use goblin::elf::dynamic::DT_NEEDED;
use goblin::elf::header::ET_DYN;
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_NULL};
use proptest::prelude::*;

use super::dynamic::DT_RELR;
use super::notes::NT_HERMIT_ENTRY_VERSION;
use super::program_headers::PN_XNUM;
use super::test_elf::*;
use super::*;

#[test]
fn refusals_name_what_they_found() {
    let short_magic = b"\x7fE".to_vec();
    let cases: Vec<(&str, Vec<u8>, LoadError)> = vec![
        (
            "empty file",
            Vec::new(),
            LoadError::NotElf { magic: [0; 4] },
        ),
        (
            "short file",
            short_magic,
            LoadError::NotElf {
                magic: [0x7f, b'E', 0, 0],
            },
        ),
        (
            "PE file",
            b"MZ\x90\x00\x03\x00".to_vec(),
            LoadError::NotElf {
                magic: *b"MZ\x90\x00",
            },
        ),
        (
            "magic only",
            b"\x7fELF".to_vec(),
            malformed("the file is shorter than the ELF header"),
        ),
        (
            "ELF32",
            described(|elf| elf.class = 1),
            LoadError::WrongClass { class: 1, data: 1 },
        ),
        (
            "big endian",
            described(|elf| elf.data = 2),
            LoadError::WrongClass { class: 2, data: 2 },
        ),
        (
            "truncated header",
            test_dyn().build()[..40].to_vec(),
            malformed("the file is shorter than the ELF header"),
        ),
        (
            "AArch64",
            described(|elf| elf.machine = 183),
            LoadError::WrongMachine { machine: 183 },
        ),
        (
            "relocatable object",
            described(|elf| elf.e_type = 1),
            LoadError::WrongType { e_type: 1 },
        ),
        (
            "no program headers",
            edited(|bytes| put(bytes, 56, &0_u16.to_le_bytes())),
            malformed("no PT_LOAD segment"),
        ),
        (
            "extended program header numbering",
            edited(|bytes| put(bytes, 56, &PN_XNUM.to_le_bytes())),
            malformed("extended program header numbering (PN_XNUM) is not supported"),
        ),
        (
            "32-bit program header size",
            edited(|bytes| put(bytes, 54, &32_u16.to_le_bytes())),
            malformed("the program header entry size is not 56 bytes"),
        ),
        (
            "program headers past the end",
            edited(|bytes| put_u64(bytes, 32, FILE_SIZE as u64 - 100)),
            malformed("the program header table lies outside the file"),
        ),
        (
            "program header offset overflows",
            edited(|bytes| put_u64(bytes, 32, u64::MAX - 8)),
            malformed("the program header table lies outside the file"),
        ),
        (
            "no notes",
            described(|elf| elf.notes.clear()),
            LoadError::NoHermitNote,
        ),
        (
            "only an ABI tag",
            described(|elf| elf.notes = abi_tag([6, 0, 11, 0], 4)),
            LoadError::NoHermitNote,
        ),
        (
            "HERMIT name with the uhyve note type",
            described(|elf| elf.notes = note(b"HERMIT", 0x5b00, &[4], 4)),
            LoadError::NoHermitNote,
        ),
        (
            "entry version type under another name",
            described(|elf| elf.notes = note(b"HERMIX", NT_HERMIT_ENTRY_VERSION, &[4], 4)),
            LoadError::NoHermitNote,
        ),
        (
            "entry version 1 (hermit-entry 0.8 and older)",
            described(|elf| elf.notes = hermit_note(1)),
            LoadError::UnsupportedEntryVersion { version: 1 },
        ),
        (
            "future entry version",
            described(|elf| elf.notes = hermit_note(5)),
            LoadError::UnsupportedEntryVersion { version: 5 },
        ),
        (
            "HERMIT note without descriptor",
            described(|elf| elf.notes = note(b"HERMIT", NT_HERMIT_ENTRY_VERSION, &[], 4)),
            malformed("the HERMIT note has no version byte"),
        ),
        (
            "note cut by its segment",
            edited(|bytes| put_u64(bytes, phdr_field(NOTE_INDEX, P_FILESZ), 20)),
            malformed("a note runs past the end of its PT_NOTE segment"),
        ),
        (
            "huge note name",
            described(|elf| put(&mut elf.notes, 0, &u32::MAX.to_le_bytes())),
            malformed("a note runs past the end of its PT_NOTE segment"),
        ),
        (
            "notes past the end",
            edited(|bytes| put_u64(bytes, phdr_field(NOTE_INDEX, P_OFFSET), u64::MAX)),
            malformed("a PT_NOTE segment lies outside the file"),
        ),
        (
            "shared libraries",
            described(|elf| elf.dynamic.as_mut().unwrap().push((DT_NEEDED, 1))),
            LoadError::NeedsSharedLibrary,
        ),
        (
            "packed relocations",
            described(|elf| elf.dynamic.as_mut().unwrap().push((DT_RELR, 0x700))),
            malformed("packed relative relocations (DT_RELR) are not supported"),
        ),
        (
            "data segment past the end of the file",
            edited(|bytes| put_u64(bytes, phdr_field(DATA_INDEX, P_OFFSET), 0x2001)),
            LoadError::SegmentOutsideFile {
                index: DATA_INDEX,
                offset: 0x2001,
                size: DATA_FILE_SIZE as u64,
                file_len: FILE_SIZE as u64,
            },
        ),
        (
            "segment file range overflows",
            edited(|bytes| put_u64(bytes, phdr_field(TEXT_INDEX, P_OFFSET), u64::MAX)),
            LoadError::SegmentOutsideFile {
                index: TEXT_INDEX,
                offset: u64::MAX,
                size: TEXT_SIZE as u64,
                file_len: FILE_SIZE as u64,
            },
        ),
        (
            "no PT_LOAD",
            edited(|bytes| {
                for index in [RODATA_INDEX, TEXT_INDEX, DATA_INDEX] {
                    put(bytes, phdr_field(index, P_TYPE), &PT_NULL.to_le_bytes());
                }
            }),
            malformed("no PT_LOAD segment"),
        ),
        (
            "segment end overflows",
            edited(|bytes| put_u64(bytes, phdr_field(DATA_INDEX, P_VADDR), u64::MAX - 0x100)),
            malformed("a PT_LOAD segment reaches past the end of the address space"),
        ),
        (
            "page rounding overflows",
            edited(|bytes| {
                // Congruent with the file offset, so that only the rounding fails.
                put_u64(
                    bytes,
                    phdr_field(DATA_INDEX, P_VADDR),
                    (u64::MAX - DATA_MEM_SIZE) & !0xfff,
                )
            }),
            malformed("a PT_LOAD segment reaches past the end of the address space"),
        ),
    ];
    assert_refusals(cases);
}

#[test]
fn dyn_kernel_is_placed_at_the_chosen_base() {
    let bytes = test_dyn().build();
    let kernel = inspect(&bytes).unwrap();
    assert_eq!(kernel.kind, ElfKind::Dyn);
    assert_eq!(kernel.entry_version, 4);
    let version = HermitVersion {
        major: 0,
        minor: 11,
        patch: 0,
    };
    assert_eq!(kernel.kernel_version, Some(version));
    assert_eq!(kernel.entry, ENTRY);
    assert_eq!(
        kernel.segments,
        [
            Segment {
                index: RODATA_INDEX,
                file_offset: 0,
                file_size: RODATA_SIZE as u64,
                mem_size: RODATA_SIZE as u64,
                vaddr: 0,
                flags: PF_R,
            },
            Segment {
                index: TEXT_INDEX,
                file_offset: TEXT_OFFSET as u64,
                file_size: TEXT_SIZE as u64,
                mem_size: TEXT_SIZE as u64,
                vaddr: TEXT_OFFSET as u64,
                flags: PF_R | PF_X,
            },
            Segment {
                index: DATA_INDEX,
                file_offset: DATA_OFFSET as u64,
                file_size: DATA_FILE_SIZE as u64,
                mem_size: DATA_MEM_SIZE,
                vaddr: DATA_VADDR,
                flags: PF_R | PF_W,
            },
        ]
    );
    assert_eq!(kernel.vaddr_start, 0);
    assert_eq!(kernel.vaddr_end, IMAGE_SIZE);
    assert_eq!(kernel.size(), IMAGE_SIZE);
    assert_eq!(kernel.align, DATA_ALIGN);

    let base = 0x80_0000;
    let bias = kernel.bias(base);
    assert_eq!(bias, base);
    assert_eq!(image_range(&kernel, bias), base..base + IMAGE_SIZE);
    assert_eq!(kernel.entry_point(bias), base + ENTRY);
    let tls = kernel.tls_info(bias).unwrap();
    assert_eq!(
        (tls.start, tls.filesz, tls.memsz, tls.align),
        (base + DATA_VADDR, 0x10, 0x40, 0x10)
    );
    assert_eq!(version.to_string(), "0.11.0");
}

#[test]
fn the_generation_follows_the_abi_tag() {
    let cases: [(&str, Vec<u8>, Generation); 6] = [
        (
            "no ABI tag (before 0.10)",
            hermit_note(4),
            Generation::Legacy,
        ),
        (
            "0.10.0",
            [hermit_note(4), abi_tag([6, 0, 10, 0], 4)].concat(),
            Generation::Legacy,
        ),
        (
            "the last 0.10 patch",
            [hermit_note(4), abi_tag([6, 0, 10, u32::MAX], 4)].concat(),
            Generation::Legacy,
        ),
        (
            "0.11.0",
            [hermit_note(4), abi_tag([6, 0, 11, 0], 4)].concat(),
            Generation::Modern,
        ),
        (
            "0.13.2",
            [hermit_note(4), abi_tag([6, 0, 13, 2], 4)].concat(),
            Generation::Modern,
        ),
        (
            "1.0.0",
            [hermit_note(4), abi_tag([6, 1, 0, 0], 4)].concat(),
            Generation::Modern,
        ),
    ];
    for (description, notes, expected) in cases {
        let bytes = described(|elf| elf.notes = notes);
        let kernel = inspect(&bytes).unwrap_or_else(|error| panic!("{description}: {error}"));
        assert_eq!(kernel.generation(), expected, "{description}");
    }
}

#[test]
fn generation_names_are_the_traced_ones() {
    assert_eq!(Generation::Legacy.name(), "0.6-0.10");
    assert_eq!(Generation::Modern.name(), "0.11+");
}

#[test]
fn exec_kernel_stays_at_its_own_address() {
    let bytes = test_exec().build();
    let kernel = inspect(&bytes).unwrap();
    assert_eq!(kernel.kind, ElfKind::Exec);
    let bias = kernel.bias(0x4000_0000);
    assert_eq!(bias, 0);
    assert_eq!(
        image_range(&kernel, bias),
        0x80_0000..0x80_0000 + IMAGE_SIZE
    );
    assert_eq!(kernel.entry_point(bias), 0x80_0000 + ENTRY);
    assert_eq!(kernel.tls_info(bias).unwrap().start, 0x80_0000 + DATA_VADDR);
    let (image, stats) = load(&kernel, bias).unwrap();
    assert_eq!(stats, RelocStats::default());
    assert_eq!(image_u64(&image, 0x3020), 0);
}

#[test]
fn bias_moves_the_lowest_page_to_the_base() {
    // A PIE linked at 2 MiB rather than 0: its addresses all move by base - 2 MiB.
    let link_base = 0x20_0000;
    let bytes = test_dyn_at(link_base).build();
    let kernel = inspect(&bytes).unwrap();
    assert_eq!(kernel.vaddr_start, link_base);
    let base = 0x80_0000;
    let bias = kernel.bias(base);
    assert_eq!(bias, base - link_base);
    assert_eq!(image_range(&kernel, bias), base..base + IMAGE_SIZE);
    assert_eq!(kernel.entry_point(bias), base + ENTRY);
    assert_eq!(kernel.tls_info(bias).unwrap().start, base + DATA_VADDR);
    let (image, stats) = load(&kernel, bias).unwrap();
    assert_eq!(stats.relative + stats.abs64 + stats.glob_dat, 3);
    assert_eq!(image_u64(&image, 0x3020), base + 0x1234);
    assert_eq!(image_u64(&image, 0x3028), base + DEFINED_SYMBOL_VALUE + 8);
    assert_eq!(image_u64(&image, 0x3030), base + DEFINED_SYMBOL_VALUE);
}

#[test]
fn goblin_reads_the_test_application_the_same_way() {
    // The full goblin parser checks that the hand-built test file is a real ELF.
    let bytes = test_dyn().build();
    let elf = goblin::elf::Elf::parse(&bytes).unwrap();
    assert_eq!(elf.header.e_type, ET_DYN);
    assert_eq!(elf.entry, ENTRY);
    assert_eq!(elf.program_headers.len(), 6);
    let relocations: Vec<(u64, u32, usize, i64)> = elf
        .dynrelas
        .iter()
        .map(|rela| {
            (
                rela.r_offset,
                rela.r_type,
                rela.r_sym,
                rela.r_addend.unwrap_or(0),
            )
        })
        .collect();
    let expected: Vec<(u64, u32, usize, i64)> = standard_relocations(0)
        .into_iter()
        .map(|(offset, kind, symbol, addend)| (offset, kind, symbol as usize, addend))
        .collect();
    assert_eq!(relocations, expected);
}

/// A few random bytes of the standard application overwritten.
fn mutated_application() -> impl Strategy<Value = Vec<u8>> {
    let byte_edits = prop::collection::vec((0..FILE_SIZE, any::<u8>()), 1..8);
    // Word edits in the metadata page reach offsets and sizes far more often
    // than single bytes anywhere do.
    let word_edits = prop::collection::vec((0..(SYMTAB_OFFSET + 0x100) / 8, any::<u64>()), 0..4);
    (byte_edits, word_edits, any::<bool>()).prop_map(|(bytes, words, exec)| {
        let mut file = if exec { test_exec() } else { test_dyn() }.build();
        for (position, value) in bytes {
            file[position] = value;
        }
        for (slot, value) in words {
            put_u64(&mut file, slot * 8, value);
        }
        file
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn inspect_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = inspect(&bytes);
    }

    #[test]
    fn inspect_never_panics_past_the_identification(tail in prop::collection::vec(any::<u8>(), 0..4096)) {
        // Arbitrary bytes rarely start with the magic; these always do.
        let bytes = [&b"\x7fELF\x02\x01\x01\xff"[..], &tail].concat();
        let _ = inspect(&bytes);
    }

    #[test]
    fn loading_a_mutated_application_never_panics(bytes in mutated_application(), base in any::<u64>()) {
        if let Ok(kernel) = inspect(&bytes) {
            if kernel.size() <= 16 << 20 {
                let _ = load(&kernel, kernel.bias(base & !0x1f_ffff));
            }
        }
    }

    #[test]
    fn any_base_moves_everything_by_the_same_bias(page in 0_u64..1 << 20) {
        let base = page << 21;
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        let bias = kernel.bias(base);
        prop_assert_eq!(image_range(&kernel, bias), base..base + IMAGE_SIZE);
        prop_assert_eq!(kernel.entry_point(bias), base + ENTRY);
        let (image, _) = load(&kernel, bias).unwrap();
        prop_assert_eq!(image_u64(&image, 0x3020), base + 0x1234);
        prop_assert_eq!(image_u64(&image, 0x3030), base + DEFINED_SYMBOL_VALUE);
    }
}

/// The `loading` fuzz target's seeds (`fuzz/seeds/loading/`): the test applications,
/// so that the fuzzer starts from files that load all the way. When the test
/// application changes, rewrite them and review the diff:
/// `UPDATE_SEEDS=1 cargo test -p rusty-loader --lib fuzz_seeds`.
#[test]
fn fuzz_seeds_are_the_test_applications() {
    extern crate std;
    use std::path::Path;

    let seeds: [(&str, Vec<u8>); 4] = [
        ("dyn", test_dyn().build()),
        ("exec", test_exec().build()),
        (
            "legacy-without-abi-tag",
            described(|elf| elf.notes = hermit_note(4)),
        ),
        (
            "entry-version-2",
            described(|elf| elf.notes = [hermit_note(2), abi_tag([6, 0, 6, 0], 4)].concat()),
        ),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/loading");
    let update = std::env::var_os("UPDATE_SEEDS").is_some_and(|v| v == "1");
    for (name, bytes) in seeds {
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == bytes,
            "{} is not current: UPDATE_SEEDS=1 cargo test -p rusty-loader --lib fuzz_seeds",
            path.display()
        );
    }
}
