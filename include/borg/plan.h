/* The layer split: which contiguous layers each pipeline stage holds.
 *
 * Balanced by the weights a stage multiplies per token: its layers' and,
 * on the last stage, the output matrix's, counted in parameters, each
 * weighted by what its type costs in the 8-bit activation kernels (signed
 * types 5/4 of the rest). Across types that is not the same as balancing
 * bytes: a Q8_0 output head takes ~1.25x as long per parameter as the Q4_1
 * layers beside it, not twice as long. The same weights on every rank,
 * whatever its activation mode, so all ranks agree on the split. The
 * embedding is only looked up, so it counts for memory, not for balance. */
#ifndef BORG_PLAN_H
#define BORG_PLAN_H

#include <stddef.h>
#include <stdio.h>

#include "borg/error.h"
#include "borg/gguf.h"
#include "borg/model.h"

#define PLAN_MAX_STAGES 256

typedef struct {
    int n_stages;
    int begin[PLAN_MAX_STAGES]; /* stage s holds layers [begin[s], end[s]) */
    int end[PLAN_MAX_STAGES];
    size_t weight_bytes[PLAN_MAX_STAGES]; /* mapped and read by the stage */
    size_t copy_bytes[PLAN_MAX_STAGES];   /* the matrix kernels' copies on this process's path (matmul_copy_bytes) */
    size_t params[PLAN_MAX_STAGES];       /* multiplied per token: what balance evens out */
    int global_layers[PLAN_MAX_STAGES];   /* its layers that see every position */
    int window_layers[PLAN_MAX_STAGES];   /* its sliding-window layers, which keep a ring */
} borg_plan;

/* The split with the smallest largest stage. layers_spec, when not NULL,
 * overrides it: comma-separated layer counts, one per stage, summing to the
 * model's layer count (e.g. "12,10,8"). Errors name what is wrong. */
borg_status plan_make(const gguf_file *f, const borg_hparams *hp, int n_stages, const char *layers_spec, borg_plan *out,
                      borg_err *err);

/* Prints the split and each stage's memory, one stage a line, with a KV
 * cache of kv_dtype (BORG_DT_F16 or BORG_DT_F32). */
void plan_print(const borg_plan *p, const borg_hparams *hp, int n_slots, int32_t slot_ctx, int batch_tokens,
                borg_dtype kv_dtype, FILE *out);

#endif
