/* Decoding quantized rows in registers, for the AVX2 kernels of the 8-bit
 * activation path and the AVX-512 one-vector kernel alike (matmul_q8_avx2.c,
 * matmul_q8_avx512.c); private to kernels/cpu. */
#ifndef BORG_KERNELS_Q8_DECODE_AVX2_H
#define BORG_KERNELS_Q8_DECODE_AVX2_H

#include "avx2_common.h"

/* The nibble (hi = 0: low, 1: high) of each of 32 bytes. */
AVX2_INLINE __m256i nibbles32(const uint8_t *p, int hi)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(4 * hi)), _mm256_set1_epi8(0x0f));
}

/* Group g of a Q6_K row as unsigned 6-bit codes 0..63 (group_codes takes
 * 32 off): in half h of a super-block, chunk c of 32 takes the low (c < 2)
 * or high nibble of ql[64h + 32(c & 1) + l] and bits 2c, 2c + 1 of
 * qh[32h + l] (qh at byte 128), moved straight to bits 4, 5 by one 16-bit
 * shift (the mask drops what crosses from the neighbouring byte). */
AVX2_INLINE __m256i q6_codes(const uint8_t *row, int64_t g)
{
    const uint8_t *sb = row + 210 * (size_t)(g >> 3);
    const int h = (int)(g >> 2) & 1, c = (int)(g & 3);
    const __m256i lo = nibbles32(sb + 64 * h + 32 * (c & 1), c >> 1);
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(sb + 128 + 32 * h));
    const __m256i at4 = c == 0   ? _mm256_slli_epi16(qh, 4)
                        : c == 1 ? _mm256_slli_epi16(qh, 2)
                        : c == 2 ? qh
                                 : _mm256_srli_epi16(qh, 2);
    return _mm256_or_si256(lo, _mm256_and_si256(at4, _mm256_set1_epi8(0x30)));
}

/* Group g of a row of type T (a constant wherever this is inlined): its 32
 * codes, the scales of its units (sc[1] for Q6_K's second 16) and its
 * offset, as quant_decompose_row gives them. For K types
 * ks holds the super-block's k_scales, refreshed by the caller at g % 8 == 0.
 *  Q4_0/Q4_1: byte j of the 16 holds element j (low nibble) and j + 16.
 *  Q5_0/Q5_1: as Q4_0/Q4_1 with a fifth bit per element (q5_codes).
 *  Q4_K (codes at byte 16) and Q5_K (at 48, plus a fifth bit: bit j of
 *  byte 16 + l): group j takes the low (j even) or high nibble of 32 bytes.
 *  Q6_K: q6_codes - 32, a scale per 16 elements. */
AVX2_INLINE void group_codes(borg_dtype T, const uint8_t *row, int64_t g, const float *ks, __m256i *codes, float sc[2],
                             float *m)
{
    switch (T) {
    case BORG_DT_Q4_0:
    case BORG_DT_Q4_1: {
        const uint8_t *b = row + (T == BORG_DT_Q4_0 ? 18 : 20) * (size_t)g;
        const __m128i v = _mm_loadu_si128((const __m128i *)(b + (T == BORG_DT_Q4_0 ? 2 : 4)));
        const __m128i m4 = _mm_set1_epi8(0x0f);
        *codes = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
        sc[0] = f16_at(b);
        *m = T == BORG_DT_Q4_0 ? -8.0f * sc[0] : f16_at(b + 2);
        break;
    }
    case BORG_DT_Q5_0:
    case BORG_DT_Q5_1: {
        const uint8_t *b = row + b32_bytes(T) * (size_t)g;
        *codes = q5_codes(T, b);
        sc[0] = f16_at(b);
        *m = T == BORG_DT_Q5_0 ? -16.0f * sc[0] : f16_at(b + 2);
        break;
    }
    case BORG_DT_Q8_0: {
        const uint8_t *b = row + 34 * (size_t)g;
        *codes = _mm256_loadu_si256((const __m256i *)(b + 2));
        sc[0] = f16_at(b);
        *m = 0;
        break;
    }
    case BORG_DT_Q4_K:
    case BORG_DT_Q5_K: {
        const uint8_t *sb = row + (T == BORG_DT_Q4_K ? 144 : 176) * (size_t)(g >> 3);
        const int j = (int)(g & 7);
        *codes = nibbles32(sb + (T == BORG_DT_Q4_K ? 16 : 48) + 32 * (j >> 1), j & 1);
        if (T == BORG_DT_Q5_K) {
            const __m256i h = _mm256_loadu_si256((const __m256i *)(sb + 16));
            const __m256i bit = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(j)), _mm256_set1_epi8(1));
            *codes = _mm256_or_si256(*codes, _mm256_slli_epi16(bit, 4));
        }
        sc[0] = ks[j];
        *m = -ks[8 + j];
        break;
    }
    case BORG_DT_Q6_K: {
        const int h = (int)(g >> 2) & 1, c = (int)(g & 3);
        *codes = _mm256_sub_epi8(q6_codes(row, g), _mm256_set1_epi8(32));
        sc[0] = ks[8 * h + 2 * c];
        sc[1] = ks[8 * h + 2 * c + 1];
        *m = 0;
        break;
    }
    default: break;
    }
}

/* clang-format 14 cannot parse UNROLL before a loop (it joins the loops). */
// clang-format off
/* The lane scales and offsets of the full block at group g0, for the
 * packer and the one-vector kernel alike, built in registers: from the K
 * types' expanded scales, or from the 8 f16 scales of the blocks (a vector
 * load of lanes stored one by one would stall on store forwarding). */
AVX2_INLINE void block_scales(borg_dtype T, const uint8_t *row, int64_t g0, const float *ks, __m256 *dw, __m256 *m)
{
    if (T == BORG_DT_Q6_K) {
        *dw = _mm256_loadu_ps(ks + 8 * ((g0 >> 2) & 1));
        *m = _mm256_setzero_ps();
        return;
    }
    if (is_k(T)) {
        *dw = _mm256_loadu_ps(ks);
        *m = _mm256_xor_ps(_mm256_loadu_ps(ks + 8), _mm256_set1_ps(-0.0f));
        return;
    }
    const size_t bb = b32_bytes(T);
    const uint8_t *b = row + bb * (size_t)g0;
    uint16_t d[8], mn[8];
    UNROLL for (int u = 0; u < 8; u++) {
        memcpy(d + u, b + bb * u, 2);
        memcpy(mn + u, b + bb * u + 2, 2);
    }
    *dw = _mm256_cvtph_ps(_mm_setr_epi16((short)d[0], (short)d[1], (short)d[2], (short)d[3], (short)d[4],
                                         (short)d[5], (short)d[6], (short)d[7]));
    if (T == BORG_DT_Q4_1 || T == BORG_DT_Q5_1)
        *m = _mm256_cvtph_ps(_mm_setr_epi16((short)mn[0], (short)mn[1], (short)mn[2], (short)mn[3], (short)mn[4],
                                            (short)mn[5], (short)mn[6], (short)mn[7]));
    else if (T == BORG_DT_Q4_0 || T == BORG_DT_Q5_0)
        *m = _mm256_mul_ps(_mm256_set1_ps(T == BORG_DT_Q4_0 ? -8.0f : -16.0f), *dw);
    else
        *m = _mm256_setzero_ps();
}

/* Block lanes from natural group sums: lane j the whole of v[j] (8 units
 * of 32), or, for 16-element units, lane j the half j & 1 of v[j / 2]. */
AVX2_INLINE __m256i block_lanes(const __m256i *v, const int UNITS32)
{
    if (UNITS32) {
        const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
        /* a holds the 128-bit halves of v[0..3]: low halves, then high */
        return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
    }
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    return _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* A tail block's lanes (matmul_kernels.h) from the natural group sums v[t]
 * of its B units (B = 1, 2, 4): lane j is the sum of lanes j % L + L i of
 * unit j / L, L = 8 / B. */
AVX2_INLINE __m256i tail_lanes(const __m256i *v, const int B)
{
    if (B == 1)
        return v[0];
    /* [v0 low + v0 high | v1 low + v1 high]: lane l of unit t sums l, l + 4 */
    const __m256i f01 = _mm256_add_epi32(_mm256_permute2x128_si256(v[0], v[1], 0x20),
                                         _mm256_permute2x128_si256(v[0], v[1], 0x31));
    if (B == 2)
        return f01;
    const __m256i f23 = _mm256_add_epi32(_mm256_permute2x128_si256(v[2], v[3], 0x20),
                                         _mm256_permute2x128_si256(v[2], v[3], 0x31));
    /* and then l, l + 2: each unit's two lanes, as 64-bit words in the order 0 2 1 3 */
    const __m256i s01 = _mm256_add_epi32(f01, _mm256_shuffle_epi32(f01, _MM_SHUFFLE(1, 0, 3, 2)));
    const __m256i s23 = _mm256_add_epi32(f23, _mm256_shuffle_epi32(f23, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm256_permute4x64_epi64(_mm256_unpacklo_epi64(s01, s23), _MM_SHUFFLE(3, 1, 2, 0));
}
// clang-format on

#endif
