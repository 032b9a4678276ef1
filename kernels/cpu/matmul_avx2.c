/* AVX2/FMA/F16C kernels for matmul(); the summation contract they keep is
 * in matmul_kernels.h, the block layouts with the scalar reference in
 * quant.c. Each weight type has one decoder of 32 elements into four
 * 8-float registers, used both to fill f32 tiles and by the small-batch
 * kernel, so the two see bit-identical weights. */
#include "matmul_kernels.h"

#ifdef BORG_HAVE_AVX2_KERNELS

#include "avx2_common.h"

/* 8 bytes at p widened to 32-bit lanes (one vpmovzxbd/vpmovsxbd from
 * memory: fewer shuffles than unpacking a loaded vector, which is what
 * limits these decoders). */
AVX2_INLINE __m256i u8x8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }

AVX2_INLINE __m256i i8x8(const uint8_t *p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)); }

/* Decoders: elements [32g, 32g + 32) of a row into w[0..3]. */

AVX2_INLINE void dec_f32(const uint8_t *row, int64_t g, __m256 w[4])
{
    const float *p = (const float *)row + 32 * g;
    for (int c = 0; c < 4; c++)
        w[c] = _mm256_loadu_ps(p + 8 * c);
}

AVX2_INLINE __m256 f16x8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

AVX2_INLINE void dec_f16(const uint8_t *row, int64_t g, __m256 w[4])
{
    for (int c = 0; c < 4; c++)
        w[c] = f16x8(row + 64 * g + 16 * c);
}

AVX2_INLINE __m256 bf16x8(const uint8_t *p)
{
    __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}

AVX2_INLINE void dec_bf16(const uint8_t *row, int64_t g, __m256 w[4])
{
    for (int c = 0; c < 4; c++)
        w[c] = bf16x8(row + 64 * g + 16 * c);
}

/* Q4_0: byte j holds element j (low nibble) and j + 16 (high); d * (q - 8). */
AVX2_INLINE void dec_q4_0(const uint8_t *row, int64_t g, __m256 w[4])
{
    const uint8_t *b = row + 18 * g;
    const __m256i m4 = _mm256_set1_epi32(0x0f), eight = _mm256_set1_epi32(8);
    const __m256 d = _mm256_set1_ps(f16_at(b));
    const __m256i p0 = u8x8(b + 2), p1 = u8x8(b + 10);
    w[0] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(p0, m4), eight)));
    w[1] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(p1, m4), eight)));
    w[2] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(p0, 4), eight)));
    w[3] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(p1, 4), eight)));
}

/* Q4_1: as Q4_0 with value d * q + m. */
AVX2_INLINE void dec_q4_1(const uint8_t *row, int64_t g, __m256 w[4])
{
    const uint8_t *b = row + 20 * g;
    const __m256i m4 = _mm256_set1_epi32(0x0f);
    const __m256 d = _mm256_set1_ps(f16_at(b)), m = _mm256_set1_ps(f16_at(b + 2));
    const __m256i p0 = u8x8(b + 4), p1 = u8x8(b + 12);
    w[0] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_and_si256(p0, m4)), m);
    w[1] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_and_si256(p1, m4)), m);
    w[2] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_srli_epi32(p0, 4)), m);
    w[3] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_srli_epi32(p1, 4)), m);
}

AVX2_INLINE void dec_q8_0(const uint8_t *row, int64_t g, __m256 w[4])
{
    const uint8_t *b = row + 34 * g;
    const __m256 d = _mm256_set1_ps(f16_at(b));
    for (int c = 0; c < 4; c++)
        w[c] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(i8x8(b + 2 + 8 * c)));
}

/* Sub-block j of a Q4_K/Q5_K super-block: its 32 values q[c] (8 a vector)
 * as (d * sc) * q - dmin * m. */
AVX2_INLINE void k_values(const float *ks, int j, const __m256i q[4], __m256 w[4])
{
    const __m256 d1 = _mm256_broadcast_ss(ks + j), m1 = _mm256_broadcast_ss(ks + 8 + j);
    for (int c = 0; c < 4; c++)
        w[c] = _mm256_fmsub_ps(d1, _mm256_cvtepi32_ps(q[c]), m1);
}

/* Q4_K: 144-byte super-blocks; sub-blocks 2p and 2p + 1 are the low and
 * high nibbles of the same 32 bytes (at 16 + 32p). */
AVX2_INLINE void dec_q4_k(const uint8_t *row, int64_t g, const float *ks, __m256 w[4])
{
    const uint8_t *sb = row + 144 * (g >> 3);
    const int j = (int)(g & 7);
    const uint8_t *qs = sb + 16 + 32 * (j >> 1);
    const __m128i shift = _mm_cvtsi32_si128(4 * (j & 1));
    __m256i q[4];
    for (int c = 0; c < 4; c++)
        q[c] = _mm256_and_si256(_mm256_srl_epi32(u8x8(qs + 8 * c), shift), _mm256_set1_epi32(0x0f));
    k_values(ks, j, q, w);
}

/* Q5_K: Q4_K (qs at byte 48) plus a fifth bit, bit j of qh[l] (byte 16 + l). */
AVX2_INLINE void dec_q5_k(const uint8_t *row, int64_t g, const float *ks, __m256 w[4])
{
    const uint8_t *sb = row + 176 * (g >> 3);
    const int j = (int)(g & 7);
    const uint8_t *qs = sb + 48 + 32 * (j >> 1);
    const __m128i shift = _mm_cvtsi32_si128(4 * (j & 1)), hshift = _mm_cvtsi32_si128(j);
    __m256i q[4];
    for (int c = 0; c < 4; c++) {
        __m256i lo = _mm256_and_si256(_mm256_srl_epi32(u8x8(qs + 8 * c), shift), _mm256_set1_epi32(0x0f));
        __m256i hi = _mm256_and_si256(_mm256_srl_epi32(u8x8(sb + 16 + 8 * c), hshift), _mm256_set1_epi32(1));
        q[c] = _mm256_or_si256(lo, _mm256_slli_epi32(hi, 4));
    }
    k_values(ks, j, q, w);
}

/* Bytes [8i, 8i + 8) of v in the low half of an xmm. */
AVX2_INLINE __m128i bytes8(__m256i v, int i)
{
    __m128i h = i < 2 ? _mm256_castsi256_si128(v) : _mm256_extracti128_si256(v, 1);
    return i & 1 ? _mm_srli_si128(h, 8) : h;
}

/* Q5_0 and Q5_1: the codes of q5_codes, d * (q - 16) or d * q + m. */
AVX2_INLINE void dec_q5(borg_dtype T, const uint8_t *row, int64_t g, __m256 w[4])
{
    const uint8_t *b = row + b32_bytes(T) * (size_t)g;
    const __m256 d = _mm256_set1_ps(f16_at(b));
    const __m256i q = q5_codes(T, b);
    if (T == BORG_DT_Q5_0) {
        const __m256i s = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
        for (int c = 0; c < 4; c++)
            w[c] = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes8(s, c))));
    } else {
        const __m256 m = _mm256_set1_ps(f16_at(b + 2));
        for (int c = 0; c < 4; c++)
            w[c] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes8(q, c))), m);
    }
}

/* Q6_K: two halves of 128 in a 210-byte super-block; in half h, chunk t of
 * 32 takes the low (t < 2) or high nibble of ql[64h + 32(t & 1) + l] and
 * bits 2t, 2t + 1 of qh[32h + l] (qh at byte 128); value
 * (d * sc[8h + 2t + l / 16]) * (q - 32). The 6-bit values are assembled 32
 * at a time in bytes: the bit work is shared, only the widening is per 8. */
AVX2_INLINE void dec_q6_k(const uint8_t *row, int64_t g, const float *ks, __m256 w[4])
{
    const uint8_t *sb = row + 210 * (g >> 3);
    const int h = (int)(g >> 2) & 1, t = (int)(g & 3);
    __m256i lo = _mm256_loadu_si256((const __m256i *)(sb + 64 * h + 32 * (t & 1)));
    __m256i hi = _mm256_loadu_si256((const __m256i *)(sb + 128 + 32 * h));
    lo = _mm256_and_si256(_mm256_srl_epi16(lo, _mm_cvtsi32_si128(4 * (t >> 1))), _mm256_set1_epi8(0x0f));
    hi = _mm256_and_si256(_mm256_srl_epi16(hi, _mm_cvtsi32_si128(2 * t)), _mm256_set1_epi8(3));
    __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
    const __m256 d0 = _mm256_broadcast_ss(ks + 8 * h + 2 * t), d1 = _mm256_broadcast_ss(ks + 8 * h + 2 * t + 1);
    for (int c = 0; c < 4; c++)
        w[c] = _mm256_mul_ps(c < 2 ? d0 : d1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes8(q, c))));
}

/* T is a constant wherever this is inlined, so the switch folds away. ks:
 * the super-block's k_scales, for K types. */
AVX2_INLINE void dec32(borg_dtype T, const uint8_t *row, int64_t g, const float *ks, __m256 w[4])
{
    switch (T) {
    case BORG_DT_F32: dec_f32(row, g, w); break;
    case BORG_DT_F16: dec_f16(row, g, w); break;
    case BORG_DT_BF16: dec_bf16(row, g, w); break;
    case BORG_DT_Q4_0: dec_q4_0(row, g, w); break;
    case BORG_DT_Q4_1: dec_q4_1(row, g, w); break;
    case BORG_DT_Q5_0:
    case BORG_DT_Q5_1: dec_q5(T, row, g, w); break;
    case BORG_DT_Q8_0: dec_q8_0(row, g, w); break;
    case BORG_DT_Q4_K: dec_q4_k(row, g, ks, w); break;
    case BORG_DT_Q5_K: dec_q5_k(row, g, ks, w); break;
    case BORG_DT_Q6_K: dec_q6_k(row, g, ks, w); break;
    }
}

AVX2_INLINE void dequant_groups(borg_dtype T, const uint8_t *row, int64_t g0, int64_t ng, float *dst)
{
    float ks[16];
    for (int64_t g = g0; g < g0 + ng; g++, dst += 32) {
        if (is_k(T) && (g & 7) == 0)
            k_scales(T, row + k_bytes(T) * (size_t)(g >> 3), ks);
        __m256 w[4];
        dec32(T, row, g, ks, w);
        for (int c = 0; c < 4; c++)
            _mm256_storeu_ps(dst + 8 * c, w[c]);
    }
}

/* F16/BF16 rows may end off a multiple of 8; the conversions are exact, so
 * the scalar tail gives the same values as the vector decoders. */
AVX2 static void dequant_f16(const uint8_t *s, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, f16x8(s + 2 * i));
    for (; i < n; i++)
        y[i] = f16_at(s + 2 * i);
}

AVX2 static void dequant_bf16(const uint8_t *s, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, bf16x8(s + 2 * i));
    for (; i < n; i++) {
        uint32_t u = (uint32_t)(s[2 * i] | s[2 * i + 1] << 8) << 16;
        memcpy(y + i, &u, 4);
    }
}

AVX2 void mm_dequant_avx2(borg_dtype t, const void *row, int64_t k0, int64_t n, float *dst)
{
    const uint8_t *r = row;
    switch (t) {
    case BORG_DT_F32: memcpy(dst, r + 4 * k0, (size_t)n * sizeof(float)); break;
    case BORG_DT_F16: dequant_f16(r + 2 * k0, dst, n); break;
    case BORG_DT_BF16: dequant_bf16(r + 2 * k0, dst, n); break;
    case BORG_DT_Q4_0: dequant_groups(BORG_DT_Q4_0, r, k0 / 32, n / 32, dst); break;
    case BORG_DT_Q4_1: dequant_groups(BORG_DT_Q4_1, r, k0 / 32, n / 32, dst); break;
    case BORG_DT_Q5_0: dequant_groups(BORG_DT_Q5_0, r, k0 / 32, n / 32, dst); break;
    case BORG_DT_Q5_1: dequant_groups(BORG_DT_Q5_1, r, k0 / 32, n / 32, dst); break;
    case BORG_DT_Q8_0: dequant_groups(BORG_DT_Q8_0, r, k0 / 32, n / 32, dst); break;
    case BORG_DT_Q4_K: dequant_groups(BORG_DT_Q4_K, r, k0 / 32, n / 32, dst); break;
    case BORG_DT_Q5_K: dequant_groups(BORG_DT_Q5_K, r, k0 / 32, n / 32, dst); break;
    case BORG_DT_Q6_K: dequant_groups(BORG_DT_Q6_K, r, k0 / 32, n / 32, dst); break;
    }
}

/* y for rows [0, nr) of one vector from its four row sums. */
AVX2_INLINE void store_rows(float *y, __m128 s, int nr)
{
    if (nr == 4) {
        _mm_storeu_ps(y, s);
        return;
    }
    float v[4];
    _mm_storeu_ps(v, s);
    for (int r = 0; r < nr; r++)
        y[r] = v[r];
}

/* clang-format 14 cannot parse UNROLL before a loop (it joins the loops). */
// clang-format off
/* B constant: the accumulators live in registers. */
AVX2_INLINE void tile_body(const mm_tile *t, const int B)
{
    __m256 acc[MM_MR][MM_NR];
    UNROLL for (int r = 0; r < MM_MR; r++)
        UNROLL for (int b = 0; b < B; b++)
            acc[r][b] = t->first ? _mm256_setzero_ps() : _mm256_loadu_ps(t->acc + (r * MM_NR + b) * 8);
    const int64_t n8 = t->n & ~(int64_t)7;
    for (int64_t k = 0; k < n8; k += 8) {
        __m256 xv[MM_NR];
        UNROLL for (int b = 0; b < B; b++)
            xv[b] = _mm256_loadu_ps(t->x + b * t->xs + k);
        UNROLL for (int r = 0; r < MM_MR; r++) {
            const __m256 wv = _mm256_loadu_ps(t->w[r] + k);
            UNROLL for (int b = 0; b < B; b++)
                acc[r][b] = _mm256_fmadd_ps(wv, xv[b], acc[r][b]);
        }
    }
    if (!t->last) {
        UNROLL for (int r = 0; r < MM_MR; r++)
            UNROLL for (int b = 0; b < B; b++)
                _mm256_storeu_ps(t->acc + (r * MM_NR + b) * 8, acc[r][b]);
        return;
    }
    UNROLL for (int b = 0; b < B; b++) {
        __m128 s = reduce4(acc[0][b], acc[1][b], acc[2][b], acc[3][b]);
        if (n8 < t->n) { /* F32/F16/BF16 columns past the last multiple of 8 */
            float v[4];
            _mm_storeu_ps(v, s);
            for (int r = 0; r < MM_MR; r++)
                for (int64_t k = n8; k < t->n; k++)
                    v[r] = __builtin_fmaf(t->w[r][k], t->x[b * t->xs + k], v[r]);
            s = _mm_loadu_ps(v);
        }
        store_rows(t->y + b * t->ys, s, t->nr);
    }
}

AVX2 void mm_tile_avx2(const mm_tile *t, int nv)
{
    if (nv == 3)
        tile_body(t, 3);
    else if (nv == 2)
        tile_body(t, 2);
    else
        tile_body(t, 1);
}

/* MM_MR rows against B vectors over whole rows, decoding each 32 weights
 * once into registers and using them for every vector. The sums of vector
 * b go to out[MM_MR * b + r]. The weights stream from memory once, so the
 * next tile's (next_bytes at next) are prefetched, spread over the groups:
 * a burst at the start of a tile would stall on the memory queue. */
AVX2_INLINE void small_body(borg_dtype T, const int B, const uint8_t *const *rows, int64_t ng, const float *x,
                            int64_t xs, float *out, const char *next, size_t next_bytes)
{
    const size_t step = (next_bytes / (size_t)ng + 63) & ~(size_t)63;
    __m256 acc[MM_MR][MM_SMALL_NB];
    UNROLL for (int r = 0; r < MM_MR; r++)
        UNROLL for (int b = 0; b < B; b++)
            acc[r][b] = _mm256_setzero_ps();
    float ks[MM_MR][16];
    for (int64_t g = 0; g < ng; g++) {
        const float *xg = x + 32 * g;
        for (size_t o = (size_t)g * step; o < (size_t)(g + 1) * step && o < next_bytes; o += 64)
            _mm_prefetch(next + o, _MM_HINT_T0);
        if (is_k(T) && (g & 7) == 0)
            UNROLL for (int r = 0; r < MM_MR; r++)
                k_scales(T, rows[r] + k_bytes(T) * (size_t)(g >> 3), ks[r]);
        UNROLL for (int r = 0; r < MM_MR; r++) {
            __m256 w[4];
            dec32(T, rows[r], g, ks[r], w);
            UNROLL for (int c = 0; c < 4; c++)
                UNROLL for (int b = 0; b < B; b++)
                    acc[r][b] = _mm256_fmadd_ps(w[c], _mm256_loadu_ps(xg + b * xs + 8 * c), acc[r][b]);
        }
    }
    UNROLL for (int b = 0; b < B; b++)
        _mm_storeu_ps(out + MM_MR * b, reduce4(acc[0][b], acc[1][b], acc[2][b], acc[3][b]));
}
// clang-format on

typedef void (*small_fn)(const uint8_t *const *rows, int64_t nb, int64_t ng, const float *x, int64_t xs, float *out,
                         const char *next, size_t next_bytes);

#define SMALL_KERNEL(name, T)                                                                                         \
    AVX2 static void name(const uint8_t *const *rows, int64_t nb, int64_t ng, const float *x, int64_t xs, float *out, \
                          const char *next, size_t next_bytes)                                                        \
    {                                                                                                                 \
        if (nb == 1)                                                                                                  \
            small_body(T, 1, rows, ng, x, xs, out, next, next_bytes);                                                 \
        else if (nb == 2)                                                                                             \
            small_body(T, 2, rows, ng, x, xs, out, next, next_bytes);                                                 \
        else                                                                                                          \
            small_body(T, 3, rows, ng, x, xs, out, next, next_bytes);                                                 \
    }

SMALL_KERNEL(small_f32, BORG_DT_F32)
SMALL_KERNEL(small_f16, BORG_DT_F16)
SMALL_KERNEL(small_bf16, BORG_DT_BF16)
SMALL_KERNEL(small_q4_0, BORG_DT_Q4_0)
SMALL_KERNEL(small_q4_1, BORG_DT_Q4_1)
SMALL_KERNEL(small_q5_0, BORG_DT_Q5_0)
SMALL_KERNEL(small_q5_1, BORG_DT_Q5_1)
SMALL_KERNEL(small_q8_0, BORG_DT_Q8_0)
SMALL_KERNEL(small_q4_k, BORG_DT_Q4_K)
SMALL_KERNEL(small_q5_k, BORG_DT_Q5_K)
SMALL_KERNEL(small_q6_k, BORG_DT_Q6_K)

static small_fn small_kernel(borg_dtype t)
{
    switch (t) {
    case BORG_DT_F32: return small_f32;
    case BORG_DT_F16: return small_f16;
    case BORG_DT_BF16: return small_bf16;
    case BORG_DT_Q4_0: return small_q4_0;
    case BORG_DT_Q4_1: return small_q4_1;
    case BORG_DT_Q5_0: return small_q5_0;
    case BORG_DT_Q5_1: return small_q5_1;
    case BORG_DT_Q8_0: return small_q8_0;
    case BORG_DT_Q4_K: return small_q4_k;
    case BORG_DT_Q5_K: return small_q5_k;
    case BORG_DT_Q6_K: return small_q6_k;
    }
    return small_f32;
}

void mm_small_batch_avx2(const borg_mat *w, const float *x, int64_t nb, float *y, int64_t r0, int64_t r1)
{
    const small_fn fn = small_kernel(w->type);
    for (int64_t r = r0; r < r1; r += MM_MR) {
        const int nr = r1 - r < MM_MR ? (int)(r1 - r) : MM_MR;
        const uint8_t *rows[MM_MR];
        for (int i = 0; i < MM_MR; i++)
            rows[i] = (const uint8_t *)w->data + (size_t)(r + (i < nr ? i : nr - 1)) * w->row_bytes;
        const int64_t next_rows = r1 - r - nr < MM_MR ? r1 - r - nr : MM_MR;
        float out[MM_MR * MM_SMALL_NB];
        fn(rows, nb, w->cols / 32, x, w->cols, out, (const char *)rows[0] + (size_t)nr * w->row_bytes,
           (size_t)next_rows * w->row_bytes);
        for (int64_t b = 0; b < nb; b++)
            memcpy(y + b * w->rows + r, out + MM_MR * b, sizeof(float) * (size_t)nr);
    }
}

AVX2 float mm_dot_avx2(const float *a, const float *b, int64_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    const __m256 sum = _mm256_add_ps(acc0, acc1);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    float s = _mm_cvtss_f32(s4);
    for (; i < n; i++)
        s = __builtin_fmaf(a[i], b[i], s);
    return s;
}

#endif
