#define _GNU_SOURCE
#include "borg/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

struct borg_pool {
    int n_threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    uint64_t generation; /* bumped per pool_run so workers see new work */
    int pending;         /* workers that have not finished this generation */
    int quit;
    pool_fn fn;
    void *ctx;
    int64_t n, grain;
};

typedef struct {
    borg_pool *pool;
    int index;
} worker_arg;

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
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen)
            pthread_cond_wait(&p->work_ready, &p->mu);
        if (p->quit)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_share(p, t);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->work_done);
    }
    pthread_mutex_unlock(&p->mu);
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
    p->quit = 1;
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
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->grain = grain;
    p->pending = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->work_ready);
    pthread_mutex_unlock(&p->mu);

    run_share(p, 0);

    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->work_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
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
