/* A decoder-only transformer of one of the families in family.h, or a
 * contiguous slice of its layers (a pipeline stage), over weights mapped
 * from a GGUF file.
 *
 * The forward pass works on a micro-batch of n tokens that may belong to
 * different sequences, each token carrying its KV slot and position: a
 * prefill chunk and the decode tokens of other sequences go through the
 * weights together. Within a batch, a sequence's tokens come in increasing
 * position order. */
#ifndef BORG_MODEL_H
#define BORG_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"
#include "borg/family.h"
#include "borg/gguf.h"
#include "borg/kvcache.h"
#include "borg/threadpool.h"

typedef struct borg_model borg_model;

/* Binds the tensors of layers [layer_begin, layer_end); with_embed adds
 * the token embedding (first stage), with_head the final norm and output
 * matrix (last stage). Tensors are checked for presence, type and shape;
 * errors name the tensor. f must outlive the model. The matrix kernels'
 * copies (matmul_prepare) are made on pool's threads (NULL: this one). */
borg_status model_load(const gguf_file *f, int layer_begin, int layer_end, int with_embed, int with_head,
                       borg_pool *pool, borg_model **out, borg_err *err);
void model_free(borg_model *m);

const borg_hparams *model_hp(const borg_model *m);

/* Bytes of weights this slice reads (its share of the file). */
size_t model_weight_bytes(const borg_model *m);
/* Bytes of the matrices' repacked copies, on top of model_weight_bytes. */
size_t model_packed_bytes(const borg_model *m);

/* A KV cache for this slice's layers and their sliding windows, holding
 * dtype (BORG_DT_F32 or BORG_DT_F16); max_chunk is the most tokens one
 * slot will bring to one model_forward call. */
borg_status model_kv_create(const borg_model *m, int n_slots, int32_t slot_ctx, int32_t max_chunk, borg_dtype dtype,
                            borg_kvcache *kv, borg_err *err);

/* x[i] = embedding of tokens[i]; fails naming a token id out of range. */
borg_status model_embed(borg_model *m, const int32_t *tokens, int n, float *x, borg_err *err);

/* Runs this slice's layers over x (n x dim, in place), reading and writing
 * kv, which must have this slice's layers and their sliding windows
 * (family_layer_window). */
borg_status model_forward(borg_model *m, borg_kvcache *kv, float *x, const int32_t *slot, const int32_t *pos, int n,
                          borg_pool *pool, borg_err *err);

/* out (n x dim) = the final norm of the n rows of x (last stage): the
 * hidden states embeddings are made of, as llama.cpp's are. */
borg_status model_final_norm(const borg_model *m, const float *x, int n, float *out, borg_err *err);

/* logits (n x n_vocab) for the n rows of x: final norm, then output matrix.
 * x is left unchanged. */
borg_status model_logits(borg_model *m, const float *x, int n, float *logits, borg_pool *pool, borg_err *err);

#endif
