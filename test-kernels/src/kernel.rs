//! The run of a test kernel: every check in order, each printing its facts, the
//! first failure ending the run with its group's exit value.
//!
//! Order matters. Checks that need nothing from the loader's memory come first, and
//! relocations are checked before anything that goes through a relocated pointer.
//! Every pointer the loader handed over is first found mapped in the live page
//! tables and only then read. Output is formatted without `core::fmt` (see
//! [`crate::report`]); only the panic handler uses it.

#![forbid(unsafe_code)]

use crate::arch::{self, EntryState, IdentityTables, Serial, TlsOffsets};
use crate::bootinfo::{self, BootInfo};
use crate::elf::{self, Segments};
use crate::paging::{self, Tables, SIZE_2M, SIZE_4K};
use crate::report::{
    self, ensure, ensure_eq, failure, Check, Dec, Esc, Failure, Group, Hex, Sink, EXIT_SUCCESS,
};
use crate::{cmdline, emit, fdt, mbi, msg};

/// How the kernel is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `ET_DYN` static PIE: the loader picks a 2 MiB-aligned base and relocates.
    Dyn,
    /// `ET_EXEC` linked at [`EXEC_BASE`].
    Exec,
}

/// Where the `ET_EXEC` kernel is linked (real Hermit apps use the same address).
pub const EXEC_BASE: u64 = 0x80_0000;

/// Which generation of Hermit kernel this one stands in for, i.e. which paging rules
/// of the ABI it checks on top of the common ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    /// Kernels 0.11 and later (carry the GNU ABI tag): every page-table page
    /// identity-mapped, no 1 GiB pages.
    Newer,
    /// Kernels 0.6–0.10 (no ABI tag): recursive PML4[511], nothing mapped at or above
    /// the image end rounded up to 2 MiB.
    Older,
}

/// What a kernel binary is and checks.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Its name, printed as `kernel=`.
    pub name: &'static str,
    /// A line printed first, for humans (the demo app's greeting).
    pub greeting: Option<&'static str>,
    /// How it is linked.
    pub kind: Kind,
    /// Which paging rules it checks.
    pub generation: Generation,
    /// Its TLS variables' offsets, if it has TLS (from [`crate::tls_image!`]).
    pub tls: Option<fn() -> TlsOffsets>,
}

/// Bytes of the boot stack the loader provides.
pub const STACK_SIZE: u64 = 0x8000;
/// How far below the current stack pointer the zero scan stops: room for the frames
/// that ran before it (serial and IDT set-up), debug builds included.
const STACK_SCAN_MARGIN: u64 = 4096;
/// Longest command line read from the MBI.
const CMDLINE_MAX: u64 = 8192;
/// Largest FDT the kernels accept.
const FDT_MAX: u64 = 1 << 20;
/// Most usable memory regions compared.
const MAX_REGIONS: usize = 32;

/// What the stack scan at entry found, before any deep call could dirty the stack.
struct StackScan {
    /// End of the scanned part.
    end: u64,
    /// The first non-zero word (address, value), or the first unmapped address.
    result: Result<Option<(u64, u64)>, u64>,
}

/// Runs a kernel: called by the entry stub of [`crate::entry_point!`].
pub fn start(spec: &Spec, entry: EntryState) -> ! {
    arch::serial_init();
    arch::install_idt();
    let scan = scan_stack(entry.stack_low);
    let mut out = Serial;
    if let Some(greeting) = spec.greeting {
        emit!(&mut out, greeting, "\n");
    }
    report::fact_bytes(&mut out, "kernel", spec.name.as_bytes());
    match run(spec, &entry, &scan, &mut out) {
        Ok(()) => {
            report::ok(&mut out);
            arch::exit(EXIT_SUCCESS)
        }
        Err(f) => fail(&mut out, &f),
    }
}

fn fail(out: &mut dyn Sink, f: &Failure) -> ! {
    report::fail_line(out, f);
    arch::exit(f.group.exit_value())
}

/// Scans the part of the stack below the frames that have run so far; everything
/// else in the kernel runs after this.
fn scan_stack(low: u64) -> StackScan {
    let top = low.wrapping_add(STACK_SIZE);
    let end = arch::stack_pointer()
        .saturating_sub(STACK_SCAN_MARGIN)
        .min(top)
        & !7;
    let start = (low + 7) & !7;
    let result = if start < end && end <= top {
        arch::first_nonzero_word(start, end)
    } else {
        Ok(None)
    };
    StackScan { end, result }
}

fn run(spec: &Spec, entry: &EntryState, scan: &StackScan, out: &mut Serial) -> Check {
    let t = IdentityTables;
    let cr3 = arch::cr3();
    cpu_state(entry, out)?;
    relocations(out)?;
    let bi = boot_info(entry, &t, cr3, out)?;
    let own = image(spec, &bi, &t, cr3, out)?;
    stack(entry, scan, &bi, &t, cr3, out)?;
    bss(&bi, out)?;
    let mbi = mbi_header(&bi, &t, cr3, out)?;
    let cmdline = command_line(&bi, &mbi, &t, cr3, out)?;
    let regions = memory(&bi, &mbi, &t, cr3, out)?;
    device_tree(&bi, cmdline, &regions, &t, cr3, out)?;
    tls(spec, &bi, &own, out)?;
    page_tables(spec, &bi, &regions, &t, cr3, out)?;
    Ok(())
}

// ---------------------------------------------------------------------------------

const CR0_PE: u64 = 1 << 0;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
const RFLAGS_IF: u64 = 1 << 9;

fn cpu_state(entry: &EntryState, out: &mut Serial) -> Check {
    const G: Group = Group::CpuState;
    ensure_eq(G, "rsi-zero", "rsi", entry.rsi, 0)?;
    ensure(entry.rflags & RFLAGS_IF == 0, G, "interrupts-off", || {
        msg!("RFLAGS ", Hex(entry.rflags), " has IF set")
    })?;
    let (cr0, cr4, efer) = (arch::cr0(), arch::cr4(), arch::rdmsr(arch::MSR_EFER));
    report::fact_hex(out, "efer", efer);
    let long_mode = cr0 & (CR0_PE | CR0_PG) == (CR0_PE | CR0_PG)
        && cr4 & CR4_PAE != 0
        && efer & (EFER_LME | EFER_LMA) == (EFER_LME | EFER_LMA);
    ensure(long_mode, G, "long-mode", || {
        msg!("CR0 ", Hex(cr0), " CR4 ", Hex(cr4), " EFER ", Hex(efer))
    })?;
    report::passed(out, "cpu-state");
    Ok(())
}

// ---------------------------------------------------------------------------------
// Relocations: statics that hold addresses. In the static PIE these are
// R_X86_64_RELATIVE slots the loader must fill with base + addend; reading them with
// a volatile load and comparing with addresses taken PC-relative shows whether it did.

static RELOC_TARGET: u32 = 0x5eed_0001;
static RELOC_POINTER: &u32 = &RELOC_TARGET;
static RELOC_BYTES: [u8; 15] = *b"relocated slice";
static RELOC_SLICE: &[u8] = &RELOC_BYTES;

fn reloc_a() -> u32 {
    0xa
}
fn reloc_b() -> u32 {
    0xb
}
fn reloc_c() -> u32 {
    0xc
}

static RELOC_FUNCTIONS: [fn() -> u32; 3] = [reloc_a, reloc_b, reloc_c];

fn relocations(out: &mut Serial) -> Check {
    const G: Group = Group::Relocation;
    let pointer = arch::volatile_load(&RELOC_POINTER) as *const u32 as u64;
    let want = &RELOC_TARGET as *const u32 as u64;
    ensure_eq(G, "relocated-pointer", "pointer", pointer, want)?;

    // A fat pointer: the address is relocated, the length is not.
    let slice = arch::volatile_load(&RELOC_SLICE);
    ensure_eq(
        G,
        "relocated-slice",
        "slice pointer",
        slice.as_ptr() as u64,
        RELOC_BYTES.as_ptr() as u64,
    )?;
    ensure_eq(
        G,
        "relocated-slice",
        "slice length",
        slice.len() as u64,
        RELOC_BYTES.len() as u64,
    )?;

    let table = arch::volatile_load(&RELOC_FUNCTIONS);
    let want: [fn() -> u32; 3] = [reloc_a, reloc_b, reloc_c];
    for (i, (got, want)) in table.iter().zip(want).enumerate() {
        let (got, want) = (*got as usize as u64, want as usize as u64);
        ensure(got == want, G, "relocated-fn-table", || {
            msg!(
                "entry ",
                Dec(i as u64),
                " is ",
                Hex(got),
                ", want ",
                Hex(want)
            )
        })?;
    }
    // Calling through the table only after the addresses were found right.
    let results = [table[0](), table[1](), table[2]()];
    ensure(results == [0xa, 0xb, 0xc], G, "relocated-fn-table", || {
        msg!("calls returned wrong values")
    })?;
    report::passed(out, "relocation");
    Ok(())
}

// ---------------------------------------------------------------------------------

fn boot_info(
    entry: &EntryState,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> Result<BootInfo, Failure> {
    const G: Group = Group::BootInfo;
    let addr = entry.boot_info;
    report::fact_hex(out, "bootinfo", addr);
    ensure(addr != 0, G, "bootinfo-pointer", || msg!("rdi is 0"))?;
    ensure(addr.is_multiple_of(8), G, "bootinfo-pointer", || {
        msg!(Hex(addr), " is not 8-byte aligned")
    })?;
    let size = bootinfo::RAW_SIZE as u64;
    paging::check_identity(t, cr3, "bootinfo-mapped", addr, addr + size, false)?;
    let bytes = arch::mapped_bytes(addr, size).map_err(|va| unmapped("bootinfo-mapped", va))?;
    let mut raw = [0u8; bootinfo::RAW_SIZE];
    raw.copy_from_slice(bytes);
    let bi = BootInfo::parse(&raw);

    report::fact_range(out, "image", bi.image_start, bi.image_end);
    emit!(
        out,
        "tk: tls=",
        Hex(bi.tls.start),
        ",",
        Hex(bi.tls.filesz),
        ",",
        Hex(bi.tls.memsz),
        ",",
        Hex(bi.tls.align),
        "\n"
    );
    report::fact_hex(out, "fdt", bi.device_tree);
    report::fact_hex(out, "mbi", bi.mbi);
    report::fact_hex(out, "serial", u64::from(bi.serial_port));
    report::fact_hex(out, "platform", u64::from(bi.platform));
    report::fact_range(out, "phys", bi.phys_start, bi.phys_end);

    ensure_eq(
        G,
        "serial-port",
        "serial port",
        bi.serial_port.into(),
        bootinfo::SERIAL_PORT.into(),
    )?;
    ensure_eq(
        G,
        "platform",
        "platform tag",
        bi.platform.into(),
        bootinfo::PLATFORM_MULTIBOOT.into(),
    )?;
    ensure(
        bi.phys_start == 0 && bi.phys_end == 0,
        G,
        "phys-range",
        || {
            msg!(
                "physical range ",
                Hex(bi.phys_start),
                "-",
                Hex(bi.phys_end),
                ", want 0-0 (Multiboot)"
            )
        },
    )?;
    ensure(bi.mbi != 0, G, "mbi-address", || msg!("MBI address is 0"))?;
    ensure(bi.device_tree != 0, G, "fdt-address", || {
        msg!("device tree address is 0")
    })?;
    ensure(bi.image_start < bi.image_end, G, "image-range", || {
        msg!(
            "image ",
            Hex(bi.image_start),
            "-",
            Hex(bi.image_end),
            " is empty"
        )
    })?;
    ensure(
        addr + size <= bi.image_start,
        G,
        "bootinfo-below-image",
        || {
            msg!(
                "boot info ",
                Hex(addr),
                " is not below the image at ",
                Hex(bi.image_start)
            )
        },
    )?;
    report::passed(out, "bootinfo");
    Ok(bi)
}

fn unmapped(check: &'static str, va: u64) -> Failure {
    failure(Group::Paging, check, msg!(Hex(va), " is not mapped"))
}

// ---------------------------------------------------------------------------------

/// This kernel's own program headers and load bias.
struct Own {
    segments: Segments,
    bias: u64,
}

fn image(
    spec: &Spec,
    bi: &BootInfo,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> Result<Own, Failure> {
    const G: Group = Group::Image;
    paging::check_identity(t, cr3, "image-mapped", bi.image_start, bi.image_end, true)?;

    let ehdr = arch::ehdr_address();
    ensure_eq(G, "image-start", "image start", bi.image_start, ehdr)?;
    let start_bytes = arch::mapped_bytes(ehdr, elf::EHDR_SIZE as u64)
        .map_err(|va| unmapped("image-mapped", va))?;
    let header = elf::Header::parse(start_bytes)
        .map_err(|e| failure(G, "elf-header", msg!("at ", Hex(ehdr), ": ", e.describe())))?;
    report::fact_hex(out, "osabi", header.osabi.into());
    let want_type = match spec.kind {
        Kind::Dyn => elf::ET_DYN,
        Kind::Exec => elf::ET_EXEC,
    };
    ensure_eq(
        G,
        "elf-type",
        "e_type",
        header.e_type.into(),
        want_type.into(),
    )?;
    let phdrs_end = header.phdrs_end().unwrap_or(u64::MAX);
    let phdr_bytes =
        arch::mapped_bytes(ehdr, phdrs_end).map_err(|va| unmapped("image-mapped", va))?;
    let segments = Segments::read(&header, phdr_bytes)
        .map_err(|e| failure(G, "elf-header", msg!("program headers: ", e.describe())))?;
    let bias = segments.bias(ehdr);
    report::fact_hex(out, "bias", bias);

    match spec.kind {
        Kind::Dyn => ensure(
            bias != 0 && bi.image_start.is_multiple_of(SIZE_2M),
            G,
            "image-placement",
            || {
                msg!(
                    "ET_DYN image at ",
                    Hex(bi.image_start),
                    " is not at a non-zero 2 MiB boundary"
                )
            },
        )?,
        Kind::Exec => {
            ensure_eq(
                G,
                "image-placement",
                "ET_EXEC image start",
                bi.image_start,
                EXEC_BASE,
            )?;
            ensure_eq(G, "image-placement", "ET_EXEC load bias", bias, 0)?;
        }
    }

    // hermit-entry reports [first PT_LOAD, end of the last PT_LOAD); a loader that
    // rounds the end up to a page is accepted too.
    let (start, end) = segments.image_range(bias);
    ensure_eq(G, "image-range", "image start", bi.image_start, start)?;
    ensure(
        bi.image_end >= end && bi.image_end <= align_up(end, SIZE_4K),
        G,
        "image-range",
        || msg!("image end ", Hex(bi.image_end), ", want ", Hex(end)),
    )?;
    let inside = |a: u64| a >= bi.image_start && a < bi.image_end;
    let (bss_start, bss_end) = arch::bss_probe_range();
    let (tls_area, _) = arch::tls_area_range();
    let own = [
        ("_start", arch::entry_address()),
        (
            "kernel::start",
            self::start as fn(&Spec, EntryState) -> ! as usize as u64,
        ),
        (".data probe", arch::data_probe().0),
        (".bss probe", bss_start),
        (".bss probe end", bss_end - 1),
        ("TLS area", tls_area),
        ("_end", arch::end_address() - 1),
    ];
    for (what, a) in own {
        ensure(inside(a), G, "own-code-in-image", || {
            msg!(
                what,
                " at ",
                Hex(a),
                " is outside ",
                Hex(bi.image_start),
                "-",
                Hex(bi.image_end)
            )
        })?;
    }
    ensure_eq(
        G,
        "entry-point",
        "e_entry + bias",
        header.entry.wrapping_add(bias),
        arch::entry_address(),
    )?;

    let (at, data) = arch::data_probe();
    ensure(data == arch::DATA_PROBE_VALUES, G, "data-copied", || {
        msg!(
            ".data probe at ",
            Hex(at),
            " reads ",
            Hex(data[0]),
            " ",
            Hex(data[1]),
            " ..."
        )
    })?;
    report::passed(out, "image");
    Ok(Own { segments, bias })
}

fn align_up(v: u64, align: u64) -> u64 {
    v.saturating_add(align - 1) & !(align - 1)
}

// ---------------------------------------------------------------------------------

fn stack(
    entry: &EntryState,
    scan: &StackScan,
    bi: &BootInfo,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> Check {
    const G: Group = Group::Stack;
    let low = entry.stack_low;
    report::fact_range(out, "stack", low, low.wrapping_add(STACK_SIZE));
    ensure(low.is_multiple_of(SIZE_4K), G, "stack-aligned", || {
        msg!("rsp at entry ", Hex(low), " is not 4 KiB aligned")
    })?;
    paging::check_identity(t, cr3, "stack-mapped", low, low + STACK_SIZE, true)?;
    match scan.result {
        Ok(None) => {}
        Ok(Some((at, word))) => {
            return Err(failure(
                G,
                "stack-zeroed",
                msg!(Hex(at), " holds ", Hex(word)),
            ));
        }
        Err(va) => return Err(unmapped("stack-mapped", va)),
    }
    ensure(scan.end > low + STACK_SIZE / 2, G, "stack-zeroed", || {
        msg!(
            "only ",
            Hex(scan.end.saturating_sub(low)),
            " bytes could be scanned"
        )
    })?;
    ensure(
        low + STACK_SIZE <= bi.image_start,
        G,
        "stack-below-image",
        || {
            msg!(
                "stack ",
                Hex(low),
                " is not below the image at ",
                Hex(bi.image_start)
            )
        },
    )?;
    report::passed(out, "stack");
    Ok(())
}

fn bss(bi: &BootInfo, out: &mut Serial) -> Check {
    const G: Group = Group::Bss;
    let (start, end) = arch::bss_probe_range();
    ensure(end <= bi.image_end, G, "bss-zeroed", || {
        msg!("probe ends at ", Hex(end), ", past the image")
    })?;
    if let Some((i, word)) = arch::bss_probe_first_nonzero() {
        return Err(failure(
            G,
            "bss-zeroed",
            msg!(Hex(start + 8 * i as u64), " holds ", Hex(word)),
        ));
    }
    if let Some(i) = arch::bss_probe_write_read() {
        return Err(failure(
            G,
            "bss-writable",
            msg!(Hex(start + 8 * i as u64), " did not keep a write"),
        ));
    }
    report::passed(out, "bss");
    Ok(())
}

// ---------------------------------------------------------------------------------

fn mbi_header(
    bi: &BootInfo,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> Result<mbi::Header, Failure> {
    const G: Group = Group::Memory;
    let len = mbi::HEADER_LEN as u64;
    paging::check_identity(t, cr3, "mbi-mapped", bi.mbi, bi.mbi + len, false)?;
    ensure(bi.mbi + len <= bi.image_start, G, "mbi-below-image", || {
        msg!("MBI ", Hex(bi.mbi), " is not below the image")
    })?;
    let bytes = arch::mapped_bytes(bi.mbi, len).map_err(|va| unmapped("mbi-mapped", va))?;
    let header =
        mbi::Header::parse(bytes).ok_or_else(|| failure(G, "mbi-header", msg!("short read")))?;
    report::fact_hex(out, "mbi-flags", header.flags.into());
    Ok(header)
}

/// Reads the MBI's NUL-terminated command line, page by page so that each page is
/// found mapped before it is read.
fn mbi_cmdline(addr: u64, t: &IdentityTables, cr3: u64) -> Result<&'static [u8], Failure> {
    let mut page = addr & !(SIZE_4K - 1);
    loop {
        let page_end = page + SIZE_4K;
        paging::check_identity(t, cr3, "cmdline-mapped", page.max(addr), page_end, false)?;
        let so_far = arch::mapped_bytes(addr, page_end - addr)
            .map_err(|va| unmapped("cmdline-mapped", va))?;
        if let Some(len) = mbi::c_str_len(so_far) {
            return Ok(&so_far[..len]);
        }
        if page_end - addr >= CMDLINE_MAX {
            return Err(failure(
                Group::Cmdline,
                "cmdline-terminated",
                msg!("no NUL within ", Dec(CMDLINE_MAX), " bytes of ", Hex(addr)),
            ));
        }
        page = page_end;
    }
}

fn command_line(
    bi: &BootInfo,
    header: &mbi::Header,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> Result<&'static [u8], Failure> {
    const G: Group = Group::Cmdline;
    let (ptr, len) = (bi.cmdline_ptr, bi.cmdline_len);
    report::fact_hex(out, "cmdline-addr", ptr);
    ensure(ptr != 0 || len == 0, G, "cmdline-pointer", || {
        msg!("null pointer with length ", Dec(len))
    })?;
    paging::check_identity(
        t,
        cr3,
        "cmdline-mapped",
        ptr,
        ptr.saturating_add(len),
        false,
    )?;
    let ours = arch::mapped_bytes(ptr, len).map_err(|va| unmapped("cmdline-mapped", va))?;
    report::fact_bytes(out, "cmdline", ours);
    emit!(out, "tk: args=");
    for (i, word) in cmdline::app_args(ours).enumerate() {
        emit!(out, if i == 0 { "" } else { " " }, Esc(word));
    }
    emit!(out, "\n");

    let mbi_addr = header.cmdline().ok_or_else(|| {
        failure(
            G,
            "mbi-cmdline-flag",
            msg!("MBI flags ", Hex(header.flags.into()), " lack bit 2"),
        )
    })?;
    let theirs = mbi_cmdline(mbi_addr.into(), t, cr3)?;
    ensure(ours == theirs, G, "cmdline-matches-mbi", || {
        msg!(
            "boot info has ",
            Dec(len),
            " bytes, the MBI's is \"",
            Esc(theirs),
            "\""
        )
    })?;
    ensure(
        len == 0 || ptr + len <= bi.image_start,
        G,
        "cmdline-below-image",
        || msg!("command line at ", Hex(ptr), " is not below the image"),
    )?;
    report::passed(out, "cmdline");
    Ok(ours)
}

// ---------------------------------------------------------------------------------

/// The usable regions of the MBI memory map, as (start, end).
struct Regions {
    list: [(u64, u64); MAX_REGIONS],
    len: usize,
}

impl Regions {
    fn as_slice(&self) -> &[(u64, u64)] {
        &self.list[..self.len]
    }
}

fn memory(
    bi: &BootInfo,
    header: &mbi::Header,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> Result<Regions, Failure> {
    const G: Group = Group::Memory;
    let (addr, len) = header.mmap().ok_or_else(|| {
        failure(
            G,
            "mmap-flag",
            msg!("MBI flags ", Hex(header.flags.into()), " lack bit 6"),
        )
    })?;
    let (addr, len) = (u64::from(addr), u64::from(len));
    paging::check_identity(t, cr3, "mmap-mapped", addr, addr + len, false)?;
    let bytes = arch::mapped_bytes(addr, len).map_err(|va| unmapped("mmap-mapped", va))?;
    let mut regions = Regions {
        list: [(0, 0); MAX_REGIONS],
        len: 0,
    };
    for entry in mbi::entries(bytes) {
        let region = entry.map_err(|e| {
            let at = match e {
                mbi::MmapError::EntryTooSmall { offset, .. }
                | mbi::MmapError::Truncated { offset } => offset,
            };
            failure(
                G,
                "mmap-entries",
                msg!("malformed entry at offset ", Dec(at as u64)),
            )
        })?;
        if !region.usable() {
            continue;
        }
        report::fact_range(out, "mem", region.base, region.end());
        ensure(regions.len < MAX_REGIONS, G, "mmap-entries", || {
            msg!("more than ", Dec(MAX_REGIONS as u64), " usable regions")
        })?;
        regions.list[regions.len] = (region.base, region.end());
        regions.len += 1;
    }
    ensure(regions.len > 0, G, "mmap-usable", || {
        msg!("no usable region")
    })?;
    let fits = regions
        .as_slice()
        .iter()
        .any(|&(s, e)| s <= bi.image_start && bi.image_end <= e);
    ensure(fits, G, "image-in-usable-ram", || {
        msg!(
            "image ",
            Hex(bi.image_start),
            "-",
            Hex(bi.image_end),
            " is not inside one usable region"
        )
    })?;
    report::passed(out, "memory");
    Ok(regions)
}

// ---------------------------------------------------------------------------------

fn device_tree(
    bi: &BootInfo,
    cmdline: &[u8],
    regions: &Regions,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> Check {
    const G: Group = Group::Fdt;
    let addr = bi.device_tree;
    let header_len = fdt::HEADER_LEN as u64;
    paging::check_identity(t, cr3, "fdt-mapped", addr, addr + header_len, false)?;
    let head = arch::mapped_bytes(addr, header_len).map_err(|va| unmapped("fdt-mapped", va))?;
    let header =
        fdt::Header::parse(head).map_err(|e| failure(G, "fdt-header", msg!(e.describe())))?;
    let size = u64::from(header.totalsize);
    ensure(
        size >= header_len && size <= FDT_MAX,
        G,
        "fdt-header",
        || msg!("totalsize ", Hex(size)),
    )?;
    paging::check_identity(t, cr3, "fdt-mapped", addr, addr + size, false)?;
    ensure(addr + size <= bi.image_start, G, "fdt-below-image", || {
        msg!("FDT ", Hex(addr), "+", Hex(size), " is not below the image")
    })?;
    let blob = arch::mapped_bytes(addr, size).map_err(|va| unmapped("fdt-mapped", va))?;
    let structure = |e: fdt::FdtError| failure(G, "fdt-structure", msg!(e.describe()));
    let tree = fdt::Fdt::new(blob).map_err(structure)?;

    let mut found = [(0u64, 0u64); MAX_REGIONS];
    let mut n = 0;
    let count = tree
        .memory(&mut |start, size| {
            report::fact_range(&mut Serial, "fdt-mem", start, start.saturating_add(size));
            if n < MAX_REGIONS {
                found[n] = (start, start.saturating_add(size));
                n += 1;
            }
        })
        .map_err(structure)?;
    ensure(count == regions.len, G, "fdt-memory", || {
        msg!(
            Dec(count as u64),
            " memory nodes for ",
            Dec(regions.len as u64),
            " usable MBI regions"
        )
    })?;
    // Every usable MBI region must have its own memory node; the order is free.
    let mut used = [false; MAX_REGIONS];
    for &(s, e) in regions.as_slice() {
        let slot = (0..n).find(|&i| !used[i] && found[i] == (s, e));
        let Some(i) = slot else {
            return Err(failure(
                G,
                "fdt-memory",
                msg!("no memory node for ", Hex(s), "-", Hex(e)),
            ));
        };
        used[i] = true;
    }

    let bootargs = tree
        .child_property(b"chosen", b"bootargs")
        .map_err(structure)?;
    let bootargs = bootargs.map(fdt::string_value);
    ensure(
        bootargs == Some(cmdline),
        G,
        "fdt-bootargs",
        || match bootargs {
            Some(b) => msg!("/chosen/bootargs is \"", Esc(b), "\""),
            None => msg!("/chosen/bootargs is missing"),
        },
    )?;
    report::passed(out, "fdt");
    Ok(())
}

// ---------------------------------------------------------------------------------

fn tls(spec: &Spec, bi: &BootInfo, own: &Own, out: &mut Serial) -> Check {
    const G: Group = Group::Tls;
    let want = own.segments.tls_fields(own.bias);
    let got = bi.tls;
    ensure(got == want, G, "tls-fields", || {
        msg!(
            "boot info has ",
            Hex(got.start),
            ",",
            Hex(got.filesz),
            ",",
            Hex(got.memsz),
            ",",
            Hex(got.align),
            "; PT_TLS says ",
            Hex(want.start),
            ",",
            Hex(want.filesz),
            ",",
            Hex(want.memsz),
            ",",
            Hex(want.align)
        )
    })?;
    let Some(offsets) = spec.tls else {
        // A kernel without TLS: the fields must be zero, which the comparison with
        // the (absent) PT_TLS above has shown.
        ensure(own.segments.tls.is_none(), G, "tls-fields", || {
            msg!("a kernel without TLS has PT_TLS")
        })?;
        report::passed(out, "tls");
        return Ok(());
    };
    // The kernel's own TLS is 16 bytes of .tdata and 64 of .tbss (see tls_image!).
    ensure(got.memsz >= 80 && got.filesz >= 16, G, "tls-fields", || {
        msg!("PT_TLS is smaller than the kernel's TLS")
    })?;
    ensure(
        got.start >= bi.image_start && got.start + got.filesz <= bi.image_end,
        G,
        "tls-fields",
        || msg!("TLS image at ", Hex(got.start), " is outside the image"),
    )?;
    let image =
        arch::mapped_bytes(got.start, got.filesz).map_err(|va| unmapped("image-mapped", va))?;
    let layout = arch::install_tls(image, got.memsz, got.align).ok_or_else(|| {
        failure(
            G,
            "tls-layout",
            msg!(
                "memsz ",
                Hex(got.memsz),
                " align ",
                Hex(got.align),
                " do not fit"
            ),
        )
    })?;
    report::fact_hex(out, "fs-base", layout.thread_pointer);

    let offsets = offsets();
    let block_len = (layout.thread_pointer - layout.block) as i64;
    let in_block = |o: i64| o >= -block_len && o + 8 <= 0;
    ensure(
        in_block(offsets.data) && in_block(offsets.bss),
        G,
        "tls-offsets",
        || {
            msg!(
                "offsets ",
                Hex(offsets.data as u64),
                ", ",
                Hex(offsets.bss as u64),
                " are outside the block"
            )
        },
    )?;
    ensure_eq(
        G,
        "tls-fs-self",
        "fs:0",
        arch::fs_read(0),
        layout.thread_pointer,
    )?;
    ensure_eq(
        G,
        "tls-fs-data",
        "first .tdata word via fs",
        arch::fs_read(offsets.data),
        arch::TDATA_WORDS[0],
    )?;
    ensure_eq(
        G,
        "tls-fs-data",
        "second .tdata word via fs",
        arch::fs_read(offsets.data + 8),
        arch::TDATA_WORDS[1],
    )?;
    ensure_eq(
        G,
        "tls-fs-bss",
        ".tbss word via fs",
        arch::fs_read(offsets.bss),
        0,
    )?;
    let pattern = 0x7b55_0000_0000_7b55;
    arch::fs_write(offsets.bss, pattern);
    let landed = arch::tls_area_read(layout.thread_pointer.wrapping_add(offsets.bss as u64));
    ensure(landed == Some(pattern), G, "tls-fs-write", || {
        msg!("a write through fs did not land in the TLS block")
    })?;
    report::passed(out, "tls");
    Ok(())
}

// ---------------------------------------------------------------------------------

/// The EBDA is unmapped, so its segment cannot be read from the BDA: take the end of
/// the usable region that starts at 0 (QEMU: 0x9fc00) as the EBDA's start.
fn ebda_page(regions: &Regions) -> u64 {
    regions
        .as_slice()
        .iter()
        .find(|&&(s, e)| s == 0 && e > 0 && e < 0xa_0000)
        .map_or(0x9_f000, |&(_, e)| e & !(SIZE_4K - 1))
}

fn page_tables(
    spec: &Spec,
    bi: &BootInfo,
    regions: &Regions,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> Check {
    const G: Group = Group::Paging;
    let nxe = arch::rdmsr(arch::MSR_EFER) & EFER_NXE != 0;
    let survey = paging::survey(t, cr3);
    report::fact_hex(out, "cr3", cr3);
    emit!(
        out,
        "tk: page-tables=",
        Dec(survey.tables),
        " pages-4k=",
        Dec(survey.pages[0]),
        " pages-2m=",
        Dec(survey.pages[1]),
        " pages-1g=",
        Dec(survey.pages[2]),
        "\n"
    );
    let newer = spec.generation == Generation::Newer;
    paging::check_survey(&survey, nxe, newer, newer)?;

    paging::check_unmapped(t, cr3, "page-0-unmapped", 0, SIZE_4K)?;
    paging::check_unmapped(t, cr3, "ebda-unmapped", 0x9_f000, 0xa_0000)?;
    let ebda = ebda_page(regions);
    paging::check_unmapped(t, cr3, "ebda-unmapped", ebda, ebda + SIZE_4K)?;
    paging::check_unmapped(t, cr3, "bios-area-unmapped", 0xe_0000, 0x10_0000)?;
    paging::check_no_large_page_at(t, cr3, "smp-trampoline-4k", 0x8000)?;

    match spec.generation {
        Generation::Newer => {}
        Generation::Older => {
            paging::check_recursive_entry(t, cr3)?;
            let root = cr3 & paging::ADDR_MASK;
            let through = arch::mapped_bytes(paging::RECURSIVE_PML4, SIZE_4K)
                .map_err(|va| failure(G, "recursive-read", msg!(Hex(va), " is not mapped")))?;
            for i in 0..512 {
                let mut word = [0u8; 8];
                word.copy_from_slice(&through[8 * i..8 * i + 8]);
                let (got, want) = (u64::from_le_bytes(word), t.entry(root, i));
                ensure(got == want, G, "recursive-read", || {
                    msg!(
                        "entry ",
                        Dec(i as u64),
                        " reads ",
                        Hex(got),
                        " through 0xfffffffffffff000, ",
                        Hex(want),
                        " in the PML4"
                    )
                })?;
            }
            let above = align_up(bi.image_end, SIZE_2M);
            paging::check_unmapped(t, cr3, "nothing-above-image", above, paging::LOWER_HALF_END)?;
        }
    }
    report::passed(out, "paging");
    Ok(())
}

// ---------------------------------------------------------------------------------

/// Reports a CPU exception and exits (called by the handlers in [`crate::arch`]).
pub fn exception(info: &arch::ExceptionInfo) -> ! {
    // A fault while reporting a fault must not loop: the second one exits silently.
    static REPORTING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if REPORTING.swap(true, core::sync::atomic::Ordering::Relaxed) {
        arch::exit(Group::Exception.exit_value());
    }
    let detail = msg!(
        "vector ",
        Dec(info.vector),
        " error ",
        Hex(info.error),
        " rip ",
        Hex(info.rip),
        " rsp ",
        Hex(info.rsp),
        " cr2 ",
        Hex(info.cr2)
    );
    fail(&mut Serial, &failure(Group::Exception, "exception", detail))
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let mut detail = report::Msg::new();
    let _ = write!(detail, "{}", info.message());
    if let Some(location) = info.location() {
        let _ = write!(detail, " at {}:{}", location.file(), location.line());
    }
    fail(&mut Serial, &failure(Group::Panic, "panic", detail))
}
