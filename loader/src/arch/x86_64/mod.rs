//! Everything that touches the x86_64 machine directly: the Multiboot and PVH entries
//! and the switch to long mode, the UEFI entry and the take-over from the firmware,
//! the GDT, exception handling, port I/O, the TSC, the freestanding memory functions and the jump into the kernel. The rest of the
//! loader is safe Rust on top of these.

pub mod exceptions;
pub mod freq;
pub mod mem;
mod mem_ops;
pub mod memory;
mod port;
pub mod uefi;

use core::arch::global_asm;

use rusty_loader::layout::HandOverTables;
use x86_64::structures::gdt::DescriptorFlags;

/// The Multiboot 1 header magic.
const MULTIBOOT_MAGIC: u32 = 0x1BAD_B002;
/// Header flags: bit 0 aligns modules on pages, bit 1 asks for the memory map.
const MULTIBOOT_FLAGS: u32 = (1 << 0) | (1 << 1);
/// What EAX holds when a Multiboot loader starts us.
pub const MULTIBOOT_BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// What each entry tells `loader_main` it was (the first argument).
const ENTRY_MULTIBOOT: u32 = 1;
const ENTRY_PVH: u32 = 2;
const ENTRY_UEFI: u32 = 3;

/// The entry protocol `loader_main` was told of, if the value is one of ours.
pub fn entry_protocol(entry: u32) -> Option<rusty_loader::EntryProtocol> {
    match entry {
        ENTRY_MULTIBOOT => Some(rusty_loader::EntryProtocol::Multiboot),
        ENTRY_PVH => Some(rusty_loader::EntryProtocol::Pvh),
        ENTRY_UEFI => Some(rusty_loader::EntryProtocol::Uefi),
        _ => None,
    }
}

unsafe extern "C" {
    /// The PVH entry in `entry.s`: 32-bit code, not callable from Rust; only its
    /// address is taken, for the Xen note.
    fn pvh_start32() -> !;
}

// The `XEN_ELFNOTE_PHYS32_ENTRY` note (owner "Xen", type 18, the entry's address)
// in `.note.Xen`, which link.ld keeps in a `PT_NOTE` segment: the PVH entry as
// VMMs find it in the 64-bit ELF.
pvh::xen_elfnote_phys32_entry!(pvh_start32);

const CR0_MP: u32 = 1 << 1;
const CR0_EM: u32 = 1 << 2;
const CR0_PG: u32 = 1 << 31;
const CR4_PAE: u32 = 1 << 5;
const CR4_OSFXSR: u32 = 1 << 9;
const CR4_OSXMMEXCPT: u32 = 1 << 10;
const MSR_EFER: u32 = 0xC000_0080;
const EFER_LME: u32 = 1 << 8;
const PTE_PRESENT: u32 = 1 << 0;
const PTE_WRITABLE: u32 = 1 << 1;
const PTE_HUGE: u32 = 1 << 7;

/// The loader's GDT: null, 64-bit code, data, and the two slots of the TSS
/// descriptor, which `exceptions::install` fills in (a TSS is what gives the
/// exception handler a stack of its own). It stays in the loader image, which the
/// hand-over page tables keep mapped, because the kernel runs on it until it loads
/// its own. Mutable: the TSS descriptor is written at run time, and `ltr` marks it
/// busy.
static mut GDT: [u64; GDT_ENTRIES] = [
    0,
    DescriptorFlags::KERNEL_CODE64.bits(),
    DescriptorFlags::KERNEL_DATA.bits(),
    0,
    0,
];
const GDT_ENTRIES: usize = 5;
const CODE_SELECTOR: u16 = 1 << 3;
const DATA_SELECTOR: u16 = 2 << 3;
/// The TSS descriptor's index (it takes two entries).
const TSS_INDEX: usize = 3;

/// The loader's own stack (the kernel gets a separate one).
const STACK_SIZE: usize = 64 * 1024;
#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);
#[unsafe(link_section = ".noinit.loader_stack")]
static mut LOADER_STACK: Stack = Stack([0; STACK_SIZE]);

/// How much of the physical address space the boot tables map: the loader's reach,
/// which the library's layout planning respects.
const BOOT_IDENTITY_LIMIT: u64 = rusty_loader::layout::LOADER_REACH;
/// One page directory of 2 MiB pages per GiB of the identity map.
const BOOT_DIRECTORIES: usize = (BOOT_IDENTITY_LIMIT >> 30) as usize;

/// Identity map of the loader's reach (PML4, PDPT, one PD of 2 MiB pages per GiB)
/// that the loader runs on. The kernel gets page tables built by
/// `rusty_loader::paging`. In `.noinit`: start32 zeroes the PML4 and the PDPT and
/// writes every directory entry, so zeroing them with `.bss` would be work for
/// nothing.
#[repr(C, align(4096))]
struct BootTables([[u64; 512]; 2 + BOOT_DIRECTORIES]);
#[unsafe(link_section = ".noinit.boot_tables")]
static mut BOOT_TABLES: BootTables = BootTables([[0; 512]; 2 + BOOT_DIRECTORIES]);

/// The boot page tables' address range.
pub fn boot_tables_range() -> rusty_loader::memory::Region {
    range_of(&raw const BOOT_TABLES)
}

/// The loader stack's address range.
pub fn loader_stack_range() -> rusty_loader::memory::Region {
    range_of(&raw const LOADER_STACK)
}

/// The address range of a static (only its address is taken).
fn range_of<T>(item: *const T) -> rusty_loader::memory::Region {
    let start = item as u64;
    rusty_loader::memory::Region::new(start, start + core::mem::size_of::<T>() as u64)
}

/// TSC values recorded by the start-up code before any Rust runs. Kept in `.data`
/// because start32 records the first one before it zeroes `.bss`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EarlyStamps {
    pub entry: u64,
    pub paging_on: u64,
    pub long_mode: u64,
}
#[unsafe(link_section = ".data.early_stamps")]
static mut EARLY_STAMPS: EarlyStamps = EarlyStamps {
    entry: 1,
    paging_on: 1,
    long_mode: 1,
};

/// The TSC values start32 recorded.
pub fn early_stamps() -> EarlyStamps {
    // SAFETY: start32 wrote these before Rust ran; nothing writes them afterwards.
    unsafe { core::ptr::read_volatile(&raw const EARLY_STAMPS) }
}

global_asm!(
    include_str!("entry.s"),
    mb_magic = const MULTIBOOT_MAGIC,
    mb_flags = const MULTIBOOT_FLAGS,
    mb_checksum = const 0u32.wrapping_sub(MULTIBOOT_MAGIC.wrapping_add(MULTIBOOT_FLAGS)),
    entry_multiboot = const ENTRY_MULTIBOOT,
    entry_pvh = const ENTRY_PVH,
    stamps = sym EARLY_STAMPS,
    stack = sym LOADER_STACK,
    stack_size = const STACK_SIZE,
    cr0_em = const CR0_EM,
    cr0_mp = const CR0_MP,
    cr0_pg = const CR0_PG,
    cr4_pae = const CR4_PAE,
    cr4_osfxsr = const CR4_OSFXSR,
    cr4_osxmmexcpt = const CR4_OSXMMEXCPT,
    tables = sym BOOT_TABLES,
    boot_directories = const BOOT_DIRECTORIES,
    boot_directory_entries = const BOOT_DIRECTORIES * 512,
    pte_present = const PTE_PRESENT,
    pte_writable = const PTE_WRITABLE,
    pte_huge = const PTE_HUGE,
    msr_efer = const MSR_EFER,
    efer_lme = const EFER_LME,
    gdt = sym GDT,
    gdt_size = const core::mem::size_of::<[u64; GDT_ENTRIES]>(),
    code_selector = const CODE_SELECTOR,
    data_selector = const DATA_SELECTOR,
    loader_main = sym crate::loader_main,
);

/// The loader image's bounds, from the linker script.
pub fn loader_image() -> (u64, u64) {
    unsafe extern "C" {
        static __loader_start: u8;
        static __loader_end: u8;
    }
    // Only the addresses of the linker symbols are taken, never their contents.
    (
        &raw const __loader_start as u64,
        &raw const __loader_end as u64,
    )
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; the loader runs at CPL 0 where it is allowed.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Selects QEMU's fw_cfg item `key` (fault-injection builds read their fault
/// there); on a machine without fw_cfg nothing happens.
#[cfg(feature = "faults")]
pub fn fw_cfg_select(key: u16) {
    port::outw(port::Port::FW_CFG_SELECTOR, key);
}

/// The selected fw_cfg item's next byte (0xff without fw_cfg).
#[cfg(feature = "faults")]
pub fn fw_cfg_read_byte() -> u8 {
    port::inb(port::Port::FW_CFG_DATA)
}

/// Ends the QEMU run with status `(value << 1) | 1`. Without the isa-debug-exit
/// device the write does nothing, so halt forever with interrupts off afterwards.
pub fn exit_qemu(value: u8) -> ! {
    port::outb(port::Port::DEBUG_EXIT, value);
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Everything the jump into the kernel needs.
pub struct HandOver {
    /// The kernel's page tables.
    pub tables: HandOverTables,
    /// The lowest address of the kernel's zeroed 32 KiB stack (the ABI wants the
    /// lowest address; the kernel adds the size itself).
    pub stack: u64,
    /// The boot info, passed in rdi.
    pub boot_info: u64,
    /// The kernel's relocated entry point.
    pub entry: u64,
}

/// Switches to the kernel's page tables and jumps to its entry with rdi = boot info,
/// rsi = 0 (the boot CPU), rsp = the stack's lowest address, interrupts off.
pub fn hand_over(to: &HandOver) -> ! {
    // SAFETY: `HandOverTables` come only from the library's layout planning, which
    // identity-maps the whole loader image (this code, the GDT and IDT, the stack,
    // the boot info) in them, so the instruction after `mov cr3` is still there.
    // What follows the jump is the kernel's: the loader keeps no state to corrupt.
    unsafe { jump_to_kernel(to.boot_info, to.tables.pml4(), to.stack, to.entry) }
}

/// The jump itself, a function of its own so that a debugger finds it by a plain
/// name (`rusty_loader_jump_to_kernel`: a naked function has no debug information
/// that would give its Rust path), with
/// everything the kernel gets in registers: the boot info in rdi (where the kernel
/// reads it), the kernel's PML4 in rsi, its stack in rdx and its entry in rcx.
/// `cargo xtask debug` stops here to learn where the kernel runs (rcx) and to set
/// the application's breakpoints once the kernel is in place.
///
/// # Safety
///
/// `pml4` must map this code, the stack and the boot info (see [`hand_over`]).
#[unsafe(naked)]
#[unsafe(export_name = "rusty_loader_jump_to_kernel")]
unsafe extern "sysv64" fn jump_to_kernel(boot_info: u64, pml4: u64, stack: u64, entry: u64) -> ! {
    core::arch::naked_asm!(
        "cli",
        "mov cr3, rsi",
        "mov rsp, rdx",
        "xor esi, esi",
        "xor ebp, ebp",
        "jmp rcx",
    )
}
