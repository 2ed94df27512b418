//! The UEFI entry, and taking the machine over from the firmware once its boot
//! services have exited.
//!
//! The EFI stub (`src/efi_stub.rs`) has copied the loader image to its link address
//! and calls `uefi_start64` in long mode, on the firmware's GDT, IDT and page tables
//! (which identity-map all memory), with interrupts as the firmware keeps them, and
//! `rdi` = image handle, `rsi` = system table, `rdx` = the TSC the stub read first.
//! The entry records the TSC as the loader's entry time (there is no mode switch:
//! all three start-up stamps are the same), keeps the two firmware pointers, zeroes
//! `.bss`, takes the loader's stack and calls `loader_main` as the other entries
//! do, with interrupts off (the firmware's timer would overwrite the red zone of
//! the loader's leaf functions; `uefi/firmware.rs` turns them off again after each
//! firmware call). Until `ExitBootServices` the firmware owns the machine: its IDT
//! handles its timer interrupt inside its calls, so the loader installs its own
//! only in [`take_over`].

use core::arch::{asm, global_asm};

use super::{
    BOOT_DIRECTORIES, BOOT_TABLES, CODE_SELECTOR, DATA_SELECTOR, EARLY_STAMPS, ENTRY_UEFI, GDT,
    GDT_ENTRIES, LOADER_STACK, PTE_HUGE, PTE_PRESENT, PTE_WRITABLE, STACK_SIZE,
};

/// What the EFI stub passed: the firmware's pointers, as addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Handoff {
    pub image_handle: u64,
    pub system_table: u64,
}

/// Written by `uefi_start64` before `.bss` is zeroed, so it lives in `.data`.
#[unsafe(link_section = ".data.uefi_handoff")]
static mut HANDOFF: Handoff = Handoff {
    image_handle: 0,
    system_table: 0,
};

/// The image handle and system table the stub passed (zeros after another entry).
pub fn handoff() -> Handoff {
    // SAFETY: written by the entry before any Rust ran, never afterwards.
    unsafe { core::ptr::read_volatile(&raw const HANDOFF) }
}

global_asm!(
    r#"
.section .text.uefi_start64, "ax"
.code64
.global uefi_start64
uefi_start64:
    cli                                 // see uefi/firmware.rs: the red zone
    cld
    mov qword ptr [{stamps}], rdx
    mov qword ptr [{stamps} + 8], rdx
    mov qword ptr [{stamps} + 16], rdx
    mov qword ptr [{handoff}], rdi
    mov qword ptr [{handoff} + 8], rsi
    // Zero .bss (link.ld aligns both ends to 16 bytes).
    mov edi, offset __bss_start
    mov ecx, offset __bss_end
    sub ecx, edi
    shr ecx, 3
    xor eax, eax
    rep stosq
    lea rsp, [{stack} + {stack_size}]
    xor ebp, ebp
    mov edi, {entry_uefi}                // loader_main(entry, 0, 0)
    xor esi, esi
    xor edx, edx
    call {loader_main}
    ud2
"#,
    stamps = sym EARLY_STAMPS,
    handoff = sym HANDOFF,
    stack = sym LOADER_STACK,
    stack_size = const STACK_SIZE,
    entry_uefi = const ENTRY_UEFI,
    loader_main = sym crate::loader_main,
);

/// After `ExitBootServices`: interrupts off for good, the loader's own identity map
/// of its reach (the boot tables, as start32 writes them), its GDT with the code and
/// data segments reloaded. The firmware's tables may map code read-only and data
/// non-executable, and they, its GDT and its IDT lie in boot-services memory, which
/// is free RAM from now on. The caller installs the loader's IDT next.
pub fn take_over() {
    x86_64::instructions::interrupts::disable();
    // SAFETY: boot services have exited and interrupts are off, so nothing else
    // runs; the boot tables are the loader's static, unused until the `mov cr3`
    // below. They identity-map the first 4 GiB, where the loader image (this code,
    // its stack, the GDT) lies, so execution continues at the next instruction. The
    // GDT is the loader's, with a 64-bit code segment at CODE_SELECTOR and a data
    // segment at DATA_SELECTOR; the far return reloads CS from it.
    unsafe {
        let tables = &raw mut BOOT_TABLES;
        let tables = &mut (*tables).0;
        let base = tables.as_ptr() as u64;
        let flags = PTE_PRESENT as u64 | PTE_WRITABLE as u64;
        tables[0] = [0; 512];
        tables[1] = [0; 512];
        tables[0][0] = (base + 4096) | flags;
        for directory in 0..BOOT_DIRECTORIES {
            tables[1][directory] = (base + 4096 * (2 + directory as u64)) | flags;
            for (i, entry) in tables[2 + directory].iter_mut().enumerate() {
                let page = ((directory * 512 + i) as u64) << 21;
                *entry = page | flags | PTE_HUGE as u64;
            }
        }
        asm!("mov cr3, {}", in(reg) base, options(nostack, preserves_flags));
        let pointer = x86_64::structures::DescriptorTablePointer {
            limit: (core::mem::size_of::<[u64; GDT_ENTRIES]>() - 1) as u16,
            base: x86_64::VirtAddr::new(&raw const GDT as u64),
        };
        x86_64::instructions::tables::lgdt(&pointer);
        asm!(
            "push {code}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {data:x}",
            "mov es, {data:x}",
            "mov ss, {data:x}",
            "mov fs, {data:x}",
            "mov gs, {data:x}",
            code = const CODE_SELECTOR as u64,
            tmp = out(reg) _,
            data = in(reg) DATA_SELECTOR as u64,
        );
    }
}

/// Writes the loader's EBDA: the RSDP copy at its start, and the segment into the
/// BIOS data area's EBDA pointer (0x40E), where kernels 0.6–0.10 look.
///
/// Only after [`take_over`]: the boot tables map page 0 and low memory.
pub fn write_ebda(ebda: rusty_loader::memory::Region, segment: u16, rsdp: &[u8]) {
    use rusty_loader::efi::acpi::{EBDA_POINTER, EBDA_SIZE};
    let len = rsdp.len().min(EBDA_SIZE as usize);
    // SAFETY: `ebda` is a KiB of usable low memory that `efi::acpi::plan_ebda`
    // chose (page 0 and the trampoline page excluded), free RAM after
    // ExitBootServices that nothing of the loader uses; the EBDA pointer at 0x40E
    // is in page 0, free RAM too. Both are identity-mapped by the boot tables, and
    // the region is reserved in the kernel's memory map.
    unsafe {
        let at = ebda.start as *mut u8;
        core::ptr::write_bytes(at, 0, EBDA_SIZE as usize);
        core::ptr::copy_nonoverlapping(rsdp.as_ptr(), at, len);
        core::ptr::write_volatile(EBDA_POINTER as *mut u16, segment);
    }
}
