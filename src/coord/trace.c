#include "borg/trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "borg/error.h"

/* Tracks named so far: rank numbers stay small (the stage ranks of one job). */
enum { MAX_NAMED = 4096 };

struct borg_trace {
    FILE *f;
    char *path;
    int64_t events;
    int dropped; /* the cap was reached */
    int failed;  /* a write failed */
    unsigned char named[MAX_NAMED];
};

int64_t trace_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

borg_status trace_open(const char *path, borg_trace **out, borg_err *err)
{
    borg_trace *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    }
    if (!(t->f = fopen(path, "w"))) {
        borg_status st = borg_fail(err, BORG_EIO, "--trace %s: %s", path, strerror(errno));
        free(t->path);
        free(t);
        return st;
    }
    t->failed = fputs("[\n", t->f) < 0;
    trace_name_rank(t, 0, "rank 0: coordinator");
    *out = t;
    return BORG_OK;
}

/* One event line; the separator goes before every event but the first. */
__attribute__((format(printf, 2, 3))) static void emit(borg_trace *t, const char *fmt, ...)
{
    if (t->dropped)
        return;
    if (t->events == TRACE_MAX_EVENTS) {
        t->dropped = 1;
        t->failed |= fprintf(t->f,
                             ",\n{\"name\":\"trace full: later events dropped\",\"ph\":\"i\",\"s\":\"g\","
                             "\"ts\":%lld,\"pid\":1,\"tid\":0}",
                             (long long)trace_now_us()) < 0;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    t->failed |= (t->events ? fputs(",\n", t->f) : 0) < 0 || vfprintf(t->f, fmt, ap) < 0;
    va_end(ap);
    t->events++;
}

/* Only letters, digits and a few marks reach a name: nothing to escape. */
static void clean(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src && *src && n + 1 < cap; src++)
        dst[n++] = (*src >= ' ' && *src != '"' && *src != '\\' && (unsigned char)*src < 0x7f) ? *src : '_';
    dst[n] = '\0';
}

void trace_name_rank(borg_trace *t, int rank, const char *name)
{
    if (!t || rank < 0 || rank >= MAX_NAMED || t->named[rank])
        return;
    t->named[rank] = 1;
    char safe[128];
    clean(safe, sizeof safe, name);
    emit(t, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"args\":{\"name\":\"%s\"}}", rank, safe);
    emit(t, "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"args\":{\"sort_index\":%d}}", rank,
         rank);
}

void trace_count_tokens(trace_span *s, const borg_batch *b)
{
    s->prefill = s->decode = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        if (b->seqs[i].n_tokens == 1)
            s->decode++;
        else
            s->prefill += b->seqs[i].n_tokens;
    }
}

void trace_batch(borg_trace *t, int track, const char *what, const trace_span *s)
{
    if (!t)
        return;
    long long dur = s->t1_us > s->t0_us ? (long long)(s->t1_us - s->t0_us) : 0;
    emit(t,
         "{\"name\":\"%s %lld\",\"cat\":\"batch\",\"ph\":\"X\",\"ts\":%lld,\"dur\":%lld,\"pid\":1,\"tid\":%d,"
         "\"args\":{\"batch\":%lld,\"prefill_tokens\":%d,\"decode_tokens\":%d}}",
         what, (long long)s->batch, (long long)s->t0_us, dur, track, (long long)s->batch, (int)s->prefill,
         (int)s->decode);
}

void trace_instant(borg_trace *t, const char *name, int64_t t_us, const char *detail)
{
    if (!t)
        return;
    char n[128], d[512];
    clean(n, sizeof n, name);
    clean(d, sizeof d, detail);
    emit(t,
         "{\"name\":\"%s\",\"cat\":\"event\",\"ph\":\"i\",\"s\":\"g\",\"ts\":%lld,\"pid\":1,\"tid\":0,"
         "\"args\":{\"detail\":\"%s\"}}",
         n, (long long)t_us, d);
}

borg_status trace_close(borg_trace *t, borg_err *err)
{
    if (!t)
        return BORG_OK;
    int bad = t->failed || fputs("\n]\n", t->f) < 0;
    bad |= fclose(t->f) != 0;
    borg_status st = bad ? borg_fail(err, BORG_EIO, "--trace %s: could not be written in full", t->path) : BORG_OK;
    free(t->path);
    free(t);
    return st;
}
