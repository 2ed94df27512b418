//! Files that parse but cannot be loaded as they say (issue 20, item 8): each
//! inconsistency is refused with its own exit code before anything is handed over,
//! by `inspect` or, for what only the relocation table shows, by `relocate`.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use goblin::elf::dynamic::{DT_JMPREL, DT_PLTRELSZ, DT_REL, DT_RELASZ, DT_RELSZ};
use goblin::elf::program_header::{PF_R, PF_W, PT_NULL};
use goblin::elf::reloc::{R_X86_64_64, R_X86_64_RELATIVE};
use goblin::elf64::program_header::SIZEOF_PHDR;

use super::test_elf::*;
use super::*;
use crate::error::{ExitCode, NotLoaded};

/// The standard application with dynamic entry `index` changed by `change`.
fn dynamic_edited(change: impl FnOnce(&mut Vec<(u64, u64)>)) -> Vec<u8> {
    described(|elf| change(elf.dynamic.as_mut().unwrap()))
}

/// The standard application with the `DT_*` entries at `indices` left out.
fn without_dynamic(indices: &[usize]) -> Vec<u8> {
    dynamic_edited(|entries| {
        let mut index = 0;
        entries.retain(|_| {
            index += 1;
            !indices.contains(&(index - 1))
        });
    })
}

/// The standard application with relocations `relocations` (the table's size and
/// `DT_RELACOUNT` 0, unless the caller sets it).
fn with_relocations(relocations: Vec<TestRela>, relative_count: u64) -> Vec<u8> {
    described(|elf| {
        let entries = elf.dynamic.as_mut().unwrap();
        entries[DYN_RELASZ].1 = (relocations.len() * 24) as u64;
        entries[DYN_RELACOUNT].1 = relative_count;
        elf.relocations = relocations;
    })
}

/// `field` of program header `index` set to `value` (8 bytes).
fn phdr_edited(index: usize, field: usize, value: u64) -> Vec<u8> {
    edited(|bytes| put_u64(bytes, phdr_field(index, field), value))
}

/// Program header `index`'s type set to `p_type`.
fn phdr_type(index: usize, p_type: u32) -> Vec<u8> {
    edited(|bytes| put(bytes, phdr_field(index, P_TYPE), &p_type.to_le_bytes()))
}

/// What `inspect` and then loading the way the loader does say about `bytes`.
fn inspect_and_load(bytes: &[u8]) -> Result<RelocStats, LoadError> {
    let kernel = inspect(bytes)?;
    load(&kernel, kernel.bias(0x80_0000)).map(|(_, stats)| stats)
}

/// Every case: a description, the file, the refusal.
fn cases() -> Vec<(&'static str, Vec<u8>, LoadError)> {
    let missing = |present, missing| LoadError::DynamicTagMissing { present, missing };
    let relocation_outside = |index, target| LoadError::RelocationOutsideSegments { index, target };
    let entry_outside = |entry| {
        (
            described(|elf| elf.entry = entry),
            LoadError::EntryOutsideCode { entry },
        )
    };
    let mut cases: Vec<(&'static str, Vec<u8>, LoadError)> = vec![
        // inconsistent-dynamic
        (
            "DT_RELA without DT_RELASZ",
            without_dynamic(&[DYN_RELASZ]),
            missing("DT_RELA", "DT_RELASZ"),
        ),
        (
            // A tag in a defined range that the loader does not know: the same
            // mutation as the issue's, where the range check does not catch it.
            "DT_RELASZ's tag changed to a GNU tag",
            dynamic_edited(|entries| entries[DYN_RELASZ].0 = 0x6fff_fd08),
            missing("DT_RELA", "DT_RELASZ"),
        ),
        (
            "DT_RELA without DT_RELAENT",
            without_dynamic(&[DYN_RELAENT]),
            missing("DT_RELA", "DT_RELAENT"),
        ),
        (
            "DT_RELASZ without DT_RELA",
            without_dynamic(&[DYN_RELA]),
            missing("DT_RELASZ", "DT_RELA"),
        ),
        (
            "DT_RELAENT without DT_RELA",
            without_dynamic(&[DYN_RELA, DYN_RELASZ]),
            missing("DT_RELAENT", "DT_RELA"),
        ),
        (
            "DT_RELACOUNT without DT_RELA",
            without_dynamic(&[DYN_RELA, DYN_RELASZ, DYN_RELAENT]),
            missing("DT_RELACOUNT", "DT_RELA"),
        ),
        (
            "relocation entry size 16",
            dynamic_edited(|entries| entries[DYN_RELAENT].1 = 16),
            LoadError::DynamicEntrySize {
                tag: "DT_RELAENT",
                value: 16,
                expected: 24,
            },
        ),
        (
            "symbol entry size 16",
            dynamic_edited(|entries| entries[DYN_SYMENT].1 = 16),
            LoadError::DynamicEntrySize {
                tag: "DT_SYMENT",
                value: 16,
                expected: 24,
            },
        ),
        (
            "relocation table size not a multiple of 24",
            dynamic_edited(|entries| entries[DYN_RELASZ].1 = 25),
            LoadError::RelocationTableSize { size: 25 },
        ),
        (
            "DT_RELACOUNT above the entries",
            dynamic_edited(|entries| entries[DYN_RELACOUNT].1 = 6),
            LoadError::RelativeCountAboveEntries {
                count: 6,
                entries: 5,
            },
        ),
        (
            "DT_RELACOUNT with no table",
            dynamic_edited(|entries| {
                entries[DYN_RELASZ].1 = 0;
                entries[DYN_RELACOUNT].1 = 2245;
            }),
            LoadError::RelativeCountAboveEntries {
                count: 2245,
                entries: 0,
            },
        ),
        (
            "DT_RELACOUNT counting an R_X86_64_64",
            dynamic_edited(|entries| entries[DYN_RELACOUNT].1 = 2),
            LoadError::RelativeCountDisagrees {
                index: 1,
                count: 2,
                r_type: R_X86_64_64,
            },
        ),
        (
            "DT_RELASZ given twice",
            dynamic_edited(|entries| entries.push((DT_RELASZ, 24))),
            LoadError::RepeatedDynamicTag {
                tag: "DT_RELASZ",
                first: 5 * 24,
                second: 24,
            },
        ),
        // unsupported-relocation
        (
            "REL relocations",
            dynamic_edited(|entries| {
                entries.push((DT_REL, RELA_OFFSET as u64));
                entries.push((DT_RELSZ, 16));
            }),
            LoadError::UnappliedRelocations {
                tag: "DT_REL",
                size: 16,
            },
        ),
        (
            "PLT relocations",
            dynamic_edited(|entries| {
                entries.push((DT_JMPREL, RELA_OFFSET as u64));
                entries.push((DT_PLTRELSZ, 24));
            }),
            LoadError::UnappliedRelocations {
                tag: "DT_JMPREL",
                size: 24,
            },
        ),
        (
            "DT_JMPREL without DT_PLTRELSZ",
            dynamic_edited(|entries| entries.push((DT_JMPREL, RELA_OFFSET as u64))),
            missing("DT_JMPREL", "DT_PLTRELSZ"),
        ),
        // undefined-tag
        (
            // The first mutant: DT_RELA and DT_RELACOUNT stay, the size goes.
            "DT_RELASZ's tag changed to 0xffff0008",
            dynamic_edited(|entries| entries[DYN_RELASZ].0 = 0xffff_0008),
            LoadError::UndefinedDynamicTag {
                index: DYN_RELASZ,
                tag: 0xffff_0008,
            },
        ),
        (
            "a tag between the generic and the OS range",
            dynamic_edited(|entries| entries.push((38, 0))),
            LoadError::UndefinedDynamicTag { index: 6, tag: 38 },
        ),
        (
            "a tag between the OS range and GNU's",
            dynamic_edited(|entries| entries.push((0x6fff_f001, 0))),
            LoadError::UndefinedDynamicTag {
                index: 6,
                tag: 0x6fff_f001,
            },
        ),
        (
            // The second mutant: the data segment's header gets a type no
            // one defines, so the segment would not be loaded at all.
            "the data segment's type corrupted",
            phdr_type(DATA_INDEX, 0xdead_beef),
            LoadError::UndefinedSegmentType {
                index: DATA_INDEX,
                p_type: 0xdead_beef,
            },
        ),
        (
            "PT_NUM, one past the generic types",
            phdr_type(TLS_INDEX, 8),
            LoadError::UndefinedSegmentType {
                index: TLS_INDEX,
                p_type: 8,
            },
        ),
        // table-outside-segments
        (
            "relocation table in the gap between text and data",
            dynamic_edited(|entries| entries[DYN_RELA].1 = 0x2000),
            LoadError::TableOutsideSegments {
                table: "DT_RELA",
                start: 0x2000,
                end: Some(0x2000 + 5 * 24),
            },
        ),
        (
            "relocation table runs past its segment",
            dynamic_edited(|entries| entries[DYN_RELA].1 = 0xff0),
            LoadError::TableOutsideSegments {
                table: "DT_RELA",
                start: 0xff0,
                end: Some(0xff0 + 5 * 24),
            },
        ),
        (
            "relocation table in the data segment's zeroed tail",
            dynamic_edited(|entries| entries[DYN_RELA].1 = DATA_VADDR + 0x100),
            LoadError::TableOutsideSegments {
                table: "DT_RELA",
                start: DATA_VADDR + 0x100,
                end: Some(DATA_VADDR + 0x100 + 5 * 24),
            },
        ),
        (
            "symbol table outside the segments",
            dynamic_edited(|entries| entries[DYN_SYMTAB].1 = 0x5000),
            LoadError::TableOutsideSegments {
                table: "DT_SYMTAB",
                start: 0x5000,
                end: None,
            },
        ),
        // dynamic-outside-segments
        (
            "PT_DYNAMIC in the gap between text and data",
            phdr_edited(DYNAMIC_INDEX, P_VADDR, 0x2000),
            LoadError::NotLoadedAsSaid {
                what: NotLoaded::Dynamic,
                start: 0x2000,
                end: 0x2070,
                file_offset: DYNAMIC_OFFSET as u64,
                loaded_from: None,
            },
        ),
        (
            "PT_DYNAMIC at another file offset than its segment loads there",
            phdr_edited(DYNAMIC_INDEX, P_OFFSET, 0x500),
            LoadError::NotLoadedAsSaid {
                what: NotLoaded::Dynamic,
                start: DYNAMIC_OFFSET as u64,
                end: DYNAMIC_OFFSET as u64 + 0x70,
                file_offset: 0x500,
                loaded_from: Some(DYNAMIC_OFFSET as u64),
            },
        ),
        // tls-outside-segments
        (
            // The second mutant with a type that is defined, but not
            // PT_LOAD: the TLS template in the data segment is then nowhere.
            "the data segment turned into PT_NULL",
            phdr_type(DATA_INDEX, PT_NULL),
            LoadError::NotLoadedAsSaid {
                what: NotLoaded::TlsTemplate,
                start: DATA_VADDR,
                end: DATA_VADDR + 0x10,
                file_offset: DATA_OFFSET as u64,
                loaded_from: None,
            },
        ),
        (
            "TLS template in the data segment's zeroed tail",
            phdr_edited(TLS_INDEX, P_VADDR, DATA_VADDR + 0x100),
            LoadError::NotLoadedAsSaid {
                what: NotLoaded::TlsTemplate,
                start: DATA_VADDR + 0x100,
                end: DATA_VADDR + 0x110,
                file_offset: DATA_OFFSET as u64,
                loaded_from: None,
            },
        ),
        (
            "TLS template at another file offset",
            phdr_edited(TLS_INDEX, P_OFFSET, DATA_OFFSET as u64 + 0x20),
            LoadError::NotLoadedAsSaid {
                what: NotLoaded::TlsTemplate,
                start: DATA_VADDR,
                end: DATA_VADDR + 0x10,
                file_offset: DATA_OFFSET as u64 + 0x20,
                loaded_from: Some(DATA_OFFSET as u64),
            },
        ),
        // relocation-outside-segments (found while relocating)
        (
            "the data segment turned into PT_NULL, no TLS",
            {
                let mut elf = test_dyn();
                elf.tls = false;
                let mut bytes = elf.build();
                put(
                    &mut bytes,
                    phdr_field(DATA_INDEX, P_TYPE),
                    &PT_NULL.to_le_bytes(),
                );
                bytes
            },
            relocation_outside(0, 0x3020),
        ),
        (
            "relocation into the gap between text and data",
            with_relocations(vec![(0x2000, R_X86_64_RELATIVE, 0, 0)], 1),
            relocation_outside(0, 0x2000),
        ),
        (
            "relocation below the image",
            {
                let link_base = 0x20_0000;
                let mut elf = test_dyn_at(link_base);
                elf.relocations = vec![(link_base - 8, R_X86_64_RELATIVE, 0, 0)];
                let entries = elf.dynamic.as_mut().unwrap();
                entries[DYN_RELASZ].1 = 24;
                elf.build()
            },
            relocation_outside(0, 0x20_0000 - 8),
        ),
        (
            "relocation straddling the text segment's end",
            with_relocations(vec![(0x1100 - 4, R_X86_64_RELATIVE, 0, 0)], 1),
            relocation_outside(0, 0x1100 - 4),
        ),
        (
            "relocation straddling the data segment's end",
            with_relocations(
                vec![
                    (0x3020, R_X86_64_RELATIVE, 0, 0),
                    (
                        DATA_VADDR + DATA_MEM_SIZE - 4,
                        R_X86_64_64,
                        DEFINED_SYMBOL,
                        0,
                    ),
                ],
                1,
            ),
            relocation_outside(1, DATA_VADDR + DATA_MEM_SIZE - 4),
        ),
        (
            "relocation far outside the image",
            with_relocations(vec![(u64::MAX - 3, R_X86_64_RELATIVE, 0, 0)], 0),
            relocation_outside(0, u64::MAX - 3),
        ),
        // overlapping-segments
        (
            "segments out of address order",
            edited(|bytes| {
                let text = phdr_field(TEXT_INDEX, 0);
                let data = phdr_field(DATA_INDEX, 0);
                let original = bytes.clone();
                bytes[text..text + SIZEOF_PHDR]
                    .copy_from_slice(&original[data..data + SIZEOF_PHDR]);
                bytes[data..data + SIZEOF_PHDR]
                    .copy_from_slice(&original[text..text + SIZEOF_PHDR]);
            }),
            LoadError::SegmentsOutOfOrder {
                index: DATA_INDEX,
                vaddr: TEXT_OFFSET as u64,
                previous_index: TEXT_INDEX,
                previous_vaddr: DATA_VADDR,
            },
        ),
        (
            "text overlapping the read-only segment",
            edited(|bytes| {
                put_u64(bytes, phdr_field(TEXT_INDEX, P_VADDR), 0x800);
                put_u64(bytes, phdr_field(TEXT_INDEX, P_OFFSET), 0x800);
            }),
            LoadError::OverlappingSegments {
                index: TEXT_INDEX,
                start: 0x800,
                end: 0x900,
                previous_index: RODATA_INDEX,
                previous_end: 0x1000,
            },
        ),
        // filesz-above-memsz
        (
            "PT_LOAD file size above memory size",
            phdr_edited(TEXT_INDEX, P_MEMSZ, 0x10),
            LoadError::FileSizeAboveMemorySize {
                index: TEXT_INDEX,
                segment_type: "PT_LOAD",
                file_size: TEXT_SIZE as u64,
                mem_size: 0x10,
            },
        ),
        (
            "PT_TLS file size above memory size",
            phdr_edited(TLS_INDEX, P_MEMSZ, 0x8),
            LoadError::FileSizeAboveMemorySize {
                index: TLS_INDEX,
                segment_type: "PT_TLS",
                file_size: 0x10,
                mem_size: 0x8,
            },
        ),
        // misaligned-segment
        (
            "PT_LOAD alignment not a power of two",
            phdr_edited(TEXT_INDEX, P_ALIGN, 0x3000),
            LoadError::AlignmentNotPowerOfTwo {
                index: TEXT_INDEX,
                segment_type: "PT_LOAD",
                align: 0x3000,
            },
        ),
        (
            "PT_TLS alignment not a power of two",
            phdr_edited(TLS_INDEX, P_ALIGN, 24),
            LoadError::AlignmentNotPowerOfTwo {
                index: TLS_INDEX,
                segment_type: "PT_TLS",
                align: 24,
            },
        ),
        (
            "file offset and address not congruent",
            phdr_edited(TEXT_INDEX, P_OFFSET, TEXT_OFFSET as u64 + 8),
            LoadError::OffsetNotCongruent {
                index: TEXT_INDEX,
                offset: TEXT_OFFSET as u64 + 8,
                vaddr: TEXT_OFFSET as u64,
                modulus: 0x1000,
            },
        ),
        (
            "file offset and address not congruent modulo a small alignment",
            edited(|bytes| {
                put_u64(bytes, phdr_field(TEXT_INDEX, P_ALIGN), 16);
                put_u64(
                    bytes,
                    phdr_field(TEXT_INDEX, P_OFFSET),
                    TEXT_OFFSET as u64 + 8,
                );
            }),
            LoadError::OffsetNotCongruent {
                index: TEXT_INDEX,
                offset: TEXT_OFFSET as u64 + 8,
                vaddr: TEXT_OFFSET as u64,
                modulus: 16,
            },
        ),
        (
            "a position-independent image that cannot keep its data segment's 2 MiB",
            test_dyn_at(0x1000).build(),
            LoadError::ImageStartMisaligned {
                index: DATA_INDEX,
                align: DATA_ALIGN,
                image_start: 0x1000,
            },
        ),
        // empty-image
        (
            "every PT_LOAD empty",
            edited(|bytes| {
                for index in [RODATA_INDEX, TEXT_INDEX, DATA_INDEX] {
                    put_u64(bytes, phdr_field(index, P_FILESZ), 0);
                    put_u64(bytes, phdr_field(index, P_MEMSZ), 0);
                }
            }),
            LoadError::EmptyImage { segments: 3 },
        ),
    ];
    // entry-outside-code
    for (description, entry) in [
        ("entry point in the read-only segment", 0x10),
        (
            "entry point at the text segment's end",
            (TEXT_OFFSET + TEXT_SIZE) as u64,
        ),
        ("entry point in the gap between text and data", 0x2000),
        ("entry point in the writable data segment", DATA_VADDR + 8),
        ("entry point far outside the image", 0x10_0000),
    ] {
        let (bytes, error) = entry_outside(entry);
        cases.push((description, bytes, error));
    }
    cases.push((
        "entry point in a text segment that is not executable",
        phdr_edited(TEXT_INDEX, P_FLAGS, u64::from(PF_R | PF_W)),
        LoadError::EntryOutsideCode { entry: ENTRY },
    ));
    cases
}

#[test]
fn each_inconsistency_is_refused_with_its_code() {
    for (description, bytes, expected) in cases() {
        assert_eq!(inspect_and_load(&bytes), Err(expected), "{description}");
    }
}

#[test]
fn every_new_code_has_a_case_and_a_line_that_names_what_was_found() {
    let codes: Vec<ExitCode> = cases()
        .iter()
        .map(|(_, _, error)| error.exit_code())
        .collect();
    let new_codes = ExitCode::ALL
        .iter()
        .filter(|code| (0x24..=0x2e).contains(&code.port_value()));
    for code in new_codes {
        assert!(codes.contains(code), "no case for {code:?}");
    }
    // The first mutant, as the loader's line says it.
    let (_, _, error) = cases()
        .into_iter()
        .find(|(description, _, _)| description.contains("0xffff0008"))
        .unwrap();
    assert_eq!(
        error.to_string(),
        "dynamic entry 1 has tag 0xffff0008, which no ELF specification defines: the dynamic section is corrupted"
    );
    assert_eq!(error.exit_code().name(), "undefined-tag");
}

#[test]
fn consistent_variants_are_still_accepted() {
    let accepted: Vec<(&str, Vec<u8>)> = vec![
        ("the standard application", test_dyn().build()),
        ("the executable", test_exec().build()),
        (
            "DT_RELASZ given twice with the same value",
            dynamic_edited(|entries| entries.push((DT_RELASZ, 5 * 24))),
        ),
        ("no DT_RELACOUNT", without_dynamic(&[DYN_RELACOUNT])),
        (
            "DT_RELACOUNT 0",
            dynamic_edited(|entries| entries[DYN_RELACOUNT].1 = 0),
        ),
        (
            "an empty table with its tags",
            with_relocations(Vec::new(), 0),
        ),
        (
            "no relocation tags at all",
            without_dynamic(&[DYN_RELA, DYN_RELASZ, DYN_RELAENT, DYN_RELACOUNT]),
        ),
        (
            "OS, GNU and processor-specific tags",
            dynamic_edited(|entries| {
                entries.extend([
                    (0x6000_000d, 0),
                    (0x6fff_f000, 0),
                    (0x6fff_fef5, 0),
                    (0x7fff_ffff, 0),
                ]);
            }),
        ),
        (
            "DT_RELR's neighbours DT_RELRSZ and DT_RELRENT (the last generic tag)",
            dynamic_edited(|entries| entries.extend([(35, 0), (37, 8)])),
        ),
        ("GNU_STACK", phdr_type(NOTE_INDEX + 1, 0x6474_e551)),
        (
            "a processor-specific segment type",
            phdr_type(NOTE_INDEX + 1, 0x7000_0001),
        ),
        (
            "a relocation in the data segment's zeroed tail",
            with_relocations(
                vec![(DATA_VADDR + DATA_MEM_SIZE - 8, R_X86_64_RELATIVE, 0, 0)],
                1,
            ),
        ),
        (
            "the last 8 bytes of the text segment",
            with_relocations(vec![(0x1100 - 8, R_X86_64_RELATIVE, 0, 0)], 1),
        ),
        (
            "relocations across segments in no order",
            with_relocations(
                vec![
                    (0x3020, R_X86_64_RELATIVE, 0, 0),
                    (0x10, R_X86_64_RELATIVE, 0, 0),
                    (0x3028, R_X86_64_RELATIVE, 0, 0),
                    (0x1000, R_X86_64_RELATIVE, 0, 0),
                ],
                4,
            ),
        ),
        (
            "alignment 0 and 1",
            edited(|bytes| {
                put_u64(bytes, phdr_field(TEXT_INDEX, P_ALIGN), 0);
                put_u64(bytes, phdr_field(RODATA_INDEX, P_ALIGN), 1);
            }),
        ),
        (
            "a TLS segment of zeroed data only, at its segment's end",
            edited(|bytes| {
                put_u64(
                    bytes,
                    phdr_field(TLS_INDEX, P_VADDR),
                    DATA_VADDR + DATA_MEM_SIZE,
                );
                put_u64(bytes, phdr_field(TLS_INDEX, P_FILESZ), 0);
            }),
        ),
        (
            "an empty PT_LOAD besides the others",
            edited(|bytes| {
                put_u64(bytes, phdr_field(RODATA_INDEX, P_FILESZ), 0);
                put_u64(bytes, phdr_field(RODATA_INDEX, P_MEMSZ), 0);
                // The tables were in the read-only segment: none are left.
                put_u64(bytes, phdr_field(DYNAMIC_INDEX, P_TYPE), u64::from(PT_NULL));
            }),
        ),
    ];
    for (description, bytes) in accepted {
        let result = inspect_and_load(&bytes);
        assert!(result.is_ok(), "{description}: {result:?}");
    }
}

#[test]
fn relative_relocations_counted_by_dt_relacount_are_applied_like_the_others() {
    let relocations = vec![
        (0x3020, R_X86_64_RELATIVE, 0, 0x10),
        (0x3028, R_X86_64_RELATIVE, 0, -8),
        (0x3030, R_X86_64_64, DEFINED_SYMBOL, 0),
        (0x3038, R_X86_64_RELATIVE, 0, 0x20),
    ];
    let base = 0x80_0000;
    let mut images = Vec::new();
    for count in [0, 1, 2] {
        let bytes = with_relocations(relocations.clone(), count);
        let kernel = inspect(&bytes).unwrap();
        let (image, stats) = load(&kernel, kernel.bias(base)).unwrap();
        assert_eq!(
            (stats.relative, stats.abs64),
            (3, 1),
            "DT_RELACOUNT {count}"
        );
        images.push(image);
    }
    // The images differ in the dynamic section, which holds DT_RELACOUNT; the data
    // segment, where the relocations go, is the same.
    let data = DATA_VADDR as usize..;
    assert!(images
        .iter()
        .all(|image| image[data.clone()] == images[0][data.clone()]));
    assert_eq!(image_u64(&images[0], 0x3020), base + 0x10);
    assert_eq!(image_u64(&images[0], 0x3028), base - 8);
    assert_eq!(image_u64(&images[0], 0x3038), base + 0x20);
}
