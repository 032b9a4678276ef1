#include "borg/stage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "borg/sampler.h"
#include "borg/threadpool.h"

/* Rows whose logits are held at once when scoring a prompt: the output
 * head's pass over the weights is shared by this many tokens, and a large
 * vocabulary's logits stay a few MiB. */
enum { SCORE_ROWS = 16 };

struct borg_stage {
    stage_config cfg;
    const backend_ops *be;
    backend_state *compute;
    borg_sampler **samplers; /* one per host thread */
    int n_samplers;
    int32_t *slot, *pos; /* per token of the current batch */
    int cap_tokens;
    float *rows;      /* hidden states of the sampled tokens */
    float *logits;    /* one row per sampled sequence */
    int *sampled_seq; /* the batch's sequence of each sampled row */
    int cap_rows;
};

borg_status stage_create(const gguf_file *f, const stage_config *cfg, borg_stage **out, borg_err *err)
{
    borg_stage *s = calloc(1, sizeof *s);
    if (!s)
        return borg_fail(err, BORG_ENOMEM, "out of memory creating a stage");
    s->cfg = *cfg;
    s->be = &backend_cpu;
    borg_status st = s->be->create(f, cfg, &s->compute, err);
    if (!st && cfg->last) {
        int n = pool_threads(s->be->host_pool(s->compute));
        if (!(s->samplers = calloc((size_t)n, sizeof *s->samplers)))
            st = borg_fail(err, BORG_ENOMEM, "out of memory for %d samplers", n);
        for (; !st && s->n_samplers < n; s->n_samplers++)
            st = sampler_create(s->be->hparams(s->compute)->n_vocab, &s->samplers[s->n_samplers], err);
    }
    if (st) {
        stage_free(s);
        return st;
    }
    *out = s;
    return BORG_OK;
}

void stage_free(borg_stage *s)
{
    if (!s)
        return;
    if (s->compute)
        s->be->destroy(s->compute);
    for (int i = 0; i < s->n_samplers; i++)
        sampler_free(s->samplers[i]);
    free(s->samplers);
    free(s->slot);
    free(s->pos);
    free(s->rows);
    free(s->logits);
    free(s->sampled_seq);
    free(s);
}

const borg_hparams *stage_hp(const borg_stage *s) { return s->be->hparams(s->compute); }

size_t stage_weight_bytes(const borg_stage *s) { return s->be->weight_bytes(s->compute); }

static borg_status reserve_tokens(borg_stage *s, int n, borg_err *err)
{
    if (n <= s->cap_tokens)
        return BORG_OK;
    int32_t *slot = realloc(s->slot, sizeof *slot * (size_t)n);
    if (slot)
        s->slot = slot;
    int32_t *pos = slot ? realloc(s->pos, sizeof *pos * (size_t)n) : NULL;
    if (!pos)
        return borg_fail(err, BORG_ENOMEM, "out of memory for a batch of %d tokens", n);
    s->pos = pos;
    s->cap_tokens = n;
    return BORG_OK;
}

borg_status stage_forward(borg_stage *s, const borg_batch *b, float *x, borg_err *err)
{
    borg_status st = reserve_tokens(s, b->n_tokens, err);
    if (st)
        return st;
    int t = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        const batch_seq *q = &b->seqs[i];
        if (q->n_tokens < 1 || q->pos < 0 || t + q->n_tokens > b->n_tokens)
            return borg_fail(err, BORG_EINPUT, "batch %lld: sequence %d has a bad token range", (long long)b->id, i);
        for (int j = 0; j < q->n_tokens; j++, t++) {
            s->slot[t] = q->slot;
            s->pos[t] = q->pos + j;
        }
    }
    if (t != b->n_tokens)
        return borg_fail(err, BORG_EINPUT, "batch %lld: sequences cover %d of %d tokens", (long long)b->id, t,
                         b->n_tokens);
    if (s->cfg.first && (st = s->be->embed(s->compute, b->tokens, b->n_tokens, x, err)))
        return st;
    return s->be->forward(s->compute, x, s->slot, s->pos, b->n_tokens, err);
}

static borg_status reserve_rows(borg_stage *s, int n, borg_err *err)
{
    const borg_hparams *hp = stage_hp(s);
    if (n <= s->cap_rows)
        return BORG_OK;
    float *rows = realloc(s->rows, sizeof(float) * (size_t)n * hp->dim);
    if (rows)
        s->rows = rows;
    float *logits = rows ? realloc(s->logits, sizeof(float) * (size_t)n * hp->n_vocab) : NULL;
    if (logits)
        s->logits = logits;
    int *seq = logits ? realloc(s->sampled_seq, sizeof *seq * (size_t)n) : NULL;
    if (!seq)
        return borg_fail(err, BORG_ENOMEM, "out of memory for logits of %d rows", n);
    s->sampled_seq = seq;
    s->cap_rows = n;
    return BORG_OK;
}

/* log softmax(logits)[target], in double for the sum. */
static float log_prob(const float *logits, int n, int32_t target)
{
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - mx);
    return (float)((double)logits[target] - mx - log(sum));
}

/* The scores of sequence q, whose tokens start at t0 in the batch: token
 * j's hidden state predicts token j + 1, the last one next_token. */
static borg_status score_seq(borg_stage *s, const borg_batch *b, const batch_seq *q, int t0, const float *x,
                             batch_result *out, int *k, borg_err *err)
{
    const borg_hparams *hp = stage_hp(s);
    int n = q->next_token >= 0 ? q->n_tokens : q->n_tokens - 1;
    for (int j0 = 0; j0 < n; j0 += SCORE_ROWS) {
        int m = n - j0 < SCORE_ROWS ? n - j0 : SCORE_ROWS;
        borg_status st = s->be->logits(s->compute, x + (size_t)(t0 + j0) * hp->dim, m, s->logits, err);
        if (st)
            return st;
        for (int j = j0; j < j0 + m; j++) {
            int32_t target = j + 1 < q->n_tokens ? b->tokens[t0 + j + 1] : q->next_token;
            if (target < 0 || target >= hp->n_vocab)
                return borg_fail(err, BORG_EINPUT, "batch %lld: token %d to score is outside the vocabulary",
                                 (long long)b->id, (int)target);
            out[*k] = (batch_result){q->req, target,
                                     log_prob(s->logits + (size_t)(j - j0) * hp->n_vocab, hp->n_vocab, target),
                                     q->pos + j + 1};
            (*k)++;
        }
    }
    return BORG_OK;
}

/* The sampled rows [begin, end) of a batch, on host thread `thread`: each
 * row's token depends on its logits, seed and step alone, so the split
 * between threads changes nothing. */
typedef struct {
    borg_stage *s;
    const borg_batch *b;
    batch_result *out; /* one per sampled row */
} sample_job;

static void sample_rows(void *ctx, int64_t begin, int64_t end, int thread)
{
    const sample_job *job = ctx;
    borg_stage *s = job->s;
    const int32_t n_vocab = stage_hp(s)->n_vocab;
    for (int64_t r = begin; r < end; r++) {
        const batch_seq *q = &job->b->seqs[s->sampled_seq[r]];
        batch_result *o = &job->out[r];
        o->req = q->req;
        o->pos = -1;
        o->token = sampler_pick(s->samplers[thread], s->logits + (size_t)r * n_vocab, &q->sampling, q->step,
                                &o->logprob);
    }
}

borg_status stage_sample(borg_stage *s, const borg_batch *b, const float *x, stage_output *o, borg_err *err)
{
    const borg_hparams *hp = stage_hp(s);
    batch_result *out = o->res;
    o->n_res = o->n_rows = 0;
    borg_status st;
    for (int i = 0, t = 0; i < b->n_seqs; t += b->seqs[i++].n_tokens) {
        const batch_seq *q = &b->seqs[i];
        if (!q->embed)
            continue;
        float *dst = o->row_data + (size_t)o->n_rows * hp->dim;
        if ((st = s->be->final_norm(s->compute, x + (size_t)t * hp->dim, q->n_tokens, dst, err)))
            return st;
        for (int j = 0; j < q->n_tokens; j++)
            o->rows[o->n_rows++] = (batch_row){q->req, q->pos + j};
    }
    int rows = b->n_seqs;
    for (int i = 0; i < b->n_seqs; i++)
        if (b->seqs[i].score && rows < SCORE_ROWS)
            rows = SCORE_ROWS;
    if ((st = reserve_rows(s, rows, err)))
        return st;
    int k = 0;
    for (int i = 0, t = 0; i < b->n_seqs; t += b->seqs[i++].n_tokens)
        if (b->seqs[i].score && (st = score_seq(s, b, &b->seqs[i], t, x, out, &k, err)))
            return st;
    int n = 0, t = 0;
    for (int i = 0; i < b->n_seqs; i++) {
        t += b->seqs[i].n_tokens;
        if (b->seqs[i].sample) {
            memcpy(s->rows + (size_t)n * hp->dim, x + (size_t)(t - 1) * hp->dim, sizeof(float) * hp->dim);
            s->sampled_seq[n++] = i;
        }
    }
    if (n > 0 && (st = s->be->logits(s->compute, s->rows, n, s->logits, err)))
        return st;
    sample_job job = {s, b, out + k};
    pool_run(s->be->host_pool(s->compute), sample_rows, &job, n, 1);
    o->n_res = k + n;
    return BORG_OK;
}
