/* The one-vector kernel of the 8-bit activation path, for each kernel
 * file to instantiate with its own instructions: the includer defines
 *   ONE_INLINE             the function attributes (target) of the body
 *   ONE_TARGET             those of the kernels made from it, one per type
 *   ONE_ENTRY              the name of the function that picks one by type
 *   ONE_CODES(T, row, g, ks, w, sc, m)  group_codes, or codes of its own
 *   ONE_DOT(w, x, SGN)     8 lanes of exact integer sums of 4 products of a
 *                          group's codes w and activation codes x
 *   ONE_LANES(isum, o, k)  block k's lanes as the contract wants them, from
 *                          what ONE_DOT summed (a correction of its own)
 *   ONE_DOT2(acc, w1, x1, w2, x2)  acc plus the 8 lanes of exact sums of 4
 *                          products of unsigned w1 and x1, and of w2 and x2
 *   ONE_SDOT2(acc, w1, x1, w2, x2)  as ONE_DOT2 for signed codes (Q8_0), the
 *                          lanes having started from ONE_SINIT(o, l)
 *   ONE_SINIT(o, l)        lane l's start for signed codes: 0, or o->xc[l]
 *   ONE_PART_DOT2(part, w1, x1, w2, x2)  as ONE_DOT2 into a partial sum of
 *                          the path's own width, started from zero, that
 *                          holds 4 such pairs of four-bit codes, 2 of five
 *   ONE_PART_ADD(isum, part)  isum plus a partial sum's exact 8 lanes
 *   ONE_R8_ENTRY           the name of the eight-row kernels' entry
 * Private to kernels/cpu (matmul_q8_avx2.c, matmul_q8_avx512.c). */
#ifndef BORG_KERNELS_Q8_ONE_BODY_H
#define BORG_KERNELS_Q8_ONE_BODY_H

#include "q8_decode_avx2.h"

// clang-format off
/* Tail block k of B units from group g0 for MM_MR rows: each unit's
 * natural group sums, folded into the block's lanes (tail_lanes). */
ONE_INLINE void one_tail(borg_dtype T, const mq_one *o, const uint8_t *const *rows, float ks[MM_MR][16], int64_t k,
                         int64_t g0, const int B, const char *next, size_t next_bytes, size_t step, __m256 *acc)
{
    const int SGN = quant_decompose_signed(T), L = 8 / B;
    for (size_t p = (size_t)g0 * step; p < (size_t)(g0 + B) * step && p < next_bytes; p += 64)
        _mm_prefetch(next + p, _MM_HINT_T0);
    const __m256 dx = _mm256_loadu_ps(o->xd + 8 * k), sx = _mm256_loadu_ps(o->xs + 8 * k);
    UNROLL for (int i = 0; i < MM_MR; i++) {
        __m256i v[4];
        float dw[8], mv[8];
        UNROLL for (int u = 0; u < B; u++) {
            __m256i w;
            float sc[2], m;
            ONE_CODES(T, rows[i], g0 + u, ks[i], &w, sc, &m);
            v[u] = ONE_DOT(w, _mm256_loadu_si256((const __m256i *)(o->xq + 32 * (g0 + u))), SGN);
            for (int l = 0; l < L; l++) {
                dw[L * u + l] = sc[0];
                mv[L * u + l] = m;
            }
        }
        const __m256i isum = ONE_LANES(tail_lanes(v, B), o, k);
        if (!SGN)
            acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(mv), sx, acc[i]);
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(_mm256_loadu_ps(dw), dx), acc[i]);
    }
}

/* One vector against rows [r0, r1), MM_MR rows at a time, decoding each
 * group of codes in registers (no panel) and folding a block's natural
 * group sums into its lanes: the same per-pair steps as q8_body, so the
 * same bits. It serves matrices without an eight-row copy (BORG_REPACK=0)
 * and the rows past a copy's last group of eight. The weights stream from memory once, so the next rows are
 * prefetched, spread over the groups: a burst at the start would stall on
 * the memory queue. */
ONE_INLINE void one_body(borg_dtype T, const mq_one *o, int64_t r0, int64_t r1)
{
    const int SGN = quant_decompose_signed(T), GPB = T == BORG_DT_Q6_K ? 4 : 8; /* groups per full block */
    const int64_t ng = o->w->cols / 32, nfull = ng / GPB;
    const int tail = (int)(ng - GPB * nfull);
    for (int64_t r = r0; r < r1; r += MM_MR) {
        const int nr = r1 - r < MM_MR ? (int)(r1 - r) : MM_MR;
        const uint8_t *rows[MM_MR];
        for (int i = 0; i < MM_MR; i++)
            rows[i] = (const uint8_t *)o->w->data + (size_t)(r + (i < nr ? i : nr - 1)) * o->w->row_bytes;
        const char *next = (const char *)rows[0] + (size_t)nr * o->w->row_bytes;
        const size_t next_bytes = (size_t)(r1 - r - nr < MM_MR ? r1 - r - nr : MM_MR) * o->w->row_bytes;
        const size_t step = (next_bytes / (size_t)ng + 63) & ~(size_t)63;
        __m256 acc[MM_MR];
        float ks[MM_MR][16] = {{0}}; /* K types: the super-block's k_scales; zeroed, as no
                                        build should have to prove which loads are dead */
        UNROLL for (int i = 0; i < MM_MR; i++)
            acc[i] = _mm256_setzero_ps();
        for (int64_t k = 0; k < nfull; k++) {
            const int64_t g0 = GPB * k;
            for (size_t p = (size_t)g0 * step; p < (size_t)(g0 + GPB) * step && p < next_bytes; p += 64)
                _mm_prefetch(next + p, _MM_HINT_T0);
            const __m256 dx = _mm256_loadu_ps(o->xd + 8 * k), sx = _mm256_loadu_ps(o->xs + 8 * k);
            UNROLL for (int i = 0; i < MM_MR; i++) {
                if (is_k(T) && (g0 & 7) == 0)
                    k_scales(T, rows[i] + k_bytes(T) * (size_t)(g0 >> 3), ks[i]);
                __m256i v[8];
                UNROLL for (int u = 0; u < GPB; u++) {
                    __m256i w;
                    float sc[2], m;
                    ONE_CODES(T, rows[i], g0 + u, ks[i], &w, sc, &m);
                    v[u] = ONE_DOT(w, _mm256_loadu_si256((const __m256i *)(o->xq + 32 * (g0 + u))), SGN);
                }
                const __m256i isum = ONE_LANES(block_lanes(v, GPB == 8), o, k);
                __m256 dw, m;
                block_scales(T, rows[i], g0, ks[i], &dw, &m);
                if (!SGN)
                    acc[i] = _mm256_fmadd_ps(m, sx, acc[i]);
                acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, dx), acc[i]);
            }
        }
        int64_t k = nfull, g = GPB * nfull; /* the tail's blocks of 4, 2, 1 units, in that order */
        if (tail & 4) {
            one_tail(T, o, rows, ks, k++, g, 4, next, next_bytes, step, acc);
            g += 4;
        }
        if (tail & 2) {
            one_tail(T, o, rows, ks, k++, g, 2, next, next_bytes, step, acc);
            g += 2;
        }
        if (tail & 1)
            one_tail(T, o, rows, ks, k, g, 1, next, next_bytes, step, acc);
        float y[MM_MR];
        _mm_storeu_ps(y, reduce4(acc[0], acc[1], acc[2], acc[3]));
        for (int i = 0; i < nr; i++)
            o->y[r + i] = y[i];
    }
}
/* The eight-row kernels (layout in matmul_kernels.h): register j of acc is
 * the contract's lane j for eight rows at once, so each block takes
 * one_body's steps lane for lane (the same scale products, the same FMAs)
 * and the final vertical sum is reduce4's order. */

/* Codes of chunk i's low (hi = 0) or high nibbles q, with, for five-bit
 * types (FIVE), their fifth bit from the plane p: bit i of byte 4r + e for
 * the low nibbles, bit 4 + i for the high ones. */
ONE_INLINE __m256i r8_codes(__m256i q, __m256i p, int i, int hi, const int FIVE)
{
    const __m256i c = _mm256_and_si256(hi ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0f));
    if (!FIVE)
        return c;
    const int bit = 4 * hi + i; /* to bit 4 */
    const __m256i at4 = bit < 4 ? _mm256_slli_epi16(p, 4 - bit) : bit > 4 ? _mm256_srli_epi16(p, bit - 4) : p;
    return _mm256_or_si256(c, _mm256_and_si256(at4, _mm256_set1_epi8(0x10)));
}

/* Lane r: the exact dot of one unit of row r, from its 128 bytes of codes c
 * (and for FIVE its 32 bytes of fifth bits p), with the unit's 32
 * activation codes x. */
ONE_INLINE __m256i r8_unit_sum(const uint8_t *c, const uint8_t *p, const int8_t *x, const int FIVE)
{
    const __m256i hb = FIVE ? _mm256_loadu_si256((const __m256i *)p) : _mm256_setzero_si256();
    __m256i isum = _mm256_setzero_si256(), part = _mm256_setzero_si256();
    UNROLL for (int i = 0; i < 4; i++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(c + 32 * i));
        int32_t xl, xh;
        memcpy(&xl, x + 4 * i, 4);
        memcpy(&xh, x + 16 + 4 * i, 4);
        part = ONE_PART_DOT2(part, r8_codes(q, hb, i, 0, FIVE), _mm256_set1_epi32(xl), r8_codes(q, hb, i, 1, FIVE),
                             _mm256_set1_epi32(xh));
        if (i == 3 || (FIVE && i == 1)) {
            isum = ONE_PART_ADD(isum, part);
            part = _mm256_setzero_si256();
        }
    }
    return isum;
}

/* One (row, unit) lane step of the contract for eight rows: the offset's
 * FMA, then the scaled sum's. */
ONE_INLINE __m256 r8_scaled(__m256 acc, __m256i isum, __m256 dw, float xd)
{
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, _mm256_set1_ps(xd)), acc);
}

ONE_INLINE __m256 r8_step(__m256 acc, __m256i isum, __m256 dw, __m256 m, float xd, float xs)
{
    return r8_scaled(_mm256_fmadd_ps(m, _mm256_set1_ps(xs), acc), isum, dw, xd);
}

/* Eight-row copies that stream from memory (o->stream): the hardware
 * prefetcher alone keeps too few of their lines in flight, so each step
 * asks for the bytes R8_AHEAD past the ones it reads (1 to 3 KB gained
 * alike on Zen 3). Where the copies sit in cache the requests only cost
 * (bench/RESULTS.md). A prefetch past the copy's end faults nothing. */
enum { R8_AHEAD = 2048 };

ONE_INLINE void r8_prefetch(const mq_one *o, const uint8_t *b, const int bytes)
{
    if (!o->stream)
        return;
    for (int p = 0; p < bytes; p += 64)
        _mm_prefetch((const char *)b + R8_AHEAD + p, _MM_HINT_T0);
}

ONE_INLINE void r8_store(const __m256 *acc, float *y)
{
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[4], acc[6]), _mm256_add_ps(acc[5], acc[7]));
    _mm256_storeu_ps(y, _mm256_add_ps(lo, hi));
}

/* Q4_K and Q5_K (T constant): Q5_K's units carry their plane of fifth
 * bits after the codes. */
ONE_INLINE void r8_k4(borg_dtype T, const mq_one *o, int64_t g0, int64_t g1)
{
    const int FIVE = T == BORG_DT_Q5_K, SB = FIVE ? MQ_R8_Q5K : MQ_R8_Q4K, UB = FIVE ? 160 : 128;
    const int64_t nblk = o->w->cols / 256;
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *b = (const uint8_t *)o->w->rows8 + (size_t)(g * nblk) * (size_t)SB;
        __m256 acc[8];
        UNROLL for (int j = 0; j < 8; j++)
            acc[j] = _mm256_setzero_ps();
        for (int64_t k = 0; k < nblk; k++, b += SB) {
            r8_prefetch(o, b, SB);
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
            const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + 16)));
            UNROLL for (int j = 0; j < 8; j++) {
                const uint8_t *c = b + 160 + UB * j;
                const __m256i isum = r8_unit_sum(c, c + 128, o->xq + 256 * k + 32 * j, FIVE);
                const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 32 + 8 * j))));
                const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 96 + 8 * j))));
                const __m256 m = _mm256_xor_ps(_mm256_mul_ps(dmin, mn), _mm256_set1_ps(-0.0f));
                acc[j] = r8_step(acc[j], isum, _mm256_mul_ps(d, sc), m, o->xd[8 * k + j], o->xs[8 * k + j]);
            }
        }
        r8_store(acc, o->y + MQ_R8 * g);
    }
}

/* Q6_K: a unit is 16 elements, its codes unsigned (0..63, as stored) in 96
 * bytes: two chunks of low nibbles (element 4i + e, i < 2, low; 8 + 4i + e
 * high), then the high 2 bits of element 4i + e at bits 2i, 2i + 1 of byte
 * 4r + e. Lanes start from xc (-32 times the unit's x code sum); in 16 bits
 * two products of 63 by 127 per lane, twice, stay under 32767 (AVX2). */
ONE_INLINE void r8_q6k(const mq_one *o, int64_t g0, int64_t g1)
{
    const int64_t nsb = o->w->cols / 256;
    const __m256i low4 = _mm256_set1_epi8(0x0f), hi2 = _mm256_set1_epi8(0x30);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *b = (const uint8_t *)o->w->rows8 + (size_t)(g * nsb) * MQ_R8_Q6K;
        __m256 acc[8];
        UNROLL for (int j = 0; j < 8; j++)
            acc[j] = _mm256_setzero_ps();
        for (int64_t sb = 0; sb < nsb; sb++, b += MQ_R8_Q6K) {
            r8_prefetch(o, b, MQ_R8_Q6K);
            const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
            UNROLL for (int u = 0; u < 16; u++) {
                const int64_t k = 2 * sb + u / 8; /* the contract's block; its lane is u % 8 */
                const uint8_t *c = b + 144 + 96 * u;
                const int8_t *x = o->xq + 256 * sb + 16 * u;
                const __m256i q0 = _mm256_loadu_si256((const __m256i *)c);
                const __m256i q1 = _mm256_loadu_si256((const __m256i *)(c + 32));
                const __m256i hb = _mm256_loadu_si256((const __m256i *)(c + 64));
                const __m256i w0 = _mm256_or_si256(_mm256_and_si256(q0, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), hi2));
                const __m256i w1 = _mm256_or_si256(_mm256_and_si256(q1, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), hi2));
                const __m256i w2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q0, 4), low4), _mm256_and_si256(hb, hi2));
                const __m256i w3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), low4),
                                                   _mm256_and_si256(_mm256_srli_epi16(hb, 2), hi2));
                int32_t xq[4];
                memcpy(xq, x, 16);
                __m256i isum = _mm256_set1_epi32(o->xc[8 * k + u % 8]);
                isum = ONE_DOT2(isum, w0, _mm256_set1_epi32(xq[0]), w1, _mm256_set1_epi32(xq[1]));
                isum = ONE_DOT2(isum, w2, _mm256_set1_epi32(xq[2]), w3, _mm256_set1_epi32(xq[3]));
                const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 16 + 8 * u))));
                acc[u % 8] = r8_scaled(acc[u % 8], isum, _mm256_mul_ps(d, sc), o->xd[8 * k + u % 8]);
            }
        }
        r8_store(acc, o->y + MQ_R8 * g);
    }
}

/* Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (T constant): a unit's header holds the
 * rows' f16 d (and for Q4_1/Q5_1 m), then come the codes (Q8_0: 8 chunks
 * of 32 bytes, byte 4r + e of chunk i element 4i + e of row r) and for Q5
 * the plane of fifth bits; Q4_0's offset is -8 d, Q5_0's -16 d, as
 * block_scales forms them. Units past the last whole block of 8 make the
 * tail blocks of matmul_kernels.h: lane j of a block of B units sums
 * groups j % L + L i (elements 4 g .. 4 g + 3 of group g: chunk g & 3's
 * low or high nibbles; Q8_0's chunk g) of its unit j / L, L = 8 / B. */
ONE_INLINE void r8_b32_scales(borg_dtype T, const uint8_t *h, __m256 *dw, __m256 *m)
{
    *dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
    if (T == BORG_DT_Q8_0)
        *m = _mm256_setzero_ps();
    else if (T == BORG_DT_Q4_1 || T == BORG_DT_Q5_1)
        *m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + 16)));
    else
        *m = _mm256_mul_ps(_mm256_set1_ps(T == BORG_DT_Q4_0 ? -8.0f : -16.0f), *dw);
}

/* Lane r: the exact dot of unit u's codes c of row r with x; Q8_0's chunk
 * i is element 4i + e, its lanes start from ONE_SINIT. */
ONE_INLINE __m256i r8_b32_unit(borg_dtype T, const uint8_t *c, const mq_one *o, int64_t u)
{
    const int8_t *x = o->xq + 32 * u;
    if (T != BORG_DT_Q8_0)
        return r8_unit_sum(c, c + 128, x, T == BORG_DT_Q5_0 || T == BORG_DT_Q5_1);
    int32_t xq[8];
    memcpy(xq, x, 32);
    __m256i isum = ONE_SINIT(o, u);
    UNROLL for (int i = 0; i < 8; i += 2)
        isum = ONE_SDOT2(isum, _mm256_loadu_si256((const __m256i *)(c + 32 * i)), _mm256_set1_epi32(xq[i]),
                         _mm256_loadu_si256((const __m256i *)(c + 32 * i + 32)), _mm256_set1_epi32(xq[i + 1]));
    return isum;
}

/* A lane's step: signed Q8_0 has no offset. */
ONE_INLINE __m256 r8_b32_step(borg_dtype T, __m256 acc, __m256i isum, __m256 dw, __m256 m, float xd, float xs)
{
    return T == BORG_DT_Q8_0 ? r8_scaled(acc, isum, dw, xd) : r8_step(acc, isum, dw, m, xd, xs);
}

/* Lane j of tail block k (B units, L = 8 / B lanes each) whose unit u
 * has codes c; hb: the unit's fifth bits (Q5). */
ONE_INLINE __m256i r8_b32_lane(borg_dtype T, const uint8_t *c, __m256i hb, const mq_one *o, int64_t u, int64_t k,
                               int j, const int B)
{
    const __m256i zero = _mm256_setzero_si256();
    const int L = 8 / B;
    __m256i isum = T == BORG_DT_Q8_0 ? ONE_SINIT(o, 8 * k + j) : zero;
    UNROLL for (int i = 0; i < B; i++) {
        const int g = j % L + L * i;
        int32_t xg;
        memcpy(&xg, o->xq + 32 * u + 4 * g, 4);
        if (T == BORG_DT_Q8_0) {
            isum = ONE_SDOT2(isum, _mm256_loadu_si256((const __m256i *)(c + 32 * g)), _mm256_set1_epi32(xg), zero,
                             zero);
            continue;
        }
        const __m256i w = r8_codes(_mm256_loadu_si256((const __m256i *)(c + 32 * (g & 3))), hb, g & 3, g >> 2,
                                   T == BORG_DT_Q5_0 || T == BORG_DT_Q5_1);
        isum = ONE_DOT2(isum, w, _mm256_set1_epi32(xg), zero, zero);
    }
    return isum;
}

/* Tail block k of B units from unit u0 for eight rows at b: each
 * register j its lane. */
ONE_INLINE void r8_b32_tail(borg_dtype T, const uint8_t *b, const mq_one *o, int64_t k, int64_t u0, const int B,
                            __m256 *acc)
{
    const int UB = mq_r8_unit_bytes(T), FIVE = T == BORG_DT_Q5_0 || T == BORG_DT_Q5_1, L = 8 / B;
    const int H = T == BORG_DT_Q4_1 || T == BORG_DT_Q5_1 ? 32 : 16; /* header bytes */
    UNROLL for (int t = 0; t < B; t++) {
        const uint8_t *h = b + (size_t)(u0 + t) * (size_t)UB;
        __m256 dw, m;
        r8_b32_scales(T, h, &dw, &m);
        const __m256i hb = FIVE ? _mm256_loadu_si256((const __m256i *)(h + H + 128)) : _mm256_setzero_si256();
        UNROLL for (int l = 0; l < L; l++) {
            const int j = L * t + l;
            acc[j] = r8_b32_step(T, acc[j], r8_b32_lane(T, h + H, hb, o, u0 + t, k, j, B), dw, m, o->xd[8 * k + j],
                                 o->xs[8 * k + j]);
        }
    }
}

ONE_INLINE void r8_b32(borg_dtype T, const mq_one *o, int64_t g0, int64_t g1)
{
    const int UB = mq_r8_unit_bytes(T);
    const int H = T == BORG_DT_Q4_1 || T == BORG_DT_Q5_1 ? 32 : 16; /* header bytes */
    const int64_t ng = o->w->cols / 32, nfull = ng / 8;
    const int tail = (int)(ng - 8 * nfull);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *b = (const uint8_t *)o->w->rows8 + (size_t)(g * ng) * (size_t)UB;
        __m256 acc[8];
        UNROLL for (int j = 0; j < 8; j++)
            acc[j] = _mm256_setzero_ps();
        for (int64_t k = 0; k < nfull; k++) {
            r8_prefetch(o, b + (size_t)(8 * k) * (size_t)UB, 8 * UB);
            UNROLL for (int j = 0; j < 8; j++) {
                const int64_t u = 8 * k + j;
                const uint8_t *h = b + (size_t)u * (size_t)UB;
                __m256 dw, m;
                r8_b32_scales(T, h, &dw, &m);
                acc[j] = r8_b32_step(T, acc[j], r8_b32_unit(T, h + H, o, u), dw, m, o->xd[u], o->xs[u]);
            }
        }
        int64_t k = nfull, u = 8 * nfull; /* the tail's blocks of 4, 2, 1 units, in that order */
        if (tail & 4) {
            r8_b32_tail(T, b, o, k++, u, 4, acc);
            u += 4;
        }
        if (tail & 2) {
            r8_b32_tail(T, b, o, k++, u, 2, acc);
            u += 2;
        }
        if (tail & 1)
            r8_b32_tail(T, b, o, k, u, 1, acc);
        r8_store(acc, o->y + MQ_R8 * g);
    }
}
// clang-format on

/* The eight-row kernel of type T (a constant wherever this is inlined). */
ONE_INLINE void r8_of(borg_dtype T, const mq_one *o, int64_t g0, int64_t g1)
{
    if (T == BORG_DT_Q6_K)
        r8_q6k(o, g0, g1);
    else if (T == BORG_DT_Q4_K || T == BORG_DT_Q5_K)
        r8_k4(T, o, g0, g1);
    else
        r8_b32(T, o, g0, g1);
}

/* Every type of the 8-bit path gets its two kernels, in place and eight-row,
 * and the two entries pick them by type. */
// clang-format off
#define ONE_TYPES(X)      \
    X(q4_0, BORG_DT_Q4_0) \
    X(q4_1, BORG_DT_Q4_1) \
    X(q5_0, BORG_DT_Q5_0) \
    X(q5_1, BORG_DT_Q5_1) \
    X(q8_0, BORG_DT_Q8_0) \
    X(q4_k, BORG_DT_Q4_K) \
    X(q5_k, BORG_DT_Q5_K) \
    X(q6_k, BORG_DT_Q6_K)
// clang-format on

#define ONE_KERNELS(name, T)                                                                               \
    ONE_TARGET static void one_##name(const mq_one *o, int64_t r0, int64_t r1) { one_body(T, o, r0, r1); } \
    ONE_TARGET static void one_r8_##name(const mq_one *o, int64_t g0, int64_t g1) { r8_of(T, o, g0, g1); }
ONE_TYPES(ONE_KERNELS)

#define ONE_CASE(name, T) \
    case T: one_##name(o, r0, r1); break;
void ONE_ENTRY(const mq_one *o, int64_t r0, int64_t r1)
{
    switch (o->w->type) {
        ONE_TYPES(ONE_CASE)
    default: break;
    }
}

#define ONE_R8_CASE(name, T) \
    case T: one_r8_##name(o, g0, g1); break;
void ONE_R8_ENTRY(const mq_one *o, int64_t g0, int64_t g1)
{
    switch (o->w->type) {
        ONE_TYPES(ONE_R8_CASE)
    default: break;
    }
}

#endif
