//! CPU exceptions never end in a silent triple fault: an IDT installed first thing
//! sends every exception vector to `exception_handler`, which gathers the state a
//! diagnosis needs (vector, error code, registers, CR2, CR3 and a bounded stack
//! dump) into an [`Exception`], hands it to the report function the loader
//! registered with [`install`] (the trace event and the text line are the upper
//! layers' business), and exits QEMU with `cpu-exception + vector`.
//!
//! The handler runs on a stack of its own (IST 1 of the loader's TSS), so that an
//! exception on a broken stack, above all a kernel overflowing its 32 KiB stack
//! into the guard page below it, is still reported. It reads the interrupted stack
//! only where the active page tables map it, and only while they are the loader's
//! own, so it never faults on what it reports; a second exception while it runs
//! exits at once.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use rusty_loader::error::ExitCode;
use rusty_loader::wire::{Word, STACK_WORDS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::{PrivilegeLevel, VirtAddr};

use super::{memory, CODE_SELECTOR, GDT, TSS_INDEX};

global_asm!(include_str!("exceptions.s"), exception_handler = sym exception_handler);

unsafe extern "C" {
    /// Addresses of the 32 stubs, from exceptions.s.
    static exception_stubs: [u64; 32];
}

/// What the stubs leave on the stack.
#[repr(C)]
struct ExceptionFrame {
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// A CPU exception, as the handler hands it to the registered report function.
pub struct Exception<'a> {
    pub vector: u8,
    /// The vector's name (`"page fault"`).
    pub name: &'static str,
    pub error_code: u64,
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub cr2: u64,
    pub cr3: u64,
    /// Whether it came after the jump into the kernel (which has not loaded its own
    /// IDT yet), not from the loader.
    pub in_kernel: bool,
    /// Up to `STACK_WORDS` words from `rsp` up, as far as the loader's own page
    /// tables map them (none when the kernel's are active).
    pub stack: &'a [Word],
}

/// What reports an exception; the handler exits QEMU when it returns.
pub type Report = fn(&Exception);

/// The report function [`install`] was given.
static mut REPORT: Report = |_| {};

/// Interrupt gate, present, DPL 0.
const GATE_INTERRUPT_PRESENT: u64 = 0x8E << 40;
/// The gate's IST field: every vector switches to IST 1, the handler's own stack.
const GATE_IST1: u64 = 1 << 32;

/// Encodes one 16-byte 64-bit interrupt gate for `handler` in `CODE_SELECTOR`.
const fn interrupt_gate(handler: u64) -> [u64; 2] {
    let low = (handler & 0xFFFF)
        | ((CODE_SELECTOR as u64) << 16)
        | GATE_IST1
        | GATE_INTERRUPT_PRESENT
        | ((handler >> 16) & 0xFFFF) << 48;
    [low, handler >> 32]
}

/// A present, available 64-bit TSS (system segment type 9), DPL 0.
const TSS_AVAILABLE_PRESENT: u64 = 0x89 << 40;

/// Encodes the 16-byte GDT descriptor of the TSS at `base` (written out here: the
/// general encoder costs the start-up a few hundred instructions).
const fn tss_descriptor(base: u64) -> [u64; 2] {
    let limit = (core::mem::size_of::<TaskStateSegment>() - 1) as u64;
    let low =
        limit | (base & 0xFF_FFFF) << 16 | TSS_AVAILABLE_PRESENT | ((base >> 24) & 0xFF) << 56;
    [low, base >> 32]
}

#[repr(C, align(16))]
struct Idt([[u64; 2]; 32]);
static mut IDT: Idt = Idt([[0; 2]; 32]);

/// The loader's TSS: only its first interrupt stack is used.
static mut TSS: TaskStateSegment = TaskStateSegment::new();

/// Set once the kernel has been entered: an exception after that is the kernel's
/// (it has not loaded its own IDT yet), and the message says so.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);

/// Set when the handler starts: an exception inside it exits at once, with the
/// first exception's code, instead of nesting.
static HANDLING: AtomicBool = AtomicBool::new(false);
static FIRST_VECTOR: AtomicU8 = AtomicU8::new(0);

/// Fills and loads the IDT and the TSS; `report` is called for an exception. Call
/// once, first thing in Rust.
pub fn install(report: Report) {
    // SAFETY: runs once on the only CPU before anything else uses the IDT, the TSS,
    // the GDT's TSS slots or `REPORT` (no exception reaches the handler before `lidt`
    // below); the stub table is immutable data from exceptions.s. The TSS
    // descriptor names the static TSS, whose first interrupt stack is the handler's
    // own; `ltr` loads it from the GDT that start32 loaded.
    unsafe {
        REPORT = report;
        let idt = &raw mut IDT;
        let stubs = &raw const exception_stubs;
        for (gate, &stub) in (*idt).0.iter_mut().zip((*stubs).iter()) {
            *gate = interrupt_gate(stub);
        }
        let tss = &raw mut TSS;
        (*tss).interrupt_stack_table[0] = VirtAddr::new(memory::exception_stack_top());
        let [low, high] = tss_descriptor(tss as u64);
        let gdt = &raw mut GDT;
        (*gdt)[TSS_INDEX] = low;
        (*gdt)[TSS_INDEX + 1] = high;
        load_tss(SegmentSelector::new(
            TSS_INDEX as u16,
            PrivilegeLevel::Ring0,
        ));
        let pointer = DescriptorTablePointer {
            limit: (core::mem::size_of::<Idt>() - 1) as u16,
            base: VirtAddr::new(&raw const IDT as u64),
        };
        x86_64::instructions::tables::lidt(&pointer);
    }
}

/// Marks the jump into the kernel (see `HANDED_OVER`).
pub fn mark_handed_over() {
    HANDED_OVER.store(true, Ordering::Relaxed);
}

const EXCEPTION_NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection fault",
    "page fault",
    "reserved",
    "x87 floating-point",
    "alignment check",
    "machine check",
    "SIMD floating-point",
    "virtualization",
    "control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection",
    "VMM communication",
    "security",
    "reserved",
];

/// The physical address bits of CR3 (the PML4's address; the rest are flags).
const CR3_ADDRESS: u64 = 0x000F_FFFF_FFFF_F000;

fn read_cr3() -> u64 {
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects; the loader runs at CPL 0.
    unsafe { asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    cr3
}

/// Reads up to `STACK_WORDS` words from `rsp` up into `words`, as far as the active
/// page tables map them; returns how many. Reads nothing unless the tables are the
/// loader's own (the kernel's may lie anywhere, unmapped themselves).
fn read_stack(cr3: u64, rsp: u64, words: &mut [Word; STACK_WORDS]) -> usize {
    // SAFETY: called by the exception handler only, which never returns.
    let Some((tables, tables_phys)) = (unsafe { memory::loader_tables_at(cr3 & CR3_ADDRESS) })
    else {
        return 0;
    };
    let count = rusty_loader::paging::readable_words(tables, tables_phys, rsp, STACK_WORDS);
    for (i, word) in words[..count].iter_mut().enumerate() {
        let at = rsp + 8 * i as u64;
        // SAFETY: `readable_words` walked the active tables (CR3 points at them):
        // every byte of the first `count` words is mapped. `rsp` need not be aligned.
        *word = Word(unsafe { core::ptr::read_unaligned(at as *const u64) });
    }
    count
}

extern "C" fn exception_handler(frame: &ExceptionFrame) -> ! {
    let vector = (frame.vector & 31) as u8;
    if HANDLING.swap(true, Ordering::Relaxed) {
        let first = FIRST_VECTOR.load(Ordering::Relaxed);
        super::exit_qemu(ExitCode::CpuException.port_value() + first)
    }
    FIRST_VECTOR.store(vector, Ordering::Relaxed);
    let cr3 = read_cr3();
    let mut words = [Word(0); STACK_WORDS];
    let count = read_stack(cr3, frame.rsp, &mut words);
    // SAFETY: `install` wrote `REPORT` before any exception could come here, and
    // nothing writes it again.
    let report = unsafe { REPORT };
    report(&Exception {
        vector,
        name: EXCEPTION_NAMES[vector as usize],
        error_code: frame.error_code,
        rip: frame.rip,
        rsp: frame.rsp,
        rflags: frame.rflags,
        cr2: x86_64::registers::control::Cr2::read_raw(),
        cr3,
        in_kernel: HANDED_OVER.load(Ordering::Relaxed),
        stack: &words[..count],
    });
    super::exit_qemu(ExitCode::CpuException.port_value() + vector)
}
