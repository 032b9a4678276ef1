/* Internal to ops.c and its AVX2 kernels (attention_avx2.c); exposed so
 * the kernels can be tested against the portable code. */
#ifndef BORG_OPS_KERNELS_H
#define BORG_OPS_KERNELS_H

#include <stdint.h>

void ops_attend_head_portable(float *out, const float *q, const float *k, const float *v, int64_t stride, int32_t ring,
                              int32_t lo, int32_t n_pos, int head_dim, float scale, float *scores);

#if defined(__x86_64__) || defined(__i386__)
/* Needs AVX2 and FMA, and head_dim a multiple of 8. */
void ops_attend_head_avx2(float *out, const float *q, const float *k, const float *v, int64_t stride, int32_t ring,
                          int32_t lo, int32_t n_pos, int head_dim, float scale, float *scores);
#endif

#endif
