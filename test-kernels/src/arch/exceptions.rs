//! CPU exceptions: an IDT whose 32 handlers report the exception and exit, so that a
//! bad hand-over (an unmapped pointer, a wrong stack) shows up as a line and an exit
//! value instead of a triple fault.
//!
//! What "report" means belongs to the kernel, not to this module: the kernel passes
//! its reporting function to [`install_idt`], and the handlers call it. Before that,
//! or if none was given, a handler exits with the exception group's value alone.

/// What an exception handler saw.
#[derive(Clone, Copy, Debug)]
pub struct ExceptionInfo {
    /// Vector (14 = page fault).
    pub vector: u64,
    /// Error code (0 for vectors without one).
    pub error: u64,
    /// Where it happened.
    pub rip: u64,
    /// Stack pointer at the time.
    pub rsp: u64,
    /// CR2 (meaningful for page faults).
    pub cr2: u64,
}

/// What the handlers call with what they saw; it must not return.
pub type ReportException = fn(&ExceptionInfo) -> !;

#[cfg(feature = "bare-metal")]
pub use idt::install_idt;

#[cfg(feature = "bare-metal")]
mod idt {
    //! The IDT, its assembly stubs and the Rust entry they call.

    use core::arch::{asm, global_asm};
    use core::cell::UnsafeCell;

    use super::{has_error_code, ExceptionInfo, ReportException};
    use crate::arch::cpu::{code_segment, cr2};
    use crate::arch::port::exit;
    use crate::report::Group;

    #[repr(C, align(16))]
    struct Idt(UnsafeCell<[u64; 64]>);

    // SAFETY: only the one boot CPU runs these kernels.
    unsafe impl Sync for Idt {}

    static IDT: Idt = Idt(UnsafeCell::new([0; 64]));

    /// The kernel's reporting function, set once by `install_idt` before the IDT is
    /// loaded.
    struct Report(UnsafeCell<Option<ReportException>>);

    // SAFETY: only the one boot CPU runs these kernels, and the value is written
    // before any handler that reads it can run.
    unsafe impl Sync for Report {}

    static REPORT: Report = Report(UnsafeCell::new(None));

    // Each stub is 16-byte aligned and pushes its vector, so the stub for vector `v` is at
    // `tk_exception_stubs + 16 * v` (no relocated table needed). The common part passes
    // the stack pointer to Rust with the stack realigned for a call.
    global_asm!(
        ".pushsection .text.tk_exceptions,\"ax\",@progbits",
        ".balign 16",
        "tk_exception_stubs:",
        ".irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
        ".balign 16",
        "push \\v",
        "jmp 2f",
        ".endr",
        "2:",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {handler}",
        "ud2",
        ".popsection",
        handler = sym exception_entry,
    );

    /// Installs the IDT with the 32 exception handlers, which report through
    /// `report`.
    pub fn install_idt(report: ReportException) {
        // SAFETY: a single CPU runs this, before the IDT below is loaded, so no
        // handler reads the cell while it is written.
        unsafe { *REPORT.0.get() = Some(report) };
        let stubs: u64;
        // SAFETY: computes the stubs' address; nothing is read.
        unsafe {
            asm!("lea {}, [rip + tk_exception_stubs]", out(reg) stubs, options(nomem, nostack, preserves_flags))
        }
        let cs = u64::from(code_segment());
        let idt = IDT.0.get() as *mut u64;
        for v in 0..32u64 {
            let handler = stubs + 16 * v;
            // A 64-bit interrupt gate: present, DPL 0, type 0xE, no IST.
            let low =
                (handler & 0xffff) | (cs << 16) | (0x8e << 40) | (((handler >> 16) & 0xffff) << 48);
            let high = handler >> 32;
            // SAFETY: in bounds of the IDT static; single CPU, no references into it.
            unsafe {
                core::ptr::write_volatile(idt.add(2 * v as usize), low);
                core::ptr::write_volatile(idt.add(2 * v as usize + 1), high);
            }
        }
        let mut descriptor = [0u16; 5];
        descriptor[0] = (32 * 16 - 1) as u16;
        let base = idt as u64;
        for (i, word) in descriptor[1..].iter_mut().enumerate() {
            *word = (base >> (16 * i)) as u16;
        }
        // SAFETY: the descriptor names the static IDT just filled in; its gates point at
        // the stubs above with the current code segment.
        unsafe {
            asm!("lidt [{}]", in(reg) descriptor.as_ptr(), options(readonly, nostack, preserves_flags))
        }
    }

    extern "C" fn exception_entry(frame: *const u64) -> ! {
        // SAFETY: the stub passes its stack pointer: the vector it pushed, then the CPU's
        // frame (error code if any, rip, cs, rflags, rsp, ss), all readable stack.
        let info = unsafe {
            let vector = *frame;
            let (error, rest) = if has_error_code(vector) {
                (*frame.add(1), frame.add(2))
            } else {
                (0, frame.add(1))
            };
            ExceptionInfo {
                vector,
                error,
                rip: *rest,
                rsp: *rest.add(3),
                cr2: cr2(),
            }
        };
        // SAFETY: written once by `install_idt` before the IDT was loaded; nothing
        // writes it since.
        match unsafe { *REPORT.0.get() } {
            Some(report) => report(&info),
            None => exit(Group::Exception.exit_value()),
        }
    }
}

/// Vectors for which the CPU pushes an error code.
#[cfg(any(test, feature = "bare-metal"))]
fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_vectors() {
        let with: std::vec::Vec<u64> = (0..32).filter(|&v| has_error_code(v)).collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }
}
