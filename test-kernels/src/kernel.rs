//! The run of a test kernel: every check in order, each printing its facts, the
//! first failure ending the run with its group's exit value.
//!
//! Order matters. Checks that need nothing from the loader's memory come first, and
//! relocations are checked before anything that goes through a relocated pointer.
//! Every pointer the loader handed over is first found mapped in the live page
//! tables and only then read. Output is formatted without `core::fmt` (see
//! [`crate::report`]); only the panic handler uses it.
//!
//! A failed check here prints its line and exits on the spot instead of returning
//! an error up the call chain: the kernel must fit in the loader's 32 KiB stack in
//! unoptimised builds too, where every `Result` a call site holds takes stack of its
//! own. The detail is written by a closure, which runs only when the check fails.

#![forbid(unsafe_code)]

use crate::arch::{self, EntryState, IdentityTables, Serial, TlsOffsets};
use crate::bootinfo::{self, BootInfo};
use crate::elf::{self, Segments};
use crate::paging::{self, Tables, SIZE_2M, SIZE_4K};
use crate::report::{self, Check, Dec, Esc, Failure, Group, Hex, Sink, EXIT_SUCCESS};
use crate::{cmdline, emit, fdt, mbi};

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
    /// Kernels 0.6–0.10 (no ABI tag): recursive `PML4[511]`, nothing mapped at or above
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
    /// The entry ABI version its HERMIT note declares (the binary's
    /// `hermit_note!(SPEC.entry_version)` places the note): it decides the boot-info
    /// layout, and version 2 has no device tree.
    pub entry_version: u8,
}

/// Bytes of the boot stack the loader provides.
pub const STACK_SIZE: u64 = 0x8000;
/// How far below the current stack pointer the zero scan stops: room for the frames
/// that ran before it (serial and IDT set-up), debug builds included.
const STACK_SCAN_MARGIN: u64 = 4096;
/// Stack the kernel leaves unused at its deepest, so that it tests the loader's
/// stack rather than its own appetite.
const STACK_HEADROOM: u64 = 8192;
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
    let out = &mut Serial;
    if let Some(greeting) = spec.greeting {
        emit!(out, greeting, "\n");
    }
    report::fact_bytes(out, "kernel", spec.name.as_bytes());
    let t = IdentityTables;
    let cr3 = arch::cr3();
    cpu_state(&entry, out);
    relocations(out);
    let bi = boot_info(spec, &entry, &t, cr3, out);
    let own = image(spec, &bi, &t, cr3, out);
    stack(&entry, &scan, &bi, &t, cr3, out);
    bss(&bi, out);
    let header = mbi_header(&bi, &t, cr3, out);
    let cmdline = command_line(&bi, &header, &t, cr3, out);
    let regions = memory(&bi, &header, &t, cr3, out);
    // Entry version 2 has no boot-info field for a device tree (kernel 0.6.0 reads
    // the memory map from the MBI alone).
    if spec.entry_version >= 3 {
        device_tree(&bi, cmdline, &regions, &t, cr3, out);
    }
    tls(spec, &bi, &own, out);
    page_tables(spec, &bi, &regions, &t, cr3, out);
    stack_headroom(&entry, out);
    report::ok(out);
    arch::exit(EXIT_SUCCESS)
}

/// Prints `tk: FAIL <check>: <detail>` and exits with the group's value.
fn fail(group: Group, check: &str, detail: &dyn Fn(&mut dyn Sink)) -> ! {
    let out = &mut Serial;
    emit!(out, "tk: FAIL ", check, ": ");
    detail(out);
    emit!(out, "\n");
    arch::exit(group.exit_value())
}

/// Fails unless `condition` holds.
fn check(condition: bool, group: Group, check: &str, detail: &dyn Fn(&mut dyn Sink)) {
    if !condition {
        fail(group, check, detail);
    }
}

/// Fails unless `got == want`, saying both in hex.
fn check_eq(group: Group, check: &str, what: &str, got: u64, want: u64) {
    if got != want {
        fail(group, check, &|s| {
            emit!(s, what, " is ", Hex(got), ", want ", Hex(want))
        });
    }
}

/// Fails with the failure a library check returned.
fn require(result: Check) {
    if let Err(f) = result {
        fail_with(&f);
    }
}

fn fail_with(f: &Failure) -> ! {
    fail(f.group, f.check, &|s| s.bytes(f.detail.as_bytes()))
}

/// Fails a `*-mapped` check: `va` is not mapped.
fn unmapped(check: &str, va: u64) -> ! {
    fail(Group::Paging, check, &|s| {
        emit!(s, Hex(va), " is not mapped")
    })
}

/// Reads `[addr, addr + len)` after checking it is identity-mapped.
fn read(t: &IdentityTables, cr3: u64, check: &'static str, addr: u64, len: u64) -> &'static [u8] {
    require(paging::check_identity(
        t,
        cr3,
        check,
        addr,
        addr.saturating_add(len),
        false,
    ));
    arch::mapped_bytes(addr, len).unwrap_or_else(|va| unmapped(check, va))
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

// ---------------------------------------------------------------------------------

const CR0_PE: u64 = 1 << 0;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
const RFLAGS_IF: u64 = 1 << 9;

fn cpu_state(entry: &EntryState, out: &mut Serial) {
    const G: Group = Group::CpuState;
    check_eq(G, "rsi-zero", "rsi", entry.rsi, 0);
    check(entry.rflags & RFLAGS_IF == 0, G, "interrupts-off", &|s| {
        emit!(s, "RFLAGS ", Hex(entry.rflags), " has IF set")
    });
    let (cr0, cr4, efer) = (arch::cr0(), arch::cr4(), arch::rdmsr(arch::MSR_EFER));
    report::fact_hex(out, "efer", efer);
    let long_mode = cr0 & (CR0_PE | CR0_PG) == (CR0_PE | CR0_PG)
        && cr4 & CR4_PAE != 0
        && efer & (EFER_LME | EFER_LMA) == (EFER_LME | EFER_LMA);
    check(long_mode, G, "long-mode", &|s| {
        emit!(s, "CR0 ", Hex(cr0), " CR4 ", Hex(cr4), " EFER ", Hex(efer))
    });
    report::passed(out, "cpu-state");
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

fn relocations(out: &mut Serial) {
    const G: Group = Group::Relocation;
    let pointer = arch::volatile_load(&RELOC_POINTER) as *const u32 as u64;
    let want = &RELOC_TARGET as *const u32 as u64;
    check_eq(G, "relocated-pointer", "pointer", pointer, want);

    // A fat pointer: the address is relocated, the length is not.
    let slice = arch::volatile_load(&RELOC_SLICE);
    let (got, want) = (slice.as_ptr() as u64, RELOC_BYTES.as_ptr() as u64);
    check_eq(G, "relocated-slice", "slice pointer", got, want);
    check_eq(G, "relocated-slice", "slice length", slice.len() as u64, 15);

    let table = arch::volatile_load(&RELOC_FUNCTIONS);
    let want: [fn() -> u32; 3] = [reloc_a, reloc_b, reloc_c];
    for (i, (got, want)) in table.iter().zip(want).enumerate() {
        let (got, want) = (*got as usize as u64, want as usize as u64);
        check(got == want, G, "relocated-fn-table", &|s| {
            emit!(
                s,
                "entry ",
                Dec(i as u64),
                " is ",
                Hex(got),
                ", want ",
                Hex(want)
            )
        });
    }
    // Calling through the table only after the addresses were found right.
    let results = [table[0](), table[1](), table[2]()];
    check(results == [0xa, 0xb, 0xc], G, "relocated-fn-table", &|s| {
        emit!(s, "calls returned wrong values")
    });
    report::passed(out, "relocation");
}

// ---------------------------------------------------------------------------------

fn boot_info(
    spec: &Spec,
    entry: &EntryState,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> BootInfo {
    const G: Group = Group::BootInfo;
    let addr = entry.boot_info;
    report::fact_hex(out, "bootinfo", addr);
    check(addr != 0, G, "bootinfo-pointer", &|s| emit!(s, "rdi is 0"));
    check(addr.is_multiple_of(8), G, "bootinfo-pointer", &|s| {
        emit!(s, Hex(addr), " is not 8-byte aligned")
    });
    // Only the bytes of this version's layout: a shorter one may end at a page end.
    let len = bootinfo::raw_size(spec.entry_version);
    let size = len as u64;
    let mut raw = [0u8; bootinfo::RAW_SIZE];
    raw[..len].copy_from_slice(read(t, cr3, "bootinfo-mapped", addr, size));
    let bi = BootInfo::parse(&raw, spec.entry_version);

    report::fact_range(out, "image", bi.image_start, bi.image_end);
    let tls = &bi.tls;
    emit!(out, "tk: tls=", Hex(tls.start), ",", Hex(tls.filesz), ",");
    emit!(out, Hex(tls.memsz), ",", Hex(tls.align), "\n");
    report::fact_hex(out, "fdt", bi.device_tree);
    report::fact_hex(out, "mbi", bi.mbi);
    report::fact_hex(out, "serial", u64::from(bi.serial_port));
    report::fact_hex(out, "platform", u64::from(bi.platform));
    report::fact_range(out, "phys", bi.phys_start, bi.phys_end);

    let serial = u64::from(bi.serial_port);
    check_eq(
        G,
        "serial-port",
        "serial port",
        serial,
        bootinfo::SERIAL_PORT.into(),
    );
    let platform = u64::from(bi.platform);
    check_eq(
        G,
        "platform",
        "platform tag",
        platform,
        bootinfo::PLATFORM_MULTIBOOT.into(),
    );
    check(
        bi.phys_start == 0 && bi.phys_end == 0,
        G,
        "phys-range",
        &|s| {
            emit!(
                s,
                "physical range ",
                Hex(bi.phys_start),
                "-",
                Hex(bi.phys_end)
            );
            emit!(s, ", want 0-0 (Multiboot)")
        },
    );
    check(bi.mbi != 0, G, "mbi-address", &|s| {
        emit!(s, "MBI address is 0")
    });
    check(
        bi.device_tree != 0 || spec.entry_version == 2,
        G,
        "fdt-address",
        &|s| emit!(s, "device tree address is 0"),
    );
    check(bi.image_start < bi.image_end, G, "image-range", &|s| {
        emit!(
            s,
            "image ",
            Hex(bi.image_start),
            "-",
            Hex(bi.image_end),
            " is empty"
        )
    });
    check(
        addr + size <= bi.image_start,
        G,
        "bootinfo-below-image",
        &|s| {
            emit!(
                s,
                "boot info ",
                Hex(addr),
                " is not below the image at ",
                Hex(bi.image_start)
            )
        },
    );
    report::passed(out, "bootinfo");
    bi
}

// ---------------------------------------------------------------------------------

/// This kernel's own program headers and load bias.
struct Own {
    segments: Segments,
    bias: u64,
}

fn image(spec: &Spec, bi: &BootInfo, t: &IdentityTables, cr3: u64, out: &mut Serial) -> Own {
    const G: Group = Group::Image;
    let (start, end) = (bi.image_start, bi.image_end);
    require(paging::check_identity(
        t,
        cr3,
        "image-mapped",
        start,
        end,
        true,
    ));

    let ehdr = arch::ehdr_address();
    check_eq(G, "image-start", "image start", start, ehdr);
    let header_bytes = arch::mapped_bytes(ehdr, elf::EHDR_SIZE as u64)
        .unwrap_or_else(|va| unmapped("image-mapped", va));
    let header = elf::Header::parse(header_bytes).unwrap_or_else(|e| {
        fail(G, "elf-header", &|s| {
            emit!(s, "at ", Hex(ehdr), ": ", e.describe())
        })
    });
    report::fact_hex(out, "osabi", header.osabi.into());
    let want_type = match spec.kind {
        Kind::Dyn => elf::ET_DYN,
        Kind::Exec => elf::ET_EXEC,
    };
    check_eq(
        G,
        "elf-type",
        "e_type",
        header.e_type.into(),
        want_type.into(),
    );
    let phdrs_end = header.phdrs_end().unwrap_or(u64::MAX);
    let phdr_bytes =
        arch::mapped_bytes(ehdr, phdrs_end).unwrap_or_else(|va| unmapped("image-mapped", va));
    let segments = Segments::read(&header, phdr_bytes).unwrap_or_else(|e| {
        fail(G, "elf-header", &|s| {
            emit!(s, "program headers: ", e.describe())
        })
    });
    let bias = segments.bias(ehdr);
    report::fact_hex(out, "bias", bias);

    match spec.kind {
        Kind::Dyn => check(
            bias != 0 && start.is_multiple_of(SIZE_2M),
            G,
            "image-placement",
            &|s| {
                emit!(
                    s,
                    "ET_DYN image at ",
                    Hex(start),
                    " is not at a non-zero 2 MiB boundary"
                )
            },
        ),
        Kind::Exec => {
            check_eq(
                G,
                "image-placement",
                "ET_EXEC image start",
                start,
                EXEC_BASE,
            );
            check_eq(G, "image-placement", "ET_EXEC load bias", bias, 0);
        }
    }

    // hermit-entry reports [first PT_LOAD, end of the last PT_LOAD); a loader that
    // rounds the end up to a page is accepted too.
    let (want_start, want_end) = segments.image_range(bias);
    check_eq(G, "image-range", "image start", start, want_start);
    check(
        end >= want_end && end <= align_up(want_end, SIZE_4K),
        G,
        "image-range",
        &|s| emit!(s, "image end ", Hex(end), ", want ", Hex(want_end)),
    );
    own_addresses_inside(start, end);
    let entry = header.entry.wrapping_add(bias);
    check_eq(
        G,
        "entry-point",
        "e_entry + bias",
        entry,
        arch::entry_address(),
    );

    let (at, data) = arch::data_probe();
    check(data == arch::DATA_PROBE_VALUES, G, "data-copied", &|s| {
        emit!(
            s,
            ".data probe at ",
            Hex(at),
            " reads ",
            Hex(data[0]),
            " ",
            Hex(data[1]),
            " ..."
        )
    });
    report::passed(out, "image");
    Own { segments, bias }
}

/// This kernel's code and statics lie inside the image range the loader reported.
fn own_addresses_inside(start: u64, end: u64) {
    let (bss_start, bss_end) = arch::bss_probe_range();
    let (tls_area, _) = arch::tls_area_range();
    let kernel_start = self::start as fn(&Spec, EntryState) -> ! as usize as u64;
    let own = [
        ("_start", arch::entry_address()),
        ("kernel::start", kernel_start),
        (".data probe", arch::data_probe().0),
        (".bss probe", bss_start),
        (".bss probe end", bss_end - 1),
        ("TLS area", tls_area),
        ("_end", arch::end_address() - 1),
    ];
    for (what, a) in own {
        check(
            a >= start && a < end,
            Group::Image,
            "own-code-in-image",
            &|s| {
                emit!(
                    s,
                    what,
                    " at ",
                    Hex(a),
                    " is outside ",
                    Hex(start),
                    "-",
                    Hex(end)
                )
            },
        );
    }
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
) {
    const G: Group = Group::Stack;
    let low = entry.stack_low;
    report::fact_range(out, "stack", low, low.wrapping_add(STACK_SIZE));
    check(low.is_multiple_of(SIZE_4K), G, "stack-aligned", &|s| {
        emit!(s, "rsp at entry ", Hex(low), " is not 4 KiB aligned")
    });
    let top = low.saturating_add(STACK_SIZE);
    require(paging::check_identity(
        t,
        cr3,
        "stack-mapped",
        low,
        top,
        true,
    ));
    match scan.result {
        Ok(None) => {}
        Ok(Some((at, word))) => fail(G, "stack-zeroed", &|s| {
            emit!(s, Hex(at), " holds ", Hex(word))
        }),
        Err(va) => unmapped("stack-mapped", va),
    }
    check(scan.end > low + STACK_SIZE / 2, G, "stack-zeroed", &|s| {
        emit!(
            s,
            "only ",
            Hex(scan.end.saturating_sub(low)),
            " bytes could be scanned"
        )
    });
    check(top <= bi.image_start, G, "stack-below-image", &|s| {
        emit!(
            s,
            "stack ",
            Hex(low),
            " is not below the image at ",
            Hex(bi.image_start)
        )
    });
    report::passed(out, "stack");
}

/// The deepest the kernel's own stack went (the zeroed stack keeps the high-water
/// mark): printed, and checked against [`STACK_HEADROOM`].
fn stack_headroom(entry: &EntryState, out: &mut Serial) {
    let low = entry.stack_low;
    let top = low + STACK_SIZE;
    let deepest = match arch::first_nonzero_word(low, top) {
        Ok(Some((at, _))) => at,
        _ => top,
    };
    let used = top - deepest;
    report::fact_hex(out, "stack-used", used);
    check(
        used + STACK_HEADROOM <= STACK_SIZE,
        Group::Stack,
        "stack-headroom",
        &|s| {
            emit!(
                s,
                "the kernel itself used ",
                Hex(used),
                " of the 32 KiB stack"
            )
        },
    );
}

fn bss(bi: &BootInfo, out: &mut Serial) {
    const G: Group = Group::Bss;
    let (start, end) = arch::bss_probe_range();
    check(end <= bi.image_end, G, "bss-zeroed", &|s| {
        emit!(s, "probe ends at ", Hex(end), ", past the image")
    });
    if let Some((i, word)) = arch::bss_probe_first_nonzero() {
        fail(G, "bss-zeroed", &|s| {
            emit!(s, Hex(start + 8 * i as u64), " holds ", Hex(word))
        });
    }
    if let Some(i) = arch::bss_probe_write_read() {
        fail(G, "bss-writable", &|s| {
            emit!(s, Hex(start + 8 * i as u64), " did not keep a write")
        });
    }
    report::passed(out, "bss");
}

// ---------------------------------------------------------------------------------

fn mbi_header(bi: &BootInfo, t: &IdentityTables, cr3: u64, out: &mut Serial) -> mbi::Header {
    const G: Group = Group::Memory;
    let len = mbi::HEADER_LEN as u64;
    check(bi.mbi + len <= bi.image_start, G, "mbi-below-image", &|s| {
        emit!(s, "MBI ", Hex(bi.mbi), " is not below the image")
    });
    let bytes = read(t, cr3, "mbi-mapped", bi.mbi, len);
    let header = mbi::Header::parse(bytes)
        .unwrap_or_else(|| fail(G, "mbi-header", &|s| emit!(s, "short read")));
    report::fact_hex(out, "mbi-flags", header.flags.into());
    header
}

/// Reads the MBI's NUL-terminated command line, page by page so that each page is
/// found mapped before it is read.
fn mbi_cmdline(addr: u64, t: &IdentityTables, cr3: u64) -> &'static [u8] {
    let mut page_end = (addr & !(SIZE_4K - 1)) + SIZE_4K;
    loop {
        let so_far = read(t, cr3, "cmdline-mapped", addr, page_end - addr);
        if let Some(len) = mbi::c_str_len(so_far) {
            return &so_far[..len];
        }
        if page_end - addr >= CMDLINE_MAX {
            fail(Group::Cmdline, "cmdline-terminated", &|s| {
                emit!(
                    s,
                    "no NUL within ",
                    Dec(CMDLINE_MAX),
                    " bytes of ",
                    Hex(addr)
                )
            });
        }
        page_end += SIZE_4K;
    }
}

fn command_line(
    bi: &BootInfo,
    header: &mbi::Header,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) -> &'static [u8] {
    const G: Group = Group::Cmdline;
    let (ptr, len) = (bi.cmdline_ptr, bi.cmdline_len);
    report::fact_hex(out, "cmdline-addr", ptr);
    check(ptr != 0 || len == 0, G, "cmdline-pointer", &|s| {
        emit!(s, "null pointer with length ", Dec(len))
    });
    let ours = read(t, cr3, "cmdline-mapped", ptr, len);
    report::fact_bytes(out, "cmdline", ours);
    emit!(out, "tk: args=");
    for (i, word) in cmdline::app_args(ours).enumerate() {
        emit!(out, if i == 0 { "" } else { " " }, Esc(word));
    }
    emit!(out, "\n");

    let flags = u64::from(header.flags);
    let Some(mbi_addr) = header.cmdline() else {
        fail(G, "mbi-cmdline-flag", &|s| {
            emit!(s, "MBI flags ", Hex(flags), " lack bit 2")
        })
    };
    let theirs = mbi_cmdline(mbi_addr.into(), t, cr3);
    check(ours == theirs, G, "cmdline-matches-mbi", &|s| {
        emit!(
            s,
            "boot info has ",
            Dec(len),
            " bytes, the MBI's is \"",
            Esc(theirs),
            "\""
        )
    });
    check(
        len == 0 || ptr + len <= bi.image_start,
        G,
        "cmdline-below-image",
        &|s| emit!(s, "command line at ", Hex(ptr), " is not below the image"),
    );
    report::passed(out, "cmdline");
    ours
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
) -> Regions {
    const G: Group = Group::Memory;
    let flags = u64::from(header.flags);
    let Some((addr, len)) = header.mmap() else {
        fail(G, "mmap-flag", &|s| {
            emit!(s, "MBI flags ", Hex(flags), " lack bit 6")
        })
    };
    let bytes = read(t, cr3, "mmap-mapped", addr.into(), len.into());
    let mut regions = Regions {
        list: [(0, 0); MAX_REGIONS],
        len: 0,
    };
    for entry in mbi::entries(bytes) {
        let region = entry.unwrap_or_else(|e| {
            let at = match e {
                mbi::MmapError::EntryTooSmall { offset, .. }
                | mbi::MmapError::Truncated { offset } => offset as u64,
            };
            fail(G, "mmap-entries", &|s| {
                emit!(s, "malformed entry at offset ", Dec(at))
            })
        });
        if !region.usable() {
            continue;
        }
        report::fact_range(out, "mem", region.base, region.end());
        check(regions.len < MAX_REGIONS, G, "mmap-entries", &|s| {
            emit!(s, "more than ", Dec(MAX_REGIONS as u64), " usable regions")
        });
        regions.list[regions.len] = (region.base, region.end());
        regions.len += 1;
    }
    check(regions.len > 0, G, "mmap-usable", &|s| {
        emit!(s, "no usable region")
    });
    let (start, end) = (bi.image_start, bi.image_end);
    let fits = regions
        .as_slice()
        .iter()
        .any(|&(s, e)| s <= start && end <= e);
    check(fits, G, "image-in-usable-ram", &|s| {
        emit!(
            s,
            "image ",
            Hex(start),
            "-",
            Hex(end),
            " is not inside one usable region"
        )
    });
    report::passed(out, "memory");
    regions
}

// ---------------------------------------------------------------------------------

fn device_tree(
    bi: &BootInfo,
    cmdline: &[u8],
    regions: &Regions,
    t: &IdentityTables,
    cr3: u64,
    out: &mut Serial,
) {
    const G: Group = Group::Fdt;
    let addr = bi.device_tree;
    let head = read(t, cr3, "fdt-mapped", addr, fdt::HEADER_LEN as u64);
    let header = fdt::Header::parse(head)
        .unwrap_or_else(|e| fail(G, "fdt-header", &|s| emit!(s, e.describe())));
    let size = u64::from(header.totalsize);
    check(
        size >= fdt::HEADER_LEN as u64 && size <= FDT_MAX,
        G,
        "fdt-header",
        &|s| emit!(s, "totalsize ", Hex(size)),
    );
    check(addr + size <= bi.image_start, G, "fdt-below-image", &|s| {
        emit!(
            s,
            "FDT ",
            Hex(addr),
            "+",
            Hex(size),
            " is not below the image"
        )
    });
    let blob = read(t, cr3, "fdt-mapped", addr, size);
    let structure =
        |e: fdt::FdtError| -> ! { fail(G, "fdt-structure", &|s| emit!(s, e.describe())) };
    let tree = fdt::Fdt::new(blob).unwrap_or_else(|e| structure(e));

    let mut found = [(0u64, 0u64); MAX_REGIONS];
    let mut n = 0;
    let count = tree
        .memory(&mut |start, size| {
            let end = start.saturating_add(size);
            report::fact_range(&mut Serial, "fdt-mem", start, end);
            if n < MAX_REGIONS {
                found[n] = (start, end);
                n += 1;
            }
        })
        .unwrap_or_else(|e| structure(e));
    check(count == regions.len, G, "fdt-memory", &|s| {
        emit!(
            s,
            Dec(count as u64),
            " memory nodes for ",
            Dec(regions.len as u64)
        );
        emit!(s, " usable MBI regions")
    });
    // Every usable MBI region must have its own memory node; the order is free.
    let mut used = [false; MAX_REGIONS];
    for &(start, end) in regions.as_slice() {
        let slot = (0..n).find(|&i| !used[i] && found[i] == (start, end));
        let Some(i) = slot else {
            fail(G, "fdt-memory", &|s| {
                emit!(s, "no memory node for ", Hex(start), "-", Hex(end))
            })
        };
        used[i] = true;
    }

    let bootargs = tree
        .child_property(b"chosen", b"bootargs")
        .unwrap_or_else(|e| structure(e))
        .map(fdt::string_value);
    check(
        bootargs == Some(cmdline),
        G,
        "fdt-bootargs",
        &|s| match bootargs {
            Some(b) => emit!(s, "/chosen/bootargs is \"", Esc(b), "\""),
            None => emit!(s, "/chosen/bootargs is missing"),
        },
    );
    report::passed(out, "fdt");
}

// ---------------------------------------------------------------------------------

fn tls(spec: &Spec, bi: &BootInfo, own: &Own, out: &mut Serial) {
    const G: Group = Group::Tls;
    let want = own.segments.tls_fields(own.bias);
    let got = bi.tls;
    check(got == want, G, "tls-fields", &|s| {
        emit!(
            s,
            "boot info has ",
            Hex(got.start),
            ",",
            Hex(got.filesz),
            ","
        );
        emit!(
            s,
            Hex(got.memsz),
            ",",
            Hex(got.align),
            "; PT_TLS says ",
            Hex(want.start),
            ","
        );
        emit!(
            s,
            Hex(want.filesz),
            ",",
            Hex(want.memsz),
            ",",
            Hex(want.align)
        )
    });
    let Some(offsets) = spec.tls else {
        // A kernel without TLS: the fields must be zero, which the comparison with
        // the (absent) PT_TLS above has shown.
        check(own.segments.tls.is_none(), G, "tls-fields", &|s| {
            emit!(s, "a kernel without TLS has PT_TLS")
        });
        report::passed(out, "tls");
        return;
    };
    // The kernel's own TLS is 16 bytes of .tdata and 64 of .tbss (see tls_image!).
    check(got.memsz >= 80 && got.filesz >= 16, G, "tls-fields", &|s| {
        emit!(s, "PT_TLS is smaller than the kernel's TLS")
    });
    let inside = got.start >= bi.image_start && got.start + got.filesz <= bi.image_end;
    check(inside, G, "tls-fields", &|s| {
        emit!(s, "TLS image at ", Hex(got.start), " is outside the image")
    });
    let image =
        arch::mapped_bytes(got.start, got.filesz).unwrap_or_else(|va| unmapped("image-mapped", va));
    let Some(layout) = arch::install_tls(image, got.memsz, got.align) else {
        fail(G, "tls-layout", &|s| {
            emit!(
                s,
                "memsz ",
                Hex(got.memsz),
                " align ",
                Hex(got.align),
                " do not fit"
            )
        })
    };
    report::fact_hex(out, "fs-base", layout.thread_pointer);

    let offsets = offsets();
    let block_len = (layout.thread_pointer - layout.block) as i64;
    let in_block = |o: i64| o >= -block_len && o + 8 <= 0;
    check(
        in_block(offsets.data) && in_block(offsets.bss),
        G,
        "tls-offsets",
        &|s| {
            emit!(
                s,
                "offsets ",
                Hex(offsets.data as u64),
                ", ",
                Hex(offsets.bss as u64)
            );
            emit!(s, " are outside the block")
        },
    );
    check_eq(
        G,
        "tls-fs-self",
        "fs:0",
        arch::fs_read(0),
        layout.thread_pointer,
    );
    let first = arch::fs_read(offsets.data);
    check_eq(
        G,
        "tls-fs-data",
        "first .tdata word via fs",
        first,
        arch::TDATA_WORDS[0],
    );
    let second = arch::fs_read(offsets.data + 8);
    check_eq(
        G,
        "tls-fs-data",
        "second .tdata word via fs",
        second,
        arch::TDATA_WORDS[1],
    );
    check_eq(
        G,
        "tls-fs-bss",
        ".tbss word via fs",
        arch::fs_read(offsets.bss),
        0,
    );
    let pattern = 0x7b55_0000_0000_7b55;
    arch::fs_write(offsets.bss, pattern);
    let landed = arch::tls_area_read(layout.thread_pointer.wrapping_add(offsets.bss as u64));
    check(landed == Some(pattern), G, "tls-fs-write", &|s| {
        emit!(s, "a write through fs did not land in the TLS block")
    });
    report::passed(out, "tls");
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
) {
    let nxe = arch::rdmsr(arch::MSR_EFER) & EFER_NXE != 0;
    let survey = paging::survey(t, cr3);
    report::fact_hex(out, "cr3", cr3);
    emit!(
        out,
        "tk: page-tables=",
        Dec(survey.tables),
        " pages-4k=",
        Dec(survey.pages[0])
    );
    emit!(
        out,
        " pages-2m=",
        Dec(survey.pages[1]),
        " pages-1g=",
        Dec(survey.pages[2]),
        "\n"
    );
    let newer = spec.generation == Generation::Newer;
    require(paging::check_survey(&survey, nxe, newer, newer));

    require(paging::check_unmapped(
        t,
        cr3,
        "page-0-unmapped",
        0,
        SIZE_4K,
    ));
    require(paging::check_unmapped(
        t,
        cr3,
        "ebda-unmapped",
        0x9_f000,
        0xa_0000,
    ));
    let ebda = ebda_page(regions);
    require(paging::check_unmapped(
        t,
        cr3,
        "ebda-unmapped",
        ebda,
        ebda + SIZE_4K,
    ));
    require(paging::check_unmapped(
        t,
        cr3,
        "bios-area-unmapped",
        0xe_0000,
        0x10_0000,
    ));
    require(paging::check_no_large_page_at(
        t,
        cr3,
        "smp-trampoline-4k",
        0x8000,
    ));
    if spec.generation == Generation::Older {
        recursive_view(t, cr3);
        let above = align_up(bi.image_end, SIZE_2M);
        let end = paging::LOWER_HALF_END;
        require(paging::check_unmapped(
            t,
            cr3,
            "nothing-above-image",
            above,
            end,
        ));
    }
    report::passed(out, "paging");
}

/// `PML4[511]` points at the PML4, and reading through 0xffff_ffff_ffff_f000 shows it.
fn recursive_view(t: &IdentityTables, cr3: u64) {
    const G: Group = Group::Paging;
    require(paging::check_recursive_entry(t, cr3));
    let root = cr3 & paging::ADDR_MASK;
    for i in 0..512 {
        let got = arch::mapped_u64(paging::RECURSIVE_PML4 + 8 * i as u64)
            .unwrap_or_else(|va| unmapped("recursive-read", va));
        let want = t.entry(root, i);
        check(got == want, G, "recursive-read", &|s| {
            emit!(s, "entry ", Dec(i as u64), " reads ", Hex(got));
            emit!(
                s,
                " through 0xfffffffffffff000, ",
                Hex(want),
                " in the PML4"
            )
        });
    }
}

// ---------------------------------------------------------------------------------

/// Reports a CPU exception and exits (called by the handlers in [`crate::arch`]).
pub fn exception(info: &arch::ExceptionInfo) -> ! {
    use core::sync::atomic::{AtomicBool, Ordering};
    // A fault while reporting a fault must not loop: the second one exits silently.
    static REPORTING: AtomicBool = AtomicBool::new(false);
    if REPORTING.swap(true, Ordering::Relaxed) {
        arch::exit(Group::Exception.exit_value());
    }
    fail(Group::Exception, "exception", &|s| {
        emit!(
            s,
            "vector ",
            Dec(info.vector),
            " error ",
            Hex(info.error),
            " rip ",
            Hex(info.rip)
        );
        emit!(s, " rsp ", Hex(info.rsp), " cr2 ", Hex(info.cr2))
    })
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
    fail(Group::Panic, "panic", &|s| s.bytes(detail.as_bytes()))
}
