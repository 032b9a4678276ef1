#define _GNU_SOURCE /* memmem */
#include "borg/requests.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Big enough that short generations never grow their text. */
enum { TEXT_MIN_CAP = 256 };

struct borg_requests {
    borg_request *slots; /* request num in slots[num % cap] */
    int64_t cap;
    int64_t n_open;
};

static borg_request *slot_of(const borg_requests *r, int64_t num) { return &r->slots[num % r->cap]; }

static void request_release(borg_request *q)
{
    job_free(&q->job);
    free(q->prompt_lp);
    free(q->text);
    free(q->gen_lp);
    free(q->embed_sum);
    free(q->embedding);
    memset(q, 0, sizeof *q);
}

borg_status requests_create(int64_t cap, borg_requests **out, borg_err *err)
{
    *out = NULL;
    if (cap < 1 || (uint64_t)cap > SIZE_MAX / sizeof(borg_request))
        return borg_fail(err, BORG_EINTERNAL, "a request ring of %lld slots cannot be made", (long long)cap);
    borg_requests *r = calloc(1, sizeof *r);
    if (!r || !(r->slots = calloc((size_t)cap, sizeof *r->slots))) {
        free(r);
        return borg_fail(err, BORG_ENOMEM, "out of memory for a ring of %lld requests", (long long)cap);
    }
    r->cap = cap;
    *out = r;
    return BORG_OK;
}

void requests_free(borg_requests *r)
{
    if (!r)
        return;
    for (int64_t i = 0; i < r->cap; i++)
        if (r->slots[i].open)
            request_release(&r->slots[i]);
    free(r->slots);
    free(r);
}

int64_t requests_cap(const borg_requests *r) { return r->cap; }

int64_t requests_n_open(const borg_requests *r) { return r->n_open; }

int requests_can_open(const borg_requests *r, int64_t num) { return num >= 0 && !slot_of(r, num)->open; }

borg_status requests_open(borg_requests *r, int64_t num, borg_job *job, double t_read, borg_request **out,
                          borg_err *err)
{
    if (out)
        *out = NULL;
    if (num < 0)
        return borg_fail(err, BORG_EINTERNAL, "request number %lld is negative", (long long)num);
    borg_request *q = slot_of(r, num);
    if (q->open)
        return borg_fail(err, BORG_EINTERNAL, "request %lld: its ring slot still holds request %lld", (long long)num,
                         (long long)q->num);
    memset(q, 0, sizeof *q);
    q->job = *job;
    memset(job, 0, sizeof *job);
    q->num = num;
    q->open = 1;
    q->t_read = t_read;
    r->n_open++;
    if (out)
        *out = q;
    return BORG_OK;
}

borg_request *requests_get(borg_requests *r, int64_t num)
{
    if (num < 0)
        return NULL;
    borg_request *q = slot_of(r, num);
    return q->open && q->num == num ? q : NULL;
}

borg_request *requests_next(borg_requests *r, int64_t *cursor)
{
    /* The cursor is past the slot returned, so closing that request cannot disturb the walk. */
    for (int64_t i = *cursor < 0 ? 0 : *cursor; i < r->cap; i++)
        if (r->slots[i].open) {
            *cursor = i + 1;
            return &r->slots[i];
        }
    *cursor = r->cap;
    return NULL;
}

void requests_close(borg_requests *r, int64_t num)
{
    borg_request *q = requests_get(r, num);
    if (!q)
        return;
    request_release(q);
    r->n_open--;
}

borg_status request_admit(borg_request *q, size_t n_prompt, int32_t slot_ctx, borg_err *why)
{
    const borg_job *job = &q->job;
    if (n_prompt == 0)
        return borg_fail(why, BORG_EINPUT, "line %ld: the prompt has no tokens", job->line);
    if (slot_ctx < 0 || n_prompt >= (size_t)slot_ctx)
        return borg_fail(why, BORG_EINPUT,
                         "line %ld: the prompt is %zu tokens; the context holds %d (prompt plus at least one "
                         "generated token)",
                         job->line, n_prompt, (int)slot_ctx);
    float *lp = NULL;
    if (job->prompt_logprobs) {
        if (!(lp = malloc(sizeof *lp * n_prompt)))
            return borg_fail(why, BORG_ENOMEM, "out of memory for the prompt log-probabilities of line %ld", job->line);
        for (size_t i = 0; i < n_prompt; i++)
            lp[i] = NAN;
    }
    /* Admitting again (a replay) starts the scores afresh rather than leaking the old ones. */
    free(q->prompt_lp);
    q->prompt_lp = lp;
    q->n_prompt = (int32_t)n_prompt;
    return BORG_OK;
}

borg_status request_check_ids(const borg_request *q, int32_t n_vocab, borg_err *why)
{
    const borg_job *job = &q->job;
    for (size_t i = 0; i < job->n_prompt_ids; i++)
        if (job->prompt_ids[i] < 0 || job->prompt_ids[i] >= n_vocab)
            return borg_fail(why, BORG_EINPUT, "line %ld: token id %d is outside the vocabulary (0..%d)", job->line,
                             (int)job->prompt_ids[i], (int)n_vocab - 1);
    return BORG_OK;
}

/* Makes room for n more bytes and the NUL, doubling so that a long
 * generation costs amortized constant time per byte. */
static borg_status text_reserve(borg_request *q, size_t n, borg_err *err)
{
    if (n > SIZE_MAX - 1 - q->text_len)
        return borg_fail(err, BORG_ENOMEM, "the text of '%s' would not fit in memory", q->job.id ? q->job.id : "?");
    size_t need = q->text_len + n + 1;
    if (need <= q->text_cap)
        return BORG_OK;
    size_t cap = q->text_cap ? q->text_cap : TEXT_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *t = realloc(q->text, cap);
    if (!t)
        return borg_fail(err, BORG_ENOMEM, "out of memory for the text of '%s' (%zu bytes)",
                         q->job.id ? q->job.id : "?", need);
    q->text = t;
    q->text_cap = cap;
    return BORG_OK;
}

/* Where the earliest stop string now starts in the text, or -1. Only
 * matches that end in bytes added since old_len are new (older ones would
 * have stopped the request already), so each stop string scans just the
 * tail from old_len - strlen + 1: the work per token does not grow with
 * the text. */
static long stop_at(const borg_request *q, size_t old_len)
{
    long best = -1;
    for (int i = 0; i < q->job.n_stop; i++) {
        const char *stop = q->job.stop[i];
        size_t sl = stop ? strlen(stop) : 0;
        if (sl == 0 || q->text_len < sl)
            continue;
        size_t from = old_len >= sl ? old_len - sl + 1 : 0;
        if (best >= 0 && from >= (size_t)best)
            continue; /* cannot start earlier than the match already found */
        const char *hit = memmem(q->text + from, q->text_len - from, stop, sl);
        if (hit && (best < 0 || hit - q->text < best))
            best = hit - q->text;
    }
    return best;
}

borg_status request_token(borg_request *q, const char *piece, size_t piece_len, int is_eog, int context_full,
                          float logprob, double now_ms, req_verdict *verdict, borg_err *err)
{
    *verdict = REQ_GOES_ON;
    if (q->job.max_tokens == 0) {
        *verdict = REQ_LENGTH; /* only scored: the token sampled after the prompt is not wanted */
        return BORG_OK;
    }
    int ends = is_eog && !q->job.ignore_eos;
    borg_status st = !ends && piece_len ? text_reserve(q, piece_len, err) : BORG_OK;
    if (!st && q->n_gen == q->cap_lp) {
        int32_t cap = q->cap_lp ? 2 * q->cap_lp : 64;
        float *lp = realloc(q->gen_lp, sizeof *lp * (size_t)cap);
        if (!lp)
            st = borg_fail(err, BORG_ENOMEM, "out of memory for the log-probabilities of '%s'",
                           q->job.id ? q->job.id : "?");
        else
            q->gen_lp = lp, q->cap_lp = cap;
    }
    if (st)
        return st;
    q->gen_lp[q->n_gen] = logprob;
    /* Counted by step rather than by a zero t_first, so a clock that reads 0 cannot set it twice. */
    if (++q->n_gen == 1)
        q->t_first = now_ms;
    if (ends) {
        *verdict = REQ_STOP;
        return BORG_OK;
    }
    size_t old_len = q->text_len;
    if (piece_len) {
        memcpy(q->text + q->text_len, piece, piece_len);
        q->text_len += piece_len;
        q->text[q->text_len] = '\0';
    }
    long cut = q->text_len > old_len ? stop_at(q, old_len) : -1;
    if (cut >= 0) {
        q->text_len = (size_t)cut;
        q->text[cut] = '\0';
        *verdict = REQ_STOP;
    } else if ((q->job.max_tokens >= 0 && q->n_gen >= q->job.max_tokens) || context_full)
        *verdict = REQ_LENGTH;
    return BORG_OK;
}

void request_score(borg_request *q, int32_t pos, float logprob)
{
    if (q->prompt_lp && pos >= 0 && pos < q->n_prompt)
        q->prompt_lp[pos] = logprob;
}

int request_overdue(const borg_request *q, double now_ms)
{
    return q->job.timeout_s > 0 && now_ms - q->t_read > q->job.timeout_s * 1e3;
}

borg_status request_embed_row(borg_request *q, int32_t pos, const float *row, int dim, borg_err *err)
{
    if (!q->job.embed || q->embedding || pos != q->embed_next || pos >= q->n_prompt || dim < 1)
        return BORG_OK;
    if (!q->embed_sum) {
        if (!(q->embed_sum = calloc((size_t)dim, sizeof *q->embed_sum)))
            return borg_fail(err, BORG_ENOMEM, "out of memory for the embedding of '%s'", q->job.id);
        q->dim = dim;
    }
    if (dim != q->dim)
        return borg_fail(err, BORG_EINTERNAL, "rows of width %d and %d for the embedding of '%s'", q->dim, dim,
                         q->job.id);
    int last = pos == q->n_prompt - 1;
    if (q->job.embed == JOB_POOL_MEAN || last)
        for (int i = 0; i < dim; i++)
            q->embed_sum[i] = q->job.embed == JOB_POOL_MEAN ? q->embed_sum[i] + row[i] : row[i];
    q->embed_next++;
    if (!last)
        return BORG_OK;
    float *e = malloc(sizeof *e * (size_t)dim);
    if (!e)
        return borg_fail(err, BORG_ENOMEM, "out of memory for the embedding of '%s'", q->job.id);
    double n = q->job.embed == JOB_POOL_MEAN ? q->n_prompt : 1, norm = 0;
    for (int i = 0; i < dim; i++)
        norm += (q->embed_sum[i] / n) * (q->embed_sum[i] / n);
    norm = sqrt(norm);
    for (int i = 0; i < dim; i++)
        e[i] = (float)(norm > 0 ? q->embed_sum[i] / n / norm : 0);
    q->embedding = e;
    return BORG_OK;
}
