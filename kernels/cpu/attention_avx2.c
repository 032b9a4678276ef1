/* AVX2/FMA/F16C attention of a group of query heads over their cached
 * positions, the contract of ops_attend in borg/ops.h, computed as the
 * portable ops_attend_portable does: tiles of OPS_ATTN_TILE positions from
 * lo, a running maximum per head, its output rescaled when it grows. Within a tile the
 * scores take eight keys at a time, the exponentials eight at a time
 * (exp_avx2.h, not expf), and the weighted sum of values keeps 64 output
 * floats in registers while it streams the tile's value rows, so both
 * loops keep eight FMA chains in flight. f16 rows are widened by F16C as
 * they are loaded. */
#include "ops_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

#include "exp_avx2.h"

#define UNROLL _Pragma("GCC unroll 8")

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

/* Eight elements of cached rows from element i, as floats. */
AVX2_INLINE __m256 load8(const void *rows, int f16, int64_t i)
{
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)rows + i)))
               : _mm256_loadu_ps((const float *)rows + i);
}

/* Lane sums of a..d as (sum a, sum b, sum c, sum d), each
 * ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)). */
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

AVX2_INLINE float hmax(__m256 a)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

/* s[j] = (q . k at off[j]) * scale for j < n. */
AVX2_INLINE void tile_scores(float *s, const float *q, const void *k, int f16, const int64_t *off, int n, int nc,
                             float scale)
{
    const __m128 sc = _mm_set1_ps(scale);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 a[8];
        for (int i = 0; i < 8; i++)
            a[i] = _mm256_setzero_ps();
        for (int c = 0; c < nc; c++) {
            const __m256 qc = _mm256_loadu_ps(q + 8 * c);
            for (int i = 0; i < 8; i++)
                a[i] = _mm256_fmadd_ps(qc, load8(k, f16, off[j + i] + 8 * c), a[i]);
        }
        _mm_storeu_ps(s + j, _mm_mul_ps(hsum4(a[0], a[1], a[2], a[3]), sc));
        _mm_storeu_ps(s + j + 4, _mm_mul_ps(hsum4(a[4], a[5], a[6], a[7]), sc));
    }
    for (; j < n; j++) {
        __m256 a = _mm256_setzero_ps();
        for (int c = 0; c < nc; c++)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * c), load8(k, f16, off[j] + 8 * c), a);
        s[j] = hsum1(a) * scale;
    }
}

/* tile_scores for NH <= 3 heads at once (q + h * head_dim into s + h *
 * OPS_ATTN_TILE): each key row is widened once for all of them, and each
 * (head, key) takes tile_scores' steps, so the same bits. */
AVX2_INLINE void tile_scores_heads(float *s, const float *q, int head_dim, const int NH, const void *k, int f16,
                                   const int64_t *off, int n, int nc, float scale)
{
    const __m128 sc = _mm_set1_ps(scale);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        __m256 a[3][4];
        UNROLL for (int h = 0; h < NH; h++) UNROLL for (int i = 0; i < 4; i++) a[h][i] = _mm256_setzero_ps();
        for (int c = 0; c < nc; c++)
            UNROLL for (int i = 0; i < 4; i++)
            {
                const __m256 kc = load8(k, f16, off[j + i] + 8 * c);
                UNROLL for (int h = 0; h < NH; h++)
                    a[h][i] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * head_dim + 8 * c), kc, a[h][i]);
            }
        UNROLL for (int h = 0; h < NH; h++)
            _mm_storeu_ps(s + h * OPS_ATTN_TILE + j, _mm_mul_ps(hsum4(a[h][0], a[h][1], a[h][2], a[h][3]), sc));
    }
    for (; j < n; j++)
        UNROLL for (int h = 0; h < NH; h++)
        {
            __m256 a = _mm256_setzero_ps();
            for (int c = 0; c < nc; c++)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * head_dim + 8 * c), load8(k, f16, off[j] + 8 * c), a);
            s[h * OPS_ATTN_TILE + j] = hsum1(a) * scale;
        }
}

/* Chunks c0 .. c0 + CH - 1 (8 output floats each) of NH heads: NH * CH
 * accumulators, each value chunk widened once for all heads. */
AVX2_INLINE void values_chunks(float *out, int head_dim, const float *w, const int NH, const void *v, int f16,
                               const int64_t *off, int n, int c0, const int CH, int fresh, const float *c)
{
    __m256 o[3][4];
    UNROLL for (int h = 0; h < NH; h++) UNROLL for (int i = 0; i < CH; i++)
        o[h][i] = fresh ? _mm256_setzero_ps()
                        : _mm256_mul_ps(_mm256_loadu_ps(out + h * head_dim + 8 * (c0 + i)), _mm256_set1_ps(c[h]));
    for (int j = 0; j < n; j++) {
        __m256 vc[4];
        UNROLL for (int i = 0; i < CH; i++) vc[i] = load8(v, f16, off[j] + 8 * (c0 + i));
        UNROLL for (int h = 0; h < NH; h++)
        {
            const __m256 a = _mm256_set1_ps(w[h * OPS_ATTN_TILE + j]);
            UNROLL for (int i = 0; i < CH; i++) o[h][i] = _mm256_fmadd_ps(a, vc[i], o[h][i]);
        }
    }
    UNROLL for (int h = 0; h < NH; h++) UNROLL for (int i = 0; i < CH; i++)
        _mm256_storeu_ps(out + h * head_dim + 8 * (c0 + i), o[h][i]);
}

/* tile_values for NH = 2 or 3 heads at once (weights w + h * OPS_ATTN_TILE,
 * outputs out + h * head_dim, factors c[h]): 12 or 8 accumulators, enough
 * FMA chains in flight to cover their latency, with the widened chunks in
 * the registers left. Each output float takes tile_values' steps, so the
 * same bits. */
AVX2_INLINE void tile_values_heads(float *out, int head_dim, const float *w, const int NH, const void *v, int f16,
                                   const int64_t *off, int n, int nc, int fresh, const float *c)
{
    const int CH = NH == 3 ? 3 : 4;
    int c0 = 0;
    for (; c0 + CH <= nc; c0 += CH)
        values_chunks(out, head_dim, w, NH, v, f16, off, n, c0, CH, fresh, c);
    if (nc - c0 == 3)
        values_chunks(out, head_dim, w, NH, v, f16, off, n, c0, 3, fresh, c);
    else if (nc - c0 == 2)
        values_chunks(out, head_dim, w, NH, v, f16, off, n, c0, 2, fresh, c);
    else if (nc - c0 == 1)
        values_chunks(out, head_dim, w, NH, v, f16, off, n, c0, 1, fresh, c);
}

/* out (8 * nc floats) = out * c + sum_j w[j] * (v at off[j]), j < n in
 * order; out starts from zero where `fresh`. */
AVX2_INLINE void tile_values(float *out, const float *w, const void *v, int f16, const int64_t *off, int n, int nc,
                             int fresh, float c)
{
    const __m256 cv = _mm256_set1_ps(c);
    int c0 = 0;
    for (; c0 + 8 <= nc; c0 += 8) {
        __m256 o[8];
        for (int i = 0; i < 8; i++)
            o[i] = fresh ? _mm256_setzero_ps() : _mm256_mul_ps(_mm256_loadu_ps(out + 8 * (c0 + i)), cv);
        for (int j = 0; j < n; j++) {
            const __m256 a = _mm256_set1_ps(w[j]);
            for (int i = 0; i < 8; i++)
                o[i] = _mm256_fmadd_ps(a, load8(v, f16, off[j] + 8 * (c0 + i)), o[i]);
        }
        for (int i = 0; i < 8; i++)
            _mm256_storeu_ps(out + 8 * (c0 + i), o[i]);
    }
    for (; c0 < nc; c0++) {
        __m256 o = fresh ? _mm256_setzero_ps() : _mm256_mul_ps(_mm256_loadu_ps(out + 8 * c0), cv);
        for (int j = 0; j < n; j++)
            o = _mm256_fmadd_ps(_mm256_set1_ps(w[j]), load8(v, f16, off[j] + 8 * c0), o);
        _mm256_storeu_ps(out + 8 * c0, o);
    }
}

/* Heads attended together: each tile's keys and values (up to 32 KiB of
 * f32 at head_dim 64) stay in L1 while every head of the batch reads them,
 * three at a time from each widened row. */
enum { HEADS = 8 };

AVX2_INLINE void scores_of(float *s, const float *q, int head_dim, int nh, const void *k, int f16, const int64_t *off,
                           int n, int nc, float scale)
{
    int h = 0;
    for (; h + 3 <= nh; h += 3)
        tile_scores_heads(s + h * OPS_ATTN_TILE, q + h * head_dim, head_dim, 3, k, f16, off, n, nc, scale);
    if (nh - h == 2)
        tile_scores_heads(s + h * OPS_ATTN_TILE, q + h * head_dim, head_dim, 2, k, f16, off, n, nc, scale);
    else if (nh - h == 1)
        tile_scores(s + h * OPS_ATTN_TILE, q + h * head_dim, k, f16, off, n, nc, scale);
}

AVX2_INLINE void values_of(float *out, int head_dim, const float *w, int nh, const void *v, int f16, const int64_t *off,
                           int n, int nc, int fresh, const float *c)
{
    int h = 0;
    for (; h + 3 <= nh; h += 3)
        tile_values_heads(out + h * head_dim, head_dim, w + h * OPS_ATTN_TILE, 3, v, f16, off, n, nc, fresh, c + h);
    if (nh - h == 2)
        tile_values_heads(out + h * head_dim, head_dim, w + h * OPS_ATTN_TILE, 2, v, f16, off, n, nc, fresh, c + h);
    else if (nh - h == 1)
        tile_values(out + h * head_dim, w + h * OPS_ATTN_TILE, v, f16, off, n, nc, fresh, c[h]);
}

/* The group's heads h0 .. h0 + nh - 1 (nh <= HEADS); f16 is a constant at
 * each call, so each row type gets its own loops. Every head takes the
 * same steps whatever its neighbours. */
AVX2_INLINE void attend(float *out, const float *q, int nh, const ops_kv_rows *kv, int f16, int32_t lo, int32_t n_pos,
                        int head_dim, float scale)
{
    const int nc = head_dim / 8;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    float s[HEADS * OPS_ATTN_TILE] = {0}; /* lanes past a short tile's end are read, then masked */
    int64_t off[OPS_ATTN_TILE];
    float mx[HEADS], c[HEADS];
    __m256 sum[HEADS];
    for (int h = 0; h < nh; h++) {
        mx[h] = -INFINITY;
        sum[h] = _mm256_setzero_ps();
    }
    int32_t row = lo % kv->ring;
    for (int32_t t0 = 0; t0 < n_pos; t0 += OPS_ATTN_TILE) {
        const int n = n_pos - t0 < OPS_ATTN_TILE ? n_pos - t0 : OPS_ATTN_TILE;
        for (int j = 0; j < n; j++) {
            off[j] = (int64_t)row * kv->stride;
            row = row + 1 == kv->ring ? 0 : row + 1;
        }
        scores_of(s, q, head_dim, nh, kv->k, f16, off, n, nc, scale);
        for (int h = 0; h < nh; h++) {
            float *sh = s + h * OPS_ATTN_TILE;
            __m256 m8 = _mm256_set1_ps(-INFINITY);
            int j = 0;
            for (; j + 8 <= n; j += 8)
                m8 = _mm256_max_ps(m8, _mm256_loadu_ps(sh + j));
            float tile_mx = hmax(m8);
            for (; j < n; j++)
                tile_mx = sh[j] > tile_mx ? sh[j] : tile_mx;
            /* A larger maximum rescales what the earlier tiles added. */
            c[h] = 1.0f;
            if (tile_mx > mx[h]) {
                c[h] = _mm256_cvtss_f32(exp_avx2(_mm256_set1_ps(mx[h] - tile_mx)));
                sum[h] = _mm256_mul_ps(sum[h], _mm256_set1_ps(c[h]));
                mx[h] = tile_mx;
            }
            const __m256 m = _mm256_set1_ps(mx[h]);
            for (j = 0; j < n; j += 8) {
                __m256 p = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(sh + j), m));
                if (j + 8 > n) /* the tile's last lanes past n add nothing */
                    p = _mm256_and_ps(p, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - j), lane)));
                _mm256_storeu_ps(sh + j, p);
                sum[h] = _mm256_add_ps(sum[h], p);
            }
        }
        values_of(out, head_dim, s, nh, kv->v, f16, off, n, nc, t0 == 0, c);
    }
    for (int h = 0; h < nh; h++) {
        const __m256 inv = _mm256_set1_ps(1.0f / hsum1(sum[h]));
        float *o = out + (size_t)h * head_dim;
        for (int c8 = 0; c8 < nc; c8++)
            _mm256_storeu_ps(o + 8 * c8, _mm256_mul_ps(_mm256_loadu_ps(o + 8 * c8), inv));
    }
}

AVX2 void ops_attend_avx2(float *out, const float *q, int n_q, const ops_kv_rows *kv, int32_t lo, int32_t n_pos,
                          int head_dim, float scale)
{
    for (int h0 = 0; h0 < n_q; h0 += HEADS) {
        const int nh = n_q - h0 < HEADS ? n_q - h0 : HEADS;
        float *o = out + (size_t)h0 * head_dim;
        const float *qh = q + (size_t)h0 * head_dim;
        if (kv->type == BORG_DT_F16)
            attend(o, qh, nh, kv, 1, lo, n_pos, head_dim, scale);
        else
            attend(o, qh, nh, kv, 0, lo, n_pos, head_dim, scale);
    }
}
#endif
