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

exception_common:
    mov rdi, rsp
    and rsp, -16
    call {exception_handler}
    ud2

.section .rodata
.balign 8
.global exception_stubs
exception_stubs:
.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_stub_\v
.endr
