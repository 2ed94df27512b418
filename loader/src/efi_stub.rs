//! The EFI stub: the EFI application `rusty-loader.efi` runs first, wherever the
//! firmware loaded it. It carries the loader image (the bytes of `rusty-loader.elf`
//! from its link address, 1 MiB, written by xtask with the header of
//! `rusty_loader::efi::payload`), allocates the loader's whole range at that
//! address from the firmware, copies the bytes there and jumps to the loader's
//! `uefi_start64` with the image handle, the system table and the TSC it read
//! first. Everything else (the firmware calls, the trace, the refusals) is the
//! loader's: it then runs at the addresses it is linked for, like after Multiboot
//! and PVH, and everything the kernel still needs lies below the kernel.
//!
//! Built for the host target as a static PIE and turned into a PE32+ EFI
//! application with base relocations by xtask (`xtask/src/efi_image.rs`). The only
//! refusal of its own, the loader's range being taken, is one line on the serial
//! port and its exit code, as the loader's refusals are.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

#[path = "arch/x86_64/mem.rs"]
mod mem;
#[path = "arch/x86_64/mem_ops.rs"]
mod mem_ops;

use core::fmt::Write;

use rusty_loader::efi::payload::{self, Payload};
use rusty_loader::error::{ExitCode, LoadError};
use uefi_raw::table::boot::{AllocateType, MemoryType};
use uefi_raw::table::system::SystemTable;
use uefi_raw::{Handle, Status};

/// The loader image, written by xtask (`cargo xtask build`).
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);
static PAYLOAD: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("RUSTY_LOADER_EFI_PAYLOAD")));

/// The loader's UEFI entry: `rdi` image handle, `rsi` system table, `rdx` the TSC at
/// the stub's entry (see `arch/x86_64/uefi.rs`).
type UefiEntry = extern "sysv64" fn(Handle, *mut SystemTable, u64) -> !;

/// The firmware calls this.
#[unsafe(no_mangle)]
extern "efiapi" fn efi_main(image: Handle, system_table: *mut SystemTable) -> Status {
    // SAFETY: RDTSC has no side effects; CLI keeps the firmware's timer interrupt
    // off the stub's stack (its leaf functions keep data below rsp, the red zone,
    // as the loader's do: see the loader's uefi/firmware.rs).
    let entry_tsc = unsafe {
        core::arch::asm!("cli", options(nomem, nostack));
        core::arch::x86_64::_rdtsc()
    };
    let payload = match payload::parse(&PAYLOAD.0) {
        Ok(payload) => payload,
        Err(what) => fail(
            ExitCode::LoaderPanic,
            format_args!("loader bug: the EFI stub's payload is broken: {what}"),
        ),
    };
    if let Err(status) = place(system_table, &payload) {
        let error = LoadError::LoaderAreaTaken {
            start: payload.load_address,
            end: payload.image_end,
            status,
        };
        fail(error.exit_code(), format_args!("error: {error}"));
    }
    // SAFETY: `uefi_start64` is at `entry` in the bytes just placed at their link
    // address; it takes the three arguments above and never returns.
    let entry: UefiEntry = unsafe { core::mem::transmute(payload.entry as usize) };
    entry(image, system_table, entry_tsc)
}

/// Allocates the loader's range at its link address and copies the loader there.
fn place(system_table: *mut SystemTable, payload: &Payload) -> Result<(), u64> {
    #[cfg(feature = "stub-faults")]
    if fault::loader_area_taken() {
        // Taken first, so that the firmware refuses the real request below.
        let mut taken = payload.load_address;
        // SAFETY: as below.
        let _ = unsafe {
            let boot = (*system_table).boot_services;
            ((*boot).allocate_pages)(
                AllocateType::ADDRESS,
                MemoryType::LOADER_DATA,
                payload.pages() as usize,
                &mut taken,
            )
        };
    }
    let mut address = payload.load_address;
    // SAFETY: the firmware called `efi_main` with its system table, whose boot
    // services run until the loader exits them; the allocation asks for the exact
    // address (as loader code: the firmware may map loader data non-executable).
    let status = unsafe {
        let boot = (*system_table).boot_services;
        ((*boot).allocate_pages)(
            AllocateType::ADDRESS,
            MemoryType::LOADER_CODE,
            payload.pages() as usize,
            &mut address,
        )
    };
    // SAFETY: the firmware may have turned interrupts on again on its way out.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    if status != Status::SUCCESS {
        return Err(status.0 as u64);
    }
    // SAFETY: the firmware gave the pages from `load_address` to `image_end`, which
    // the bytes fit in (`payload::parse` checked), identity-mapped; the stub runs
    // elsewhere (the firmware placed it), so the ranges do not overlap.
    unsafe {
        core::ptr::copy_nonoverlapping(
            payload.bytes.as_ptr(),
            address as *mut u8,
            payload.bytes.len(),
        )
    };
    Ok(())
}

/// Prints `rusty-loader: <message> (exit code <name>, QEMU status <n>)` on COM1
/// and exits QEMU with the code; without the debug-exit device, stops.
fn fail(code: ExitCode, message: core::fmt::Arguments) -> ! {
    let _ = writeln!(
        Serial,
        "\r\n{}{message} (exit code {}, QEMU status {})\r",
        rusty_loader::wire::TEXT_LINE_PREFIX,
        code.name(),
        code.qemu_status()
    );
    exit_qemu(code.port_value())
}

/// Ends the QEMU run with `value` (for `mem.rs`'s unwinding stub).
fn exit_qemu(value: u8) -> ! {
    // SAFETY: writes to the isa-debug-exit port and halts: no memory effects.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") 0xf4u16, in("al") value);
        loop {
            core::arch::asm!("cli; hlt");
        }
    }
}

/// Fault injection in the stub (feature `stub-faults`, only beside the faults
/// loader): fw_cfg's file `opt/rusty-loader/fault` naming `loader-area-taken`.
#[cfg(feature = "stub-faults")]
mod fault {
    use rusty_loader::faults::{
        fault_named, Fault, FwCfgFile, FW_CFG_DIR_ENTRY, FW_CFG_FILE, FW_CFG_FILE_DIR,
        FW_CFG_SIGNATURE,
    };

    fn select(key: u16) {
        // SAFETY: QEMU's fw_cfg selector port; no memory effects.
        unsafe { core::arch::asm!("out dx, ax", in("dx") 0x510u16, in("ax") key) };
    }

    fn byte() -> u8 {
        let value: u8;
        // SAFETY: QEMU's fw_cfg data port; no memory effects.
        unsafe { core::arch::asm!("in al, dx", in("dx") 0x511u16, out("al") value) };
        value
    }

    /// Whether fw_cfg names the fault `loader-area-taken`.
    pub fn loader_area_taken() -> bool {
        select(FW_CFG_SIGNATURE);
        if [byte(), byte(), byte(), byte()] != *b"QEMU" {
            return false;
        }
        select(FW_CFG_FILE_DIR);
        let count = u32::from_be_bytes([byte(), byte(), byte(), byte()]);
        let mut entry = [0u8; FW_CFG_DIR_ENTRY];
        for _ in 0..count.min(4096) {
            entry.iter_mut().for_each(|b| *b = byte());
            let file = FwCfgFile::parse(&entry);
            if file.name != FW_CFG_FILE.as_bytes() {
                continue;
            }
            let mut contents = [0u8; 64];
            let len = (file.size as usize).min(contents.len());
            select(file.select);
            contents[..len].iter_mut().for_each(|b| *b = byte());
            return fault_named(&contents[..len]) == Ok(Fault::LoaderAreaTaken);
        }
        false
    }
}

/// COM1, which the firmware set up (it prints there itself).
struct Serial;

impl Write for Serial {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        for byte in text.bytes() {
            // SAFETY: port I/O on COM1: wait for an empty transmit register, send.
            unsafe {
                loop {
                    let status: u8;
                    core::arch::asm!("in al, dx", in("dx") 0x3fdu16, out("al") status);
                    if status & 0x20 != 0 {
                        break;
                    }
                }
                core::arch::asm!("out dx, al", in("dx") 0x3f8u16, in("al") byte);
            }
        }
        Ok(())
    }
}

/// The library uses `alloc`; the stub allocates nothing.
struct NoHeap;

// SAFETY: never hands out memory.
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}

#[global_allocator]
static HEAP: NoHeap = NoHeap;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fail(ExitCode::LoaderPanic, format_args!("loader bug: {info}"))
}
