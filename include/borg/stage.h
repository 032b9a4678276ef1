/* A pipeline stage: a slice of the model's layers, its KV cache, threads
 * and (for the last stage) the sampler. The same code serves a stage rank
 * and the single-process run, where one stage holds every layer. */
#ifndef BORG_STAGE_H
#define BORG_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "borg/batch.h"
#include "borg/error.h"
#include "borg/gguf.h"
#include "borg/model.h"

typedef struct borg_stage borg_stage;

typedef struct {
    int layer_begin, layer_end;
    int first, last;  /* holds the embedding / the output head */
    int n_slots;
    int32_t slot_ctx;
    int32_t max_chunk; /* most tokens of one sequence in one batch: the batch budget */
    int threads;
} stage_config;

/* Context per sequence: the requested one, or min(model, 4096). Every
 * rank derives it the same way from the same command line. */
int32_t stage_slot_ctx(int32_t requested, int32_t model_ctx);

borg_status stage_create(const gguf_file *f, const stage_config *cfg, borg_stage **out, borg_err *err);
void stage_free(borg_stage *s);

const borg_hparams *stage_hp(const borg_stage *s);
size_t stage_weight_bytes(const borg_stage *s);

/* Runs the batch through this stage's layers. x holds n_tokens x dim
 * hidden states: written from the token ids on the first stage, read and
 * updated in place on the others. */
borg_status stage_forward(borg_stage *s, const borg_batch *b, float *x, borg_err *err);

/* Last stage: the scores of the sequences marked score (batch.h), then
 * the next token of every sequence marked sample, from the hidden state
 * of its last token. out has room for batch_result_cap(b) entries. */
borg_status stage_sample(borg_stage *s, const borg_batch *b, const float *x, batch_result *out,
                         int *n_out, borg_err *err);

#endif
