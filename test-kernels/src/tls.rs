//! Where to put a thread's TLS block and thread pointer on x86_64 (TLS variant II),
//! so that the link-time `fs:`-relative offsets of the kernel's TLS variables land
//! in its copy of the TLS image.
//!
//! In variant II the TLS block ends at the thread pointer (FS base), which is aligned
//! to the TLS alignment; the linker gives each variable the offset
//! `its offset in the image - align_up(memsz, align)`. The thread control block (TCB)
//! starts at the thread pointer and its first word points to itself, which is what
//! `fs:0` reads.

#![forbid(unsafe_code)]

/// Where the TLS block and the thread pointer go inside a scratch area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// First byte of the TLS block: copy `filesz` bytes of the image here, then zero
    /// up to `memsz`.
    pub block: u64,
    /// The thread pointer (FS base): the TCB's address.
    pub thread_pointer: u64,
}

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

/// Bytes of TCB the kernels set up: the self pointer.
pub const TCB_SIZE: u64 = 8;

/// Lays out a TLS block of `memsz` bytes with alignment `align` inside
/// `[area, area + area_len)`, followed by the TCB. `None` if the alignment is not a
/// power of two or it does not fit.
pub fn layout(area: u64, area_len: u64, memsz: u64, align: u64) -> Option<Layout> {
    // The TCB's self pointer needs 8-byte alignment whatever the TLS asks for; an
    // alignment of 0 means none.
    let align = align.max(8);
    if !align.is_power_of_two() {
        return None;
    }
    let block_len = memsz.checked_add(align - 1)? & !(align - 1);
    let thread_pointer = area.checked_add(block_len)?.checked_add(align - 1)? & !(align - 1);
    let end = thread_pointer.checked_add(TCB_SIZE)?;
    (end <= area.checked_add(area_len)?).then_some(Layout {
        block: thread_pointer - block_len,
        thread_pointer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ends_at_an_aligned_thread_pointer() {
        let l = layout(0x1000, 0x1000, 0x48, 32).unwrap();
        assert_eq!(l.thread_pointer % 32, 0);
        // align_up(0x48, 32) = 0x60 bytes of block right below the thread pointer.
        assert_eq!(l.thread_pointer - l.block, 0x60);
        assert!(l.block >= 0x1000);
        assert_eq!(
            l,
            Layout {
                block: 0x1000,
                thread_pointer: 0x1060
            }
        );
    }

    #[test]
    fn unaligned_areas_and_small_alignments() {
        let l = layout(0x1004, 0x100, 0x10, 16).unwrap();
        assert_eq!(
            l,
            Layout {
                block: 0x1010,
                thread_pointer: 0x1020
            }
        );
        let l = layout(0x1000, 0x100, 5, 1).unwrap();
        assert_eq!(
            l,
            Layout {
                block: 0x1000,
                thread_pointer: 0x1008
            }
        );
        let l = layout(0x1000, 0x100, 0, 0).unwrap();
        assert_eq!(l.thread_pointer, 0x1000);
    }

    #[test]
    fn refuses_what_does_not_fit_or_is_not_a_power_of_two() {
        assert_eq!(layout(0x1000, 0x60, 0x48, 32), None);
        assert!(layout(0x1000, 0x68, 0x48, 32).is_some());
        assert_eq!(layout(0x1000, 0x1000, 0x10, 24), None);
        assert_eq!(layout(u64::MAX - 8, 0x100, 0x10, 16), None);
    }
}
