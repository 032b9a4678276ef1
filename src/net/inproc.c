#include "inproc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct queued {
    frame_buf frame;
    struct queued *next;
} queued;

struct inproc_link {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    queued *head[2], *tail[2]; /* frames waiting for each end */
    int gone[2];               /* the end has hung up */
};

borg_status inproc_create(inproc_link **out, borg_err *err)
{
    inproc_link *l = calloc(1, sizeof *l);
    if (!l)
        return borg_fail(err, BORG_ENOMEM, "out of memory for an in-process link");
    pthread_mutex_init(&l->mu, NULL);
    /* Waits are timed against the monotonic clock: a wall-clock step must
     * not stretch or cut a timeout. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = l;
    return BORG_OK;
}

borg_status inproc_send(inproc_link *l, int to, frame_buf *f, borg_err *err)
{
    if (to != 0 && to != 1)
        return borg_fail(err, BORG_EINTERNAL, "in-process send to rank %d", to);
    queued *q = malloc(sizeof *q);
    if (!q)
        return borg_fail(err, BORG_ENOMEM, "out of memory queueing a frame");
    q->frame = *f;
    q->next = NULL;
    *f = (frame_buf){0};
    pthread_mutex_lock(&l->mu);
    int gone = l->gone[to];
    if (!gone) {
        if (l->tail[to])
            l->tail[to]->next = q;
        else
            l->head[to] = q;
        l->tail[to] = q;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    if (gone) {
        frame_buf_free(&q->frame);
        free(q);
        return borg_fail(err, BORG_EPEER, "rank %d has left", to);
    }
    return BORG_OK;
}

borg_status inproc_recv(inproc_link *l, int me, frame_buf *f, double timeout_s, borg_err *err)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_s >= 0) {
        long long ns = until.tv_nsec + (long long)(timeout_s * 1e9);
        until.tv_sec += (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
    }
    borg_status st = BORG_OK;
    pthread_mutex_lock(&l->mu);
    while (!l->head[me] && !l->gone[1 - me] && !st) {
        if (timeout_s < 0)
            pthread_cond_wait(&l->cv, &l->mu);
        else if (pthread_cond_timedwait(&l->cv, &l->mu, &until) == ETIMEDOUT)
            st = BORG_EINCOMPLETE;
    }
    queued *q = l->head[me];
    if (q) {
        st = BORG_OK;
        l->head[me] = q->next;
        if (!q->next)
            l->tail[me] = NULL;
    }
    pthread_mutex_unlock(&l->mu);
    if (!q)
        return st ? st : borg_fail(err, BORG_EPEER, "rank %d has left", 1 - me);
    frame_buf_free(f);
    *f = q->frame;
    free(q);
    return BORG_OK;
}

void inproc_hangup(inproc_link *l, int me)
{
    pthread_mutex_lock(&l->mu);
    l->gone[me] = 1;
    /* Frames for an end that has left are never read. */
    for (queued *q = l->head[me], *next; q; q = next) {
        next = q->next;
        frame_buf_free(&q->frame);
        free(q);
    }
    l->head[me] = l->tail[me] = NULL;
    int last = l->gone[1 - me];
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (last) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
}
