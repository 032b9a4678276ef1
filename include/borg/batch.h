/* A micro-batch: the unit of work the coordinator hands a pipeline.
 *
 * It lists sequences, each contributing n_tokens consecutive tokens from
 * position pos in KV slot `slot` (a prefill chunk, or one decode token),
 * and the concatenated token ids. A sequence marked `sample` wants the
 * token that follows its last one; the last stage returns it. One marked
 * `score` wants the log-probability of each of its tokens after the first
 * given those before it (prompt scoring, perplexity): of token j + 1 for
 * its token j, and of next_token (the prompt's token after this chunk, or
 * -1 at its end) for its last. One marked `embed` wants the final hidden
 * state (after the final norm) of each of its tokens, for embeddings. */
#ifndef BORG_BATCH_H
#define BORG_BATCH_H

#include <stdint.h>

#include "borg/error.h"
#include "borg/sampler.h"

typedef struct {
    int64_t req; /* the coordinator's request number */
    int32_t slot;
    int32_t pos;
    int32_t n_tokens;
    int32_t sample;
    int32_t step; /* which generated token a sample would be (0-based) */
    int32_t score;
    int32_t next_token;
    int32_t embed;
    borg_sampling sampling;
} batch_seq;

typedef struct {
    int64_t id;
    int n_seqs, cap_seqs;
    batch_seq *seqs;
    int n_tokens, cap_tokens;
    int32_t *tokens;
} borg_batch;

/* A sampled token (pos -1), or a scored one: token at position pos of
 * request req has log-probability logprob given the positions before. */
typedef struct {
    int64_t req;
    int32_t token;
    float logprob;
    int32_t pos;
} batch_result;

/* The final hidden state of the token at position pos of request req
 * (its dim floats travel beside the record). */
typedef struct {
    int64_t req;
    int32_t pos;
} batch_row;

/* Results a batch can produce: a sample per sequence, a score per token
 * of the scored ones. */
int batch_result_cap(const borg_batch *b);
/* Hidden-state rows it can produce: one per token of the embed ones. */
int batch_row_cap(const borg_batch *b);

void batch_init(borg_batch *b);
void batch_free(borg_batch *b);
void batch_clear(borg_batch *b);
/* Appends a sequence and its tokens. */
borg_status batch_add(borg_batch *b, const batch_seq *s, const int32_t *tokens, borg_err *err);

#endif
