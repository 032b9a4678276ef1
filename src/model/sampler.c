#include "borg/sampler.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float logit;
    int32_t id;
} candidate;

struct borg_sampler {
    int32_t n_vocab;
    candidate *cand;
};

borg_status sampler_create(int32_t n_vocab, borg_sampler **out, borg_err *err)
{
    borg_sampler *s = calloc(1, sizeof *s);
    if (!s || !(s->cand = malloc(sizeof *s->cand * (size_t)n_vocab))) {
        free(s);
        return borg_fail(err, BORG_ENOMEM, "out of memory for the sampler (%d tokens)", (int)n_vocab);
    }
    s->n_vocab = n_vocab;
    *out = s;
    return BORG_OK;
}

void sampler_free(borg_sampler *s)
{
    if (s) {
        free(s->cand);
        free(s);
    }
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Uniform in [0, 1) from the top 53 bits. */
static double uniform(uint64_t seed, int64_t step)
{
    uint64_t r = splitmix64(splitmix64(seed) ^ (uint64_t)step);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

/* Descending by logit; ties by id so the order is the same everywhere. */
static int by_logit_desc(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static double log_sum_exp(const float *logits, int32_t n, float max)
{
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    return max + log(sum);
}

int32_t sampler_pick(borg_sampler *s, const float *logits, const borg_sampling *p, int64_t step, float *logprob)
{
    const int32_t n = s->n_vocab;
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    int32_t chosen = best;

    if (p->temperature > 0.0f && p->top_k != 1) {
        int32_t m = 0;
        for (int32_t i = 0; i < n; i++)
            if (isfinite(logits[i]))
                s->cand[m++] = (candidate){logits[i], i};
        qsort(s->cand, (size_t)m, sizeof *s->cand, by_logit_desc);
        if (p->top_k > 0 && p->top_k < m)
            m = p->top_k;
        /* Weights at the requested temperature, relative to the top token. */
        float top = s->cand[0].logit;
        if (p->min_p > 0.0f) {
            int32_t keep = 1;
            while (keep < m && exp(((double)s->cand[keep].logit - top) / p->temperature) >= p->min_p)
                keep++;
            m = keep;
        }
        double total = 0.0;
        for (int32_t i = 0; i < m; i++)
            total += exp(((double)s->cand[i].logit - top) / p->temperature);
        if (p->top_p < 1.0f) {
            double cum = 0.0;
            int32_t keep = 0;
            while (keep < m && cum < p->top_p * total)
                cum += exp(((double)s->cand[keep++].logit - top) / p->temperature);
            m = keep > 0 ? keep : 1;
        }
        total = 0.0;
        for (int32_t i = 0; i < m; i++)
            total += exp(((double)s->cand[i].logit - top) / p->temperature);
        double target = uniform(p->seed, step) * total, cum = 0.0;
        chosen = s->cand[m - 1].id;
        for (int32_t i = 0; i < m; i++) {
            cum += exp(((double)s->cand[i].logit - top) / p->temperature);
            if (cum > target) {
                chosen = s->cand[i].id;
                break;
            }
        }
    }
    if (logprob)
        *logprob = (float)(logits[chosen] - log_sum_exp(logits, n, logits[best]));
    return chosen;
}
