//! The loader's own memory and the kernel's, handed out as safe references.
//!
//! The big buffers the loader fills for the kernel (the page-table arena, the
//! kernel's stack) are statics in `.noinit`, inside the loader image. They are handed
//! out once, as `&'static mut`, so the rest of the loader needs no `unsafe` to fill
//! them. The kernel's memory is handed out once too, on the proof that the library's
//! layout planning accepted it ([`Layout`] has no other constructor).
//! [`loader_parts`] names every buffer with its address range, so that the layout
//! planning can check them against the loader image. What the VMM handed over (the
//! MBI, the PVH start info, the module) is read through [`IdentityMemory`].

use core::sync::atomic::{AtomicBool, Ordering};

use rusty_loader::layout::{Layout, LoaderPart};
use rusty_loader::memory::{PhysicalMemory, Region};

use super::{range_of, BOOT_IDENTITY_LIMIT};
use x86_64::structures::paging::PageTable;

/// Physical memory as the loader reads it: the boot tables identity-map the first
/// 4 GiB, which is where a Multiboot loader puts everything (its structures use
/// 32-bit addresses), and where the loader reaches anything a PVH start info points
/// to. The library's readers decide every range they ask for.
pub struct IdentityMemory;

impl PhysicalMemory<'static> for IdentityMemory {
    fn bytes(&self, addr: u64, len: u64) -> Option<&'static [u8]> {
        let end = addr.checked_add(len)?;
        // A slice needs a non-null start, even an empty one; below the limit the
        // range is mapped, and its length fits in an isize.
        if addr == 0 || end > BOOT_IDENTITY_LIMIT {
            return None;
        }
        // SAFETY: `[addr, end)` is non-null and below 4 GiB, hence identity-mapped by
        // the boot tables; bytes need no alignment; the MBI structures and the module
        // are never written while the loader reads them.
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) })
    }
}

/// How many 4 KiB pages the hand-over page tables may use: PML4, PDPT, the table of
/// 4 KiB pages below 2 MiB, and one PD per GiB mapped (up to 61 GiB).
const PAGE_TABLE_ARENA_PAGES: usize = 64;
#[unsafe(link_section = ".noinit.page_table_arena")]
static mut PAGE_TABLE_ARENA: [PageTable; PAGE_TABLE_ARENA_PAGES] =
    [const { PageTable::new() }; PAGE_TABLE_ARENA_PAGES];

/// The kernel's stack: the ABI asks for 32 KiB, zeroed and identity mapped.
pub const KERNEL_STACK_SIZE: usize = rusty_loader::bootinfo::KERNEL_STACK_SIZE as usize;
/// The guard page below the kernel's stack, which the hand-over tables leave
/// unmapped: a kernel that overflows its stack faults there, and the loader's
/// exception handler (on a stack of its own) reports it.
const GUARD_SIZE: usize = 4096;
/// The guard page and the stack above it, in one static so that they are
/// adjacent.
#[repr(C, align(4096))]
struct KernelStack {
    guard: [u8; GUARD_SIZE],
    stack: [u8; KERNEL_STACK_SIZE],
}
#[unsafe(link_section = ".noinit.kernel_stack")]
static mut KERNEL_STACK: KernelStack = KernelStack {
    guard: [0; GUARD_SIZE],
    stack: [0; KERNEL_STACK_SIZE],
};

/// The stack the exception handler runs on (IST 1, see `exceptions.rs`): a fault
/// on a broken or overflowed stack is still reported.
const EXCEPTION_STACK_SIZE: usize = 16 * 1024;
#[repr(C, align(16))]
struct ExceptionStack([u8; EXCEPTION_STACK_SIZE]);
#[unsafe(link_section = ".noinit.exception_stack")]
static mut EXCEPTION_STACK: ExceptionStack = ExceptionStack([0; EXCEPTION_STACK_SIZE]);

/// The top of the exception handler's stack.
pub fn exception_stack_top() -> u64 {
    range_of(&raw const EXCEPTION_STACK).end
}

/// The guard page below the kernel's stack.
pub fn kernel_stack_guard() -> Region {
    let start = &raw const KERNEL_STACK as u64;
    Region::new(start, start + GUARD_SIZE as u64)
}

/// The kernel's stack, without its guard page.
fn kernel_stack_range() -> Region {
    let whole = range_of(&raw const KERNEL_STACK);
    Region::new(whole.start + GUARD_SIZE as u64, whole.end)
}

/// The page tables CR3 points at, when they are the loader's own (the boot tables
/// or the hand-over tables), as the array of tables `paging::translate` walks, and
/// its physical address; `None` for any other tables (the kernel's own), which the
/// loader cannot read safely.
///
/// # Safety
/// Only for the exception handler, which never returns: the shared view of the
/// page-table arena it makes aliases the `&'static mut` handed out by
/// [`take_kernel_buffers`], whose holder (the interrupted code) never runs again.
pub unsafe fn loader_tables_at(cr3: u64) -> Option<(&'static [PageTable], u64)> {
    let boot = super::boot_tables_range();
    let arena = range_of(&raw const PAGE_TABLE_ARENA);
    let table = |region: Region| {
        let tables = (region.len() / 4096) as usize;
        (region.start as *const PageTable, tables)
    };
    let (first, tables) = if cr3 == boot.start {
        table(boot)
    } else if cr3 == arena.start {
        table(arena)
    } else {
        return None;
    };
    // SAFETY: both regions are statics of the loader image made of whole, 4 KiB
    // aligned page tables (`BootTables`, the arena); the caller's contract covers
    // the aliasing.
    Some((unsafe { core::slice::from_raw_parts(first, tables) }, cr3))
}

/// The buffers the loader fills for the kernel.
pub struct KernelBuffers {
    /// Where the hand-over page tables are built (not zeroed: the builder zeroes
    /// each table it takes).
    pub page_table_arena: &'static mut [PageTable],
    /// The kernel's stack (not zeroed yet).
    pub kernel_stack: &'static mut [u8; KERNEL_STACK_SIZE],
}

static BUFFERS_TAKEN: AtomicBool = AtomicBool::new(false);

/// The buffers, the first time; `None` after that.
pub fn take_kernel_buffers() -> Option<KernelBuffers> {
    if BUFFERS_TAKEN.swap(true, Ordering::Relaxed) {
        return None;
    }
    let arena = &raw mut PAGE_TABLE_ARENA;
    let stack = &raw mut KERNEL_STACK;
    // SAFETY: the flag above lets this run once, so these are the only references to
    // the two statics; nothing else in the loader names them (but the exception
    // handler, which never returns, see `loader_tables_at`).
    unsafe {
        Some(KernelBuffers {
            page_table_arena: &mut *arena,
            kernel_stack: &mut (*stack).stack,
        })
    }
}

static KERNEL_MEMORY_TAKEN: AtomicBool = AtomicBool::new(false);

/// The memory the kernel image goes to, the first time; `None` after that.
pub fn take_kernel_memory(layout: &Layout) -> Option<&'static mut [u8]> {
    if KERNEL_MEMORY_TAKEN.swap(true, Ordering::Relaxed) {
        return None;
    }
    let kernel = layout.kernel();
    let len = usize::try_from(kernel.len()).ok()?;
    // SAFETY: only `plan_layout` makes a `Layout`, and it checked that the kernel
    // region is usable RAM below the loader's 4 GiB reach (identity-mapped by the boot
    // tables) that overlaps neither the loader image, the MBI, the boot data nor the
    // module; the flag above hands it out once.
    Some(unsafe { core::slice::from_raw_parts_mut(kernel.start as *mut u8, len) })
}

/// Every buffer of the loader image, named, for the layout's checks, in the order
/// the release build's linker places them (so that the check need not sort them);
/// `heap_area` is the area the allocator owns.
pub fn loader_parts(heap_area: Region) -> [LoaderPart; 7] {
    [
        LoaderPart {
            name: "boot page tables",
            region: super::boot_tables_range(),
        },
        LoaderPart {
            name: "loader stack",
            region: super::loader_stack_range(),
        },
        LoaderPart {
            name: rusty_loader::layout::HEAP_PART,
            region: heap_area,
        },
        LoaderPart {
            name: "kernel stack guard",
            region: kernel_stack_guard(),
        },
        LoaderPart {
            name: "kernel stack",
            region: kernel_stack_range(),
        },
        LoaderPart {
            name: "exception stack",
            region: range_of(&raw const EXCEPTION_STACK),
        },
        LoaderPart {
            name: "page-table arena",
            region: range_of(&raw const PAGE_TABLE_ARENA),
        },
    ]
}
