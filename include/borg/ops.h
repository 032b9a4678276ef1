/* Element-wise and small reduction kernels of the transformer forward pass. */
#ifndef BORG_OPS_H
#define BORG_OPS_H

#include <stdint.h>

#include "borg/quant.h"

/* out = x / sqrt(mean(x^2) + eps) * w; out may alias x. */
void ops_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);

/* Rotary embedding. ops_rope_angles writes the cos and sin of pair i's angle
 * at position pos (pos * scale * base^(-2i/rot_dim) / factors[i]; factors
 * may be NULL for all ones) to cs[2i], cs[2i+1], for i < rot_dim/2:
 * computed once per token, shared by all its heads and layers of a kind.
 * ops_rope_apply rotates one head vector in place over its first rot_dim
 * elements. neox = 0 rotates adjacent pairs (x[2i], x[2i+1]) as
 * llama.cpp does for Llama GGUFs; neox = 1 rotates (x[i], x[i+rot_dim/2]). */
void ops_rope_angles(float *cs, int rot_dim, int32_t pos, float base, float scale, const float *factors);
void ops_rope_apply(float *x, const float *cs, int rot_dim, int neox);

/* gate[i] = silu(gate[i]) * up[i] */
void ops_swiglu(float *gate, const float *up, int64_t n);

/* gate[i] = gelu(gate[i]) * up[i], GELU in its tanh form. */
void ops_geglu(float *gate, const float *up, int64_t n);

/* Each of the n rows of x (width floats) += bias. */
void vec_add_rows(float *x, const float *bias, int64_t n, int64_t width);

/* x[i] += y[i] */
void vec_add(float *x, const float *y, int64_t n);

/* The cached keys and values of one KV head: rows of `type` elements
 * (BORG_DT_F32 or BORG_DT_F16), `stride` elements apart, position p in
 * row p % ring (a ring at least as long as the context never wraps). */
typedef struct {
    const void *k, *v; /* the head's first element in row 0 */
    borg_dtype type;
    int64_t stride;
    int32_t ring;
} ops_kv_rows;

/* n_q query heads that share one KV head (a group of grouped-query
 * attention; q and out hold n_q x head_dim floats, head after head), each
 * attending over the cached positions lo .. lo + n_pos - 1 (n_pos >= 1):
 * out_h = softmax(q_h . k_p * scale) . v_p. The group is computed together
 * so that each tile of keys and values is read from memory once for all
 * its heads. Flash-style: positions in fixed tiles counted from lo, a
 * running maximum and sum per head, and the head's output rescaled when
 * its maximum grows, so no score array of n_pos is kept. The tiles and the
 * order of every sum follow the positions alone, so the result for a
 * (token, head) is the same bits on a kernel path whatever the ring's
 * wrap, the other heads of the call, the batch around it, the threads or
 * the pipeline split. */
void ops_attend(float *out, const float *q, int n_q, const ops_kv_rows *kv, int32_t lo, int32_t n_pos, int head_dim,
                float scale);

#endif
