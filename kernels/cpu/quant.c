/* Block layouts follow ggml (ggml-common.h) and gguf-py's quants.py. The
 * order of float operations in each dequantizer is the reference's, so the
 * results are bit-identical to gguf.quants.dequantize where no FMA
 * contraction intervenes. Hosts are assumed little-endian, like GGUF. */
#include "borg/quant.h"

#include <string.h>

#include "borg/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define QK 32
#define QK_K 256
#define K_SCALE_SIZE 12

int quant_dtype_supported(uint32_t t)
{
    switch (t) {
    case BORG_DT_F32:
    case BORG_DT_F16:
    case BORG_DT_Q4_0:
    case BORG_DT_Q4_1:
    case BORG_DT_Q5_0:
    case BORG_DT_Q5_1:
    case BORG_DT_Q8_0:
    case BORG_DT_Q4_K:
    case BORG_DT_Q5_K:
    case BORG_DT_Q6_K:
    case BORG_DT_BF16: return 1;
    default: return 0;
    }
}

const char *quant_dtype_name(uint32_t t)
{
    switch (t) {
    case BORG_DT_F32: return "F32";
    case BORG_DT_F16: return "F16";
    case BORG_DT_Q4_0: return "Q4_0";
    case BORG_DT_Q4_1: return "Q4_1";
    case BORG_DT_Q5_0: return "Q5_0";
    case BORG_DT_Q5_1: return "Q5_1";
    case BORG_DT_Q8_0: return "Q8_0";
    case BORG_DT_Q4_K: return "Q4_K";
    case BORG_DT_Q5_K: return "Q5_K";
    case BORG_DT_Q6_K: return "Q6_K";
    case BORG_DT_BF16: return "BF16";
    default: return "unknown";
    }
}

int64_t quant_dtype_block_elems(borg_dtype t)
{
    switch (t) {
    case BORG_DT_F32:
    case BORG_DT_F16:
    case BORG_DT_BF16: return 1;
    case BORG_DT_Q4_0:
    case BORG_DT_Q4_1:
    case BORG_DT_Q5_0:
    case BORG_DT_Q5_1:
    case BORG_DT_Q8_0: return QK;
    case BORG_DT_Q4_K:
    case BORG_DT_Q5_K:
    case BORG_DT_Q6_K: return QK_K;
    }
    return 0;
}

size_t quant_dtype_block_bytes(borg_dtype t)
{
    switch (t) {
    case BORG_DT_F32: return 4;
    case BORG_DT_F16: return 2;
    case BORG_DT_BF16: return 2;
    case BORG_DT_Q4_0: return 2 + QK / 2;
    case BORG_DT_Q4_1: return 2 + 2 + QK / 2;
    case BORG_DT_Q5_0: return 2 + 4 + QK / 2;
    case BORG_DT_Q5_1: return 2 + 2 + 4 + QK / 2;
    case BORG_DT_Q8_0: return 2 + QK;
    case BORG_DT_Q4_K: return 2 + 2 + K_SCALE_SIZE + QK_K / 2;
    case BORG_DT_Q5_K: return 2 + 2 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2;
    case BORG_DT_Q6_K: return QK_K / 2 + QK_K / 4 + QK_K / 16 + 2;
    }
    return 0;
}

size_t quant_dtype_row_bytes(borg_dtype t, int64_t n)
{
    int64_t be = quant_dtype_block_elems(t);
    if (be <= 0 || n < 0)
        return 0;
    return (size_t)(n / be) * quant_dtype_block_bytes(t);
}

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 is exact in f32 */
        float v = (float)mant * 0x1p-24f;
        return bits_f32(f32_bits(v) | sign);
    }
    if (exp == 31)
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline float load_f16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return half_to_float(h);
}

float quant_f16_to_f32(uint16_t h) { return half_to_float(h); }

float quant_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t quant_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;

    if (x > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00 | ((x >> 13) & 0x3ff));
    /* 0x477ff000 is 65520, halfway between 65504 and 2^16: even rounds up */
    if (x >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00);
    if (x < 0x38800000u) { /* below 2^-14: half subnormal or zero */
        uint32_t e = x >> 23;
        if (e < 102) /* below 2^-25: rounds to zero */
            return sign;
        uint32_t m = (x & 0x7fffffu) | 0x800000u;
        uint32_t s = 126 - e; /* value = m >> s units of 2^-24; 14 <= s <= 24 */
        uint32_t r = m >> s;
        uint32_t rem = m & ((1u << s) - 1);
        uint32_t half = 1u << (s - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++; /* may carry into the smallest normal, which is correct */
        return (uint16_t)(sign | r);
    }
    uint32_t h = (x >> 13) - (112u << 10);
    uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

#if defined(__x86_64__) || defined(__i386__)
/* F16C rounds as quant_f32_to_f16 does (to nearest even; a NaN keeps its
 * top payload bits, made quiet), so both give the same bits. */
__attribute__((target("avx,f16c"))) static void f32_to_f16_row_f16c(const float *x, uint16_t *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = quant_f32_to_f16(x[i]);
}
#endif

void quant_f32_to_f16_row(const float *x, uint16_t *y, int64_t n)
{
#if defined(__x86_64__) || defined(__i386__)
    if (cpu_isa() >= BORG_ISA_AVX2) {
        f32_to_f16_row_f16c(x, y, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        y[i] = quant_f32_to_f16(x[i]);
}

static void deq_f32(const uint8_t *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

static void deq_f16(const uint8_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = load_f16(src + 2 * i);
}

static void deq_bf16(const uint8_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = bits_f32((uint32_t)h << 16);
    }
}

static void deq_q4_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 2 + QK / 2, y += QK) {
        const float d = load_f16(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (float)((int)(qs[j] & 0x0f) - 8);
            y[j + QK / 2] = d * (float)((int)(qs[j] >> 4) - 8);
        }
    }
}

static void deq_q4_1(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 4 + QK / 2, y += QK) {
        const float d = load_f16(b);
        const float m = load_f16(b + 2);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (float)(qs[j] & 0x0f) + m;
            y[j + QK / 2] = d * (float)(qs[j] >> 4) + m;
        }
    }
}

/* Element k of a Q5_0/Q5_1 block as a code 0..31: the nibble of qs[k % 16]
 * (low for k < 16) and, as its fifth bit, bit k of the 4 bytes qh read as
 * a little-endian uint32. */
static inline int q5_code(uint32_t qh, const uint8_t *qs, int k)
{
    const int nib = k < QK / 2 ? qs[k] & 0x0f : qs[k - QK / 2] >> 4;
    return nib | (int)((qh >> k) & 1) << 4;
}

static inline uint32_t load_u32(const uint8_t *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    return u;
}

static void deq_q5_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 6 + QK / 2, y += QK) {
        const float d = load_f16(b);
        const uint32_t qh = load_u32(b + 2);
        for (int k = 0; k < QK; k++)
            y[k] = d * (float)(q5_code(qh, b + 6, k) - 16);
    }
}

static void deq_q5_1(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 8 + QK / 2, y += QK) {
        const float d = load_f16(b);
        const float m = load_f16(b + 2);
        const uint32_t qh = load_u32(b + 4);
        for (int k = 0; k < QK; k++)
            y[k] = d * (float)q5_code(qh, b + 8, k) + m;
    }
}

static void deq_q8_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 2 + QK, y += QK) {
        const float d = load_f16(b);
        const int8_t *qs = (const int8_t *)(b + 2);
        for (int j = 0; j < QK; j++)
            y[j] = d * (float)qs[j];
    }
}

void quant_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void deq_q4_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 144) {
        const float d = load_f16(b);
        const float dmin = load_f16(b + 2);
        const uint8_t *scales = b + 4;
        const uint8_t *qs = b + 4 + K_SCALE_SIZE;
        for (int j = 0; j < QK_K / 32; j++, y += 32) {
            uint8_t sc, m;
            quant_k4_scale_min(j, scales, &sc, &m);
            const float d1 = d * (float)sc;
            const float m1 = dmin * (float)m;
            const uint8_t *q = qs + (j / 2) * 32;
            const int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++)
                y[l] = d1 * (float)((q[l] >> shift) & 0x0f) - m1;
        }
    }
}

static void deq_q5_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 176) {
        const float d = load_f16(b);
        const float dmin = load_f16(b + 2);
        const uint8_t *scales = b + 4;
        const uint8_t *qh = b + 4 + K_SCALE_SIZE;
        const uint8_t *qs = qh + QK_K / 8;
        for (int j = 0; j < QK_K / 32; j++, y += 32) {
            uint8_t sc, m;
            quant_k4_scale_min(j, scales, &sc, &m);
            const float d1 = d * (float)sc;
            const float m1 = dmin * (float)m;
            const uint8_t *q = qs + (j / 2) * 32;
            const int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++) {
                int v = ((q[l] >> shift) & 0x0f) | (((qh[l] >> j) & 1) << 4);
                y[l] = d1 * (float)v - m1;
            }
        }
    }
}

static void deq_q6_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += 210) {
        const uint8_t *ql = b;
        const uint8_t *qh = b + QK_K / 2;
        const int8_t *sc = (const int8_t *)(b + QK_K / 2 + QK_K / 4);
        const float d = load_f16(b + QK_K / 2 + QK_K / 4 + QK_K / 16);
        /* Two halves of 128; within a half, chunk t of 32 takes the low
         * (t < 2) or high nibble of ql[(t & 1) * 32 + l] and bits 2t..2t+1
         * of qh[l]. */
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, y += 128) {
            for (int t = 0; t < 4; t++) {
                const uint8_t *lo = ql + (t & 1) * 32;
                const int shift = (t >> 1) * 4;
                for (int l = 0; l < 32; l++) {
                    int q = (((lo[l] >> shift) & 0x0f) | (((qh[l] >> (2 * t)) & 3) << 4)) - 32;
                    y[t * 32 + l] = d * (float)sc[(t * 32 + l) / 16] * (float)q;
                }
            }
        }
    }
}

void quant_dequantize_row(borg_dtype t, const void *src, float *dst, int64_t n)
{
    const uint8_t *s = src;
    switch (t) {
    case BORG_DT_F32: deq_f32(s, dst, n); break;
    case BORG_DT_F16: deq_f16(s, dst, n); break;
    case BORG_DT_BF16: deq_bf16(s, dst, n); break;
    case BORG_DT_Q4_0: deq_q4_0(s, dst, n / QK); break;
    case BORG_DT_Q4_1: deq_q4_1(s, dst, n / QK); break;
    case BORG_DT_Q5_0: deq_q5_0(s, dst, n / QK); break;
    case BORG_DT_Q5_1: deq_q5_1(s, dst, n / QK); break;
    case BORG_DT_Q8_0: deq_q8_0(s, dst, n / QK); break;
    case BORG_DT_Q4_K: deq_q4_k(s, dst, n / QK_K); break;
    case BORG_DT_Q5_K: deq_q5_k(s, dst, n / QK_K); break;
    case BORG_DT_Q6_K: deq_q6_k(s, dst, n / QK_K); break;
    }
}

int quant_decompose_signed(borg_dtype t) { return t == BORG_DT_Q8_0 || t == BORG_DT_Q6_K; }

static void dw_fill(float *dw, float lo, float hi)
{
    for (int j = 0; j < 8; j++)
        dw[j] = j < 4 ? lo : hi;
}

/* Group g (0..7) of a Q4_K/Q5_K super-block b: codes without the fifth bit,
 * scale and offset. */
static void k4_group(const uint8_t *b, const uint8_t *qs, int g, int8_t *q, float *dw, float *m)
{
    uint8_t sc, mn;
    quant_k4_scale_min(g, b + 4, &sc, &mn);
    const float d1 = load_f16(b) * (float)sc;
    dw_fill(dw, d1, d1);
    *m = -(load_f16(b + 2) * (float)mn);
    const uint8_t *p = qs + (g / 2) * 32;
    for (int l = 0; l < 32; l++)
        q[l] = (int8_t)((p[l] >> (4 * (g & 1))) & 0x0f);
}

void quant_decompose_row(borg_dtype t, const void *src, int64_t ng, int8_t *q, float *dw, float *m)
{
    const uint8_t *s = src;
    for (int64_t g = 0; g < ng; g++, q += QK, dw += 8, m++) {
        switch (t) {
        case BORG_DT_Q4_0:
        case BORG_DT_Q4_1: {
            const uint8_t *b = s + (size_t)g * quant_dtype_block_bytes(t);
            const uint8_t *qs = b + (t == BORG_DT_Q4_0 ? 2 : 4);
            const float d = load_f16(b);
            dw_fill(dw, d, d);
            *m = t == BORG_DT_Q4_0 ? -8.0f * d : load_f16(b + 2);
            for (int j = 0; j < QK / 2; j++) {
                q[j] = (int8_t)(qs[j] & 0x0f);
                q[j + QK / 2] = (int8_t)(qs[j] >> 4);
            }
            break;
        }
        case BORG_DT_Q5_0:
        case BORG_DT_Q5_1: {
            const uint8_t *b = s + (size_t)g * quant_dtype_block_bytes(t);
            const int q5_1 = t == BORG_DT_Q5_1;
            const float d = load_f16(b);
            dw_fill(dw, d, d);
            *m = q5_1 ? load_f16(b + 2) : -16.0f * d;
            const uint32_t qh = load_u32(b + 2 + 2 * q5_1);
            for (int k = 0; k < QK; k++)
                q[k] = (int8_t)q5_code(qh, b + 6 + 2 * q5_1, k);
            break;
        }
        case BORG_DT_Q8_0: {
            const uint8_t *b = s + (size_t)g * 34;
            const float d = load_f16(b);
            dw_fill(dw, d, d);
            *m = 0;
            memcpy(q, b + 2, QK);
            break;
        }
        case BORG_DT_Q4_K: {
            const uint8_t *b = s + (size_t)(g / 8) * 144;
            k4_group(b, b + 16, (int)(g % 8), q, dw, m);
            break;
        }
        case BORG_DT_Q5_K: {
            const uint8_t *b = s + (size_t)(g / 8) * 176;
            const int j = (int)(g % 8);
            k4_group(b, b + 48, j, q, dw, m);
            for (int l = 0; l < 32; l++)
                q[l] = (int8_t)(q[l] | ((b[16 + l] >> j) & 1) << 4);
            break;
        }
        case BORG_DT_Q6_K: {
            const uint8_t *b = s + (size_t)(g / 8) * 210;
            const int h = (int)(g / 4) % 2, c = (int)(g % 4); /* half, chunk of 32 in it */
            const uint8_t *ql = b + 64 * h + 32 * (c & 1), *qh = b + 128 + 32 * h;
            const int8_t *sc = (const int8_t *)(b + 192) + 8 * h + 2 * c;
            const float d = load_f16(b + 208);
            dw_fill(dw, d * (float)sc[0], d * (float)sc[1]);
            *m = 0;
            for (int l = 0; l < 32; l++)
                q[l] = (int8_t)((((ql[l] >> (4 * (c >> 1))) & 0x0f) | (((qh[l] >> (2 * c)) & 3) << 4)) - 32);
            break;
        }
        default: return; /* float types have no integer form */
        }
    }
}
