//! The loader's heap: a fixed area inside the loader image, handed out by a bump
//! allocator. The ELF inspection, the FDT and the boot info are allocated here; the
//! last two are leaked on purpose, so they stay, mapped and below the kernel, for the
//! kernel to read.
//!
//! Nothing is ever freed: the loader allocates a few kilobytes once and then jumps
//! away, so a free list would only be code to run (and, under emulation, code to
//! translate, which costs far more than running it). The arithmetic is the library's
//! (`rusty_loader::bump`, host-tested); this file only owns the memory.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use rusty_loader::bump;

const HEAP_SIZE: usize = 512 * 1024;

#[repr(C, align(4096))]
struct HeapArea([u8; HEAP_SIZE]);
#[unsafe(link_section = ".noinit.heap_area")]
static mut HEAP_AREA: HeapArea = HeapArea([0; HEAP_SIZE]);

/// The first free address of the heap area (0 before `init`).
struct BumpAllocator {
    next: AtomicUsize,
}

#[global_allocator]
static ALLOCATOR: BumpAllocator = BumpAllocator {
    next: AtomicUsize::new(0),
};

fn heap_start() -> usize {
    &raw const HEAP_AREA as usize
}

// SAFETY: `alloc` hands out disjoint, suitably aligned blocks of the heap area (the
// bump arithmetic never goes back or past the end), which nothing else uses; the
// loader runs on one CPU with interrupts off, so the plain loads and stores of `next`
// do not race.
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let end = heap_start() + HEAP_SIZE;
        match bump::allocate(self.next.load(Ordering::Relaxed), end, layout) {
            Some((block, next)) => {
                self.next.store(next, Ordering::Relaxed);
                block as *mut u8
            }
            None => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let end = heap_start() + HEAP_SIZE;
        let next = self.next.load(Ordering::Relaxed);
        // The last block grows where it is.
        if let Some(next) = bump::grow_in_place(ptr as usize, layout.size(), new_size, next, end) {
            self.next.store(next, Ordering::Relaxed);
            return ptr;
        }
        // SAFETY: the caller's contract for `realloc` (a valid layout for the new
        // size) makes this one valid too.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid layout, as above.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap
            // (the new one lies above the old, which is not the last).
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

/// The heap area's address range (only its address is taken).
pub fn area() -> rusty_loader::memory::Region {
    let start = heap_start() as u64;
    rusty_loader::memory::Region::new(start, start + HEAP_SIZE as u64)
}

/// Hands the heap area to the allocator. Call once, before any allocation.
pub fn init() {
    ALLOCATOR.next.store(heap_start(), Ordering::Relaxed);
}
