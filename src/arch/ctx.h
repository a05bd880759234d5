/*
 * arch/ctx.h - the goroutine context switch (implemented in
 * arch/<arch>/switch.S).
 *
 * A context is one saved stack pointer. gort__ctx_switch pushes the
 * callee-saved registers and the floating-point control state on the current
 * stack, stores the stack pointer in *save_sp, loads load_sp and pops the
 * same frame from the other stack, then returns into the other context.
 * Everything caller-saved is already dead at the call, so nothing else needs
 * saving. The frame (lowest address first):
 *
 *   x86-64 (56 bytes):  [mxcsr:4 | x87 cw:2 | pad:2] r15 r14 r13 r12 rbx rbp  ret
 *   aarch64 (176 bytes): x19..x28, x29, x30, d8..d15, fpcr, pad
 *
 * On aarch64 FPCR is only written back when it differs from the outgoing
 * context's. On x86-64 MXCSR and the x87 CW are always reloaded (with the
 * jmp that ends the switch, a compare-and-skip measured slower), and the
 * switch ends with pop + jmp instead of ret (see switch.S).
 *
 * A new context is made by gort__ctx_init, which lays out such a frame whose
 * return address is gort__ctx_trampoline; the trampoline calls
 * gort__gostart() (never returns) and marks the end of the call chain for
 * unwinders (CFI "undefined return address").
 */
#ifndef GORT_ARCH_CTX_H
#define GORT_ARCH_CTX_H

#include <stdint.h>
#include <string.h>

void gort__ctx_switch(void **save_sp, void *load_sp);
void gort__ctx_trampoline(void);

#if defined(__x86_64__)
#define GORT__CTX_FRAME 56 /* the switch.S frame below the return address */
enum { GORT__CTX_OFF_CSR = 0, GORT__CTX_OFF_RBP = 48, GORT__CTX_OFF_RET = 56 };
#define GORT__MXCSR_DEFAULT 0x1F80u
#define GORT__X87CW_DEFAULT 0x037Fu
#elif defined(__aarch64__)
#define GORT__CTX_FRAME 176
enum { GORT__CTX_OFF_X29 = 80, GORT__CTX_OFF_X30 = 88, GORT__CTX_OFF_FPCR = 160 };
#else
#error "unsupported architecture"
#endif

/* Lays out an initial frame at the top of [lo, hi) and returns the stack
 * pointer to pass to gort__ctx_switch. */
static inline void *gort__ctx_init(uintptr_t hi)
{
    uintptr_t top = (hi & ~(uintptr_t)15) - 16; /* sp after "ret": 16-aligned */
#if defined(__x86_64__)
    uintptr_t sp = top - 8 - GORT__CTX_FRAME;
    memset((void *)sp, 0, GORT__CTX_FRAME + 8);
    uint32_t csr = GORT__MXCSR_DEFAULT;
    uint16_t cw = GORT__X87CW_DEFAULT;
    memcpy((char *)sp + GORT__CTX_OFF_CSR, &csr, 4);
    memcpy((char *)sp + GORT__CTX_OFF_CSR + 4, &cw, 2);
    uintptr_t ret = (uintptr_t)gort__ctx_trampoline;
    memcpy((char *)sp + GORT__CTX_OFF_RET, &ret, 8);
#else
    uintptr_t sp = top - GORT__CTX_FRAME;
    memset((void *)sp, 0, GORT__CTX_FRAME);
    uintptr_t ret = (uintptr_t)gort__ctx_trampoline;
    memcpy((char *)sp + GORT__CTX_OFF_X30, &ret, 8);
#endif
    return (void *)sp;
}

#endif /* GORT_ARCH_CTX_H */
