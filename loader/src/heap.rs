//! The loader's heap: a fixed area inside the loader image. The ELF inspection, the
//! FDT and the boot info are allocated here; the last two are leaked on purpose, so
//! they stay, mapped and below the kernel, for the kernel to read.

use linked_list_allocator::LockedHeap;

const HEAP_SIZE: usize = 512 * 1024;

#[repr(C, align(4096))]
struct HeapArea([u8; HEAP_SIZE]);
#[unsafe(link_section = ".noinit.heap_area")]
static mut HEAP_AREA: HeapArea = HeapArea([0; HEAP_SIZE]);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// The heap area's address range (only its address is taken).
pub fn area() -> rusty_loader::layout::Region {
    let start = &raw const HEAP_AREA as u64;
    rusty_loader::layout::Region::new(start, start + HEAP_SIZE as u64)
}

/// Hands the heap area to the allocator. Call once, before any allocation.
pub fn init() {
    // SAFETY: the area is a static used by nothing else, and init runs once.
    unsafe {
        ALLOCATOR
            .lock()
            .init(&raw mut HEAP_AREA as *mut u8, HEAP_SIZE)
    };
}
