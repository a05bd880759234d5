/*
 * tls.c - the runtime's only thread-local: the current M.
 *
 * A goroutine may park on one thread and resume on another, so a compiler
 * must never be allowed to cache the address of a thread-local across a
 * goroutine switch. Every read therefore goes through these noinline
 * functions: each call computes the TLS address afresh on the thread that
 * makes it. Nothing else in the library declares a _Thread_local.
 */
#include "internal.h"

static _Thread_local gort__m_t *tls_m;

GORT__NOINLINE gort__m_t *gort__getm(void)
{
    return tls_m;
}

GORT__NOINLINE void gort__setm(gort__m_t *mp)
{
    tls_m = mp;
}

GORT__NOINLINE gort__g_t *gort__getg(void)
{
    gort__m_t *mp = tls_m;
    return mp ? atomic_load_explicit(&mp->curg, memory_order_relaxed) : NULL;
}
