/*
 * lockos.c - LockOSThread / UnlockOSThread, and the scheduling of locked
 * goroutines (Go's proc.go: LockOSThread, dolockOSThread, stoplockedm,
 * startlockedm, newmHandoff / templateThread).
 *
 * A locked goroutine runs only on its M and that M runs nothing else:
 *  - when the locked G stops running (parks, yields), its M does not look
 *    for other work: schedule() calls stoplockedm, which hands the P off
 *    (handoffp) and parks the M;
 *  - the G is readied like any other, into some P's queue; the M that picks
 *    it sees g->lockedm and calls startlockedm: it gives its own P to the
 *    locked M (m->nextp + one futex wake) and parks itself (stopm).
 * That is the spec's problem: every wake-up of a locked goroutine costs at
 * least two cross-thread wake-ups and a P hand-off. DedicateOSThread
 * (dedicate.c) removes it.
 *
 * Nesting: m->lockedext counts the user's calls; the G stays locked until
 * as many unlocks as locks. A goroutine that exits while locked takes its
 * thread with it (goexit0 sets m->exiting; schedule() ends the thread),
 * because it may have changed thread state (namespaces, credentials) that
 * must not leak into other goroutines. m0, the thread that called gort_main,
 * cannot end: it waits for shutdown instead.
 *
 * Template thread: a locked thread may have such changed state, so threads
 * are never created from one. While the creating M is locked, newm hands the
 * request to the template thread (started by the first LockOSThread), a
 * plain thread with the process's original state, which creates the M.
 *
 * Locks: sched.lock protects nmidlelocked, m->isidlelocked and
 * m->lockedwoken. lockedwoken makes sure a parked locked M gets exactly one
 * wake-up (from startlockedm or from shutdown); the waker also takes the M
 * off nmidlelocked (Go's incidlelocked(-1)), and an M that was handed its P
 * before it got to sleep never counts as idle, so checkdead never sees a
 * locked M in transit as asleep. newm_lock (a leaf) protects
 * the template thread's queue.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define RELAXED memory_order_relaxed

/* Go's stoplockedm: the locked G of mp is not running; give the P away and
 * wait until a scheduler hands us a P with the G runnable. Returns false at
 * shutdown. */
bool gort__stoplockedm(gort__m_t *mp)
{
    if (mp->p)
        gort__handoffp(gort__releasep(mp));
    gort__stat_add(&mp->stats.stoplockedm, 1);
    gort__lock(&gort__sched.lock);
    if (gort__shutting_down()) {
        gort__unlock(&gort__sched.lock);
        return false;
    }
    if (!mp->lockedwoken) { /* not already handed a P by startlockedm */
        mp->isidlelocked = true;
        gort__sched.nmidlelocked++;
        gort__checkdead();
    }
    gort__unlock(&gort__sched.lock);

    gort__notesleep(&mp->park);
    gort__noteclear(&mp->park);

    gort__lock(&gort__sched.lock);
    mp->lockedwoken = false; /* the waker already took us off nmidlelocked */
    gort__unlock(&gort__sched.lock);
    if (!mp->nextp)
        return false; /* shutdown */
    gort__acquirep(mp, mp->nextp);
    mp->nextp = NULL;
    if (GORT__UNLIKELY(gort__readgstatus(mp->lockedg) != Grunnable))
        gort__throw("stoplockedm: locked goroutine not runnable");
    return true;
}

/* Go's startlockedm: gp (runnable, just taken from a queue by mp) is locked
 * to another M; hand mp's P to that M. The caller then parks (stopm). */
void gort__startlockedm(gort__m_t *mp, gort__g_t *gp)
{
    gort__m_t *lmp = gp->lockedm;
    gort__stat_add(&mp->stats.startlockedm, 1);
    gort__p_t *pp = gort__releasep(mp);
    lmp->nextp = pp;
    gort__lock(&gort__sched.lock);
    if (lmp->lockedwoken)
        gort__throw("startlockedm: locked M already woken");
    lmp->lockedwoken = true;
    atomic_fetch_add_explicit(&gort__sched.progress, 1, memory_order_relaxed);
    if (lmp->isidlelocked) { /* Go's incidlelocked(-1): it runs from now on */
        lmp->isidlelocked = false;
        gort__sched.nmidlelocked--;
    }
    gort__unlock(&gort__sched.lock);
    /* release (in notewakeup): publishes nextp to the locked M. */
    gort__notewakeup(&lmp->park);
}

/* Shutdown: wake every locked M parked in stoplockedm. sched.lock held. */
void gort__wake_lockedms(void)
{
    for (gort__m_t *mp = gort__sched.allm; mp; mp = mp->alllink) {
        if (mp->isidlelocked && !mp->lockedwoken && !mp->exiting) {
            mp->lockedwoken = true;
            mp->isidlelocked = false;
            gort__sched.nmidlelocked--;
            gort__notewakeup(&mp->park);
        }
    }
}

/* ---- template thread (Go's newmHandoff) ---- */

static gort__mutex_t newm_lock;
static gort__m_t *newm_queue; /* newm_lock */
static gort__note_t newm_note;
static bool template_started; /* newm_lock */
static bool template_exit;    /* newm_lock */
static pthread_t template_thread;

static void *templatethread(void *arg)
{
    (void)arg;
    for (;;) {
        gort__notesleep(&newm_note);
        gort__lock(&newm_lock);
        gort__noteclear(&newm_note);
        gort__m_t *list = newm_queue;
        newm_queue = NULL;
        bool exit = template_exit;
        gort__unlock(&newm_lock);
        while (list) {
            gort__m_t *mp = list;
            list = mp->schedlink;
            mp->schedlink = NULL;
            gort__newosproc(mp);
        }
        if (exit)
            return NULL;
    }
}

/* Starts the template thread if it is not running (Go's
 * startTemplateThread). Called by the first LockOSThread of a run. Returns
 * 0, or -EAGAIN if it could not be created: then the caller must not lock,
 * or later threads would be cloned from its thread (Go throws). */
int gort__start_template_thread(void)
{
    gort__lock(&newm_lock);
    if (template_started) {
        gort__unlock(&newm_lock);
        return 0;
    }
    int saved = errno;
    if (pthread_create(&template_thread, NULL, templatethread, NULL) == 0)
        template_started = true;
    errno = saved;
    bool started = template_started;
    gort__unlock(&newm_lock);
    return started ? 0 : -EAGAIN;
}

bool gort__newm_via_template(gort__m_t *mp)
{
    gort__lock(&newm_lock);
    if (!template_started || template_exit) {
        gort__unlock(&newm_lock);
        return false;
    }
    bool wake = newm_queue == NULL;
    mp->schedlink = newm_queue;
    newm_queue = mp;
    gort__unlock(&newm_lock);
    if (wake)
        gort__notewakeup(&newm_note);
    return true;
}

/* Stops and joins the template thread (teardown). */
void gort__template_stop(void)
{
    gort__lock(&newm_lock);
    bool started = template_started;
    template_exit = true;
    bool wake = newm_queue == NULL;
    gort__unlock(&newm_lock);
    if (started) {
        if (wake)
            gort__notewakeup(&newm_note);
        pthread_join(template_thread, NULL);
    }
    gort__noteclear(&newm_note);
    template_started = false;
    template_exit = false;
    newm_queue = NULL;
}

/* ---- public ---- */

GORT_API int gort_lock_os_thread(void)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    gort__m_t *mp = gp->m;
    if (mp->lockedext == UINT32_MAX)
        return -EOVERFLOW;
    if (gort__start_template_thread() != 0)
        return -EAGAIN;
    mp->lockedext++;
    mp->lockedg = gp;
    gp->lockedm = mp;
    return 0;
}

GORT_API int gort_unlock_os_thread(void)
{
    gort__g_t *gp = gort__api_g();
    if (!gp)
        return -EPERM;
    gort__m_t *mp = gp->m;
    if (mp->lockedext == 0)
        return 0; /* Go: a no-op */
    mp->lockedext--;
    if (mp->lockedext == 0 && mp->lockedint == 0 && !mp->dedicated) {
        mp->lockedg = NULL;
        gp->lockedm = NULL;
    }
    return 0;
}
