//! TLS: the area a kernel's TLS block and TCB are copied into, FS pointed at it,
//! reads and writes through `fs:`, and the macro that gives a kernel its `.tdata`
//! and `.tbss`.

use core::arch::asm;
use core::cell::UnsafeCell;

use super::cpu::{wrmsr, MSR_FS_BASE};
use super::mem_ops::{copy_forward, fill};

/// Bytes set aside for the TLS block and the TCB.
pub const TLS_AREA_SIZE: u64 = 4096;

#[repr(C, align(4096))]
struct TlsArea(UnsafeCell<[u8; TLS_AREA_SIZE as usize]>);

// SAFETY: only the one boot CPU runs these kernels.
unsafe impl Sync for TlsArea {}

static TLS_AREA: TlsArea = TlsArea(UnsafeCell::new([0; TLS_AREA_SIZE as usize]));

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
            w0 = const $crate::tls::TDATA_WORDS[0],
            w1 = const $crate::tls::TDATA_WORDS[1],
        );

        fn tls_offsets() -> $crate::tls::TlsOffsets {
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
            $crate::tls::TlsOffsets { data, bss }
        }
    };
}
