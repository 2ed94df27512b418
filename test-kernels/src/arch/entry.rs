//! Start-up: the entry point `_start` that the loader jumps to, and what it saves
//! for the checks before any Rust code runs.

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

/// Emits the entry point `_start`, like Hermit's own: move rsp from the stack's
/// lowest address (what the loader passes) to its top, clear rbp, then call the
/// Rust function named, as `extern "C" fn(boot_info: u64, rsi: u64, stack_low: u64,
/// rflags: u64) -> !` (the fields of [`EntryState`]). Before that it saves the
/// loader's rsp and RFLAGS (for the checks), checks that relocations were applied at
/// all (reporting it with port I/O alone if not), and enables SSE, which the
/// precompiled `core` uses and which the loader need not have turned on.
///
/// Kernels use [`crate::entry_point!`], which names the function that runs the
/// checks.
#[macro_export]
macro_rules! start_stub {
    ($rust_entry:ident) => {
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
            main = sym $rust_entry,
            relocation_exit = const $crate::report::Group::Relocation.exit_value(),
        );
    };
}
