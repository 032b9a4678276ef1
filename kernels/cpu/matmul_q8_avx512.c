/* AVX-512 VNNI tile of the 8-bit activation path (matmul_q8.c; the pair
 * layout is in matmul_kernels.h). vpdpbusd adds the four byte products of
 * each 32-bit lane straight into that lane, which is the block layout's own
 * shape (lane j of a pass holds four elements of unit j), so one
 * instruction takes a pass of one row against two vectors, with no 16-bit
 * stage to overflow and no fold afterwards: the register's halves are the
 * two vectors' lanes. The integer sums are exact and the float steps per
 * lane and block are the AVX2 kernel's, in the same order, so this path
 * gives the AVX2 path's bits.
 *
 * The one-vector kernel is the AVX2 one (q8_one_body.h) with vpdpbusd for
 * each group's dot product.
 *
 * vpdpbusd multiplies unsigned by signed bytes. Signed weight codes (Q6_K,
 * Q8_0) are offset by 128 to make them unsigned; the offset adds 128 times
 * the lane's sum of x codes, which the lane starts from minus (xc). */
#include "matmul_kernels.h"

#ifdef BORG_HAVE_AVX2_KERNELS

#include "q8_decode_avx2.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))
#define AVX512_INLINE \
    static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx2,fma,f16c")))

/* The one-vector kernel: each group's 8 lanes in one 256-bit vpdpbusd
 * (vpmaddubsw and vpmaddwd on AVX2), on unsigned codes: Q6_K's as stored
 * (0..63), Q8_0's offset by 128; the block's lanes then start from xc,
 * which takes off 32 (Q6_K) or 128 times each lane's sum of x codes. */
AVX512_INLINE void vnni_codes(borg_dtype T, const uint8_t *row, int64_t g, const float *ks, __m256i *codes, float sc[2],
                              float *m)
{
    if (T == BORG_DT_Q6_K) {
        const int h = (int)(g >> 2) & 1, c = (int)(g & 3);
        *codes = q6_codes(row, g);
        sc[0] = ks[8 * h + 2 * c];
        sc[1] = ks[8 * h + 2 * c + 1];
        *m = 0;
        return;
    }
    group_codes(T, row, g, ks, codes, sc, m);
    if (T == BORG_DT_Q8_0)
        *codes = _mm256_xor_si256(*codes, _mm256_set1_epi8((char)0x80));
}

#define ONE_INLINE AVX512_INLINE
#define ONE_TARGET AVX512
#define ONE_ENTRY mq_one_avx512
#define ONE_CODES vnni_codes
#define ONE_DOT(w, x, SGN) _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x)
/* SGN is one_body's own */
#define ONE_LANES(isum, o, k) \
    (SGN ? _mm256_add_epi32(isum, _mm256_loadu_si256((const __m256i *)((o)->xc + 8 * (k)))) : (isum))
#define ONE_DOT2(acc, w1, x1, w2, x2) _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(acc, w1, x1), w2, x2)
#define ONE_SDOT2(acc, w1, x1, w2, x2)                                    \
    ONE_DOT2(acc, _mm256_xor_si256(w1, _mm256_set1_epi8((char)0x80)), x1, \
             _mm256_xor_si256(w2, _mm256_set1_epi8((char)0x80)), x2)
#define ONE_SINIT(o, l) _mm256_set1_epi32((o)->xc[l])
#define ONE_PART_DOT2 ONE_DOT2
#define ONE_PART_ADD(isum, part) _mm256_add_epi32(isum, part)
#define ONE_R8_ENTRY mq_one_r8_avx512
#include "q8_one_body.h"


// clang-format off
/* The integer lanes of block k, its codes at c0, for every (row, pair):
 * PASSES passes. */
AVX512_INLINE void block_sums(const mq_ptile *t, int64_t k, int64_t c0, int64_t lanes, const int NP,
                              const int PASSES, const int SGN, __m512i is[MP_MR][MP_NP])
{
    UNROLL for (int p = 0; p < NP; p++) {
        const __m512i init = SGN ? _mm512_loadu_si512(t->xc + p * lanes + 16 * k) : _mm512_setzero_si512();
        UNROLL for (int r = 0; r < MP_MR; r++)
            is[r][p] = init;
    }
    UNROLL for (int i = 0; i < PASSES; i++) {
        __m512i x[MP_NP];
        UNROLL for (int p = 0; p < NP; p++)
            x[p] = _mm512_loadu_si512(t->xq + p * 2 * t->cols + 2 * c0 + 64 * i);
        UNROLL for (int r = 0; r < MP_MR; r++) {
            __m512i w = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(t->q[r] + c0 + 32 * i)));
            if (SGN)
                w = _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
            UNROLL for (int p = 0; p < NP; p++)
                is[r][p] = _mm512_dpbusd_epi32(is[r][p], w, x[p]);
        }
    }
}

/* Block k's integer lanes, then its float step into acc. */
AVX512_INLINE void block_step(const mq_ptile *t, int64_t k, int64_t c0, int64_t lanes, const int NP,
                              const int PASSES, const int SGN, __m512 acc[MP_MR][MP_NP])
{
    __m512i is[MP_MR][MP_NP];
    block_sums(t, k, c0, lanes, NP, PASSES, SGN, is);
    UNROLL for (int p = 0; p < NP; p++) {
        const __m512 xd = _mm512_loadu_ps(t->xd + p * lanes + 16 * k);
        const __m512 xs = SGN ? _mm512_setzero_ps() : _mm512_loadu_ps(t->xs + p * lanes + 16 * k);
        UNROLL for (int r = 0; r < MP_MR; r++) {
            const __m512 dw = _mm512_broadcast_f32x8(_mm256_loadu_ps(t->dw[r] + 8 * k));
            if (!SGN)
                acc[r][p] = _mm512_fmadd_ps(_mm512_broadcast_f32x8(_mm256_loadu_ps(t->m[r] + 8 * k)), xs,
                                            acc[r][p]);
            acc[r][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[r][p]), _mm512_mul_ps(dw, xd), acc[r][p]);
        }
    }
}

/* NP, P and SGN constant: the loops unroll into registers. The tail's
 * blocks of 4, 2 and 1 units (mq_block_start's order) follow the full
 * blocks, each with its own pass count, out of the hot loop. */
AVX512_INLINE void pair_body(const mq_ptile *t, const int B, const int P, const int SGN)
{
    const int NP = (B + 1) / 2;
    const int64_t nfull = t->sh.nfull, lanes = 16 * mq_nblk(&t->sh);
    const int tail = t->sh.tail;
    __m512 acc[MP_MR][MP_NP];
    UNROLL for (int r = 0; r < MP_MR; r++)
        UNROLL for (int p = 0; p < NP; p++)
            acc[r][p] = _mm512_setzero_ps();
    for (int64_t k = 0; k < nfull; k++)
        block_step(t, k, 32 * P * k, lanes, NP, P, SGN, acc);
    int64_t k = nfull, c0 = 32 * P * nfull;
    if (tail & 4) {
        block_step(t, k++, c0, lanes, NP, 4, SGN, acc);
        c0 += 4 * 32;
    }
    if (tail & 2) {
        block_step(t, k++, c0, lanes, NP, 2, SGN, acc);
        c0 += 2 * 32;
    }
    if (tail & 1)
        block_step(t, k, c0, lanes, NP, 1, SGN, acc);
    UNROLL for (int r = 0; r < MP_MR; r++) {
        if (r >= t->nr)
            break;
        __m256 a[4];
        UNROLL for (int b = 0; b < 4; b++) {
            const int bb = b < B ? b : 0;
            a[b] = bb % 2 ? _mm512_extractf32x8_ps(acc[r][bb / 2], 1) : _mm512_castps512_ps256(acc[r][bb / 2]);
        }
        float y[4];
        _mm_storeu_ps(y, reduce4(a[0], a[1], a[2], a[3]));
        UNROLL for (int b = 0; b < B; b++)
            t->y[b * t->ys + r] = y[b];
    }
}
// clang-format on

#define PAIR_TILE(name, P, SGN)                        \
    AVX512 static void name(const mq_ptile *t, int nv) \
    {                                                  \
        if (nv == 4)                                   \
            pair_body(t, 4, P, SGN);                   \
        else if (nv == 3)                              \
            pair_body(t, 3, P, SGN);                   \
        else if (nv == 2)                              \
            pair_body(t, 2, P, SGN);                   \
        else                                           \
            pair_body(t, 1, P, SGN);                   \
    }

PAIR_TILE(tile_unsigned, 8, 0)
PAIR_TILE(tile_q6, 4, 1)
PAIR_TILE(tile_q8, 8, 1)

void mq_ptile_avx512(const mq_ptile *t, int nv)
{
    switch (t->type) {
    case BORG_DT_Q6_K: tile_q6(t, nv); break;
    case BORG_DT_Q8_0: tile_q8(t, nv); break;
    default: tile_unsigned(t, nv); break;
    }
}

#endif
