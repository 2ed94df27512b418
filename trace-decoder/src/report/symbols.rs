//! The application's addresses as code: function and offset from the ELF's symbol
//! table, file:line (and the functions inlined there) from its DWARF debug
//! information, read with `object`, `gimli` and `addr2line`. Given to `rusty-trace
//! --app FILE` (and passed by `cargo xtask trace`), it turns a crash's RIP and the
//! return addresses on its stack into names.
//!
//! Addresses in the trace are where the kernel ran; the ELF's are where it was
//! linked. The difference is the load bias: for an `ET_DYN` kernel the `Kernel`
//! event's base minus the lowest `PT_LOAD` page address, 0 for `ET_EXEC`
//! ([`AppSymbols::bias`]). A stripped ELF still gives its segments (which addresses
//! are code), and the lookups then say they have addresses only.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use gimli::{EndianArcSlice, RunTimeEndian};
use object::elf::{PF_X, PT_LOAD};
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

/// What the ELF can tell about an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolSource {
    /// No symbol table: addresses only.
    Stripped,
    /// A symbol table, no DWARF line information: function and offset.
    SymbolTable,
    /// A symbol table and DWARF: function, offset, file:line.
    Dwarf,
}

impl SymbolSource {
    /// How reports say it (`symbols and DWARF`).
    pub fn describe(self) -> &'static str {
        match self {
            SymbolSource::Stripped => "no symbol table (stripped): addresses only",
            SymbolSource::SymbolTable => "symbol table, no DWARF line information",
            SymbolSource::Dwarf => "symbol table and DWARF line information",
        }
    }
}

/// One function symbol.
#[derive(Clone, Debug)]
struct FunctionSymbol {
    start: u64,
    size: u64,
    /// Demangled, without Rust's hash suffix.
    name: String,
}

/// Where an ELF address lies in the code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeLocation {
    /// The function (demangled), from the symbol table.
    pub function: Option<String>,
    /// The address minus the function's start.
    pub offset: u64,
    /// `file:line` of the innermost source line, from DWARF.
    pub line: Option<String>,
    /// Functions inlined at the address, innermost first, from DWARF (empty without
    /// inlining).
    pub inlined: Vec<String>,
}

impl CodeLocation {
    /// `function+0x12 (file.rs:34)`, `function+0x12`, or `None` when the address is
    /// in no known function.
    pub fn describe(&self) -> Option<String> {
        let function = self.function.as_ref()?;
        let mut text = format!("{function}+{:#x}", self.offset);
        if !self.inlined.is_empty() {
            text += &format!(" [inlined: {}]", self.inlined.join(" ← "));
        }
        if let Some(line) = &self.line {
            text += &format!(" ({line})");
        }
        Some(text)
    }
}

/// The application ELF's symbols, segments and debug information.
pub struct AppSymbols {
    /// The file's name, for messages.
    pub name: String,
    /// `ET_DYN` (relocatable: a bias applies).
    pub relocatable: bool,
    /// `e_entry` as linked.
    pub entry: u64,
    /// The lowest `PT_LOAD` address, rounded down to its page.
    first_page: u64,
    /// Executable `PT_LOAD` ranges, as linked.
    code: Vec<(u64, u64)>,
    /// Function symbols sorted by address.
    functions: Vec<FunctionSymbol>,
    dwarf: Option<addr2line::Context<EndianArcSlice<RunTimeEndian>>>,
    /// What lookups can say.
    pub source: SymbolSource,
}

impl fmt::Debug for AppSymbols {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSymbols")
            .field("name", &self.name)
            .field("functions", &self.functions.len())
            .field("source", &self.source)
            .finish()
    }
}

/// A debug section's bytes, owned, as gimli reads them.
fn section_reader(
    file: &ElfFile64,
    id: gimli::SectionId,
    endian: RunTimeEndian,
) -> Result<EndianArcSlice<RunTimeEndian>, gimli::Error> {
    let data: Cow<[u8]> = match file.section_by_name(id.name()) {
        // A compressed section this build cannot inflate reads as absent.
        Some(section) => section.uncompressed_data().unwrap_or(Cow::Borrowed(&[])),
        None => Cow::Borrowed(&[]),
    };
    Ok(EndianArcSlice::new(Arc::from(&*data), endian))
}

impl AppSymbols {
    /// Reads an x86_64 ELF64 application. Errors say why the file is unusable.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<AppSymbols, String> {
        let file = ElfFile64::<object::Endianness>::parse(bytes)
            .map_err(|e| format!("{name} is not a 64-bit ELF file ({e})"))?;
        if file.architecture() != object::Architecture::X86_64 {
            return Err(format!("{name} is not an x86_64 ELF file"));
        }
        let endian = file.endian();
        let mut first_page = u64::MAX;
        let mut code = Vec::new();
        let segments = file
            .elf_program_headers()
            .iter()
            .filter(|ph| ph.p_type(endian) == PT_LOAD);
        for ph in segments {
            let start = ph.p_vaddr(endian);
            first_page = first_page.min(start & !0xfff);
            if ph.p_flags(endian) & PF_X != 0 {
                code.push((start, start.saturating_add(ph.p_memsz(endian))));
            }
        }
        if first_page == u64::MAX {
            return Err(format!("{name} has no loadable segment"));
        }
        let mut functions: Vec<FunctionSymbol> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
            .filter_map(|s| {
                let raw = s.name().ok()?;
                Some(FunctionSymbol {
                    start: s.address(),
                    size: s.size(),
                    name: format!("{:#}", rustc_demangle::demangle(raw)),
                })
            })
            .collect();
        functions.sort_by_key(|f| (f.start, std::cmp::Reverse(f.size)));
        functions.dedup_by_key(|f| f.start);
        let runtime_endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let has_lines = file
            .section_by_name(".debug_line")
            .is_some_and(|s| s.size() > 0);
        let dwarf = if has_lines {
            gimli::Dwarf::load(|id| section_reader(&file, id, runtime_endian))
                .ok()
                .and_then(|dwarf| addr2line::Context::from_dwarf(dwarf).ok())
        } else {
            None
        };
        let source = match (functions.is_empty(), dwarf.is_some()) {
            (true, _) => SymbolSource::Stripped,
            (false, false) => SymbolSource::SymbolTable,
            (false, true) => SymbolSource::Dwarf,
        };
        Ok(AppSymbols {
            name: name.to_string(),
            relocatable: file.elf_header().e_type.get(endian) == object::elf::ET_DYN,
            entry: file.elf_header().e_entry.get(endian),
            first_page,
            code,
            functions,
            dwarf,
            source,
        })
    }

    /// The load bias for a kernel loaded at `base` (the `Kernel` event's): what
    /// every ELF address moved by.
    pub fn bias(&self, base: u64) -> u64 {
        if self.relocatable {
            base.wrapping_sub(self.first_page)
        } else {
            0
        }
    }

    /// Whether `elf_address` lies in an executable segment.
    pub fn is_code(&self, elf_address: u64) -> bool {
        self.code
            .iter()
            .any(|&(start, end)| (start..end).contains(&elf_address))
    }

    /// Where `elf_address` (a run-time address minus the bias) lies in the code.
    pub fn lookup(&self, elf_address: u64) -> CodeLocation {
        let mut location = CodeLocation::default();
        let below = self.functions.partition_point(|f| f.start <= elf_address);
        if let Some(function) = below.checked_sub(1).map(|i| &self.functions[i]) {
            let offset = elf_address - function.start;
            // A symbol without a size (hand-written assembly) still owns the
            // addresses up to the next symbol.
            let next = self.functions.get(below).map_or(u64::MAX, |f| f.start);
            let inside = if function.size > 0 {
                offset < function.size
            } else {
                elf_address < next && self.is_code(elf_address)
            };
            if inside {
                location.function = Some(function.name.clone());
                location.offset = offset;
            }
        }
        // DWARF only describes code (and addr2line must not be asked about the
        // last address of the address space).
        if let Some(dwarf) = self.dwarf.as_ref().filter(|_| self.is_code(elf_address)) {
            if let Ok(Some(line)) = dwarf.find_location(elf_address) {
                if let (Some(file), Some(number)) = (line.file, line.line) {
                    location.line = Some(format!("{}:{number}", short_path(file)));
                }
            }
            if let Ok(mut frames) = dwarf.find_frames(elf_address).skip_all_loads() {
                let mut names = Vec::new();
                while let Ok(Some(frame)) = frames.next() {
                    if let Some(name) = frame.function.as_ref().and_then(|f| f.raw_name().ok()) {
                        names.push(format!("{:#}", rustc_demangle::demangle(&name)));
                    }
                }
                // The outermost frame is the function itself; the rest were inlined.
                names.pop();
                location.inlined = names;
            }
        }
        location
    }
}

/// A source path as reports show it: from the crate's directory on (the one
/// holding `src/`), else the file's name; the rest is the build machine's.
fn short_path(path: &str) -> String {
    match path.rfind("/src/") {
        Some(at) => {
            let crate_dir = path[..at].rsplit('/').next().unwrap_or("");
            format!("{crate_dir}{}", &path[at..])
        }
        None => path.rsplit('/').next().unwrap_or(path).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shortened_to_the_crate() {
        assert_eq!(
            short_path("/work/x/test-kernels/src/arch/faults.rs"),
            "test-kernels/src/arch/faults.rs"
        );
        assert_eq!(
            short_path("/rustc/abc/library/core/src/ptr/mod.rs"),
            "core/src/ptr/mod.rs"
        );
        assert_eq!(short_path("faults.rs"), "faults.rs");
        assert_eq!(short_path("/build/tests/elf/app.c"), "app.c");
    }

    /// `tests/elf/app.c` built with DWARF, then stripped of it, then of
    /// everything (see `tests/elf/README.md`): `leaf` at 0x401000, `caller` at
    /// 0x401005, `_start` at 0x40100e, linked at a fixed address.
    fn app(variant: &str) -> AppSymbols {
        let path = format!("{}/tests/elf/app-{variant}.elf", env!("CARGO_MANIFEST_DIR"));
        AppSymbols::read(std::path::Path::new(&path)).unwrap()
    }

    #[test]
    fn dwarf_gives_function_offset_and_line() {
        let app = app("dwarf");
        assert_eq!(app.source, SymbolSource::Dwarf);
        assert!(!app.relocatable);
        assert_eq!(app.bias(0x80_0000), 0, "ET_EXEC does not move");
        let leaf = app.lookup(0x40_1002);
        assert_eq!(leaf.function.as_deref(), Some("leaf"));
        assert_eq!(leaf.offset, 2);
        assert_eq!(leaf.line.as_deref(), Some("app.c:7"));
        let caller = app.lookup(0x40_1005).describe().unwrap();
        assert!(caller.starts_with("caller+0x0 (app.c:"), "{caller}");
        assert!(app.is_code(0x40_1005));
    }

    #[test]
    fn a_symbol_table_gives_function_and_offset_only() {
        let app = app("symtab");
        assert_eq!(app.source, SymbolSource::SymbolTable);
        let leaf = app.lookup(0x40_1002);
        assert_eq!(leaf.describe().as_deref(), Some("leaf+0x2"));
        assert_eq!(leaf.line, None);
    }

    #[test]
    fn a_stripped_elf_gives_addresses_only() {
        let app = app("stripped");
        assert_eq!(app.source, SymbolSource::Stripped);
        assert!(app.source.describe().contains("addresses only"));
        assert_eq!(app.lookup(0x40_1002), CodeLocation::default());
        assert_eq!(app.lookup(0x40_1002).describe(), None);
        // The segments still say which addresses are code.
        assert!(app.is_code(0x40_1002));
        assert!(!app.is_code(0x50_0000));
    }

    #[test]
    fn addresses_outside_every_function_name_none() {
        let app = app("dwarf");
        assert_eq!(app.lookup(0x10).function, None);
        assert_eq!(app.lookup(u64::MAX).function, None);
    }

    #[test]
    fn refuses_what_is_not_an_x86_64_elf() {
        let error = AppSymbols::from_bytes(b"#!/bin/sh\n", "script").unwrap_err();
        assert!(error.contains("not a 64-bit ELF"), "{error}");
    }
}
