/* AVX2 kernels of the 8-bit activation path (matmul_q8.c): the activation
 * quantizer, the weight decomposition (quant.c's decompose_row, bit for
 * bit) and the integer tile. The tile's per-pair steps are the contract of
 * matmul_kernels.h: maddubs + madd give the exact lane sums, one FMA scales
 * them into the lane accumulator. */
#include "borg/matmul_kernels.h"

#ifdef BORG_HAVE_AVX2_KERNELS

#include "avx2_common.h"

AVX2_INLINE float hmax8(__m256 a)
{
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

AVX2_INLINE int hsum8_epi32(__m256i a)
{
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1)));
}

AVX2 void mq_quantize_avx2(const float *x, int64_t ng, int8_t *q, float *d, float *s, int64_t s_stride)
{
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    /* packs interleave 4-dword pieces of the two 128-bit lanes; this undoes it */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t g = 0; g < ng; g++, x += 32, q += 32) {
        __m256 v[4];
        for (int c = 0; c < 4; c++)
            v[c] = _mm256_loadu_ps(x + 8 * c);
        const __m256 a = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                                       _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
        const float amax = hmax8(a);
        const __m256 id = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
        __m256i i[4];
        for (int c = 0; c < 4; c++)
            i[c] = _mm256_cvtps_epi32(
                _mm256_round_ps(_mm256_mul_ps(v[c], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const int sum = hsum8_epi32(_mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3])));
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
        _mm256_storeu_si256((__m256i *)q, _mm256_permutevar8x32_epi32(p, order));
        d[g] = amax / 127.0f;
        s[g * s_stride] = d[g] * (float)sum;
    }
}

/* The nibble (hi = 0: low, 1: high) of each of 32 bytes. */
AVX2_INLINE __m256i nibbles32(const uint8_t *p, int hi)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(4 * hi)), _mm256_set1_epi8(0x0f));
}

/* Group g of a row of type T (a constant wherever this is inlined): its 32
 * codes, lane scales and offset, as decompose_row gives them. For K types
 * ks holds the super-block's k_scales, refreshed by the caller at g % 8 == 0.
 *  Q4_0/Q4_1: byte j of the 16 holds element j (low nibble) and j + 16.
 *  Q4_K (codes at byte 16) and Q5_K (at 48, plus a fifth bit: bit j of
 *  byte 16 + l): group j takes the low (j even) or high nibble of 32 bytes.
 *  Q6_K: in half h of a super-block, chunk c of 32 takes the low (c < 2) or
 *  high nibble of ql[64h + 32(c & 1) + l] and bits 2c, 2c + 1 of
 *  qh[32h + l] (qh at byte 128); code q - 32, a scale per 16 elements. */
AVX2_INLINE void group_codes(borg_dtype T, const uint8_t *row, int64_t g, const float *ks, __m256i *codes,
                             __m256 *dw, float *m)
{
    switch (T) {
    case BORG_DT_Q4_0:
    case BORG_DT_Q4_1: {
        const uint8_t *b = row + (T == BORG_DT_Q4_0 ? 18 : 20) * (size_t)g;
        const __m128i v = _mm_loadu_si128((const __m128i *)(b + (T == BORG_DT_Q4_0 ? 2 : 4)));
        const __m128i m4 = _mm_set1_epi8(0x0f);
        *codes = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
        const float d = f16_at(b);
        *dw = _mm256_set1_ps(d);
        *m = T == BORG_DT_Q4_0 ? -8.0f * d : f16_at(b + 2);
        break;
    }
    case BORG_DT_Q8_0: {
        const uint8_t *b = row + 34 * (size_t)g;
        *codes = _mm256_loadu_si256((const __m256i *)(b + 2));
        *dw = _mm256_set1_ps(f16_at(b));
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
        *dw = _mm256_set1_ps(ks[j]);
        *m = -ks[8 + j];
        break;
    }
    case BORG_DT_Q6_K: {
        const uint8_t *sb = row + 210 * (size_t)(g >> 3);
        const int h = (int)(g >> 2) & 1, c = (int)(g & 3);
        const __m256i lo = nibbles32(sb + 64 * h + 32 * (c & 1), c >> 1);
        __m256i hi = _mm256_loadu_si256((const __m256i *)(sb + 128 + 32 * h));
        hi = _mm256_and_si256(_mm256_srl_epi16(hi, _mm_cvtsi32_si128(2 * c)), _mm256_set1_epi8(3));
        *codes = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
        *dw = _mm256_set_m128(_mm_set1_ps(ks[8 * h + 2 * c + 1]), _mm_set1_ps(ks[8 * h + 2 * c]));
        *m = 0;
        break;
    }
    default: break;
    }
}

AVX2_INLINE void decompose_t(borg_dtype T, const uint8_t *row, int64_t ng, int8_t *q, float *dw, float *m)
{
    float ks[16];
    for (int64_t g = 0; g < ng; g++) {
        if (is_k(T) && (g & 7) == 0)
            k_scales(T, row + k_bytes(T) * (size_t)(g >> 3), ks);
        __m256i codes;
        __m256 scales;
        group_codes(T, row, g, ks, &codes, &scales, m + g);
        _mm256_storeu_si256((__m256i *)(q + 32 * g), codes);
        _mm256_storeu_ps(dw + 8 * g, scales);
    }
}

#define DECOMPOSE(name, T)                                                                         \
    AVX2 static void name(const uint8_t *row, int64_t ng, int8_t *q, float *dw, float *m)          \
    {                                                                                              \
        decompose_t(T, row, ng, q, dw, m);                                                         \
    }

DECOMPOSE(decompose_q4_0, BORG_DT_Q4_0)
DECOMPOSE(decompose_q4_1, BORG_DT_Q4_1)
DECOMPOSE(decompose_q8_0, BORG_DT_Q8_0)
DECOMPOSE(decompose_q4_k, BORG_DT_Q4_K)
DECOMPOSE(decompose_q5_k, BORG_DT_Q5_K)
DECOMPOSE(decompose_q6_k, BORG_DT_Q6_K)

void mq_decompose_avx2(borg_dtype t, const void *row, int64_t ng, int8_t *q, float *dw, float *m)
{
    switch (t) {
    case BORG_DT_Q4_0: decompose_q4_0(row, ng, q, dw, m); break;
    case BORG_DT_Q4_1: decompose_q4_1(row, ng, q, dw, m); break;
    case BORG_DT_Q8_0: decompose_q8_0(row, ng, q, dw, m); break;
    case BORG_DT_Q4_K: decompose_q4_k(row, ng, q, dw, m); break;
    case BORG_DT_Q5_K: decompose_q5_k(row, ng, q, dw, m); break;
    case BORG_DT_Q6_K: decompose_q6_k(row, ng, q, dw, m); break;
    default: break;
    }
}

/* B and SGN constant: the accumulators live in registers. */
AVX2_INLINE void q8_body(const mq_tile *t, const int B, const int SGN)
{
    const int64_t ng = t->ng;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[MQ_MR][MQ_NR];
    __m128 off[MQ_MR];
    UNROLL for (int r = 0; r < MQ_MR; r++) {
        off[r] = _mm_setzero_ps();
        UNROLL for (int b = 0; b < B; b++)
            acc[r][b] = _mm256_setzero_ps();
    }
    for (int64_t g = 0; g < ng; g++) {
        const __m128 s = _mm_loadu_ps(t->xs + MQ_NR * g);
        UNROLL for (int r = 0; r < MQ_MR; r++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(t->q[r] + 32 * g));
            const __m256i wu = SGN ? _mm256_abs_epi8(w) : w;
            const __m256 dw = _mm256_loadu_ps(t->dw[r] + 8 * g);
            UNROLL for (int b = 0; b < B; b++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(t->xq + (b * ng + g) * 32));
                if (SGN)
                    x = _mm256_sign_epi8(x, w);
                const __m256i isum = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, x), ones);
                const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(t->xd + b * ng + g));
                acc[r][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, acc[r][b]);
            }
            if (!SGN)
                off[r] = _mm_fmadd_ps(_mm_broadcast_ss(t->m[r] + g), s, off[r]);
        }
    }
    UNROLL for (int r = 0; r < MQ_MR; r++) {
        if (r >= t->nr)
            break;
        float y[MQ_NR];
        __m128 sums = reduce4(acc[r][0], acc[r][B > 1], acc[r][B > 2 ? 2 : 0], acc[r][B > 3 ? 3 : 0]);
        _mm_storeu_ps(y, SGN ? sums : _mm_add_ps(sums, off[r]));
        UNROLL for (int b = 0; b < B; b++)
            t->y[b * t->ys + r] = y[b];
    }
}

#define Q8_TILE(name, SGN)                                                                         \
    AVX2 static void name(const mq_tile *t, int nv)                                                \
    {                                                                                              \
        if (nv == 4)                                                                               \
            q8_body(t, 4, SGN);                                                                    \
        else if (nv == 3)                                                                          \
            q8_body(t, 3, SGN);                                                                    \
        else if (nv == 2)                                                                          \
            q8_body(t, 2, SGN);                                                                    \
        else                                                                                       \
            q8_body(t, 1, SGN);                                                                    \
    }

Q8_TILE(tile_offset, 0)
Q8_TILE(tile_signed, 1)

void mq_tile_avx2(const mq_tile *t, int nv)
{
    if (t->sgn)
        tile_signed(t, nv);
    else
        tile_offset(t, nv);
}

/* One vector against rows [r0, r1), MM_MR rows at a time, decoding each
 * group of codes in registers (no panel): the same per-pair steps as
 * q8_body, so the same bits. The weights stream from memory once, so the
 * next rows are prefetched, spread over the groups: a burst at the start
 * would stall on the memory queue. */
AVX2_INLINE void one_body(borg_dtype T, const mq_one *o, int64_t r0, int64_t r1)
{
    const int SGN = decompose_signed(T);
    const int64_t ng = o->w->cols / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t r = r0; r < r1; r += MM_MR) {
        const int nr = r1 - r < MM_MR ? (int)(r1 - r) : MM_MR;
        const uint8_t *rows[MM_MR];
        for (int i = 0; i < MM_MR; i++)
            rows[i] = (const uint8_t *)o->w->data + (size_t)(r + (i < nr ? i : nr - 1)) * o->w->row_bytes;
        const char *next = (const char *)rows[0] + (size_t)nr * o->w->row_bytes;
        const size_t next_bytes = (size_t)(r1 - r - nr < MM_MR ? r1 - r - nr : MM_MR) * o->w->row_bytes;
        const size_t step = (next_bytes / (size_t)ng + 63) & ~(size_t)63;
        __m256 acc[MM_MR];
        float off[MM_MR], ks[MM_MR][16];
        UNROLL for (int i = 0; i < MM_MR; i++) {
            acc[i] = _mm256_setzero_ps();
            off[i] = 0;
        }
        for (int64_t g = 0; g < ng; g++) {
            const __m256i x = _mm256_loadu_si256((const __m256i *)(o->xq + 32 * g));
            const __m256 dx = _mm256_broadcast_ss(o->xd + g);
            const float s = o->xs[MQ_NR * g];
            for (size_t p = (size_t)g * step; p < (size_t)(g + 1) * step && p < next_bytes; p += 64)
                _mm_prefetch(next + p, _MM_HINT_T0);
            if (is_k(T) && (g & 7) == 0)
                UNROLL for (int i = 0; i < MM_MR; i++)
                    k_scales(T, rows[i] + k_bytes(T) * (size_t)(g >> 3), ks[i]);
            UNROLL for (int i = 0; i < MM_MR; i++) {
                __m256i w;
                __m256 dw;
                float m;
                group_codes(T, rows[i], g, ks[i], &w, &dw, &m);
                const __m256i p = SGN ? _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w))
                                      : _mm256_maddubs_epi16(w, x);
                const __m256i isum = _mm256_madd_epi16(p, ones);
                acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, dx), acc[i]);
                if (!SGN)
                    off[i] = __builtin_fmaf(m, s, off[i]);
            }
        }
        float y[MM_MR];
        _mm_storeu_ps(y, reduce4(acc[0], acc[1], acc[2], acc[3]));
        for (int i = 0; i < nr; i++)
            o->y[r + i] = SGN ? y[i] : y[i] + off[i];
    }
}

#define ONE_KERNEL(name, T)                                                                        \
    AVX2 static void name(const mq_one *o, int64_t r0, int64_t r1)                                 \
    {                                                                                              \
        one_body(T, o, r0, r1);                                                                    \
    }

ONE_KERNEL(one_q4_0, BORG_DT_Q4_0)
ONE_KERNEL(one_q4_1, BORG_DT_Q4_1)
ONE_KERNEL(one_q8_0, BORG_DT_Q8_0)
ONE_KERNEL(one_q4_k, BORG_DT_Q4_K)
ONE_KERNEL(one_q5_k, BORG_DT_Q5_K)
ONE_KERNEL(one_q6_k, BORG_DT_Q6_K)

void mq_one_avx2(const mq_one *o, int64_t r0, int64_t r1)
{
    switch (o->w->type) {
    case BORG_DT_Q4_0: one_q4_0(o, r0, r1); break;
    case BORG_DT_Q4_1: one_q4_1(o, r0, r1); break;
    case BORG_DT_Q8_0: one_q8_0(o, r0, r1); break;
    case BORG_DT_Q4_K: one_q4_k(o, r0, r1); break;
    case BORG_DT_Q5_K: one_q5_k(o, r0, r1); break;
    case BORG_DT_Q6_K: one_q6_k(o, r0, r1); break;
    default: break;
    }
}

#endif
