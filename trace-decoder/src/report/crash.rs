//! What a `CpuException` tells beyond its vector: where RIP and the return
//! addresses on the stack lie in the application's code (with its ELF: function,
//! offset, file:line), what the faulting address of a page fault (CR2) is against
//! the memory map and the layout the loader handed over, and what the error code
//! says. Pure: events (and the application's symbols, when given) in, a [`Crash`]
//! out.
//!
//! The classes of an address follow the hand-over rules the loader serves
//! (docs/ARCHITECTURE.md, "One layout serves every kernel generation"): mapped are
//! the MBI page, the loader image (but the guard page below the kernel's stack), the
//! boot data, the module and the kernel, up to the kernel's end rounded up to 2 MiB;
//! PML4[511] points at the PML4. Everything else was unmapped at the hand-over.

use serde::Serialize;

use rusty_loader::wire::LoaderEvent;

use super::first;
use super::format::{hex, ser_hex, ser_opt_hex};
use super::memory::STACK_SIZE;
use super::symbols::AppSymbols;
use crate::decode::{memory_map, Event};

/// The first address of the recursive slot PML4[511] (sign-extended).
const RECURSIVE_SLOT: u64 = 0xffff_ff80_0000_0000;
/// The kernel's image is owned in whole 2 MiB pages.
const HUGE_PAGE: u64 = 0x20_0000;
/// The stack guard page's size.
const PAGE: u64 = 0x1000;

/// An address of the crash, with where it lies in the application's code.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CodeAddress {
    /// The address the CPU used.
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    /// The same address in the application ELF (minus the load bias), when it lies
    /// in the kernel's code.
    #[serde(serialize_with = "ser_opt_hex")]
    pub elf_address: Option<u64>,
    /// The function (demangled), from the ELF's symbol table.
    pub function: Option<String>,
    /// The address minus the function's start.
    #[serde(serialize_with = "ser_opt_hex")]
    pub offset: Option<u64>,
    /// `file:line`, from the ELF's DWARF.
    pub line: Option<String>,
    /// Functions inlined at the address, innermost first.
    pub inlined: Vec<String>,
    /// One phrase for people: `read_unmapped+0xa (test-kernels/src/arch/faults.rs:31)`,
    /// or why there is no name.
    pub described: String,
}

/// A faulting address (CR2) and what lies there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AddressClass {
    /// The address.
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    /// `null-page`, `non-canonical`, `recursive-slot`, `stack-overflow`,
    /// `unmapped-below-kernel`, `unmapped-above-kernel`, `mapped` or `unknown`.
    pub class: &'static str,
    /// One or two sentences for people.
    pub meaning: String,
}

/// One word of the stack dump.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StackWord {
    /// Where it was read.
    #[serde(serialize_with = "ser_hex")]
    pub at: u64,
    /// What it held.
    #[serde(serialize_with = "ser_hex")]
    pub value: u64,
    /// The value as code, when it points into the kernel's executable segments (a
    /// return address candidate).
    pub code: Option<CodeAddress>,
}

/// Everything the report says about a CPU exception.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Crash {
    /// The faulting instruction.
    pub rip: CodeAddress,
    /// The stack pointer when it happened.
    #[serde(serialize_with = "ser_hex")]
    pub rsp: u64,
    /// Where RSP was: in the kernel's stack (with how much of it was used), below
    /// it, or elsewhere.
    pub rsp_meaning: String,
    /// RFLAGS when it happened.
    #[serde(serialize_with = "ser_hex")]
    pub rflags: u64,
    /// CR3 when it happened.
    #[serde(serialize_with = "ser_hex")]
    pub cr3: u64,
    /// Whose page tables CR3 pointed at.
    pub cr3_meaning: String,
    /// The faulting address of a page fault.
    pub cr2: Option<AddressClass>,
    /// The error code, read for people (page faults and selector errors).
    pub error_meaning: Option<String>,
    /// The stack dump from RSP up.
    pub stack: Vec<StackWord>,
    /// Why the dump is short or empty, when it is.
    pub stack_note: Option<String>,
    /// Where the names come from: the ELF and what it holds, or why there are none.
    pub symbols: String,
}

impl Crash {
    /// The crash section as every rendering shows it, line by line: a label (empty
    /// for a line that continues the one before) and its text, unescaped (each
    /// rendering escapes for its medium): RIP named, CR2 and its class, the error
    /// code, RSP, CR3 and RFLAGS, the stack's return addresses, the symbols' source.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = vec![(
            "RIP",
            format!("{} {}", hex(self.rip.address), self.rip.described),
        )];
        if let Some(cr2) = &self.cr2 {
            lines.push((
                "CR2",
                format!("{} {}: {}", hex(cr2.address), cr2.class, cr2.meaning),
            ));
        }
        if let Some(error) = &self.error_meaning {
            lines.push(("error", error.clone()));
        }
        lines.push(("RSP", format!("{} {}", hex(self.rsp), self.rsp_meaning)));
        lines.push((
            "CR3",
            format!(
                "{} {}; RFLAGS {}",
                hex(self.cr3),
                self.cr3_meaning,
                hex(self.rflags)
            ),
        ));
        let code: Vec<(&StackWord, &CodeAddress)> = self
            .stack
            .iter()
            .filter_map(|word| Some((word, word.code.as_ref()?)))
            .collect();
        let mut stack = format!("{} words read from RSP", self.stack.len());
        if let Some(note) = &self.stack_note {
            stack += &format!(" ({note})");
        }
        stack += &match code.len() {
            0 => ", none points into the kernel's code".to_string(),
            n => format!(", {n} into the kernel's code (return addresses, innermost first):"),
        };
        lines.push(("stack", stack));
        for (word, code) in code {
            lines.push((
                "",
                format!("[{}] {} {}", hex(word.at), hex(word.value), code.described),
            ));
        }
        lines.push(("symbols", self.symbols.clone()));
        lines
    }
}

/// What the events say about the boot that a classification needs.
struct Facts {
    /// The kernel's image `[start, end)` as loaded.
    kernel: Option<(u64, u64)>,
    /// The kernel's executable segments as loaded.
    code: Vec<(u64, u64)>,
    /// The loader image.
    loader: Option<(u64, u64)>,
    /// The lowest address of the kernel's stack.
    stack: Option<u64>,
    /// The hand-over tables' PML4.
    pml4: Option<u64>,
    /// The generation the kernel was loaded as (`0.6-0.10`, `0.11+`).
    generation: Option<String>,
    /// The load base, for the bias.
    base: Option<u64>,
    /// Usable RAM.
    ram: Vec<(u64, u64)>,
    /// The `Mapping` events (debug builds), else empty.
    mappings: Vec<(u64, u64)>,
    /// The MBI's address.
    mbi: Option<u64>,
}

impl Facts {
    fn of(events: &[Event], loader_image: Option<(u64, u64)>) -> Facts {
        let segments: Vec<(u64, u64, u8)> = events
            .iter()
            .filter_map(|e| match &e.kind {
                LoaderEvent::SegmentLoaded {
                    addr, memsz, flags, ..
                } => Some((*addr, addr.saturating_add(*memsz), *flags)),
                _ => None,
            })
            .collect();
        let base = first!(events, LoaderEvent::Kernel { base, .. } => *base);
        let end = segments.iter().map(|s| s.1).max();
        Facts {
            kernel: base.zip(end),
            code: segments
                .iter()
                .filter(|s| s.2 & 1 != 0)
                .map(|s| (s.0, s.1))
                .collect(),
            loader: loader_image,
            stack: first!(events, LoaderEvent::HandOver { rsp, .. } => *rsp),
            pml4: first!(events, LoaderEvent::PageTables { pml4, .. } => *pml4),
            generation: first!(events, LoaderEvent::Kernel { generation, .. } => generation.clone()),
            base,
            ram: memory_map(events)
                .iter()
                .filter(|e| e.kind == 1)
                .map(|e| (e.start, e.end))
                .collect(),
            mappings: events
                .iter()
                .filter_map(|e| match &e.kind {
                    LoaderEvent::Mapping { start, end, .. } => Some((*start, *end)),
                    _ => None,
                })
                .collect(),
            mbi: first!(events, LoaderEvent::LoaderStart { mbi, .. } => u64::from(*mbi)),
        }
    }

    /// The end of what the kernel owns: its end rounded up to 2 MiB.
    fn kernel_top(&self) -> Option<u64> {
        let (_, end) = self.kernel?;
        Some(
            end.checked_add(HUGE_PAGE - 1)
                .map_or(u64::MAX, |e| e & !(HUGE_PAGE - 1)),
        )
    }

    /// The guard page below the kernel's stack.
    fn guard(&self) -> Option<(u64, u64)> {
        let stack = self.stack?;
        Some((stack.checked_sub(PAGE)?, stack))
    }

    /// Whether the hand-over tables mapped `address`: from the `Mapping` events
    /// when the trace has them, else by the layout's rules.
    fn mapped_at_hand_over(&self, address: u64) -> bool {
        if !self.mappings.is_empty() {
            return self
                .mappings
                .iter()
                .any(|&(s, e)| (s..e).contains(&address));
        }
        if self.guard().is_some_and(|(s, e)| (s..e).contains(&address)) {
            return false;
        }
        let page = |a: u64| a & !(PAGE - 1);
        if self.mbi.is_some_and(|mbi| page(mbi) == page(address)) {
            return true;
        }
        match (self.loader, self.kernel_top()) {
            (Some((start, _)), Some(top)) => (page(start)..top).contains(&address),
            _ => false,
        }
    }

    fn in_ram(&self, address: u64) -> bool {
        self.ram.iter().any(|&(s, e)| (s..e).contains(&address))
    }
}

/// Bits 63..47 all equal.
fn canonical(address: u64) -> bool {
    let high = address >> 47;
    high == 0 || high == (1 << 17) - 1
}

/// The physical address bits of CR3.
const CR3_ADDRESS: u64 = 0x000f_ffff_ffff_f000;

/// What lies at a page fault's address (`cr3`: the tables it was translated by).
fn classify(address: u64, error_code: u64, cr3: u64, facts: &Facts) -> AddressClass {
    let class = |class, meaning: String| AddressClass {
        address,
        class,
        meaning,
    };
    let ram = if facts.in_ram(address) {
        "usable RAM"
    } else {
        "not usable RAM by the memory map"
    };
    if !canonical(address) {
        return class(
            "non-canonical",
            "a non-canonical address (bits 63-47 differ): no page table can map it".into(),
        );
    }
    if address >= RECURSIVE_SLOT {
        return class("recursive-slot", recursive_slot(cr3, facts));
    }
    if address < PAGE {
        return class(
            "null-page",
            format!(
                "the null page ({}): a null pointer dereference",
                hex(address)
            ),
        );
    }
    if let (Some((guard_start, _)), Some(stack)) = (facts.guard(), facts.stack) {
        if (guard_start..stack).contains(&address) {
            return class(
                "stack-overflow",
                format!(
                    "the guard page below the kernel's 32 KiB stack [{}, {}): the kernel overflowed the stack the loader gave it",
                    hex(stack),
                    hex(stack.saturating_add(STACK_SIZE))
                ),
            );
        }
    }
    let present = error_code & 1 != 0;
    if present || facts.mapped_at_hand_over(address) {
        let what = if present {
            "the page is present: the access broke its protection (a write to a read-only page, or an instruction fetch from a no-execute one)"
        } else {
            "mapped at the hand-over, not present now: the kernel changed the page tables"
        };
        return class("mapped", format!("{what} ({ram})"));
    }
    let (name, meaning) = unmapped(address, facts, ram);
    class(name, meaning)
}

/// What the recursive slot means for the kernel and the tables CR3 points at.
fn recursive_slot(cr3: u64, facts: &Facts) -> String {
    let mut meaning = "the recursive page-table slot PML4[511] (0xffffff8000000000 and up): kernels of the 0.6-0.10 layout read their page tables through it, and fault like this on tables without it (as on loaders that do not set it)".to_string();
    meaning += match facts.pml4 {
        Some(pml4) if cr3 & CR3_ADDRESS == pml4 => "; CR3 still points at the loader's hand-over tables, whose PML4[511] pointed at the PML4 at the hand-over: the entry was changed since",
        Some(_) => "; CR3 points at other tables than the loader's, without a usable recursive entry",
        None => "",
    };
    if let Some(generation) = &facts.generation {
        meaning += &format!(" (this kernel was loaded as generation {generation})");
    }
    meaning
}

/// The class and meaning of an address nothing mapped at the hand-over, by where
/// it lies against the kernel (`ram`: whether it is usable RAM, in words).
fn unmapped(address: u64, facts: &Facts, ram: &str) -> (&'static str, String) {
    match (facts.kernel, facts.kernel_top()) {
        (Some((start, _)), _) if address < start => (
            "unmapped-below-kernel",
            format!(
                "unmapped, below the kernel (at {}): at the hand-over only the MBI page, the loader image, the boot data and the module are mapped there, and not page 0, the EBDA or the BIOS area, which kernels map themselves ({ram})",
                hex(start)
            ),
        ),
        (_, Some(top)) => (
            "unmapped-above-kernel",
            format!(
                "unmapped, above the kernel's end rounded up to 2 MiB ({}): nothing is mapped there at the hand-over, kernels map their heap and devices there themselves, so the kernel used memory before mapping it ({ram})",
                hex(top)
            ),
        ),
        _ => (
            "unknown",
            format!("the trace does not say where the kernel lies ({ram})"),
        ),
    }
}

/// The page-fault error code for people.
fn page_fault_error(error_code: u64) -> String {
    let present = if error_code & 1 != 0 {
        "a present page"
    } else {
        "a page that is not present"
    };
    let access = if error_code & 0x10 != 0 {
        "instruction fetch from"
    } else if error_code & 2 != 0 {
        "write to"
    } else {
        "read from"
    };
    let mode = if error_code & 4 != 0 {
        "user mode"
    } else {
        "kernel mode"
    };
    let mut text = format!("{access} {present}, in {mode}");
    if error_code & 8 != 0 {
        text += ", reserved bit set in a page-table entry";
    }
    text
}

/// A selector error code (#TS, #NP, #SS, #GP) for people.
fn selector_error(error_code: u64) -> String {
    if error_code == 0 {
        return "0: no segment selector involved (a non-canonical address, a privileged instruction, or a bad value for a control register)".to_string();
    }
    let table = match (error_code >> 1) & 3 {
        0 => "GDT",
        2 => "LDT",
        _ => "IDT",
    };
    let external = if error_code & 1 != 0 {
        ", during an external event"
    } else {
        ""
    };
    format!(
        "{}: {table} entry {}{external}",
        hex(error_code),
        (error_code >> 3) & 0x1fff
    )
}

/// Symbolization context: the application's symbols and the bias to apply.
struct Symbolizer<'a> {
    app: Option<&'a AppSymbols>,
    bias: u64,
}

impl Symbolizer<'_> {
    fn locate(&self, address: u64, facts: &Facts) -> CodeAddress {
        let in_code = facts.code.iter().any(|&(s, e)| (s..e).contains(&address));
        let mut located = CodeAddress {
            address,
            ..CodeAddress::default()
        };
        let Some(app) = self.app else {
            located.described = if in_code {
                "in the kernel's code (pass the application's ELF to name it)".to_string()
            } else {
                "not in the kernel's code".to_string()
            };
            return located;
        };
        let elf_address = address.wrapping_sub(self.bias);
        if !in_code && !app.is_code(elf_address) {
            located.described = "not in the kernel's code".to_string();
            return located;
        }
        located.elf_address = Some(elf_address);
        let found = app.lookup(elf_address);
        located.described = found.describe().unwrap_or_else(|| {
            format!(
                "{} in the ELF, in no function ({})",
                hex(elf_address),
                app.source.describe()
            )
        });
        located.function = found.function;
        located.offset = located.function.as_ref().map(|_| found.offset);
        located.line = found.line;
        located.inlined = found.inlined;
        located
    }
}

/// The crash of the boot's `CpuException`, if there is one.
pub fn build(
    events: &[Event],
    loader_image: Option<(u64, u64)>,
    app: Option<&AppSymbols>,
) -> Option<Crash> {
    let (vector, error_code, rip, cr2, rsp, rflags, cr3, stack) = first!(events, LoaderEvent::CpuException { vector, error_code, rip, cr2, rsp, rflags, cr3, stack, .. } =>
        (*vector, *error_code, *rip, *cr2, *rsp, *rflags, *cr3, stack.clone()))?;
    let facts = Facts::of(events, loader_image);
    let bias = match (app, facts.base) {
        (Some(app), Some(base)) => app.bias(base),
        _ => 0,
    };
    let symbolizer = Symbolizer { app, bias };
    let symbols = match app {
        None => "no application ELF given (rusty-trace --app FILE): addresses only".to_string(),
        Some(app) => format!("{} ({})", app.name, app.source.describe()),
    };
    let rsp_meaning = match facts.stack {
        Some(low) if (low..low.saturating_add(STACK_SIZE)).contains(&rsp) => format!(
            "in the kernel's stack, {} of its 32 KiB used",
            hex(low.saturating_add(STACK_SIZE) - rsp)
        ),
        Some(low) if rsp < low && rsp >= low.saturating_sub(PAGE) => {
            "in the guard page below the kernel's stack: the stack overflowed".to_string()
        }
        Some(_) => "outside the stack the loader gave the kernel".to_string(),
        None => "the trace has no hand-over (an exception in the loader)".to_string(),
    };
    let cr3_meaning = match facts.pml4 {
        Some(pml4) if cr3 & CR3_ADDRESS == pml4 => "the loader's hand-over page tables".to_string(),
        Some(_) => "page tables of the kernel's own (not the hand-over tables): the stack is not read through them".to_string(),
        None => "the loader's own page tables".to_string(),
    };
    let stack_note = match stack.len() {
        16 => None,
        0 if cr3_meaning.starts_with("page tables of the kernel") => {
            Some("not read: CR3 points at the kernel's own page tables".to_string())
        }
        0 => Some("RSP points at memory that is not mapped: nothing could be read".to_string()),
        n => Some(format!("{n} words: the memory above them is not mapped")),
    };
    let stack = stack
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let in_code = facts.code.iter().any(|&(s, e)| (s..e).contains(&value));
            StackWord {
                at: rsp.wrapping_add(8 * i as u64),
                value,
                code: in_code.then(|| symbolizer.locate(value, &facts)),
            }
        })
        .collect();
    let error_meaning = match vector {
        14 => Some(page_fault_error(error_code)),
        10..=13 => Some(selector_error(error_code)),
        _ => None,
    };
    Some(Crash {
        rip: symbolizer.locate(rip, &facts),
        rsp,
        rsp_meaning,
        rflags,
        cr3,
        cr3_meaning,
        cr2: (vector == 14).then(|| classify(cr2, error_code, cr3, &facts)),
        error_meaning,
        stack,
        stack_note,
        symbols,
    })
}

/// Where a code address reported by QEMU lies (for a triple fault or a hang).
pub fn locate(
    address: u64,
    events: &[Event],
    loader_image: Option<(u64, u64)>,
    app: Option<&AppSymbols>,
) -> CodeAddress {
    let facts = Facts::of(events, loader_image);
    let bias = match (app, facts.base) {
        (Some(app), Some(base)) => app.bias(base),
        _ => 0,
    };
    let mut located = Symbolizer { app, bias }.locate(address, &facts);
    if located.elf_address.is_none() {
        if let Some((start, end)) = facts.loader {
            if (start..end).contains(&address) {
                located.described = "in the loader's image".to_string();
            }
        }
    }
    located
}

/// Warns when the application ELF given is not the one that was booted: its
/// entry point, moved by the bias, must be the `Kernel` event's.
pub fn app_mismatch(events: &[Event], app: &AppSymbols) -> Option<String> {
    let (base, entry) = first!(events, LoaderEvent::Kernel { base, entry, .. } => (*base, *entry))?;
    let expected = app.entry.wrapping_add(app.bias(base));
    (expected != entry).then(|| {
        format!(
            "{} does not look like the application that was booted: its entry point would be {} at this load address, the loader jumped to {}; names may be wrong",
            app.name,
            hex(expected),
            hex(entry)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::fixtures::event;

    /// A hand-over of a kernel at 8 MiB (code in the first segment), a stack at
    /// 0x204000, tables at 0x210000, 64 MiB of RAM.
    fn boot() -> Vec<Event> {
        [
            "LoaderStart format=3 build=0x1 mbi=0x9500",
            "MemoryMap regions=[0x0-0x9fc00:1, 0x100000-0x4000000:1]",
            "Kernel kind=dyn entry_version=4 version=0.0.0 generation=0.6-0.10 segments=2 base=0x800000 entry=0x808000",
            "SegmentLoaded addr=0x800000 filesz=0x9000 memsz=0x9000 flags=5 copy_ticks=1 zero_ticks=1",
            "SegmentLoaded addr=0x80a000 filesz=0x100 memsz=0x2000 flags=6 copy_ticks=1 zero_ticks=1",
            "PageTables contract=universal pml4=0x210000 tables=4 bytes_4k=0x100000 bytes_2m=0x800000 ticks=1",
            "HandOver entry=0x808000 rdi=0x150000 rsp=0x204000 trace_ticks=1",
        ]
        .iter()
        .enumerate()
        .map(|(i, line)| event(i as u64, line))
        .collect()
    }

    fn class_of(cr2: u64, error_code: u64) -> &'static str {
        let facts = Facts::of(&boot(), Some((0x10_0000, 0x25_0000)));
        classify(cr2, error_code, 0x21_0000, &facts).class
    }

    #[test]
    fn page_fault_addresses_are_classified_by_the_hand_over_layout() {
        assert_eq!(class_of(0x18, 0), "null-page");
        assert_eq!(class_of(0xffff_ffff_ffff_fff8, 0), "recursive-slot");
        assert_eq!(class_of(0xffff_ff80_0000_0000, 0), "recursive-slot");
        assert_eq!(class_of(0x8000_0000_0000_0000, 0), "non-canonical");
        assert_eq!(class_of(0x20_3f58, 2), "stack-overflow");
        assert_eq!(class_of(0x20_3000, 2), "stack-overflow");
        assert_eq!(
            class_of(0x20_2ff8, 2),
            "mapped",
            "below the guard: loader image"
        );
        assert_eq!(class_of(0x9_f000, 0), "unmapped-below-kernel", "the EBDA");
        assert_eq!(class_of(0xa0_1000, 0), "unmapped-above-kernel");
        assert_eq!(class_of(0x9f_ffff, 0), "mapped", "inside the 2 MiB pages");
        assert_eq!(class_of(0x80_1000, 3), "mapped", "present: protection");
        let facts = Facts::of(&boot(), Some((0x10_0000, 0x25_0000)));
        let above = classify(0xa0_1000, 0, 0x21_0000, &facts);
        assert!(above.meaning.contains("(0xa00000)"), "{}", above.meaning);
        assert!(above.meaning.contains("usable RAM"), "{}", above.meaning);
        let recursive = classify(0xffff_ffff_ffff_fff8, 0, 0x21_0000, &facts);
        assert!(
            recursive
                .meaning
                .contains("CR3 still points at the loader's"),
            "{}",
            recursive.meaning
        );
        assert!(
            recursive.meaning.contains("generation 0.6-0.10"),
            "{}",
            recursive.meaning
        );
        let switched = classify(0xffff_ffff_ffff_fff8, 0, 0x50_0000, &facts);
        assert!(
            switched.meaning.contains("other tables"),
            "{}",
            switched.meaning
        );
        let outside = classify(0x1_0000_0000, 0, 0x21_0000, &facts);
        assert!(
            outside.meaning.contains("not usable RAM"),
            "{}",
            outside.meaning
        );
    }

    #[test]
    fn error_codes_read_for_people() {
        assert_eq!(
            page_fault_error(0),
            "read from a page that is not present, in kernel mode"
        );
        assert_eq!(
            page_fault_error(2),
            "write to a page that is not present, in kernel mode"
        );
        assert_eq!(
            page_fault_error(0x11),
            "instruction fetch from a present page, in kernel mode"
        );
        assert!(selector_error(0).starts_with("0: no segment selector"));
        assert_eq!(selector_error(0x1a), "0x1a: IDT entry 3");
    }

    #[test]
    fn a_crash_without_symbols_still_says_what_is_code() {
        let mut events = boot();
        events.push(event(
            9,
            "CpuException vector=14 error_code=0x0 rip=0x8053a0 cr2=0xa01000 in_kernel=true trace_ticks=1 rsp=0x20be00 rflags=0x6 cr3=0x210000 stack=[0x1, 0x8061f0, 0x80b000]",
        ));
        let crash = build(&events, Some((0x10_0000, 0x25_0000)), None).unwrap();
        assert!(
            crash.rip.described.contains("kernel's code"),
            "{}",
            crash.rip.described
        );
        assert_eq!(crash.cr2.as_ref().unwrap().class, "unmapped-above-kernel");
        assert_eq!(crash.cr3_meaning, "the loader's hand-over page tables");
        assert!(
            crash.rsp_meaning.contains("0x200 of its 32 KiB used"),
            "{}",
            crash.rsp_meaning
        );
        let candidates: Vec<u64> = crash
            .stack
            .iter()
            .filter(|w| w.code.is_some())
            .map(|w| w.value)
            .collect();
        assert_eq!(
            candidates,
            [0x8061f0],
            "data and small numbers are not code"
        );
        assert_eq!(crash.stack[2].at, 0x20be10);
        assert_eq!(
            crash.stack_note.as_deref(),
            Some("3 words: the memory above them is not mapped")
        );
        assert!(crash.symbols.contains("addresses only"));
    }
}
