/* Element-wise and small reduction kernels of the transformer forward pass. */
#ifndef BORG_OPS_H
#define BORG_OPS_H

#include <stdint.h>

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

/* In-place softmax over n values. */
void ops_softmax(float *x, int64_t n);

/* gate[i] = silu(gate[i]) * up[i] */
void ops_swiglu(float *gate, const float *up, int64_t n);

/* gate[i] = gelu(gate[i]) * up[i], GELU in its tanh form. */
void ops_geglu(float *gate, const float *up, int64_t n);

/* Each of the n rows of x (width floats) += bias. */
void vec_add_rows(float *x, const float *bias, int64_t n, int64_t width);

/* x[i] += y[i] */
void vec_add(float *x, const float *y, int64_t n);

/* One query head attending over the n_pos cached positions lo .. lo +
 * n_pos - 1: out = softmax(q . k_p * scale) . v_p. The cache is a ring of
 * `ring` rows (position p in row p % ring; a ring at least as long as the
 * context never wraps), rows stride floats apart; scores is scratch for
 * n_pos floats. */
void ops_attend_head(float *out, const float *q, const float *k, const float *v, int64_t stride, int32_t ring,
                     int32_t lo, int32_t n_pos, int head_dim, float scale, float *scores);

#endif
