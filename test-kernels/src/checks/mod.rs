//! The run of a test kernel: every check group in order, each in its own file,
//! each printing its facts, the first failure ending the run with its group's exit
//! value.
//!
//! Order matters. Checks that need nothing from the loader's memory come first, and
//! relocations are checked before anything that goes through a relocated pointer.
//! Every pointer the loader handed over is first found mapped in the live page
//! tables and only then read. Output is formatted without `core::fmt` (see
//! [`crate::report`]); only the panic handler uses it.
//!
//! The groups share one [`Context`]: what the kernel is, how it was entered, the
//! live page tables, the serial port and the boot info. What one group finds and a
//! later one needs (the kernel's own program headers, the MBI header, the command
//! line, the usable memory) is returned and passed on explicitly, so the order of
//! [`start`] shows every dependency.
//!
//! A failed check prints its line and exits on the spot instead of returning an
//! error up the call chain ([`verdict`]): the kernel must fit in the loader's 32 KiB
//! stack in unoptimised builds too, where every `Result` a call site holds takes
//! stack of its own. The detail is written by a closure, which runs only when the
//! check fails.

#![forbid(unsafe_code)]

mod acpi;
mod boot_info;
mod bss;
pub mod bulk;
mod command_line;
mod cpu;
mod device_tree;
pub mod frequency;
mod image;
mod mbi;
mod memory;
mod page_tables;
pub mod relocations;
mod stack;
mod tls;
pub mod verdict;

use crate::arch::entry::EntryState;
use crate::arch::memory::{mapped_bytes, IdentityTables};
use crate::arch::serial::Serial;
use crate::arch::{cpu as registers, exceptions, port, serial};
use crate::bootinfo::BootInfo;
use crate::report::{self, EXIT_SUCCESS};
use crate::tls::TlsOffsets;
use crate::{emit, hermit_log, paging};

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
    /// The application's first line, for humans (the demo app's greeting), after
    /// the `kernel=` fact and the kernel log ([`crate::hermit_log`]).
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
    /// A group only this kernel runs, after the common ones (before the stack
    /// headroom is measured, so that it counts): [`bulk::run`] for big-dyn,
    /// [`frequency::run`] for calibrating.
    pub extra_group: Option<fn(&mut Context)>,
}

/// Bytes of the boot stack the loader provides.
pub const STACK_SIZE: u64 = 0x8000;

/// What every check group after the boot info shares.
pub struct Context {
    /// What this kernel is and checks.
    pub spec: &'static Spec,
    /// The registers the entry stub saved.
    pub entry: EntryState,
    /// The live page tables.
    pub tables: IdentityTables,
    /// CR3 as the loader left it.
    pub cr3: u64,
    /// Where facts go ([`verdict`] writes failures itself).
    pub out: Serial,
    /// The boot info, as checked by the `bootinfo` group.
    pub boot_info: BootInfo,
}

impl Context {
    /// Reads `[addr, addr + len)` after checking it is identity-mapped (failing
    /// `check` if not).
    fn read(&self, check: &'static str, addr: u64, len: u64) -> &'static [u8] {
        read_mapped(&self.tables, self.cr3, check, addr, len)
    }
}

/// Reads `[addr, addr + len)` after checking it is identity-mapped in the tables at
/// `cr3` (failing `check` if not). For the boot info, which is read before there is
/// a [`Context`]; later groups use [`Context::read`].
fn read_mapped(
    tables: &IdentityTables,
    cr3: u64,
    check: &'static str,
    addr: u64,
    len: u64,
) -> &'static [u8] {
    verdict::require(paging::check_identity(
        tables,
        cr3,
        check,
        addr,
        addr.saturating_add(len),
        false,
    ));
    mapped_bytes(addr, len).unwrap_or_else(|va| verdict::unmapped(check, va))
}

/// Runs a kernel: called by the entry stub of [`crate::entry_point!`].
pub fn start(spec: &'static Spec, entry: EntryState) -> ! {
    serial::serial_init();
    exceptions::install_idt(verdict::report_exception);
    let scan = stack::scan(entry.stack_low);
    let out = &mut Serial;
    report::fact_bytes(out, "kernel", spec.name.as_bytes());
    // A kernel log of this generation's shape, then the application's first line.
    hermit_log::write(
        out,
        match spec.generation {
            Generation::Newer => hermit_log::NEWER,
            Generation::Older => hermit_log::OLDER,
        },
    );
    if let Some(greeting) = spec.greeting {
        emit!(out, greeting, "\n");
    }
    cpu::run(&entry, out);
    relocations::run(out);
    let boot_info = boot_info::run(spec, &entry, out);
    let ctx = &mut Context {
        spec,
        entry,
        tables: IdentityTables,
        cr3: registers::cr3(),
        out: Serial,
        boot_info,
    };
    let own = image::run(ctx);
    stack::run(ctx, &scan);
    bss::run(ctx);
    let header = mbi::read_header(ctx);
    let cmdline = command_line::run(ctx, &header);
    let regions = memory::run(ctx, &header);
    // Entry version 2 has no boot-info field for a device tree (kernel 0.6.0 reads
    // the memory map from the MBI alone).
    if spec.entry_version >= 3 {
        device_tree::run(ctx, cmdline, &regions);
    }
    tls::run(ctx, &own);
    page_tables::run(ctx, &regions);
    acpi::run(ctx);
    if let Some(extra_group) = spec.extra_group {
        extra_group(ctx);
    }
    stack::check_headroom(ctx);
    report::ok(&mut ctx.out);
    port::exit(EXIT_SUCCESS)
}

/// Rounds `v` up to a multiple of `align` (a power of two), saturating.
fn align_up(v: u64, align: u64) -> u64 {
    v.saturating_add(align - 1) & !(align - 1)
}

/// Emits a kernel's entry point `_start` ([`crate::start_stub!`]), which runs the
/// checks of the [`Spec`] given ([`start`]).
#[macro_export]
macro_rules! entry_point {
    ($spec:expr) => {
        $crate::start_stub!(__tk_rust_start);

        extern "C" fn __tk_rust_start(boot_info: u64, rsi: u64, stack_low: u64, rflags: u64) -> ! {
            $crate::checks::start(
                &$spec,
                $crate::arch::entry::EntryState {
                    boot_info,
                    rsi,
                    stack_low,
                    rflags,
                },
            )
        }
    };
}
