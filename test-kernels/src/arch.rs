//! Everything that touches the machine: port I/O (serial, exit), control registers
//! and MSRs, reading memory the loader handed over, the probe statics, TLS through
//! FS, the exception handlers, the C memory functions and the start-up assembly.
//!
//! This is the only module with `unsafe`; every other module forbids it. Memory the
//! loader points at is only read after [`mapped_bytes`] found every page of it present
//! in the live page tables, so a bad pointer becomes a failed check, not a fault.

use core::arch::asm;
use core::cell::UnsafeCell;

use crate::paging::{self, Tables};

// ---------------------------------------------------------------------------------
// Port I/O, serial port, exit.

/// Writes a byte to an I/O port.
fn outb(port: u16, value: u8) {
    // SAFETY: port writes have no memory effects; the kernels only write the UART's
    // registers and the isa-debug-exit port.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Reads a byte from an I/O port.
fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: reading the UART's line status register has no side effects.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// The COM1 UART every Hermit kernel uses (and the boot info must name).
const COM1: u16 = 0x3f8;

/// Sets COM1 to 115200 baud, 8N1, FIFO on, interrupts off.
pub fn serial_init() {
    outb(COM1 + 1, 0x00); // No interrupts: the kernels poll.
    outb(COM1 + 3, 0x80); // DLAB on to set the divisor...
    outb(COM1, 0x01); // ...of 1 (115200 baud),
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // then DLAB off, 8 data bits, no parity, one stop bit.
    outb(COM1 + 2, 0xc7); // FIFO on and cleared.
    outb(COM1 + 4, 0x03); // DTR and RTS.
}

/// The serial port as a byte sink.
pub struct Serial;

impl crate::report::Sink for Serial {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // Wait for the transmit holding register, but not forever: a machine
            // without a UART must still reach the exit port.
            for _ in 0..100_000 {
                if inb(COM1 + 5) & 0x20 != 0 {
                    break;
                }
                core::hint::spin_loop();
            }
            outb(COM1, b);
        }
    }
}

/// Writes `value` to QEMU's isa-debug-exit port (0xf4), then halts forever in case
/// the device is absent.
pub fn exit(value: u32) -> ! {
    // SAFETY: a port write; QEMU ends the process on it when the device exists.
    unsafe {
        asm!("out dx, eax", in("dx") 0xf4u16, in("eax") value, options(nomem, nostack, preserves_flags))
    }
    loop {
        // SAFETY: halting with interrupts off stops this CPU; nothing is left to do.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}

// ---------------------------------------------------------------------------------
// Registers.

/// CR0.
pub fn cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effects at ring 0.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// CR2: the address of the last page fault.
pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects at ring 0.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// CR3: the PML4's physical address plus cache bits.
pub fn cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects at ring 0.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// CR4.
pub fn cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects at ring 0.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// MSR number of EFER.
pub const MSR_EFER: u32 = 0xc000_0080;
/// MSR number of the FS base.
pub const MSR_FS_BASE: u32 = 0xc000_0100;

/// Reads a model-specific register.
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the kernels read only EFER and FS base, which exist on every x86_64
    // CPU, so this cannot fault.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    }
    u64::from(lo) | (u64::from(hi) << 32)
}

/// The current stack pointer.
pub fn stack_pointer() -> u64 {
    let v: u64;
    // SAFETY: copies rsp; no memory is touched.
    unsafe { asm!("mov {}, rsp", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// The code segment selector (for the IDT gates).
#[cfg(feature = "bare-metal")]
fn code_segment() -> u16 {
    let v: u16;
    // SAFETY: copies CS; no memory is touched.
    unsafe { asm!("mov {0:x}, cs", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

// ---------------------------------------------------------------------------------
// Link-time addresses, taken PC-relative so they do not depend on relocations.

/// Where this kernel's ELF header is at run time (the linker's `__ehdr_start`).
pub fn ehdr_address() -> u64 {
    let v: u64;
    // SAFETY: computes an address; nothing is read.
    unsafe {
        asm!("lea {}, [rip + __ehdr_start]", out(reg) v, options(nomem, nostack, preserves_flags))
    }
    v
}

/// Where `.bss` ends at run time (the linker's `_end`).
pub fn end_address() -> u64 {
    let v: u64;
    // SAFETY: computes an address; nothing is read.
    unsafe { asm!("lea {}, [rip + _end]", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Where the entry point `_start` is at run time.
pub fn entry_address() -> u64 {
    let v: u64;
    // SAFETY: computes an address; nothing is read.
    unsafe { asm!("lea {}, [rip + _start]", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

// ---------------------------------------------------------------------------------
// Reading memory.

/// Reads a value through a reference with a volatile load, so the compiler cannot
/// replace it by what it knows the value was at link time. This is how the kernels
/// see whether the loader applied relocations.
pub fn volatile_load<T: Copy>(r: &T) -> T {
    // SAFETY: a reference is valid and aligned for reads.
    unsafe { core::ptr::read_volatile(r) }
}

/// The live page tables, read through their identity mapping.
#[derive(Clone, Copy, Debug)]
pub struct IdentityTables;

impl Tables for IdentityTables {
    fn entry(&self, table: u64, index: usize) -> u64 {
        let addr = (table & paging::ADDR_MASK) + 8 * (index as u64 & 511);
        // SAFETY: `addr` is an aligned u64 inside a page-table page reachable from CR3.
        // The loader's layout identity-maps its tables (the newer kernels require it);
        // if one were not mapped the read faults and the exception handler reports it,
        // so no value is ever made up.
        unsafe { core::ptr::read_volatile(addr as *const u64) }
    }
}

/// `[addr, addr + len)` as bytes, if every page of it is present in the live page
/// tables; otherwise the first address that is not.
pub fn mapped_bytes(addr: u64, len: u64) -> Result<&'static [u8], u64> {
    if len == 0 {
        return Ok(&[]);
    }
    // The last byte, not one past it: a range may end at the top of the address
    // space (the recursive PML4 view does).
    let last = addr.checked_add(len - 1).ok_or(addr)?;
    let cr3 = cr3();
    let mut va = addr & !(paging::SIZE_4K - 1);
    loop {
        let m = paging::translate(&IdentityTables, cr3, va).ok_or(va.max(addr))?;
        match m.virt.checked_add(m.size) {
            Some(next) if next <= last => va = next,
            _ => break,
        }
    }
    let len = usize::try_from(len).map_err(|_| addr)?;
    // SAFETY: every page of the range is mapped, so reading cannot fault. The memory
    // belongs to the loader's hand-over (or to this image), which nothing in these
    // kernels writes to while the slice is alive: they write only their own statics
    // and stack.
    Ok(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
}

/// The aligned u64 at `addr`, if its page is present in the live page tables;
/// otherwise `addr`. Unlike [`mapped_bytes`] this can read the very top of the address
/// space (a slice may not end at 2^64).
pub fn mapped_u64(addr: u64) -> Result<u64, u64> {
    if !addr.is_multiple_of(8) || paging::translate(&IdentityTables, cr3(), addr).is_none() {
        return Err(addr);
    }
    // SAFETY: aligned, and its page is present, so the read cannot fault.
    Ok(unsafe { core::ptr::read_volatile(addr as *const u64) })
}

/// The first non-zero u64 in `[start, end)` (both 8-byte aligned), after checking
/// every page is mapped; `Err` with the first unmapped address.
pub fn first_nonzero_word(start: u64, end: u64) -> Result<Option<(u64, u64)>, u64> {
    let bytes = mapped_bytes(start, end.saturating_sub(start))?;
    let mut at = start;
    for chunk in bytes.chunks_exact(8) {
        // SAFETY: the chunk lies in the mapped range; a volatile read keeps the
        // compiler from assuming anything about memory it did not write.
        let word = unsafe { core::ptr::read_volatile(chunk.as_ptr() as *const u64) };
        if word != 0 {
            return Ok(Some((at, word)));
        }
        at += 8;
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------
// Probe statics: what `.bss` and `.data` should hold if the loader did its job.

/// Words in the `.bss` probe (64 KiB).
pub const BSS_PROBE_WORDS: usize = 8192;

#[repr(C, align(4096))]
struct BssProbe(UnsafeCell<[u64; BSS_PROBE_WORDS]>);

// SAFETY: only the one boot CPU runs these kernels.
unsafe impl Sync for BssProbe {}

/// A zero-initialised static: it lands in `.bss`, which the loader must zero.
static BSS_PROBE: BssProbe = BssProbe(UnsafeCell::new([0; BSS_PROBE_WORDS]));

/// The `.bss` probe's address range.
pub fn bss_probe_range() -> (u64, u64) {
    let start = BSS_PROBE.0.get() as u64;
    (start, start + (BSS_PROBE_WORDS * 8) as u64)
}

/// The first non-zero word of the `.bss` probe (index, value).
pub fn bss_probe_first_nonzero() -> Option<(usize, u64)> {
    let base = BSS_PROBE.0.get() as *const u64;
    (0..BSS_PROBE_WORDS).find_map(|i| {
        // SAFETY: `i` is in bounds of the probe array; volatile, so that the compiler
        // cannot use its knowledge that the static starts out zero.
        let w = unsafe { core::ptr::read_volatile(base.add(i)) };
        (w != 0).then_some((i, w))
    })
}

/// Writes a pattern to one word per page of the `.bss` probe and reads it back:
/// `.bss` must be writable memory, not a read-only zero page.
pub fn bss_probe_write_read() -> Option<usize> {
    let base = BSS_PROBE.0.get() as *mut u64;
    (0..BSS_PROBE_WORDS).step_by(512).find(|&i| {
        let pattern = 0xb55b_0000_0000_0000 | i as u64;
        // SAFETY: in bounds; single CPU, and no reference to the array exists.
        unsafe {
            core::ptr::write_volatile(base.add(i), pattern);
            core::ptr::read_volatile(base.add(i)) != pattern
        }
    })
}

/// What the `.data` probe holds in the file.
pub const DATA_PROBE_VALUES: [u64; 4] = [
    0x0123_4567_89ab_cdef,
    0xfedc_ba98_7654_3210,
    0x5a5a_a5a5_0ff0_f00f,
    0x1,
];

struct DataProbe(UnsafeCell<[u64; 4]>);

// SAFETY: only the one boot CPU runs these kernels.
unsafe impl Sync for DataProbe {}

/// An initialised mutable static: it lands in `.data`, which the loader must copy.
static DATA_PROBE: DataProbe = DataProbe(UnsafeCell::new(DATA_PROBE_VALUES));

/// The `.data` probe's address and its contents now.
pub fn data_probe() -> (u64, [u64; 4]) {
    let p = DATA_PROBE.0.get();
    // SAFETY: reading the whole static; volatile so the compiler does not substitute
    // the initialiser.
    (p as u64, unsafe { core::ptr::read_volatile(p) })
}

// ---------------------------------------------------------------------------------
// TLS.

/// Bytes set aside for the TLS block and the TCB.
pub const TLS_AREA_SIZE: u64 = 4096;

#[repr(C, align(4096))]
struct TlsArea(UnsafeCell<[u8; TLS_AREA_SIZE as usize]>);

// SAFETY: only the one boot CPU runs these kernels.
unsafe impl Sync for TlsArea {}

static TLS_AREA: TlsArea = TlsArea(UnsafeCell::new([0; TLS_AREA_SIZE as usize]));

/// The link-time `fs:` offsets of a kernel's TLS variables (see [`crate::tls_image!`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsOffsets {
    /// Offset of the first `.tdata` word, which holds [`TDATA_WORDS`]`[0]`.
    pub data: i64,
    /// Offset of the 64-byte `.tbss` variable.
    pub bss: i64,
}

/// The two words of `.tdata` the kernels with TLS carry.
pub const TDATA_WORDS: [u64; 2] = [0x544c_535f_4441_5441, !0x544c_535f_4441_5441];

/// Copies the TLS image into the TLS area as variant II lays it out, writes the TCB's
/// self pointer and points FS at it. Returns the layout, or `None` if the TLS does
/// not fit in the area or its alignment is not a power of two.
pub fn install_tls(image: &[u8], memsz: u64, align: u64) -> Option<crate::tls::Layout> {
    let area = TLS_AREA.0.get() as u64;
    let layout = crate::tls::layout(area, TLS_AREA_SIZE, memsz, align)?;
    if image.len() as u64 > memsz {
        return None;
    }
    let offset = (layout.block - area) as usize;
    let base = TLS_AREA.0.get() as *mut u8;
    // SAFETY: `tls::layout` keeps the block and the TCB inside the area; the image is
    // at most `memsz` bytes and does not overlap the area (it is the loader's copy of
    // `.tdata`); a single CPU runs this and no reference into the area exists.
    unsafe {
        copy_forward(base.add(offset), image.as_ptr(), image.len());
        fill(
            base.add(offset + image.len()),
            0,
            (memsz - image.len() as u64) as usize,
        );
        core::ptr::write_volatile(layout.thread_pointer as *mut u64, layout.thread_pointer);
        wrmsr(MSR_FS_BASE, layout.thread_pointer);
    }
    Some(layout)
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist and the value must be valid for it.
unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the MSR and value are valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nostack, preserves_flags))
    }
}

/// Reads the u64 at `fs:offset`. Only called after [`install_tls`] succeeded, with
/// offsets from the linker that fall inside the TLS block or at the TCB.
pub fn fs_read(offset: i64) -> u64 {
    let v: u64;
    // SAFETY: FS points at the TCB in the TLS area and `offset` stays inside the area
    // (the kernel checks the offsets against the layout before calling).
    unsafe {
        asm!("mov {}, qword ptr fs:[{}]", out(reg) v, in(reg) offset, options(nostack, preserves_flags, readonly))
    }
    v
}

/// Writes the u64 at `fs:offset` (same rules as [`fs_read`]).
pub fn fs_write(offset: i64, value: u64) {
    // SAFETY: as for `fs_read`; the target is a `.tbss` variable of the TLS block.
    unsafe {
        asm!("mov qword ptr fs:[{}], {}", in(reg) offset, in(reg) value, options(nostack, preserves_flags))
    }
}

/// The TLS area's range.
pub fn tls_area_range() -> (u64, u64) {
    let start = TLS_AREA.0.get() as u64;
    (start, start + TLS_AREA_SIZE)
}

/// Reads back a u64 of the TLS area by its address (to see an `fs:` write land).
pub fn tls_area_read(addr: u64) -> Option<u64> {
    let (start, end) = tls_area_range();
    if addr < start || addr + 8 > end || !addr.is_multiple_of(8) {
        return None;
    }
    // SAFETY: an aligned u64 inside the TLS area static.
    Some(unsafe { core::ptr::read_volatile(addr as *const u64) })
}

/// Emits the `.tdata`/`.tbss` of a kernel with TLS and a function
/// `tls_offsets() -> TlsOffsets` that returns their link-time `fs:` offsets.
///
/// Stable Rust has no `#[thread_local]`, so the sections come from assembly with the
/// TLS flag, which is what makes the linker emit `PT_TLS`. `.tdata` is aligned to 32
/// so that the kernel's TLS alignment differs from the default 8.
#[macro_export]
macro_rules! tls_image {
    () => {
        ::core::arch::global_asm!(
            ".pushsection .tdata.tk_tls,\"awT\",@progbits",
            ".p2align 5",
            "tk_tls_data:",
            ".quad {w0}",
            ".quad {w1}",
            ".popsection",
            ".pushsection .tbss.tk_tls,\"awT\",@nobits",
            ".p2align 3",
            "tk_tls_bss:",
            ".zero 64",
            ".popsection",
            w0 = const $crate::arch::TDATA_WORDS[0],
            w1 = const $crate::arch::TDATA_WORDS[1],
        );

        fn tls_offsets() -> $crate::arch::TlsOffsets {
            let (data, bss): (i64, i64);
            // SAFETY: loads two link-time constants (local-exec TLS offsets); no
            // memory is touched.
            unsafe {
                ::core::arch::asm!(
                    "mov {0}, offset tk_tls_data@tpoff",
                    "mov {1}, offset tk_tls_bss@tpoff",
                    out(reg) data,
                    out(reg) bss,
                    options(nomem, nostack, preserves_flags),
                );
            }
            $crate::arch::TlsOffsets { data, bss }
        }
    };
}

// ---------------------------------------------------------------------------------
// CPU exceptions: an IDT whose 32 handlers report the exception and exit, so that a
// bad hand-over (an unmapped pointer, a wrong stack) shows up as a line and an exit
// value instead of a triple fault.

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

#[cfg(feature = "bare-metal")]
pub use exceptions::install_idt;

#[cfg(feature = "bare-metal")]
mod exceptions {
    //! The IDT and its handlers (only in the kernels: they report through `kernel`).

    use super::*;
    use core::arch::global_asm;

    #[repr(C, align(16))]
    struct Idt(UnsafeCell<[u64; 64]>);

    // SAFETY: only the one boot CPU runs these kernels.
    unsafe impl Sync for Idt {}

    static IDT: Idt = Idt(UnsafeCell::new([0; 64]));

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

    /// Installs the IDT with the 32 exception handlers.
    pub fn install_idt() {
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
        crate::kernel::exception(&info)
    }
}

/// Vectors for which the CPU pushes an error code.
#[cfg(any(test, feature = "bare-metal"))]
fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

// ---------------------------------------------------------------------------------
// Memory functions. A freestanding binary must provide memcpy & co. (the compiler
// emits calls to them); `rep movsb`/`rep stosb` are short and fast on current CPUs,
// and being assembly they cannot be turned back into calls to themselves.

/// Copies `n` bytes from `src` to `dst`, lowest address first.
///
/// # Safety
/// Both ranges must be valid; if they overlap, `dst` must not lie inside `src`'s range
/// above `src`.
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller guarantees the ranges; DF is clear per the ABI.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
            options(nostack, preserves_flags))
    }
}

/// Copies `n` bytes from `src` to `dst`, highest address first (for overlapping moves
/// to a higher address).
///
/// # Safety
/// Both ranges must be valid.
pub unsafe fn copy_backward(dst: *mut u8, src: *const u8, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: the caller guarantees the ranges; the direction flag is set only for
    // this one instruction and cleared again, as the ABI requires.
    unsafe {
        asm!("std", "rep movsb", "cld",
            inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
            options(nostack))
    }
}

/// Sets `n` bytes at `dst` to `value`.
///
/// # Safety
/// The range must be valid for writes.
pub unsafe fn fill(dst: *mut u8, value: u8, n: usize) {
    // SAFETY: the caller guarantees the range; DF is clear per the ABI.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") value,
            options(nostack, preserves_flags))
    }
}

/// Compares `n` bytes: 0 if equal, else the difference of the first differing bytes.
///
/// # Safety
/// Both ranges must be valid for reads.
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 {
        return 0;
    }
    let (a_end, b_end): (*const u8, *const u8);
    // SAFETY: the caller guarantees the ranges. `repe cmpsb` stops after the first
    // differing pair (or after `n` bytes), so the last pair compared is just below
    // where rsi and rdi stop.
    unsafe {
        asm!("repe cmpsb", inout("rcx") n => _, inout("rsi") a => a_end, inout("rdi") b => b_end,
            options(nostack, readonly));
        i32::from(*a_end.sub(1)) - i32::from(*b_end.sub(1))
    }
}

#[cfg(all(feature = "bare-metal", not(test)))]
mod c_symbols {
    //! The C names the compiler calls.

    /// # Safety
    /// As C's `memcpy`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: as C's memcpy: valid, non-overlapping ranges.
        unsafe { super::copy_forward(dst, src, n) };
        dst
    }

    /// # Safety
    /// As C's `memmove`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // A destination inside the source's range above its start would be overwritten
        // before it is read by a forward copy: copy backwards then.
        if (dst as usize).wrapping_sub(src as usize) < n {
            // SAFETY: as C's memmove: valid ranges.
            unsafe { super::copy_backward(dst, src, n) };
        } else {
            // SAFETY: as C's memmove: valid ranges.
            unsafe { super::copy_forward(dst, src, n) };
        }
        dst
    }

    /// # Safety
    /// As C's `memset`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
        // SAFETY: as C's memset: a valid range.
        unsafe { super::fill(dst, value as u8, n) };
        dst
    }

    /// # Safety
    /// As C's `memcmp`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: as C's memcmp: valid ranges.
        unsafe { super::compare(a, b, n) }
    }

    /// # Safety
    /// As C's `bcmp`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        // SAFETY: as C's bcmp: valid ranges.
        unsafe { super::compare(a, b, n) }
    }

    /// The precompiled `core` is built to unwind and its unwind tables name this
    /// personality routine; with `panic = abort` nothing ever unwinds, so it is never
    /// called, but the linker needs the symbol.
    #[unsafe(no_mangle)]
    pub extern "C" fn rust_eh_personality() {}

    /// Like the personality routine: referenced by `core`'s landing pads, never
    /// reached with `panic = abort`; halting is the safe answer if it ever were.
    #[unsafe(no_mangle)]
    pub extern "C" fn _Unwind_Resume() -> ! {
        super::exit(crate::report::Group::Panic.exit_value())
    }
}

// ---------------------------------------------------------------------------------
// Start-up.

/// The facts the entry stub saves before any Rust code runs.
#[derive(Clone, Copy, Debug)]
pub struct EntryState {
    /// `rdi`: the boot info address.
    pub boot_info: u64,
    /// `rsi`: the CPU number (0 on the boot CPU).
    pub rsi: u64,
    /// `rsp` at entry: the stack's lowest address.
    pub stack_low: u64,
    /// RFLAGS at entry.
    pub rflags: u64,
}

/// Emits the entry point `_start` of a kernel described by the `kernel::Spec`
/// given, like Hermit's own: move rsp from the stack's lowest address (what the
/// loader passes) to its top, clear rbp, then call Rust. Before that it saves the
/// loader's rsp and RFLAGS (for the checks), checks that relocations were applied at
/// all (reporting it with port I/O alone if not), and enables SSE, which the
/// precompiled `core` uses and which the loader need not have turned on.
#[macro_export]
macro_rules! entry_point {
    ($spec:expr) => {
        ::core::arch::global_asm!(
            ".pushsection .text._start,\"ax\",@progbits",
            ".globl _start",
            ".type _start,@function",
            "_start:",
            // rdi (boot info) and rsi (CPU number) stay as they are: arguments 1 and 2.
            "mov rdx, rsp",
            "add rsp, 0x8000 - 0x10",
            // Hermit does not realign; the kernels do, so that a misaligned stack
            // from the loader becomes a failed check rather than a fault in Rust.
            "and rsp, -16",
            "xor ebp, ebp",
            "pushfq",
            "pop rcx",
            // Before any call: Rust code calls through the GOT (rustc's GOTPCREL
            // relocations are not relaxed to direct calls), so without relocations the
            // first call would jump to nowhere. A slot holding `_start` (a RELATIVE
            // relocation in the PIE) must hold where `_start` really is.
            "lea rax, [rip + _start]",
            "cmp rax, qword ptr [rip + tk_relocation_probe]",
            "jne tk_relocations_missing",
            // CR0: clear EM, set MP; CR4: set OSFXSR and OSXMMEXCPT.
            "mov rax, cr0",
            "and rax, ~(1 << 2)",
            "or rax, 1 << 1",
            "mov cr0, rax",
            "mov rax, cr4",
            "or rax, 3 << 9",
            "mov cr4, rax",
            "call {main}",
            "2:",
            "cli",
            "hlt",
            "jmp 2b",
            // Report the missing relocations with nothing but port I/O: print the
            // message by polling the UART, then exit with the relocation group's value.
            "tk_relocations_missing:",
            "lea rsi, [rip + tk_relocations_message]",
            "3:",
            "movzx ecx, byte ptr [rsi]",
            "test ecx, ecx",
            "jz 5f",
            "4:",
            "mov dx, 0x3fd",
            "in al, dx",
            "test al, 0x20",
            "jz 4b",
            "mov dx, 0x3f8",
            "mov eax, ecx",
            "out dx, al",
            "inc rsi",
            "jmp 3b",
            "5:",
            "mov dx, 0xf4",
            "mov eax, {relocation_exit}",
            "out dx, eax",
            "jmp 2b",
            ".size _start, . - _start",
            ".popsection",
            ".pushsection .data.rel.ro.tk_relocation_probe,\"aw\",@progbits",
            ".balign 8",
            "tk_relocation_probe:",
            ".quad _start",
            ".popsection",
            ".pushsection .rodata.tk_relocations_message,\"a\",@progbits",
            "tk_relocations_message:",
            ".asciz \"tk: FAIL relocated-early: the R_X86_64_RELATIVE slot holding _start was not relocated\\n\"",
            ".popsection",
            main = sym __tk_rust_start,
            relocation_exit = const $crate::report::Group::Relocation.exit_value(),
        );

        extern "C" fn __tk_rust_start(boot_info: u64, rsi: u64, stack_low: u64, rflags: u64) -> ! {
            $crate::kernel::start(
                &$spec,
                $crate::arch::EntryState { boot_info, rsi, stack_low, rflags },
            )
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_fills_and_compares() {
        let src: [u8; 37] = core::array::from_fn(|i| i as u8 * 7);
        let mut dst = [0u8; 37];
        // SAFETY: both arrays are 37 bytes.
        unsafe { copy_forward(dst.as_mut_ptr(), src.as_ptr(), 37) };
        assert_eq!(dst, src);
        // SAFETY: in bounds.
        unsafe { fill(dst.as_mut_ptr().add(3), 0xaa, 10) };
        assert!(dst[3..13].iter().all(|&b| b == 0xaa));
        assert_eq!(dst[13], src[13]);
        // SAFETY: in bounds; zero-length calls touch nothing.
        unsafe {
            assert_eq!(compare(src.as_ptr(), src.as_ptr(), 37), 0);
            assert_eq!(compare(src.as_ptr(), dst.as_ptr(), 3), 0);
            assert!(compare(src.as_ptr(), dst.as_ptr(), 37) < 0);
            assert!(compare(dst.as_ptr(), src.as_ptr(), 37) > 0);
            assert_eq!(compare(dst.as_ptr(), src.as_ptr(), 0), 0);
            copy_backward(dst.as_mut_ptr(), src.as_ptr(), 0);
            fill(dst.as_mut_ptr(), 0, 0);
        }
        // The first difference decides, not the later ones.
        let a = [1u8, 2, 0xff];
        let b = [1u8, 3, 0x00];
        // SAFETY: three bytes each.
        assert_eq!(unsafe { compare(a.as_ptr(), b.as_ptr(), 3) }, -1);
    }

    #[test]
    fn overlapping_moves() {
        let mut buf: [u8; 16] = core::array::from_fn(|i| i as u8);
        // Move up by 3: needs the backward copy.
        // SAFETY: both ranges lie inside the 16-byte buffer.
        unsafe { copy_backward(buf.as_mut_ptr().add(3), buf.as_ptr(), 10) };
        assert_eq!(&buf[3..13], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let mut buf: [u8; 16] = core::array::from_fn(|i| i as u8);
        // Move down by 3: the forward copy is right.
        // SAFETY: both ranges lie inside the 16-byte buffer.
        unsafe { copy_forward(buf.as_mut_ptr(), buf.as_ptr().add(3), 10) };
        assert_eq!(&buf[..10], &[3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }

    #[test]
    fn error_code_vectors() {
        let with: std::vec::Vec<u64> = (0..32).filter(|&v| has_error_code(v)).collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }

    #[test]
    fn volatile_load_reads_the_value() {
        static X: u64 = 42;
        assert_eq!(volatile_load(&X), 42);
    }
}
