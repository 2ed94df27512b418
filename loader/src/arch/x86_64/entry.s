// The two entries (Multiboot and PVH) and the switch to long mode they share.
//
// Machine state on entry, as QEMU and other VMMs provide it:
//   1. 32-bit protected mode, flat segments, paging off, interrupts off;
//   2. Multiboot 1 (start32): EAX = 0x2BADB002, EBX = physical address of the
//      Multiboot information;
//      PVH (pvh_start32, named by the Xen ELF note): EBX = physical address of the
//      start info (its magic is in memory; EAX holds nothing defined);
//   3. no stack, .bss contents unspecified.
// Each entry only notes which one it is (EBP) and what EAX held (ESI), then both
// run the same code: record the TSC, zero .bss, take a stack, enable SSE (the
// precompiled core uses it), identity-map the first 4 GiB with 2 MiB pages for the
// loader's own use, enable long mode and paging, load a 64-bit GDT, and call
// `loader_main(entry, magic, info)` with the stack 16-byte aligned before the call.
// The TSC is recorded at entry, after paging is on and after the far jump, so that
// the trace can time the mode switch.

// The Multiboot header is not loaded: xtask writes it into the 32-bit image's first
// page, so that the 64-bit ELF, whose first 8 KiB must not hold it (QEMU would take
// it for a Multiboot kernel and refuse it as 64-bit), boots through PVH.
.section .multiboot, ""
.balign 4
    .long {mb_magic}
    .long {mb_flags}
    .long {mb_checksum}

.section .text.start32, "ax"
.code32
.global pvh_start32
pvh_start32:
    cli
    cld
    mov ebp, {entry_pvh}
    xor esi, esi
    jmp 3f

.global start32
start32:
    cli
    cld
    mov ebp, {entry_multiboot}
    mov esi, eax                        // Keep the Multiboot magic for loader_main.
3:
    rdtsc
    mov [{stamps}], eax
    mov [{stamps} + 4], edx

    // Zero .bss: small statics live there (the stacks, the boot page tables and
    // the other big buffers are in .noinit, see link.ld). link.ld aligns both ends
    // to 16 bytes; four bytes per iteration, since under emulation a rep
    // instruction costs per iteration.
    mov edi, offset __bss_start
    mov ecx, offset __bss_end
    sub ecx, edi
    shr ecx, 2
    xor eax, eax
    rep stosd

    lea esp, [{stack} + {stack_size}]

    // SSE on: CR0.EM clear, CR0.MP set; CR4.OSFXSR and CR4.OSXMMEXCPT set.
    // CR4.PAE is a prerequisite of long mode.
    mov eax, cr0
    and eax, ~{cr0_em}
    or eax, {cr0_mp}
    mov cr0, eax
    mov eax, cr4
    or eax, {cr4_pae} | {cr4_osfxsr} | {cr4_osxmmexcpt}
    mov cr4, eax

    // The boot tables are not zeroed with .bss: the PML4 and the PDPT are zeroed
    // here, the directories written whole below. 64 bytes per iteration (SSE),
    // for the same reason as above.
    lea edi, [{tables}]
    mov ecx, 2 * 4096 / 64
    pxor xmm0, xmm0
4:
    movdqa [edi], xmm0
    movdqa [edi + 16], xmm0
    movdqa [edi + 32], xmm0
    movdqa [edi + 48], xmm0
    add edi, 64
    loop 4b

    // PML4[0] -> PDPT; PDPT[0..n] -> n PDs; each PD entry a 2 MiB page.
    lea eax, [{tables} + 4096 + {pte_present} + {pte_writable}]
    mov [{tables}], eax
    lea edi, [{tables} + 4096]
    lea eax, [{tables} + 8192 + {pte_present} + {pte_writable}]
    mov ecx, {boot_directories}
1:
    mov [edi], eax
    add eax, 4096
    add edi, 8
    loop 1b
    // Eight entries per iteration: XMM0-3 hold entries 0-7 of the first pass
    // (boot_pd_first), XMM4 adds 8 x 2 MiB to each.
    lea edi, [{tables} + 8192]
    movdqa xmm0, [boot_pd_first]
    movdqa xmm1, [boot_pd_first + 16]
    movdqa xmm2, [boot_pd_first + 32]
    movdqa xmm3, [boot_pd_first + 48]
    movdqa xmm4, [boot_pd_step]
    mov ecx, {boot_directory_entries} / 8
2:
    movdqa [edi], xmm0
    movdqa [edi + 16], xmm1
    movdqa [edi + 32], xmm2
    movdqa [edi + 48], xmm3
    paddq xmm0, xmm4
    paddq xmm1, xmm4
    paddq xmm2, xmm4
    paddq xmm3, xmm4
    add edi, 64
    loop 2b

    lea eax, [{tables}]
    mov cr3, eax
    mov ecx, {msr_efer}
    rdmsr
    or eax, {efer_lme}
    wrmsr
    mov eax, cr0
    or eax, {cr0_pg}
    mov cr0, eax
// Where the trace's "long mode" step begins (named for debuggers: `cargo xtask debug
// --break stage:long-mode` stops here).
paging_enabled:
    rdtsc
    mov [{stamps} + 8], eax
    mov [{stamps} + 12], edx

    lgdt [gdt_pointer]
    // A far return loads CS with the 64-bit code segment.
    push {code_selector}
    lea eax, [start64]
    push eax
    retf

.code64
start64:
    mov ax, {data_selector}
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    rdtsc
    mov [{stamps} + 16], eax
    mov [{stamps} + 20], edx
    mov edi, ebp                        // loader_main(entry, magic, info)
    mov edx, ebx
    call {loader_main}
    ud2

// The GDT pointer for lgdt in 32-bit mode: limit, then base (the upper half of the
// .quad is ignored there and is zero anyway, the GDT being below 4 GiB).
.section .rodata
// The first eight directory entries (2 MiB pages 0-7) and the step between passes.
.balign 16
boot_pd_first:
    .quad {pte_present} + {pte_writable} + {pte_huge} + 0 * 0x200000
    .quad {pte_present} + {pte_writable} + {pte_huge} + 1 * 0x200000
    .quad {pte_present} + {pte_writable} + {pte_huge} + 2 * 0x200000
    .quad {pte_present} + {pte_writable} + {pte_huge} + 3 * 0x200000
    .quad {pte_present} + {pte_writable} + {pte_huge} + 4 * 0x200000
    .quad {pte_present} + {pte_writable} + {pte_huge} + 5 * 0x200000
    .quad {pte_present} + {pte_writable} + {pte_huge} + 6 * 0x200000
    .quad {pte_present} + {pte_writable} + {pte_huge} + 7 * 0x200000
boot_pd_step:
    .quad 8 * 0x200000
    .quad 8 * 0x200000
.balign 8
    .word 0
gdt_pointer:
    .word {gdt_size} - 1
    .quad {gdt}
