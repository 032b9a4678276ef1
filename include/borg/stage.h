/* A pipeline stage: a slice of the model's layers computed by a backend
 * (backend.h: weights, KV cache, threads) and, on the last stage, the
 * scoring of prompts and the sampler. Every stage rank, and the stage
 * thread of a single-process run, holds one. */
#ifndef BORG_STAGE_H
#define BORG_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "borg/backend.h"
#include "borg/batch.h"
#include "borg/error.h"
#include "borg/gguf.h"

typedef struct borg_stage borg_stage;

borg_status stage_create(const gguf_file *f, const stage_config *cfg, borg_stage **out, borg_err *err);
void stage_free(borg_stage *s);

const borg_hparams *stage_hp(const borg_stage *s);
size_t stage_weight_bytes(const borg_stage *s);

/* Runs the batch through this stage's layers. x holds n_tokens x dim
 * hidden states: written from the token ids on the first stage, read and
 * updated in place on the others. */
borg_status stage_forward(borg_stage *s, const borg_batch *b, float *x, borg_err *err);

/* What the last stage returns for a batch, in buffers the caller sized:
 * res for batch_result_cap(b) entries, rows for batch_row_cap(b) and
 * row_data for batch_row_cap(b) x dim floats. */
typedef struct {
    batch_result *res;
    batch_row *rows;
    float *row_data;
    int n_res, n_rows;
} stage_output;

/* Last stage: the final hidden states of the sequences marked embed, the
 * scores of those marked score (batch.h), then the next token of every
 * sequence marked sample, from the hidden state of its last token. */
borg_status stage_sample(borg_stage *s, const borg_batch *b, const float *x, stage_output *out, borg_err *err);

#endif
