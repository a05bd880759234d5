/*
 * aarch64 context switch: see arch/ctx.h for the frame layout.
 * void gort__ctx_switch(void **save_sp /x0/, void *load_sp /x1/)
 * Saves x19-x30, d8-d15 and FPCR. CFI is relative to sp, so it also describes
 * the other context's frame after the swap (gdb can unwind parked goroutines).
 */
    .text
    .globl gort__ctx_switch
    .hidden gort__ctx_switch
    .type gort__ctx_switch, %function
    .p2align 4
gort__ctx_switch:
    .cfi_startproc
    sub sp, sp, #176
    .cfi_def_cfa_offset 176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    .cfi_offset x19, -176
    .cfi_offset x20, -168
    .cfi_offset x21, -160
    .cfi_offset x22, -152
    .cfi_offset x23, -144
    .cfi_offset x24, -136
    .cfi_offset x25, -128
    .cfi_offset x26, -120
    .cfi_offset x27, -112
    .cfi_offset x28, -104
    .cfi_offset x29, -96
    .cfi_offset x30, -88
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x10, fpcr
    str x10, [sp, #160]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldr x9, [sp, #160]
    cmp x9, x10                 /* writing FPCR can be slow: only when it changes */
    b.eq 1f
    msr fpcr, x9
1:
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    add sp, sp, #176
    .cfi_def_cfa_offset 0
    ret
    .cfi_endproc
    .size gort__ctx_switch, .-gort__ctx_switch

    .globl gort__ctx_trampoline
    .hidden gort__ctx_trampoline
    .type gort__ctx_trampoline, %function
    .p2align 4
gort__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov x29, #0
    bl gort__gostart
    brk #0
    .cfi_endproc
    .size gort__ctx_trampoline, .-gort__ctx_trampoline

    .section .note.GNU-stack,"",%progbits
