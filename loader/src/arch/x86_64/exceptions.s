// One stub per CPU exception vector (0..31). Each pushes a zero where the CPU pushes
// no error code, then the vector, so the common path sees one frame layout:
// [rsp] = vector, error code, RIP, CS, RFLAGS, RSP, SS.

.section .text
.macro EXCEPTION_STUB vector, has_error_code
exception_stub_\vector:
.if \has_error_code == 0
    push 0
.endif
    push \vector
    jmp exception_common
.endm

.irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    EXCEPTION_STUB \v, 0
.endr
.irp v, 8,10,11,12,13,14,17,21,29,30
    EXCEPTION_STUB \v, 1
.endr

// Unwinding information for debuggers (it lives in the ELF only: link.ld does not
// load .eh_frame): the interrupted code is the caller of this "signal frame", so a
// backtrace taken here or in the handler goes on into the code that faulted, and
// `cargo xtask debug --break crash` stops here with the faulting frame shown. The
// DWARF expressions (DW_CFA_def_cfa_expression 0x0f, DW_CFA_expression 0x10) read
// the CPU's frame: the interrupted RSP at [frame + 40] is the CFA, RIP (DWARF
// register 16) is at frame + 16, RFLAGS (49) at frame + 32, the frame first at
// rsp (DW_OP_breg7), then in rbx (DW_OP_breg3), which keeps it across the call;
// rbx itself is saved below the frame.
exception_common:
    .cfi_startproc simple
    .cfi_signal_frame
    .cfi_escape 0x0f, 0x03, 0x77, 0x28, 0x06
    .cfi_escape 0x10, 0x10, 0x02, 0x77, 0x10
    .cfi_escape 0x10, 0x31, 0x02, 0x77, 0x20
    push rbx
    .cfi_escape 0x0f, 0x03, 0x77, 0x30, 0x06
    .cfi_escape 0x10, 0x10, 0x02, 0x77, 0x18
    .cfi_escape 0x10, 0x31, 0x02, 0x77, 0x28
    .cfi_escape 0x10, 0x03, 0x02, 0x77, 0x00
    lea rbx, [rsp + 8]
    .cfi_escape 0x0f, 0x03, 0x73, 0x28, 0x06
    .cfi_escape 0x10, 0x10, 0x02, 0x73, 0x10
    .cfi_escape 0x10, 0x31, 0x02, 0x73, 0x20
    .cfi_escape 0x10, 0x03, 0x02, 0x73, 0x78
    mov rdi, rbx
    and rsp, -16
    call {exception_handler}
    ud2
    .cfi_endproc

.section .rodata
.balign 8
.global exception_stubs
exception_stubs:
.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_stub_\v
.endr
