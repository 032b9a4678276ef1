/* Choosing the next token from logits.
 *
 * Sampling is stateless per sequence: the random draw for a sequence's
 * n-th generated token depends only on (seed, n). So a request replayed on
 * another stage, or after a failure, draws exactly what it drew before.
 *
 * The draw is defined by the sort-based sampler this one replaced (kept as
 * the reference in tests/test_sampler.c), and it is that sampler's token
 * for every input, not an approximation of it:
 *  - the candidates are the finite logits, sorted by descending logit, ties
 *    by ascending id; top is the first one's logit, and candidate i weighs
 *    w_i = exp(((double)logit_i - top) / temperature);
 *  - top_k keeps the first top_k; then min_p keeps the first candidate and
 *    those after it up to the first with w_i < min_p;
 *  - then top_p keeps candidates while the sum of the weights before them
 *    (added in order, in double) is below top_p * the kept set's total;
 *  - with u uniform in [0, 1) from (seed, step), the token is the first
 *    whose running sum of weights exceeds u * the kept set's total.
 * Sorting the whole vocabulary for every token took a third of a sampled
 * run's time, so the sampler sorts only the logits within 12 * temperature
 * of the top (weights down to e^-12; lower bands only when a pick reaches
 * past them), and estimates the total weight of the rest with a bounded
 * error (sampler.c: estimate_tail). Where that bound
 * leaves the answer open, it sorts every finite logit and computes the
 * definition directly: a few draws in 10,000. The passes over the whole
 * vocabulary are plain C compiled once per kernel path (cpu.h), the same
 * bits on every path, thread, batch or vector width; the weights that
 * decide come from the C library's exp(), as they always did. */
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

/* Scratch for one pick at a time; a thread needs its own. */
typedef struct borg_sampler borg_sampler;

/* Scratch for a vocabulary of n_vocab tokens. */
borg_status sampler_create(int32_t n_vocab, borg_sampler **out, borg_err *err);
void sampler_free(borg_sampler *s);

/* Picks a token for a sequence's step-th generated token (0-based): the
 * argmax (the first index of the largest logit) when greedy (temperature
 * <= 0 or top_k == 1), else the draw defined above. *logprob (may be
 * NULL) gets the token's log-probability under the model's unmodified
 * distribution, its log-sum-exp within 1e-6 of the double-precision one. */
int32_t sampler_pick(borg_sampler *s, const float *logits, const borg_sampling *p, int64_t step, float *logprob);

/* e^z for z in [-80, 0], in float with a relative error below 2^-22: the
 * estimates' exponential, exported for test_sampler. */
float sampler_exp_neg(float z);

#endif
