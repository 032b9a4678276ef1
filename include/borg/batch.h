/* A micro-batch: the unit of work the coordinator hands a pipeline.
 *
 * It lists sequences, each contributing n_tokens consecutive tokens from
 * position pos in KV slot `slot` (a prefill chunk, or one decode token),
 * and the concatenated token ids. A sequence marked `sample` wants the
 * token that follows its last one; the last stage returns it. */
#ifndef BORG_BATCH_H
#define BORG_BATCH_H

#include <stdint.h>

#include "borg/error.h"
#include "borg/sampler.h"

typedef struct {
    int64_t req;   /* the coordinator's request number */
    int32_t slot;
    int32_t pos;
    int32_t n_tokens;
    int32_t sample;
    int32_t step;  /* which generated token a sample would be (0-based) */
    borg_sampling sampling;
} batch_seq;

typedef struct {
    int64_t id;
    int n_seqs, cap_seqs;
    batch_seq *seqs;
    int n_tokens, cap_tokens;
    int32_t *tokens;
} borg_batch;

typedef struct {
    int64_t req;
    int32_t token;
    float logprob;
} batch_result;

void batch_init(borg_batch *b);
void batch_free(borg_batch *b);
void batch_clear(borg_batch *b);
/* Appends a sequence and its tokens. */
borg_status batch_add(borg_batch *b, const batch_seq *s, const int32_t *tokens, borg_err *err);

#endif
