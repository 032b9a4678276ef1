/* Choosing the next token from logits.
 *
 * Sampling is stateless per sequence: the random draw for a sequence's
 * n-th generated token depends only on (seed, n). So a request replayed on
 * another stage, or after a failure, draws exactly what it drew before. */
#ifndef BORG_SAMPLER_H
#define BORG_SAMPLER_H

#include <stdint.h>

#include "borg/error.h"

typedef struct {
    float temperature; /* <= 0: greedy */
    int32_t top_k;     /* 0: off */
    float top_p;       /* >= 1: off */
    float min_p;       /* 0: off */
    uint64_t seed;
} borg_sampling;

typedef struct borg_sampler borg_sampler;

/* Scratch for a vocabulary of n_vocab tokens. */
borg_status sampler_create(int32_t n_vocab, borg_sampler **out, borg_err *err);
void sampler_free(borg_sampler *s);

/* Picks a token for a sequence's step-th generated token (0-based).
 * *logprob (may be NULL) gets the token's log-probability under the
 * model's unmodified distribution. */
int32_t sampler_pick(borg_sampler *s, const float *logits, const borg_sampling *p, int64_t step, float *logprob);

#endif
