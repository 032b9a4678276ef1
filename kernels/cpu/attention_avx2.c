/* AVX2/FMA attention of one query head over its cached positions (the
 * contract is ops_attend_head's in borg/ops.h). In a prefill it is a third of
 * the time, so both loops keep eight FMA chains in flight: scores take
 * eight keys at a time, and the weighted sum of values keeps 64 output
 * floats in registers while it streams the value rows. */
#include "borg/ops.h"
#include "ops_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* Lane sums of a..d as (sum a, sum b, sum c, sum d). */
AVX2_INLINE __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    const __m256 ab = _mm256_hadd_ps(a, b);
    const __m256 cd = _mm256_hadd_ps(c, d);
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

AVX2_INLINE float hsum1(__m256 a)
{
    const __m256 z = _mm256_setzero_ps();
    return _mm_cvtss_f32(hsum4(a, z, z, z));
}

/* scores[p] = (q . k_p) * scale for p < n_pos. */
AVX2_INLINE void scores_avx2(float *scores, const float *q, const float *k, int64_t stride, int32_t n_pos, int nc,
                             float scale)
{
    const __m128 sc = _mm_set1_ps(scale);
    int32_t p = 0;
    for (; p + 8 <= n_pos; p += 8) {
        __m256 a[8];
        for (int j = 0; j < 8; j++)
            a[j] = _mm256_setzero_ps();
        for (int c = 0; c < nc; c++) {
            const __m256 qc = _mm256_loadu_ps(q + 8 * c);
            for (int j = 0; j < 8; j++)
                a[j] = _mm256_fmadd_ps(qc, _mm256_loadu_ps(k + (p + j) * stride + 8 * c), a[j]);
        }
        _mm_storeu_ps(scores + p, _mm_mul_ps(hsum4(a[0], a[1], a[2], a[3]), sc));
        _mm_storeu_ps(scores + p + 4, _mm_mul_ps(hsum4(a[4], a[5], a[6], a[7]), sc));
    }
    for (; p < n_pos; p++) {
        __m256 a = _mm256_setzero_ps();
        for (int c = 0; c < nc; c++)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * c), _mm256_loadu_ps(k + p * stride + 8 * c), a);
        scores[p] = hsum1(a) * scale;
    }
}

/* out = sum_p w[p] * v_p, or out += that with acc: a ring's second span
 * continues the first's FMA chains, so the split does not change a bit. */
AVX2_INLINE void weighted_sum_avx2(float *out, const float *w, const float *v, int64_t stride, int32_t n_pos, int nc,
                                   int acc)
{
    int c0 = 0;
    for (; c0 + 8 <= nc; c0 += 8) {
        __m256 o[8];
        for (int j = 0; j < 8; j++)
            o[j] = acc ? _mm256_loadu_ps(out + 8 * (c0 + j)) : _mm256_setzero_ps();
        for (int32_t p = 0; p < n_pos; p++) {
            const __m256 a = _mm256_set1_ps(w[p]);
            const float *vp = v + p * stride + 8 * c0;
            for (int j = 0; j < 8; j++)
                o[j] = _mm256_fmadd_ps(a, _mm256_loadu_ps(vp + 8 * j), o[j]);
        }
        for (int j = 0; j < 8; j++)
            _mm256_storeu_ps(out + 8 * (c0 + j), o[j]);
    }
    for (; c0 < nc; c0++) {
        __m256 o = acc ? _mm256_loadu_ps(out + 8 * c0) : _mm256_setzero_ps();
        for (int32_t p = 0; p < n_pos; p++)
            o = _mm256_fmadd_ps(_mm256_set1_ps(w[p]), _mm256_loadu_ps(v + p * stride + 8 * c0), o);
        _mm256_storeu_ps(out + 8 * c0, o);
    }
}

AVX2 void ops_attend_head_avx2(float *out, const float *q, const float *k, const float *v, int64_t stride, int32_t ring,
                               int32_t lo, int32_t n_pos, int head_dim, float scale, float *scores)
{
    const int nc = head_dim / 8;
    const int32_t r0 = lo % ring, n1 = n_pos < ring - r0 ? n_pos : ring - r0;
    scores_avx2(scores, q, k + r0 * stride, stride, n1, nc, scale);
    scores_avx2(scores + n1, q, k, stride, n_pos - n1, nc, scale);
    ops_softmax(scores, n_pos);
    weighted_sum_avx2(out, scores, v + r0 * stride, stride, n1, nc, 0);
    if (n_pos > n1)
        weighted_sum_avx2(out, scores + n1, v, stride, n_pos - n1, nc, 1);
}
#endif
