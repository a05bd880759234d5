/*
 * errors.c - the API's error returns: -EPERM for goroutine-only calls from a
 * foreign thread, -EINVAL for bad arguments (and nothing happens), -ESRCH
 * when the runtime is not running, -EBUSY for a second gort_main.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gort_util.h"

static _Atomic int ran;

static void noop(void *arg)
{
    (void)arg;
}

static int mark_main(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    return 5;
}

/* Every call that needs a goroutine, from a thread that is not one. */
static void check_foreign_eperm(void)
{
    ASSERT_EQ(gort_go(noop, NULL), -EPERM);
    gort_go_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.size = sizeof opts;
    uint64_t id = 12345;
    ASSERT_EQ(gort_go_opts(noop, NULL, &opts, &id), -EPERM);
    ASSERT_EQ(id, 12345); /* untouched */
    ASSERT_EQ(gort_yield(), -EPERM);
    ASSERT_EQ(gort_exit(), -EPERM);
    ASSERT_EQ(gort_self_id(), -EPERM);

    gort_waitgroup_t wg = GORT_WAITGROUP_INIT;
    ASSERT_EQ(gort_waitgroup_wait(&wg), -EPERM);
    /* With a non-zero counter it must fail rather than block the thread. */
    ASSERT_EQ(gort_waitgroup_add(&wg, 1), 0);
    ASSERT_EQ(gort_waitgroup_wait(&wg), -EPERM);
    ASSERT_EQ(gort_waitgroup_done(&wg), 0);
}

TEST(foreign_thread_before_main_eperm)
{
    check_foreign_eperm();
}

TEST(not_running_esrch)
{
    ASSERT_EQ(gort_gomaxprocs(), -ESRCH);
    gort_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    ASSERT_EQ(gort_stats_get(&st), -ESRCH);
    /* And again after a run has come and gone. */
    ASSERT_EQ(run_main(mark_main, NULL, 1), 5);
    ASSERT_EQ(gort_gomaxprocs(), -ESRCH);
    ASSERT_EQ(gort_stats_get(&st), -ESRCH);
}

/* ---- a plain pthread while the runtime runs ------------------------------- */

static void *foreign_thread(void *arg)
{
    (void)arg;
    check_foreign_eperm();
    /* The any-context calls work from here. */
    ASSERT_EQ(gort_gomaxprocs(), 2);
    gort_stats_t st = stats_now();
    ASSERT_EQ(st.gomaxprocs, 2);
    ASSERT_GE(st.goroutines_live, 1);
    return NULL;
}

static int foreign_main(void *arg)
{
    (void)arg;
    gort_stats_t before = stats_now();
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, foreign_thread, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    /* The rejected gort_go calls created nothing. */
    gort_stats_t after = stats_now();
    ASSERT_EQ(after.goroutines_created, before.goroutines_created);
    return 0;
}

TEST(foreign_pthread_while_running_eperm)
{
    ASSERT_EQ(run_main(foreign_main, NULL, 2), 0);
}

/* ---- gort_main's arguments -------------------------------------------------- */

static int main_with(size_t size, int gomaxprocs, size_t stack_size)
{
    gort_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = size;
    cfg.gomaxprocs = gomaxprocs;
    cfg.stack_size = stack_size;
    return gort_main(mark_main, NULL, &cfg);
}

TEST(main_rejects_null_fn)
{
    ASSERT_EQ(gort_main(NULL, NULL, NULL), -EINVAL);
    gort_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    ASSERT_EQ(gort_main(NULL, NULL, &cfg), -EINVAL);
    ASSERT_EQ(gort_gomaxprocs(), -ESRCH); /* nothing was left running */
}

TEST(main_rejects_bad_cfg_size)
{
    ASSERT_EQ(main_with(0, 1, 0), -EINVAL);
    ASSERT_EQ(main_with(1, 1, 0), -EINVAL);
    ASSERT_EQ(main_with(sizeof(size_t), 1, 0), -EINVAL);
    ASSERT_EQ(atomic_load(&ran), 0);
    /* A good call still works afterwards. */
    ASSERT_EQ(main_with(sizeof(gort_config_t), 1, 0), 5);
    ASSERT_EQ(atomic_load(&ran), 1);
}

TEST(main_rejects_bad_gomaxprocs)
{
    ASSERT_EQ(main_with(sizeof(gort_config_t), -1, 0), -EINVAL);
    ASSERT_EQ(main_with(sizeof(gort_config_t), INT_MIN, 0), -EINVAL);
    ASSERT_EQ(main_with(sizeof(gort_config_t), GORT_MAXPROCS_MAX + 1, 0), -EINVAL);
    ASSERT_EQ(main_with(sizeof(gort_config_t), INT_MAX, 0), -EINVAL);
    ASSERT_EQ(atomic_load(&ran), 0);
    ASSERT_EQ(main_with(sizeof(gort_config_t), 3, 0), 5);
    ASSERT_EQ(atomic_load(&ran), 1);
}

TEST(main_rejects_bad_stack_size)
{
    ASSERT_EQ(main_with(sizeof(gort_config_t), 1, 1), -EINVAL);
    ASSERT_EQ(main_with(sizeof(gort_config_t), 1, GORT_STACK_MIN - 1), -EINVAL);
    ASSERT_EQ(main_with(sizeof(gort_config_t), 1, GORT_STACK_MAX + 1), -EINVAL);
    ASSERT_EQ(main_with(sizeof(gort_config_t), 1, SIZE_MAX), -EINVAL);
    ASSERT_EQ(atomic_load(&ran), 0);
    ASSERT_EQ(main_with(sizeof(gort_config_t), 1, GORT_STACK_MIN), 5);
    ASSERT_EQ(atomic_load(&ran), 1);
}

/* ---- gort_go_opts' arguments ---------------------------------------------- */

static gort_waitgroup_t go_wg;
static _Atomic int64_t go_ids[2];

static void record_id(void *arg)
{
    atomic_store(&go_ids[(uintptr_t)arg], gort_self_id());
    ASSERT_EQ(gort_waitgroup_done(&go_wg), 0);
}

static int go_opts_main(void *arg)
{
    (void)arg;
    gort_stats_t before = stats_now();
    gort_go_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.size = sizeof opts;
    const size_t bad[] = {1, GORT_STACK_MIN - 1, GORT_STACK_MAX + 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t id = 777;
        opts.stack_size = bad[i];
        ASSERT_EQ(gort_go_opts(noop, NULL, &opts, &id), -EINVAL);
        ASSERT_EQ(id, 777);
    }
    opts.stack_size = 0;
    opts.size = 0;
    ASSERT_EQ(gort_go_opts(noop, NULL, &opts, NULL), -EINVAL);
    opts.size = sizeof opts;
    ASSERT_EQ(gort_go_opts(NULL, NULL, &opts, NULL), -EINVAL);
    ASSERT_EQ(gort_go(NULL, NULL), -EINVAL);
    gort_stats_t mid = stats_now();
    ASSERT_EQ(mid.goroutines_created, before.goroutines_created);

    /* The edges of the valid range work, and id_out names the goroutine. */
    ASSERT_EQ(gort_waitgroup_add(&go_wg, 2), 0);
    uint64_t id0 = 0, id1 = 0;
    opts.stack_size = GORT_STACK_MIN;
    ASSERT_EQ(gort_go_opts(record_id, (void *)0, &opts, &id0), 0);
    opts.stack_size = 0; /* the default */
    ASSERT_EQ(gort_go_opts(record_id, (void *)1, &opts, &id1), 0);
    ASSERT_EQ(gort_waitgroup_wait(&go_wg), 0);
    ASSERT_GT(id0, 1);
    ASSERT_GT(id1, 1);
    ASSERT_NE(id0, id1);
    ASSERT_EQ(atomic_load(&go_ids[0]), id0);
    ASSERT_EQ(atomic_load(&go_ids[1]), id1);
    gort_stats_t after = stats_now();
    ASSERT_EQ(after.goroutines_created - before.goroutines_created, 2);
    return 0;
}

TEST(go_opts_rejects_bad_args)
{
    ASSERT_EQ(run_main(go_opts_main, NULL, 2), 0);
}

/* ---- a second gort_main while one runs ------------------------------------ */

static int nested_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_main(mark_main, NULL, NULL), -EBUSY);
    return 0;
}

TEST(main_from_goroutine_ebusy)
{
    ASSERT_EQ(run_main(nested_main, NULL, 1), 0);
    ASSERT_EQ(atomic_load(&ran), 0);
}

static void *main_again_thread(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_main(mark_main, NULL, NULL), -EBUSY);
    return NULL;
}

static int busy_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, main_again_thread, NULL), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    return 0;
}

TEST(main_from_other_thread_ebusy)
{
    ASSERT_EQ(run_main(busy_main, NULL, 2), 0);
    ASSERT_EQ(atomic_load(&ran), 0);
}

/* ---- gort_stats_get's arguments --------------------------------------------- */

static int stats_args_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(gort_stats_get(NULL), -EINVAL);
    gort_stats_t st;
    const size_t small[] = {0, 1, sizeof(size_t)};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        memset(&st, 0xa5, sizeof st);
        st.size = small[i];
        ASSERT_EQ(gort_stats_get(&st), -EINVAL);
        /* Nothing past size was written. */
        const unsigned char *p = (const unsigned char *)&st + sizeof st.size;
        for (size_t b = 0; b < sizeof st - sizeof st.size; b++)
            ASSERT_EQ(p[b], 0xa5);
    }
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    ASSERT_EQ(gort_stats_get(&st), 0);
    ASSERT_EQ(st.gomaxprocs, 1);
    return 0;
}

TEST(stats_get_rejects_bad_args)
{
    ASSERT_EQ(run_main(stats_args_main, NULL, 1), 0);
}

/* ---- gort_version and gort_strerror --------------------------------------- */

#define STR2(x) #x
#define STR(x)  STR2(x)

TEST(version_and_strerror)
{
    ASSERT_TRUE(strcmp(gort_version(), STR(GORT_VERSION_MAJOR) "." STR(GORT_VERSION_MINOR) "." STR(
                                           GORT_VERSION_PATCH)) == 0);
    const int errs[] = {-EPERM, -EINVAL, -ESRCH, -EBUSY, -ENOMEM, -EAGAIN, -EOVERFLOW};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        const char *s = gort_strerror(errs[i]);
        ASSERT_TRUE(s != NULL && s[0] != '\0');
    }
    ASSERT_TRUE(strcmp(gort_strerror(-EPERM), gort_strerror(-EINVAL)) != 0);
    ASSERT_TRUE(gort_strerror(0) != NULL);
    ASSERT_TRUE(gort_strerror(-123456) != NULL);
    ASSERT_TRUE(gort_strerror(42) != NULL);
}
