/* AVX2 kernels of the 8-bit activation path (matmul_q8.c): the activation
 * quantizer, the weight decomposition (quant.c's quant_decompose_row, bit for
 * bit), the integer tile and the one-vector kernel. Both keep the contract
 * of matmul_kernels.h: exact integer lane sums per block, then one FMA per
 * lane and block. In the tile a block's passes are maddubs products added
 * as 16-bit integers for as many passes as cannot overflow (DEPTH), so most
 * of the work is one maddubs and one add per 32 weights and vector. */
#include "matmul_kernels.h"

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

AVX2 void mq_quantize_avx2(const float *x, int64_t ng, int8_t *q, float *d, float *s)
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
        s[g] = d[g] * (float)sum;
    }
}

/* The nibble (hi = 0: low, 1: high) of each of 32 bytes. */
AVX2_INLINE __m256i nibbles32(const uint8_t *p, int hi)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(4 * hi)), _mm256_set1_epi8(0x0f));
}

/* Group g of a row of type T (a constant wherever this is inlined): its 32
 * codes, the scales of its units (sc[1] for Q6_K's second 16) and its
 * offset, as quant_decompose_row gives them. For K types
 * ks holds the super-block's k_scales, refreshed by the caller at g % 8 == 0.
 *  Q4_0/Q4_1: byte j of the 16 holds element j (low nibble) and j + 16.
 *  Q5_0/Q5_1: as Q4_0/Q4_1 with a fifth bit per element (q5_codes).
 *  Q4_K (codes at byte 16) and Q5_K (at 48, plus a fifth bit: bit j of
 *  byte 16 + l): group j takes the low (j even) or high nibble of 32 bytes.
 *  Q6_K: in half h of a super-block, chunk c of 32 takes the low (c < 2) or
 *  high nibble of ql[64h + 32(c & 1) + l] and bits 2c, 2c + 1 of
 *  qh[32h + l] (qh at byte 128); code q - 32, a scale per 16 elements. */
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
        const uint8_t *sb = row + 210 * (size_t)(g >> 3);
        const int h = (int)(g >> 2) & 1, c = (int)(g & 3);
        const __m256i lo = nibbles32(sb + 64 * h + 32 * (c & 1), c >> 1);
        __m256i hi = _mm256_loadu_si256((const __m256i *)(sb + 128 + 32 * h));
        hi = _mm256_and_si256(_mm256_srl_epi16(hi, _mm_cvtsi32_si128(2 * c)), _mm256_set1_epi8(3));
        *codes = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
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
/* 8 vectors of 8 dwords transposed in place: dword j of v[i] becomes
 * dword i of v[j]. */
AVX2_INLINE void transpose8(__m256i v[8])
{
    __m256i a[8], b[8];
    UNROLL for (int i = 0; i < 8; i += 2) {
        a[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
        a[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
    }
    UNROLL for (int i = 0; i < 8; i += 4) {
        b[i] = _mm256_unpacklo_epi64(a[i], a[i + 2]);
        b[i + 1] = _mm256_unpackhi_epi64(a[i], a[i + 2]);
        b[i + 2] = _mm256_unpacklo_epi64(a[i + 1], a[i + 3]);
        b[i + 3] = _mm256_unpackhi_epi64(a[i + 1], a[i + 3]);
    }
    UNROLL for (int i = 0; i < 4; i++) {
        v[i] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x20);
        v[i + 4] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x31);
    }
}

/* 4 groups of two 16-element units into the 4 passes of their block: the
 * 128-bit halves are units, so the transpose runs per half, which leaves
 * units in the order 0 2 4 6 1 3 5 7. */
AVX2_INLINE void transpose_halves(__m256i v[4])
{
    const __m256i a0 = _mm256_unpacklo_epi32(v[0], v[1]), a1 = _mm256_unpackhi_epi32(v[0], v[1]);
    const __m256i a2 = _mm256_unpacklo_epi32(v[2], v[3]), a3 = _mm256_unpackhi_epi32(v[2], v[3]);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    v[0] = _mm256_permutevar8x32_epi32(_mm256_unpacklo_epi64(a0, a2), order);
    v[1] = _mm256_permutevar8x32_epi32(_mm256_unpackhi_epi64(a0, a2), order);
    v[2] = _mm256_permutevar8x32_epi32(_mm256_unpacklo_epi64(a1, a3), order);
    v[3] = _mm256_permutevar8x32_epi32(_mm256_unpackhi_epi64(a1, a3), order);
}

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

AVX2_INLINE void pack_t(borg_dtype T, const uint8_t *row, int64_t cols, int8_t *q, float *dw, float *m)
{
    const int GPB = T == BORG_DT_Q6_K ? 4 : 8; /* groups per full block */
    const int64_t ng = cols / 32, nfull = ng / GPB;
    float ks[16];
    for (int64_t k = 0; k < nfull; k++, q += 32 * GPB, dw += 8, m += 8) {
        const int64_t g0 = GPB * k;
        if (is_k(T) && (g0 & 7) == 0)
            k_scales(T, row + k_bytes(T) * (size_t)(g0 >> 3), ks);
        __m256i v[8];
        UNROLL for (int u = 0; u < GPB; u++) {
            float sc[2], off;
            group_codes(T, row, g0 + u, ks, &v[u], sc, &off);
        }
        if (GPB == 8)
            transpose8(v);
        else
            transpose_halves(v);
        UNROLL for (int i = 0; i < GPB; i++)
            _mm256_storeu_si256((__m256i *)(q + 32 * i), v[i]);
        __m256 scales, offsets;
        block_scales(T, row, g0, ks, &scales, &offsets);
        _mm256_storeu_ps(dw, scales);
        _mm256_storeu_ps(m, offsets);
    }
    for (int64_t g = GPB * nfull; g < ng; g++, q += 32, dw += 8, m += 8) {
        __m256i v;
        float sc[2], off;
        group_codes(T, row, g, ks, &v, sc, &off);
        _mm256_storeu_si256((__m256i *)q, v);
        _mm256_storeu_ps(dw, _mm256_set1_ps(sc[0]));
        _mm256_storeu_ps(m, _mm256_set1_ps(off));
    }
}

#define PACK(name, T)                                                                              \
    AVX2 static void name(const uint8_t *row, int64_t cols, int8_t *q, float *dw, float *m)        \
    {                                                                                              \
        pack_t(T, row, cols, q, dw, m);                                                            \
    }

PACK(pack_q4_0, BORG_DT_Q4_0)
PACK(pack_q4_1, BORG_DT_Q4_1)
PACK(pack_q5_0, BORG_DT_Q5_0)
PACK(pack_q5_1, BORG_DT_Q5_1)
PACK(pack_q8_0, BORG_DT_Q8_0)
PACK(pack_q4_k, BORG_DT_Q4_K)
PACK(pack_q5_k, BORG_DT_Q5_K)
PACK(pack_q6_k, BORG_DT_Q6_K)

void mq_pack_avx2(borg_dtype t, const void *row, int64_t cols, int8_t *q, float *dw, float *m)
{
    switch (t) {
    case BORG_DT_Q4_0: pack_q4_0(row, cols, q, dw, m); break;
    case BORG_DT_Q4_1: pack_q4_1(row, cols, q, dw, m); break;
    case BORG_DT_Q5_0: pack_q5_0(row, cols, q, dw, m); break;
    case BORG_DT_Q5_1: pack_q5_1(row, cols, q, dw, m); break;
    case BORG_DT_Q8_0: pack_q8_0(row, cols, q, dw, m); break;
    case BORG_DT_Q4_K: pack_q4_k(row, cols, q, dw, m); break;
    case BORG_DT_Q5_K: pack_q5_k(row, cols, q, dw, m); break;
    case BORG_DT_Q6_K: pack_q6_k(row, cols, q, dw, m); break;
    default: break;
    }
}

/* The exact integer sums of one block's P passes for a tile of B vectors.
 * A 16-bit lane of maddubs holds two products, at most 2 * 15 * 127 for
 * 4-bit codes, so DEPTH passes may add up before madd widens them. Signed
 * codes move their sign onto x (abs/sign) since maddubs wants one operand
 * unsigned. */
AVX2_INLINE void block_dot(const mq_tile *t, int64_t c0, const int B, const int P, const int DEPTH, const int SGN,
                           __m256i isum[MQ_MR][MQ_NR])
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a16[MQ_MR][MQ_NR];
    UNROLL for (int i = 0; i < P; i++) {
        __m256i w[MQ_MR], wu[MQ_MR];
        UNROLL for (int r = 0; r < MQ_MR; r++) {
            w[r] = _mm256_loadu_si256((const __m256i *)(t->q[r] + c0 + 32 * i));
            wu[r] = SGN ? _mm256_abs_epi8(w[r]) : w[r];
        }
        UNROLL for (int b = 0; b < B; b++) {
            const __m256i x = _mm256_loadu_si256((const __m256i *)(t->xq + b * t->cols + c0 + 32 * i));
            UNROLL for (int r = 0; r < MQ_MR; r++) {
                const __m256i p = _mm256_maddubs_epi16(wu[r], SGN ? _mm256_sign_epi8(x, w[r]) : x);
                a16[r][b] = i % DEPTH == 0 ? p : _mm256_add_epi16(a16[r][b], p);
                /* keeps the sums a chain: GCC would otherwise reassociate
                 * them into a tree of all passes' products and spill */
                __asm__("" : "+x"(a16[r][b]));
                if (i % DEPTH == DEPTH - 1 || i == P - 1) {
                    const __m256i s32 = _mm256_madd_epi16(a16[r][b], ones);
                    isum[r][b] = i < DEPTH ? s32 : _mm256_add_epi32(isum[r][b], s32);
                }
            }
        }
    }
}

/* Blocks whose integer sums are parked at a time: the integer passes then
 * hold only the 16-bit sums in registers, and the float steps only the
 * accumulators, where both at once would spill. */
enum { PARK = 8 };

/* B, P, DEPTH and SGN constant: the block loop unrolls into registers. */
AVX2_INLINE void q8_body(const mq_tile *t, const int B, const int P, const int DEPTH, const int SGN)
{
    const int64_t nfull = t->sh.nfull, nblk = nfull + t->sh.nsingle, lanes = 8 * nblk;
    __m256 acc[MQ_MR][MQ_NR];
    __m256i park[PARK][MQ_MR][MQ_NR];
    UNROLL for (int r = 0; r < MQ_MR; r++)
        UNROLL for (int b = 0; b < B; b++)
            acc[r][b] = _mm256_setzero_ps();
    for (int64_t k0 = 0; k0 < nblk; k0 += PARK) {
        const int64_t k1 = nblk - k0 < PARK ? nblk : k0 + PARK;
        for (int64_t k = k0; k < k1; k++)
            if (k < nfull)
                block_dot(t, mq_block_start(&t->sh, k), B, P, DEPTH, SGN, park[k - k0]);
            else
                block_dot(t, mq_block_start(&t->sh, k), B, 1, 1, SGN, park[k - k0]);
        for (int64_t k = k0; k < k1; k++)
            UNROLL for (int r = 0; r < MQ_MR; r++) {
                const __m256 dw = _mm256_loadu_ps(t->dw[r] + 8 * k), m = _mm256_loadu_ps(t->m[r] + 8 * k);
                UNROLL for (int b = 0; b < B; b++) {
                    const __m256 scale = _mm256_mul_ps(dw, _mm256_loadu_ps(t->xd + b * lanes + 8 * k));
                    if (!SGN)
                        acc[r][b] = _mm256_fmadd_ps(m, _mm256_loadu_ps(t->xs + b * lanes + 8 * k), acc[r][b]);
                    acc[r][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(park[k - k0][r][b]), scale, acc[r][b]);
                }
            }
    }
    UNROLL for (int r = 0; r < MQ_MR; r++) {
        if (r >= t->nr)
            break;
        float y[MQ_NR];
        _mm_storeu_ps(y, reduce4(acc[r][0], acc[r][B > 1], acc[r][B > 2 ? 2 : 0], acc[r][B > 3 ? 3 : 0]));
        UNROLL for (int b = 0; b < B; b++)
            t->y[b * t->ys + r] = y[b];
    }
}

/* One tile kernel per (passes, depth, signedness): 4-bit codes (Q4_0, Q4_1,
 * Q4_K) add all 8 passes as 16-bit, 5-bit ones (Q5_0, Q5_1, Q5_K: at most
 * 2 * 31 * 127 a pass) 4, Q6_K's signed 6-bit codes (|q| <= 32) 4 of its
 * 4, Q8_0 one. */
#define Q8_TILE(name, P, DEPTH, SGN)                                                               \
    AVX2 static void name(const mq_tile *t, int nv)                                                \
    {                                                                                              \
        if (nv == 4)                                                                               \
            q8_body(t, 4, P, DEPTH, SGN);                                                          \
        else if (nv == 3)                                                                          \
            q8_body(t, 3, P, DEPTH, SGN);                                                          \
        else if (nv == 2)                                                                          \
            q8_body(t, 2, P, DEPTH, SGN);                                                          \
        else                                                                                       \
            q8_body(t, 1, P, DEPTH, SGN);                                                          \
    }

Q8_TILE(tile_q4, 8, 8, 0)
Q8_TILE(tile_q5, 8, 4, 0)
Q8_TILE(tile_q6, 4, 4, 1)
Q8_TILE(tile_q8, 8, 1, 1)

void mq_tile_avx2(const mq_tile *t, int nv)
{
    switch (t->type) {
    case BORG_DT_Q5_0:
    case BORG_DT_Q5_1:
    case BORG_DT_Q5_K: tile_q5(t, nv); break;
    case BORG_DT_Q6_K: tile_q6(t, nv); break;
    case BORG_DT_Q8_0: tile_q8(t, nv); break;
    default: tile_q4(t, nv); break;
    }
}

/* The exact integer dot of one group: 8 lanes of 4 products each. */
AVX2_INLINE __m256i group_dot(__m256i w, __m256i x, const int SGN)
{
    const __m256i p = SGN ? _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w))
                          : _mm256_maddubs_epi16(w, x);
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
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

/* One vector against rows [r0, r1), MM_MR rows at a time, decoding each
 * group of codes in registers (no panel) and folding a block's natural
 * group sums into its lanes: the same per-pair steps as q8_body, so the
 * same bits. The weights stream from memory once, so the next rows are
 * prefetched, spread over the groups: a burst at the start would stall on
 * the memory queue. */
AVX2_INLINE void one_body(borg_dtype T, const mq_one *o, int64_t r0, int64_t r1)
{
    const int SGN = quant_decompose_signed(T), GPB = T == BORG_DT_Q6_K ? 4 : 8; /* groups per full block */
    const int64_t ng = o->w->cols / 32, nfull = ng / GPB;
    for (int64_t r = r0; r < r1; r += MM_MR) {
        const int nr = r1 - r < MM_MR ? (int)(r1 - r) : MM_MR;
        const uint8_t *rows[MM_MR];
        for (int i = 0; i < MM_MR; i++)
            rows[i] = (const uint8_t *)o->w->data + (size_t)(r + (i < nr ? i : nr - 1)) * o->w->row_bytes;
        const char *next = (const char *)rows[0] + (size_t)nr * o->w->row_bytes;
        const size_t next_bytes = (size_t)(r1 - r - nr < MM_MR ? r1 - r - nr : MM_MR) * o->w->row_bytes;
        const size_t step = (next_bytes / (size_t)ng + 63) & ~(size_t)63;
        __m256 acc[MM_MR];
        float ks[MM_MR][16];
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
                    group_codes(T, rows[i], g0 + u, ks[i], &w, sc, &m);
                    v[u] = group_dot(w, _mm256_loadu_si256((const __m256i *)(o->xq + 32 * (g0 + u))), SGN);
                }
                const __m256i isum = block_lanes(v, GPB == 8);
                __m256 dw, m;
                block_scales(T, rows[i], g0, ks[i], &dw, &m);
                if (!SGN)
                    acc[i] = _mm256_fmadd_ps(m, sx, acc[i]);
                acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, dx), acc[i]);
            }
        }
        for (int64_t g = GPB * nfull, k = nfull; g < ng; g++, k++) { /* single units */
            for (size_t p = (size_t)g * step; p < (size_t)(g + 1) * step && p < next_bytes; p += 64)
                _mm_prefetch(next + p, _MM_HINT_T0);
            const __m256 dx = _mm256_loadu_ps(o->xd + 8 * k), sx = _mm256_loadu_ps(o->xs + 8 * k);
            const __m256i x = _mm256_loadu_si256((const __m256i *)(o->xq + 32 * g));
            UNROLL for (int i = 0; i < MM_MR; i++) {
                __m256i w;
                float sc[2], m;
                group_codes(T, rows[i], g, ks[i], &w, sc, &m);
                const __m256i isum = group_dot(w, x, SGN);
                if (!SGN)
                    acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(m), sx, acc[i]);
                acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(_mm256_set1_ps(sc[0]), dx), acc[i]);
            }
        }
        float y[MM_MR];
        _mm_storeu_ps(y, reduce4(acc[0], acc[1], acc[2], acc[3]));
        for (int i = 0; i < nr; i++)
            o->y[r + i] = y[i];
    }
}
// clang-format on
#define ONE_KERNEL(name, T) \
    AVX2 static void name(const mq_one *o, int64_t r0, int64_t r1) { one_body(T, o, r0, r1); }

ONE_KERNEL(one_q4_0, BORG_DT_Q4_0)
ONE_KERNEL(one_q4_1, BORG_DT_Q4_1)
ONE_KERNEL(one_q5_0, BORG_DT_Q5_0)
ONE_KERNEL(one_q5_1, BORG_DT_Q5_1)
ONE_KERNEL(one_q8_0, BORG_DT_Q8_0)
ONE_KERNEL(one_q4_k, BORG_DT_Q4_K)
ONE_KERNEL(one_q5_k, BORG_DT_Q5_K)
ONE_KERNEL(one_q6_k, BORG_DT_Q6_K)

void mq_one_avx2(const mq_one *o, int64_t r0, int64_t r1)
{
    switch (o->w->type) {
    case BORG_DT_Q4_0: one_q4_0(o, r0, r1); break;
    case BORG_DT_Q4_1: one_q4_1(o, r0, r1); break;
    case BORG_DT_Q5_0: one_q5_0(o, r0, r1); break;
    case BORG_DT_Q5_1: one_q5_1(o, r0, r1); break;
    case BORG_DT_Q8_0: one_q8_0(o, r0, r1); break;
    case BORG_DT_Q4_K: one_q4_k(o, r0, r1); break;
    case BORG_DT_Q5_K: one_q5_k(o, r0, r1); break;
    case BORG_DT_Q6_K: one_q6_k(o, r0, r1); break;
    default: break;
    }
}

#endif
