/* Internal to ops.c and its ISA kernels (attention_avx2.c, act_avx2.c); exposed so the
 * kernels can be tested against the portable code. */
#ifndef BORG_OPS_KERNELS_H
#define BORG_OPS_KERNELS_H

#include <stdint.h>

#include "borg/ops.h"

/* Positions per attention tile: the scores of one tile live on the stack,
 * and the output is rescaled at most once per tile. */
#define OPS_ATTN_TILE 64

/* The reference: one head after another, expf, sums in position order. */
void ops_attend_portable(float *out, const float *q, int n_q, const ops_kv_rows *kv, int32_t lo, int32_t n_pos,
                         int head_dim, float scale);

/* The FFN activations of borg/ops.h, libm's expf and tanhf. */
void ops_swiglu_portable(float *gate, const float *up, int64_t n);
void ops_geglu_portable(float *gate, const float *up, int64_t n);

#if defined(__x86_64__) || defined(__i386__)
/* Need AVX2 and FMA; within a few ulp of the portable ones. */
void ops_swiglu_avx2(float *gate, const float *up, int64_t n);
void ops_geglu_avx2(float *gate, const float *up, int64_t n);
/* Needs AVX2, FMA and F16C, and head_dim a multiple of 8. */
void ops_attend_avx2(float *out, const float *q, int n_q, const ops_kv_rows *kv, int32_t lo, int32_t n_pos,
                     int head_dim, float scale);
#endif

#endif
