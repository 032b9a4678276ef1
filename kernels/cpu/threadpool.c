#define _GNU_SOURCE
#include "borg/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* A forward pass calls pool_run a few hundred times per token, with only
 * a few microseconds of serial work between calls. Waking a thread blocked
 * in a futex costs tens of microseconds, which at batch 1 added up to more
 * than the matrix work, so both sides first spin for SPIN_NS on an atomic
 * and only then sleep on a condition variable. The sleep keeps an idle
 * rank (or one waiting on its neighbour in a pipeline) off the core.
 *
 * A sleeper and a waker never miss each other: the sleeper announces
 * itself (sleepers, main_waiting) before re-checking under the mutex, the
 * waker publishes its change before reading the announcement, and both are
 * sequentially consistent. */
#define SPIN_NS 200000

struct borg_pool {
    int n_threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    atomic_uint_fast64_t generation; /* bumped per pool_run so workers see new work */
    atomic_int pending;              /* workers that have not finished this generation */
    atomic_int sleepers;             /* workers blocked (or about to block) on work_ready */
    atomic_int main_waiting;         /* the caller is blocked on work_done */
    atomic_int quit;
    pool_fn fn;
    void *ctx;
    int64_t n, grain;
};

typedef struct {
    borg_pool *pool;
    int index;
} worker_arg;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* What a spinning thread waits for. */
static int work_arrived(borg_pool *p, uint64_t seen)
{
    return atomic_load_explicit(&p->generation, memory_order_acquire) != seen;
}

static int workers_done(borg_pool *p, uint64_t unused)
{
    (void)unused;
    return atomic_load_explicit(&p->pending, memory_order_acquire) == 0;
}

/* Spins until ready(p, arg) or SPIN_NS pass; returns 1 if it became ready. */
static int spin_until(int (*ready)(borg_pool *, uint64_t), borg_pool *p, uint64_t arg)
{
    double until = 0;
    for (unsigned i = 1;; i++) {
        if (ready(p, arg))
            return 1;
        cpu_relax();
        if ((i & 255) == 0) {
            double t = now_ns();
            if (until == 0)
                until = t + SPIN_NS;
            else if (t > until)
                return 0;
        }
    }
}

static void run_share(borg_pool *p, int t)
{
    int64_t blocks = (p->n + p->grain - 1) / p->grain;
    int64_t b0 = blocks * t / p->n_threads;
    int64_t b1 = blocks * (t + 1) / p->n_threads;
    int64_t begin = b0 * p->grain;
    int64_t end = b1 * p->grain < p->n ? b1 * p->grain : p->n;
    if (begin < end)
        p->fn(p->ctx, begin, end, t);
}

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    borg_pool *p = wa->pool;
    int t = wa->index;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        if (!spin_until(work_arrived, p, seen)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (!atomic_load(&p->quit) && atomic_load(&p->generation) == seen)
                pthread_cond_wait(&p->work_ready, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit))
            break;
        seen = atomic_load(&p->generation);
        run_share(p, t);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->main_waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->work_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

borg_status pool_create(int n_threads, borg_pool **out, borg_err *err)
{
    if (n_threads < 1)
        return borg_fail(err, BORG_EUSAGE, "thread count must be at least 1 (got %d)", n_threads);
    borg_pool *p = calloc(1, sizeof *p);
    if (!p)
        return borg_fail(err, BORG_ENOMEM, "out of memory creating thread pool");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_ready, NULL);
    pthread_cond_init(&p->work_done, NULL);
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            pool_destroy(p);
            return borg_fail(err, BORG_ENOMEM, "out of memory creating thread pool");
        }
    }
    for (int t = 1; t < n_threads; t++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->pool = p;
            wa->index = t;
        }
        if (!wa || pthread_create(&p->workers[t - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n_threads = t; /* only join the ones that started */
            pool_destroy(p);
            return borg_fail(err, BORG_EINTERNAL, "cannot start worker thread %d", t);
        }
    }
    *out = p;
    return BORG_OK;
}

void pool_destroy(borg_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->work_ready);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n_threads; t++)
        pthread_join(p->workers[t - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_ready);
    pthread_cond_destroy(&p->work_done);
    free(p->workers);
    free(p);
}

int pool_threads(const borg_pool *p) { return p ? p->n_threads : 1; }

void pool_run(borg_pool *p, pool_fn fn, void *ctx, int64_t n, int64_t grain)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (!p || p->n_threads == 1 || n <= grain) {
        fn(ctx, 0, n, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->grain = grain;
    atomic_store(&p->pending, p->n_threads - 1);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_ready);
        pthread_mutex_unlock(&p->mu);
    }

    run_share(p, 0);

    if (!spin_until(workers_done, p, 0)) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->main_waiting, 1);
        while (atomic_load(&p->pending) > 0)
            pthread_cond_wait(&p->work_done, &p->mu);
        atomic_store(&p->main_waiting, 0);
        pthread_mutex_unlock(&p->mu);
    }
}

int pool_default_threads(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    return 1;
}
