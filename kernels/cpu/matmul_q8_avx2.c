/* AVX2 kernels of the 8-bit activation path (matmul_q8.c): the activation
 * quantizer, the weight decomposition (quant.c's quant_decompose_row, bit for
 * bit), the integer tile and the one-vector kernel. Both keep the contract
 * of matmul_kernels.h: exact integer lane sums per block, then one FMA per
 * lane and block. In the tile a block's passes are maddubs products added
 * as 16-bit integers for as many passes as cannot overflow (DEPTH), so most
 * of the work is one maddubs and one add per 32 weights and vector. */
#include "matmul_kernels.h"

#ifdef BORG_HAVE_AVX2_KERNELS

#include "q8_decode_avx2.h"

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
    /* the tail (32-element units only) on its own: a shape of no full blocks */
    const mq_shape ts = {0, (int)(ng - GPB * nfull), 32, 8};
    int8_t codes[7 * 32];
    float sc[7][2], off[7];
    for (int g = 0; g < ts.tail; g++) {
        __m256i v;
        group_codes(T, row, GPB * nfull + g, ks, &v, sc[g], &off[g]);
        _mm256_storeu_si256((__m256i *)(codes + 32 * g), v);
    }
    for (int64_t k = 0; k < mq_nblk(&ts); k++, dw += 8, m += 8) {
        mq_interleave_block(&ts, k, codes, q, 1);
        for (int j = 0; j < 8; j++) {
            dw[j] = sc[mq_lane_unit(&ts, k, j)][0];
            m[j] = off[mq_lane_unit(&ts, k, j)];
        }
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

/* interleave (matmul_q8.c) on AVX2, the same bytes: a full block's 8
 * units of 32 codes are an 8 x 8 matrix of 4-byte words, transposed; its 8
 * units of 16 (Q6_K) an 8 x 4 one, units j and j + 4 sharing a register
 * whose two halves transpose at once. */
AVX2 void mq_interleave_avx2(const mq_shape *sh, const int8_t *src, int8_t *dst, int spread)
{
    for (int64_t k = 0; k < sh->nfull; k++) {
        const int8_t *u = src + 8 * sh->unit * k;
        int8_t *d = dst + spread * mq_block_start(sh, k);
        if (sh->unit == 32) {
            __m256i v[8];
            for (int j = 0; j < 8; j++)
                v[j] = _mm256_loadu_si256((const __m256i *)(u + 32 * j));
            transpose8(v);
            for (int i = 0; i < 8; i++)
                _mm256_storeu_si256((__m256i *)(d + spread * 32 * i), v[i]);
            continue;
        }
        __m256i v[4], a[4];
        for (int j = 0; j < 4; j++)
            v[j] = _mm256_loadu2_m128i((const __m128i *)(u + 16 * (j + 4)), (const __m128i *)(u + 16 * j));
        a[0] = _mm256_unpacklo_epi32(v[0], v[1]);
        a[1] = _mm256_unpackhi_epi32(v[0], v[1]);
        a[2] = _mm256_unpacklo_epi32(v[2], v[3]);
        a[3] = _mm256_unpackhi_epi32(v[2], v[3]);
        _mm256_storeu_si256((__m256i *)d, _mm256_unpacklo_epi64(a[0], a[2]));
        _mm256_storeu_si256((__m256i *)(d + spread * 32), _mm256_unpackhi_epi64(a[0], a[2]));
        _mm256_storeu_si256((__m256i *)(d + spread * 64), _mm256_unpacklo_epi64(a[1], a[3]));
        _mm256_storeu_si256((__m256i *)(d + spread * 96), _mm256_unpackhi_epi64(a[1], a[3]));
    }
    for (int64_t k = sh->nfull; k < mq_nblk(sh); k++)
        mq_interleave_block(sh, k, src, dst, spread);
}

/* Blocks whose integer sums are parked at a time: the integer passes then
 * hold only the 16-bit sums in registers, and the float steps only the
 * accumulators, where both at once would spill. */
enum { PARK = 8 };

/* The float steps of parked blocks k0 .. k1 - 1 into acc. */
AVX2_INLINE void park_steps(const mq_tile *t, int64_t k0, int64_t k1, int64_t lanes, const int B, const int SGN,
                            __m256i park[PARK][MQ_MR][MQ_NR], __m256 acc[MQ_MR][MQ_NR])
{
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

/* B, P, DEPTH and SGN constant: the block loop unrolls into registers. The
 * tail's blocks of 4, 2 and 1 units (mq_block_start's order), each with
 * its own pass count, are parked together after the full blocks. */
AVX2_INLINE void q8_body(const mq_tile *t, const int B, const int P, const int DEPTH, const int SGN)
{
    const int64_t nfull = t->sh.nfull, nblk = mq_nblk(&t->sh), lanes = 8 * nblk;
    const int tail = t->sh.tail;
    __m256 acc[MQ_MR][MQ_NR];
    __m256i park[PARK][MQ_MR][MQ_NR];
    UNROLL for (int r = 0; r < MQ_MR; r++)
        UNROLL for (int b = 0; b < B; b++)
            acc[r][b] = _mm256_setzero_ps();
    for (int64_t k0 = 0; k0 < nfull; k0 += PARK) {
        const int64_t k1 = nfull - k0 < PARK ? nfull : k0 + PARK;
        for (int64_t k = k0; k < k1; k++)
            block_dot(t, 32 * P * k, B, P, DEPTH, SGN, park[k - k0]);
        park_steps(t, k0, k1, lanes, B, SGN, park, acc);
    }
    int n = 0;
    int64_t c0 = 32 * P * nfull;
    if (tail & 4) {
        block_dot(t, c0, B, 4, DEPTH < 4 ? DEPTH : 4, SGN, park[n++]);
        c0 += 4 * 32;
    }
    if (tail & 2) {
        block_dot(t, c0, B, 2, DEPTH < 2 ? DEPTH : 2, SGN, park[n++]);
        c0 += 2 * 32;
    }
    if (tail & 1)
        block_dot(t, c0, B, 1, 1, SGN, park[n++]);
    park_steps(t, nfull, nblk, lanes, B, SGN, park, acc);
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


#define ONE_INLINE AVX2_INLINE
#define ONE_TARGET AVX2
#define ONE_ENTRY mq_one_avx2
#define ONE_CODES group_codes
#define ONE_DOT(w, x, SGN) group_dot(w, x, SGN)
#define ONE_LANES(isum, o, k) (isum)
/* both pairs' 16-bit sums stay under 2 * 2 * 15 * 127 */
#define ONE_DOT2(acc, w1, x1, w2, x2) \
    _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(w1, x1), _mm256_maddubs_epi16(w2, x2)), _mm256_set1_epi16(1)))
#define ONE_SDOT2(acc, w1, x1, w2, x2) \
    _mm256_add_epi32(_mm256_add_epi32(acc, group_dot(w1, x1, 1)), group_dot(w2, x2, 1))
#define ONE_SINIT(o, l) _mm256_setzero_si256()
/* 16 bits: 16 products of 15 by 127 (four-bit codes), or 8 of 31 by 127, stay under 32767 */
#define ONE_PART_DOT2(part, w1, x1, w2, x2) \
    _mm256_add_epi16(part, _mm256_add_epi16(_mm256_maddubs_epi16(w1, x1), _mm256_maddubs_epi16(w2, x2)))
#define ONE_PART_ADD(isum, part) _mm256_add_epi32(isum, _mm256_madd_epi16(part, _mm256_set1_epi16(1)))
#define ONE_R8_ENTRY mq_one_r8_avx2
#include "q8_one_body.h"
// clang-format on

#endif
