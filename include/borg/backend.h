/* A compute backend: where a stage's arithmetic runs. The stage (stage.c)
 * turns a batch into tokens, KV slots and positions, and asks its backend
 * to embed, run its layers and compute logits; it does not know whether
 * that happens on the CPU's kernels or, later, on a GPU with its own
 * memory for weights and KV cache. Hidden states cross the seam in host
 * memory, n x dim floats, as frames carry them. */
#ifndef BORG_BACKEND_H
#define BORG_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"
#include "borg/family.h"
#include "borg/gguf.h"
#include "borg/threadpool.h"
#include "borg/quant.h"

/* What one stage holds: layers [layer_begin, layer_end), the embedding on
 * the first stage, the output head on the last, a KV cache of n_slots
 * sequences of slot_ctx positions (max_chunk tokens of one sequence per
 * batch at most) in kv_dtype, and its threads. */
typedef struct {
    int layer_begin, layer_end;
    int first, last;
    int n_slots;
    int32_t slot_ctx;
    int32_t max_chunk;
    borg_dtype kv_dtype; /* BORG_DT_F32 or BORG_DT_F16 */
    int threads;
} stage_config;

typedef struct backend_state backend_state;

typedef struct {
    const char *name;
    borg_status (*create)(const gguf_file *f, const stage_config *cfg, backend_state **out, borg_err *err);
    void (*destroy)(backend_state *b);
    const borg_hparams *(*hparams)(const backend_state *b);
    size_t (*weight_bytes)(const backend_state *b);
    /* x[i] = embedding of tokens[i] (first stage). */
    borg_status (*embed)(backend_state *b, const int32_t *tokens, int n, float *x, borg_err *err);
    /* The stage's layers over x (n x dim, in place), token i at KV slot
     * slot[i] and position pos[i]. */
    borg_status (*forward)(backend_state *b, float *x, const int32_t *slot, const int32_t *pos, int n, borg_err *err);
    /* out (n x dim) = the final norm of the n rows of x (last stage). */
    borg_status (*final_norm)(backend_state *b, const float *x, int n, float *out, borg_err *err);
    /* logits (n x n_vocab) of the n rows of x (last stage); x unchanged. */
    borg_status (*logits)(backend_state *b, const float *x, int n, float *logits, borg_err *err);
    /* The host threads (cfg->threads of them), which the stage borrows
     * between calls for its own work on the logits: sampling. */
    borg_pool *(*host_pool)(backend_state *b);
} backend_ops;

/* The CPU backend: model.c's forward pass over kernels/cpu, its KV cache in
 * host memory, a thread pool of cfg->threads. */
extern const backend_ops backend_cpu;

#endif
