/* A fixed pool of worker threads for data-parallel kernels.
 *
 * pool_run splits [0, n) into one contiguous range per thread and blocks
 * until all are done. Between calls workers spin briefly (the next call of
 * a forward pass comes within microseconds), then sleep on a condition
 * variable, so an idle rank does not burn a core. */
#ifndef BORG_THREADPOOL_H
#define BORG_THREADPOOL_H

#include <stdint.h>

#include "borg/error.h"

typedef struct borg_pool borg_pool;

/* fn(ctx, begin, end, thread_index) processes items [begin, end). */
typedef void (*pool_fn)(void *ctx, int64_t begin, int64_t end, int thread);

/* n_threads >= 1; the calling thread counts as one of them. */
borg_status pool_create(int n_threads, borg_pool **out, borg_err *err);
void pool_destroy(borg_pool *p);
int pool_threads(const borg_pool *p);

/* Runs fn over [0, n) split across the threads; a NULL pool runs inline.
 * grain rounds each range to a multiple of it (except the last). */
void pool_run(borg_pool *p, pool_fn fn, void *ctx, int64_t n, int64_t grain);

/* Number of CPUs this process may run on (its affinity mask). */
int pool_default_threads(void);

#endif
