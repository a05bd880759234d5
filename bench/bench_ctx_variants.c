/*
 * bench_ctx_variants.c - what the register swap itself costs, four ways
 * (x86-64 only; an experiment for src/arch/x86_64/switch.S, not gort code).
 *
 * Two contexts on one thread swap back and forth N times through one of:
 *   ret_fpctl: gort's switch before commit fdfd548: push the six callee-saved
 *              registers, stmxcsr/fnstcw, swap stacks, ldmxcsr/fldcw, pop,
 *              `ret`;
 *   ret_fpcmp: gort's switch since fdfd548: as ret_fpctl, but MXCSR and the
 *              x87 control word are loaded only when they differ from the
 *              current ones (they never do here);
 *   ret:       no floating-point control state at all;
 *   ret_fpcmp2: as ret_fpcmp, but reading the saved MXCSR and CW back with
 *              loads of the same size as the stores (4 and 2 bytes): the
 *              8-byte reload in ret_fpcmp spans three smaller stores, which
 *              defeats store-to-load forwarding;
 *   jmp_fpctl, jmp_fpcmp, jmp, jmp_fpcmp2: the same, ending in
 *              `pop %rcx; jmp *%rcx` instead of `ret`. Go's gogo jumps and
 *              switches no floating-point control state (jmp).
 * A `ret` into another stack is always mispredicted: the return stack buffer
 * still holds the return address of the context that called the switch. An
 * indirect jump goes through the branch target predictor, which learns the
 * few targets a scheduler has (the return into execute on g0 and the return
 * into mcall on a goroutine). ldmxcsr and fldcw are slow, serialising
 * instructions. Result: ns per one-way swap, median of R runs; ratios are
 * ret_fpcmp (what gort does now) / variant.
 *
 * One thread, unpinned, no spin. Usage: bench_ctx_variants [-r runs] [-n swaps]
 */
#include "bench_common.h"

#if defined(__x86_64__)

typedef void (*swap_fn)(void **save_sp, void *load_sp);
void bench_swap_ret_fpctl(void **save_sp, void *load_sp);
void bench_swap_ret_fpcmp(void **save_sp, void *load_sp);
void bench_swap_ret(void **save_sp, void *load_sp);
void bench_swap_jmp_fpctl(void **save_sp, void *load_sp);
void bench_swap_jmp_fpcmp(void **save_sp, void *load_sp);
void bench_swap_jmp(void **save_sp, void *load_sp);
void bench_swap_ret_fpcmp2(void **save_sp, void *load_sp);
void bench_swap_jmp_fpcmp2(void **save_sp, void *load_sp);
void bench_swap_entry(void);
void bench_swap_body(void);

#define SAVE                                                                                       \
    "push %rbp\n push %rbx\n push %r12\n push %r13\n push %r14\n push %r15\n sub $8, %rsp\n"
#define RESTORE "add $8, %rsp\n pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbx\n pop %rbp\n"
#define SWAPSP  "mov %rsp, (%rdi)\n mov %rsi, %rsp\n"
/* Always store and load the control state. */
#define FPCTL_SAVE "stmxcsr (%rsp)\n fnstcw 4(%rsp)\n"
#define FPCTL_LOAD "ldmxcsr (%rsp)\n fldcw 4(%rsp)\n"
/* Store it, and load the other side's only if it differs (numeric label 1
 * is local to each routine). */
#define FPCMP_SAVE "movl $0, 4(%rsp)\n stmxcsr (%rsp)\n fnstcw 4(%rsp)\n movq (%rsp), %rax\n"
#define FPCMP_LOAD "cmpq (%rsp), %rax\n je 1f\n ldmxcsr (%rsp)\n fldcw 4(%rsp)\n1:\n"
/* The same check with loads of the same size as the stores they read
 * (4-byte MXCSR, 2-byte CW), so that store-to-load forwarding works; the
 * 8-byte load in FPCMP_SAVE reads three smaller stores and cannot be
 * forwarded. */
#define FPCMP2_SAVE "stmxcsr (%rsp)\n fnstcw 4(%rsp)\n movl (%rsp), %eax\n movzwl 4(%rsp), %edx\n"
#define FPCMP2_LOAD                                                                                \
    "cmpl (%rsp), %eax\n jne 2f\n cmpw 4(%rsp), %dx\n je 1f\n2:\n ldmxcsr (%rsp)\n fldcw "         \
    "4(%rsp)\n1:\n"
#define RET                 "ret\n"
#define JMP                 "pop %rcx\n jmp *%rcx\n"
#define ROUTINE(name, body) ".globl " name "\n " name ":\n" body

__asm__(".text\n" ROUTINE("bench_swap_ret_fpctl", SAVE FPCTL_SAVE SWAPSP FPCTL_LOAD RESTORE RET)
            ROUTINE("bench_swap_ret_fpcmp",
                    SAVE FPCMP_SAVE SWAPSP FPCMP_LOAD RESTORE RET) ROUTINE("bench_swap_ret",
                                                                           SAVE SWAPSP RESTORE RET)
                ROUTINE("bench_swap_jmp_fpctl", SAVE FPCTL_SAVE SWAPSP FPCTL_LOAD RESTORE JMP)
                    ROUTINE("bench_swap_jmp_fpcmp", SAVE FPCMP_SAVE SWAPSP FPCMP_LOAD RESTORE JMP)
                        ROUTINE("bench_swap_jmp", SAVE SWAPSP RESTORE JMP)
                            ROUTINE("bench_swap_ret_fpcmp2",
                                    SAVE FPCMP2_SAVE SWAPSP FPCMP2_LOAD RESTORE RET)
                                ROUTINE("bench_swap_jmp_fpcmp2",
                                        SAVE FPCMP2_SAVE SWAPSP FPCMP2_LOAD RESTORE JMP)
                                    ROUTINE("bench_swap_entry", "call bench_swap_body\n ud2\n"));

static void *main_sp, *co_sp;
static swap_fn cur_swap;
static char co_stack[64 * 1024] __attribute__((aligned(64)));

void bench_swap_body(void)
{
    for (;;)
        cur_swap(&co_sp, main_sp);
}

/* A first frame for the second context, laid out like the ones the swap
 * routines pop: [mxcsr | x87 cw | pad] r15 r14 r13 r12 rbx rbp ret. */
static void init_context(void)
{
    uintptr_t top = ((uintptr_t)(co_stack + sizeof co_stack) & ~(uintptr_t)15) - 16;
    uintptr_t *sp = (uintptr_t *)(top - 8 - 56);
    memset(sp, 0, 64);
    uint32_t csr = 0x1F80;
    uint16_t cw = 0x037F;
    memcpy(sp, &csr, 4);
    memcpy((char *)sp + 4, &cw, 2);
    sp[7] = (uintptr_t)bench_swap_entry;
    co_sp = sp;
}

static double run(swap_fn f, long n)
{
    cur_swap = f;
    init_context();
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        f(&main_sp, co_sp);
    return (double)(bench_now_ns() - t0) / (double)(2 * n);
}

int main(int argc, char **argv)
{
    int runs = BENCH_MIN_RUNS, c;
    long n = 20000000;
    while ((c = getopt(argc, argv, "r:n:h")) != -1) {
        switch (c) {
        case 'r':
            runs = bench_parse_runs(optarg);
            break;
        case 'n':
            n = bench_parse_long("-n", optarg, 1, 1000000000L);
            break;
        default:
            fprintf(stderr, "usage: %s [-r runs] [-n round trips]\n", argv[0]);
            return 2;
        }
    }
    bench_print_header("bench_ctx_variants", runs);
    bench_note("one thread, unpinned, no spin; %ld round trips (2 swaps each) per run", n);

    static const struct {
        const char *name;
        swap_fn fn;
    } v[] = {{"ctx_ret_fpctl_ns_per_swap", bench_swap_ret_fpctl},
             {"ctx_ret_fpcmp_ns_per_swap", bench_swap_ret_fpcmp},
             {"ctx_ret_ns_per_swap", bench_swap_ret},
             {"ctx_jmp_fpctl_ns_per_swap", bench_swap_jmp_fpctl},
             {"ctx_jmp_fpcmp_ns_per_swap", bench_swap_jmp_fpcmp},
             {"ctx_jmp_ns_per_swap", bench_swap_jmp},
             {"ctx_ret_fpcmp2_ns_per_swap", bench_swap_ret_fpcmp2},
             {"ctx_jmp_fpcmp2_ns_per_swap", bench_swap_jmp_fpcmp2}};
    enum { NV = sizeof v / sizeof v[0], CUR = 1 };
    double s[NV][BENCH_MAX_RUNS], med[NV];
    for (int i = 0; i < NV; i++)
        run(v[i].fn, n / 10 ? n / 10 : 1); /* warm-up, discarded */
    for (int r = 0; r < runs; r++)
        for (int i = 0; i < NV; i++)
            s[i][r] = run(v[i].fn, n);
    for (int i = 0; i < NV; i++)
        med[i] = bench_report(v[i].name, "ns", s[i], runs);
    for (int i = 0; i < NV; i++) {
        if (i == CUR)
            continue;
        char name[96];
        /* "ctx_ret_fpcmp_over_<variant>" */
        snprintf(name, sizeof name, "ctx_ret_fpcmp_over_%.*s", (int)(strlen(v[i].name) - 16),
                 v[i].name + 4);
        bench_ratio(name, med[CUR] / med[i]);
    }
    bench_print_table("bench_ctx_variants: median of runs (ratios: ret_fpcmp / variant)");
    return 0;
}

#else

int main(void)
{
    printf("# bench_ctx_variants: x86-64 only, skipped\n");
    return 0;
}

#endif
