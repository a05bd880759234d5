/*
 * regs.c - what a goroutine switch must preserve: the callee-saved registers
 * (x86-64: rbx, r12-r15; aarch64: x19-x28, d8-d15) and the floating-point
 * control state (x86-64: the MXCSR and x87 control words; aarch64: FPCR),
 * which is per goroutine.
 *
 * Both tests run with one P so that the goroutines take turns on the same
 * thread: a switch that forgot a register would hand one goroutine's value
 * to the next. Each goroutine counts the turns in which another goroutine
 * ran between its yield and its return, so the test cannot pass without
 * switches.
 */
#include <fenv.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gort_util.h"

#define REG_GOROUTINES 4 /* including main */
#define REG_ITERS      2000

/* Ticks: incremented by every goroutine on every iteration. */
static _Atomic uint64_t ticks;
static gort_waitgroup_t reg_wg;

#if defined(__x86_64__)
#define NREGS 5 /* rbx r12 r13 r14 r15 */
static const char *const reg_names[NREGS] = {"rbx", "r12", "r13", "r14", "r15"};

/* void test_regs_yield(const uint64_t in[NREGS], uint64_t out[NREGS], uint64_t n):
 * loads the callee-saved registers from in, calls gort_yield n times (n > 0),
 * stores the registers to out, and restores the caller's values. */
__asm__(".text\n"
        ".p2align 4\n"
        ".type test_regs_yield, @function\n"
        "test_regs_yield:\n"
#if defined(__CET__)
        "    endbr64\n"
#endif
        "    pushq %rbp\n"
        "    movq %rsp, %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $24, %rsp\n" /* 16-byte aligned at the call */
        "    movq %rsi, 0(%rsp)\n"
        "    movq %rdx, 8(%rsp)\n"
        "    movq 0(%rdi), %rbx\n"
        "    movq 8(%rdi), %r12\n"
        "    movq 16(%rdi), %r13\n"
        "    movq 24(%rdi), %r14\n"
        "    movq 32(%rdi), %r15\n"
        "1:  call gort_yield@PLT\n"
        "    decq 8(%rsp)\n"
        "    jnz 1b\n"
        "    movq 0(%rsp), %rsi\n"
        "    movq %rbx, 0(%rsi)\n"
        "    movq %r12, 8(%rsi)\n"
        "    movq %r13, 16(%rsi)\n"
        "    movq %r14, 24(%rsi)\n"
        "    movq %r15, 32(%rsi)\n"
        "    addq $24, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size test_regs_yield, .-test_regs_yield\n");
#define HAVE_REGS 1
#elif defined(__aarch64__)
#define NREGS     18 /* x19-x28 d8-d15 */
static const char *const reg_names[NREGS] = {"x19", "x20", "x21", "x22", "x23", "x24",
                                             "x25", "x26", "x27", "x28", "d8",  "d9",
                                             "d10", "d11", "d12", "d13", "d14", "d15"};
__asm__(".text\n"
        ".p2align 4\n"
        ".type test_regs_yield, %function\n"
        "test_regs_yield:\n"
        "    stp x29, x30, [sp, #-176]!\n"
        "    mov x29, sp\n"
        "    stp x19, x20, [sp, #16]\n"
        "    stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n"
        "    stp x25, x26, [sp, #64]\n"
        "    stp x27, x28, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    stp x1, x2, [sp, #160]\n"
        "    ldp x19, x20, [x0, #0]\n"
        "    ldp x21, x22, [x0, #16]\n"
        "    ldp x23, x24, [x0, #32]\n"
        "    ldp x25, x26, [x0, #48]\n"
        "    ldp x27, x28, [x0, #64]\n"
        "    ldp d8, d9, [x0, #80]\n"
        "    ldp d10, d11, [x0, #96]\n"
        "    ldp d12, d13, [x0, #112]\n"
        "    ldp d14, d15, [x0, #128]\n"
        "1:  bl gort_yield\n"
        "    ldr x2, [sp, #168]\n"
        "    subs x2, x2, #1\n"
        "    str x2, [sp, #168]\n"
        "    b.ne 1b\n"
        "    ldr x1, [sp, #160]\n"
        "    stp x19, x20, [x1, #0]\n"
        "    stp x21, x22, [x1, #16]\n"
        "    stp x23, x24, [x1, #32]\n"
        "    stp x25, x26, [x1, #48]\n"
        "    stp x27, x28, [x1, #64]\n"
        "    stp d8, d9, [x1, #80]\n"
        "    stp d10, d11, [x1, #96]\n"
        "    stp d12, d13, [x1, #112]\n"
        "    stp d14, d15, [x1, #128]\n"
        "    ldp x19, x20, [sp, #16]\n"
        "    ldp x21, x22, [sp, #32]\n"
        "    ldp x23, x24, [sp, #48]\n"
        "    ldp x25, x26, [sp, #64]\n"
        "    ldp x27, x28, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp x29, x30, [sp], #176\n"
        "    ret\n"
        ".size test_regs_yield, .-test_regs_yield\n");
#define HAVE_REGS 1
#else
#define HAVE_REGS 0
#endif

#if HAVE_REGS
void test_regs_yield(const uint64_t *in, uint64_t *out, uint64_t n);

/* Runs the register check as goroutine `who`; returns the number of
 * iterations in which another goroutine ran during the yields. */
static uint64_t reg_loop(uint64_t who)
{
    uint64_t interleaved = 0;
    for (uint64_t it = 0; it < REG_ITERS; it++) {
        uint64_t in[NREGS], out[NREGS];
        for (int r = 0; r < NREGS; r++)
            in[r] = (0x9e3779b97f4a7c15ull * (who + 1)) ^ ((uint64_t)r << 56) ^ (it << 8) ^ who;
        uint64_t t0 = atomic_fetch_add(&ticks, 1) + 1;
        test_regs_yield(in, out, 1 + it % 3);
        if (atomic_load(&ticks) != t0)
            interleaved++;
        for (int r = 0; r < NREGS; r++) {
            if (out[r] != in[r]) {
                test_log("goroutine %llu iteration %llu: %s changed across gort_yield",
                         (unsigned long long)who, (unsigned long long)it, reg_names[r]);
                ASSERT_EQ(out[r], in[r]);
            }
        }
    }
    return interleaved;
}

static void reg_goroutine(void *arg)
{
    uint64_t interleaved = reg_loop((uint64_t)(uintptr_t)arg);
    ASSERT_GE(interleaved, REG_ITERS / 2);
    ASSERT_EQ(gort_waitgroup_done(&reg_wg), 0);
}

static int reg_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&reg_wg, REG_GOROUTINES - 1), 0);
    for (uintptr_t g = 1; g < REG_GOROUTINES; g++)
        ASSERT_EQ(gort_go(reg_goroutine, (void *)g), 0);
    uint64_t interleaved = reg_loop(0);
    ASSERT_EQ(gort_waitgroup_wait(&reg_wg), 0);
    ASSERT_GE(interleaved, REG_ITERS / 2);
    return 0;
}
#endif

TEST(callee_saved_registers_survive_yield)
{
#if HAVE_REGS
    ASSERT_EQ(run_main(reg_main, NULL, 1), 0);
#else
    TEST_SKIP("no register test for this architecture");
#endif
}

/* ---- floating-point control ---------------------------------------------- */

struct fpctl {
    int round;     /* fegetround() */
    uint64_t ctl1; /* x86-64: MXCSR without the exception flags; aarch64: FPCR */
    uint64_t ctl2; /* x86-64: x87 control word; aarch64: 0 */
};

#if defined(__x86_64__)
#define HAVE_FPCTL 1
static struct fpctl fp_read(void)
{
    struct fpctl s;
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    s.round = fegetround();
    s.ctl1 = mxcsr & ~0x3fu; /* bits 0-5 are sticky exception flags */
    s.ctl2 = cw;
    return s;
}
/* The rounding mode as the hardware holds it, in FE_* terms. */
static void fp_check_mode(struct fpctl s, int mode)
{
    ASSERT_EQ((s.ctl1 >> 13) & 3, (unsigned)mode >> 10); /* MXCSR.RC */
    ASSERT_EQ((s.ctl2 >> 10) & 3, (unsigned)mode >> 10); /* x87 CW.RC */
}
#elif defined(__aarch64__)
#define HAVE_FPCTL 1
static struct fpctl fp_read(void)
{
    struct fpctl s;
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    s.round = fegetround();
    s.ctl1 = fpcr;
    s.ctl2 = 0;
    return s;
}
static void fp_check_mode(struct fpctl s, int mode)
{
    ASSERT_EQ((s.ctl1 >> 22) & 3, (unsigned)mode >> 22); /* FPCR.RMode */
}
#else
#define HAVE_FPCTL 0
#endif

#if HAVE_FPCTL
static const int fp_modes[REG_GOROUTINES] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
static gort_waitgroup_t fp_wg;

static uint64_t fp_loop(int who)
{
    int mode = fp_modes[who];
    ASSERT_EQ(fesetround(mode), 0);
    struct fpctl mine = fp_read();
    ASSERT_EQ(mine.round, mode);
    fp_check_mode(mine, mode);
    uint64_t interleaved = 0;
    for (int it = 0; it < REG_ITERS; it++) {
        uint64_t t0 = atomic_fetch_add(&ticks, 1) + 1;
        ASSERT_EQ(gort_yield(), 0);
        if (atomic_load(&ticks) != t0)
            interleaved++;
        struct fpctl now = fp_read();
        if (now.round != mode || now.ctl1 != mine.ctl1 || now.ctl2 != mine.ctl2) {
            test_log("goroutine %d iteration %d: FP control changed across gort_yield: "
                     "round %d -> %d, ctl 0x%llx -> 0x%llx, 0x%llx -> 0x%llx",
                     who, it, mode, now.round, (unsigned long long)mine.ctl1,
                     (unsigned long long)now.ctl1, (unsigned long long)mine.ctl2,
                     (unsigned long long)now.ctl2);
            ASSERT_EQ(now.round, mode);
            ASSERT_EQ(now.ctl1, mine.ctl1);
            ASSERT_EQ(now.ctl2, mine.ctl2);
        }
    }
    fesetround(FE_TONEAREST);
    return interleaved;
}

static void fp_goroutine(void *arg)
{
    uint64_t interleaved = fp_loop((int)(uintptr_t)arg);
    ASSERT_GE(interleaved, REG_ITERS / 2);
    ASSERT_EQ(gort_waitgroup_done(&fp_wg), 0);
}

static int fp_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_waitgroup_add(&fp_wg, REG_GOROUTINES - 1), 0);
    for (uintptr_t g = 1; g < REG_GOROUTINES; g++)
        ASSERT_EQ(gort_go(fp_goroutine, (void *)g), 0);
    uint64_t interleaved = fp_loop(0);
    ASSERT_EQ(gort_waitgroup_wait(&fp_wg), 0);
    ASSERT_GE(interleaved, REG_ITERS / 2);
    return 0;
}
#endif

TEST(fp_control_is_per_goroutine)
{
#if HAVE_FPCTL
    ASSERT_EQ(run_main(fp_main, NULL, 1), 0);
#else
    TEST_SKIP("no FP control test for this architecture");
#endif
}
