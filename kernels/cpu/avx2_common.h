/* Helpers shared by the AVX2 kernel files (matmul_avx2.c, matmul_q8_avx2.c);
 * private to kernels/cpu. Include only where BORG_HAVE_AVX2_KERNELS is set. */
#ifndef BORG_KERNELS_AVX2_COMMON_H
#define BORG_KERNELS_AVX2_COMMON_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "borg/quant.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))
#define UNROLL _Pragma("GCC unroll 8")

AVX2_INLINE float f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* The sums of four accumulators, each ((a0 + a2) + (a1 + a3)) +
 * ((a4 + a6) + (a5 + a7)) (matmul_kernels.h), by a transpose: 11
 * instructions for four where one at a time takes six each. */
AVX2_INLINE __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    const __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    const __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    const __m256 s = _mm256_add_ps(_mm256_shuffle_ps(ab, cd, 0x44), _mm256_shuffle_ps(ab, cd, 0xee));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

static inline int is_k(borg_dtype t) { return t == BORG_DT_Q4_K || t == BORG_DT_Q5_K || t == BORG_DT_Q6_K; }

static inline size_t k_bytes(borg_dtype t) { return t == BORG_DT_Q4_K ? 144 : t == BORG_DT_Q5_K ? 176 : 210; }

/* Bytes per block of the types with 32-element blocks. */
static inline size_t b32_bytes(borg_dtype t)
{
    switch (t) {
    case BORG_DT_Q4_0: return 18;
    case BORG_DT_Q4_1: return 20;
    case BORG_DT_Q5_0: return 22;
    case BORG_DT_Q5_1: return 24;
    default: return 34; /* Q8_0 */
    }
}

/* The 32 codes (0..31) of the Q5_0/Q5_1 block at b, one a byte in element
 * order: after the f16 scale (and for Q5_1 the f16 min), qh is 4 bytes
 * whose bit k, read as a little-endian uint32, is the fifth bit of element
 * k; then byte j of 16 holds element j (low nibble) and j + 16 (high). The
 * fifth bits go to bytes at once: byte k takes byte k / 8 of qh, ORs in
 * every bit but bit k % 8, and is all ones exactly where that bit is set. */
AVX2_INLINE __m256i q5_codes(borg_dtype T, const uint8_t *b)
{
    const uint8_t *qh = b + (T == BORG_DT_Q5_0 ? 2 : 4);
    const __m128i v = _mm_loadu_si128((const __m128i *)(qh + 4)), m4 = _mm_set1_epi8(0x0f);
    const __m256i nib = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
    uint32_t h;
    memcpy(&h, qh, 4);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)h), _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
                                          _mm256_set1_epi64x(-1));
    return _mm256_or_si256(nib, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
}

/* K super-blocks: 8 groups of 32 with scales of their own, expanded by
 * k_scales into ks[16]: for Q4_K/Q5_K, d * sc[j] at j and dmin * m[j] at
 * 8 + j, from 6-bit pairs packed in 12 bytes at byte 4; for Q6_K, d * sc[i]
 * for its 16 int8 scales at byte 192 (d at 208). The products are the ones
 * quant_decompose_row and the dequantizers form. */
AVX2_INLINE void k_scales(borg_dtype T, const uint8_t *sb, float ks[16])
{
    if (T == BORG_DT_Q6_K) {
        const __m256 d = _mm256_set1_ps(f16_at(sb + 208));
        for (int h = 0; h < 2; h++)
            _mm256_storeu_ps(ks + 8 * h, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                                              _mm_loadl_epi64((const __m128i *)(sb + 192 + 8 * h))))));
        return;
    }
    uint32_t q[3], sm[4];
    memcpy(q, sb + 4, 12);
    sm[0] = q[0] & 0x3f3f3f3f;                                          /* sc 0..3 */
    sm[1] = (q[2] & 0x0f0f0f0f) | ((q[0] >> 6 & 0x03030303) << 4);      /* sc 4..7 */
    sm[2] = q[1] & 0x3f3f3f3f;                                          /* m 0..3 */
    sm[3] = (q[2] >> 4 & 0x0f0f0f0f) | ((q[1] >> 6 & 0x03030303) << 4); /* m 4..7 */
    for (int h = 0; h < 2; h++) {
        const __m256 u = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(sm + 2 * h))));
        _mm256_storeu_ps(ks + 8 * h, _mm256_mul_ps(_mm256_set1_ps(f16_at(sb + 2 * h)), u));
    }
}

#endif
