//! CPU exceptions never end in a silent triple fault: an IDT installed first thing
//! sends every exception vector to `exception_handler`, which prints the vector,
//! error code, faulting address and CR2, and exits QEMU with `0x40 + vector`.

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use super::CODE_SELECTOR;

global_asm!(include_str!("exceptions.s"), exception_handler = sym exception_handler);

unsafe extern "C" {
    /// Addresses of the 32 stubs, from exceptions.s.
    static exception_stubs: [u64; 32];
}

/// What the stubs leave on the stack.
#[repr(C)]
pub struct ExceptionFrame {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Interrupt gate, present, DPL 0.
const GATE_INTERRUPT_PRESENT: u64 = 0x8E << 40;

/// Encodes one 16-byte 64-bit interrupt gate for `handler` in `CODE_SELECTOR`.
const fn interrupt_gate(handler: u64) -> [u64; 2] {
    let low = (handler & 0xFFFF)
        | ((CODE_SELECTOR as u64) << 16)
        | GATE_INTERRUPT_PRESENT
        | ((handler >> 16) & 0xFFFF) << 48;
    [low, handler >> 32]
}

#[repr(C, align(16))]
struct Idt([[u64; 2]; 32]);
static mut IDT: Idt = Idt([[0; 2]; 32]);

/// Set once the kernel has been entered: an exception after that is the kernel's
/// (it has not loaded its own IDT yet), and the message says so.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);

/// Fills and loads the IDT. Call once, first thing in Rust.
pub fn install() {
    // SAFETY: runs once on the only CPU before anything else uses the IDT; the
    // stub table is immutable data from exceptions.s.
    unsafe {
        let idt = &raw mut IDT;
        let stubs = &raw const exception_stubs;
        for (gate, &stub) in (*idt).0.iter_mut().zip((*stubs).iter()) {
            *gate = interrupt_gate(stub);
        }
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

extern "C" fn exception_handler(frame: &ExceptionFrame) -> ! {
    let vector = (frame.vector & 31) as u8;
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    let in_kernel = HANDED_OVER.load(Ordering::Relaxed);
    let whose = if in_kernel {
        "in the kernel, after hand-over"
    } else {
        "in the loader"
    };
    // A fault in the middle of writing a frame must not start another one.
    #[cfg(feature = "trace")]
    let can_trace = !crate::logger::frame_in_progress();
    #[cfg(not(feature = "trace"))]
    let can_trace = true;
    if can_trace {
        crate::trace::cpu_exception(vector, frame.error_code, frame.rip, cr2, in_kernel);
    }
    crate::console::fatal_exception(vector, EXCEPTION_NAMES[vector as usize], whose, frame, cr2);
    super::exit_qemu(crate::ExitCode::CpuException.port_value() + vector)
}
