/* Attention and rotary kernels against double-precision references:
 * ops_attend on every path this machine has (portable; AVX2 where the CPU
 * has it, reported as not run where not) over f32 and f16 caches, head
 * sizes and position counts that exercise every tail and many tiles, a
 * ring that wraps, scores that keep growing (the running maximum rescales
 * every tile) and groups of heads (each head the bits it has alone); the
 * KV cache's f16 store (round to nearest even);
 * and ops_rope_angles + ops_rope_apply against a direct rotation. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "borg/kvcache.h"
#include "borg/matmul.h"
#include "borg/ops.h"
#include "ops_kernels.h"
#include "check.h"

/* |out - reference| allowed where the reference reads the same cached
 * values (|v| <= 1): f32 sums of up to 2100 positions and a polynomial exp
 * (2 ulp) stay well inside it. */
#define ATTN_TOL 4e-6
/* What an f16 cache itself costs against f32 keys and values: each
 * element rounded by up to 2^-11 of itself. */
#define ATTN_F16_TOL 2e-3

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

typedef void (*attend_fn)(float *, const float *, int, const ops_kv_rows *, int32_t, int32_t, int, float);

/* Cached rows of n positions, `stride` elements apart, as f32 and as the
 * f16 a cache stores; other kv heads interleaved, as in the cache. */
typedef struct {
    int n, hd;
    int64_t stride;
    float *k, *v;
    uint16_t *kh, *vh;
} rows;

static void rows_make(rows *r, int n, int hd, const float *q, int rising, uint64_t *seed)
{
    r->n = n, r->hd = hd, r->stride = 3 * hd + 8;
    size_t e = (size_t)n * (size_t)r->stride;
    r->k = malloc(sizeof(float) * e), r->v = malloc(sizeof(float) * e);
    r->kh = malloc(2 * e), r->vh = malloc(2 * e);
    for (size_t j = 0; j < e; j++) {
        r->k[j] = frand(seed);
        r->v[j] = frand(seed);
    }
    /* Rising scores: each key leans further toward q than the one before,
     * so the maximum grows in every tile, by up to 6 |q| / sqrt(hd). */
    double qq = 0;
    for (int j = 0; j < hd; j++)
        qq += (double)q[j] * q[j];
    for (int p = 0; rising && p < n; p++)
        for (int j = 0; j < hd; j++)
            r->k[p * r->stride + j] = 0.3f * r->k[p * r->stride + j] + (float)(6.0 * q[j] / sqrt(qq) * p / n);
    for (size_t j = 0; j < e; j++) {
        r->kh[j] = quant_f32_to_f16(r->k[j]);
        r->vh[j] = quant_f32_to_f16(r->v[j]);
    }
}

static void rows_free(rows *r) { free(r->k), free(r->v), free(r->kh), free(r->vh); }

static double elem(const rows *r, int f16, int key, int64_t i)
{
    if (f16)
        return quant_f16_to_f32(key ? r->kh[i] : r->vh[i]);
    return key ? r->k[i] : r->v[i];
}

/* softmax(q . k_p * scale) . v_p in double over the values a cache of
 * type f16 (or f32) holds. */
static void attend_ref(double *out, const float *q, const rows *r, int f16, double scale)
{
    double *sc = malloc(sizeof(double) * (size_t)r->n), mx = -INFINITY, sum = 0;
    for (int p = 0; p < r->n; p++) {
        double d = 0;
        for (int j = 0; j < r->hd; j++)
            d += (double)q[j] * elem(r, f16, 1, p * r->stride + j);
        sc[p] = d * scale;
        mx = sc[p] > mx ? sc[p] : mx;
    }
    for (int p = 0; p < r->n; p++)
        sum += sc[p] = exp(sc[p] - mx);
    for (int j = 0; j < r->hd; j++) {
        double o = 0;
        for (int p = 0; p < r->n; p++)
            o += sc[p] / sum * elem(r, f16, 0, p * r->stride + j);
        out[j] = o;
    }
    free(sc);
}

static ops_kv_rows view(const rows *r, int f16)
{
    if (f16)
        return (ops_kv_rows){r->kh, r->vh, BORG_DT_F16, r->stride, r->n};
    return (ops_kv_rows){r->k, r->v, BORG_DT_F32, r->stride, r->n};
}

/* The same n positions laid in a ring of n + 5 rows from row lo % ring (so
 * the span wraps; the other rows hold garbage) give the same bits as the
 * straight call. */
static void check_ring(const char *path, attend_fn fn, const float *q, const rows *r, int f16, float scale,
                       const float *straight)
{
    const int32_t ring = r->n + 5, lo = 3 * ring - 2;
    const size_t es = f16 ? 2 : 4, row_bytes = es * (size_t)r->stride;
    unsigned char *kr = malloc(row_bytes * (size_t)ring), *vr = malloc(row_bytes * (size_t)ring);
    const ops_kv_rows src = view(r, f16);
    memset(kr, 0x5a, row_bytes * (size_t)ring);
    memset(vr, 0x5a, row_bytes * (size_t)ring);
    for (int p = 0; p < r->n; p++) {
        memcpy(kr + (size_t)((lo + p) % ring) * row_bytes, (const unsigned char *)src.k + p * row_bytes, row_bytes);
        memcpy(vr + (size_t)((lo + p) % ring) * row_bytes, (const unsigned char *)src.v + p * row_bytes, row_bytes);
    }
    const ops_kv_rows wrapped = {kr, vr, src.type, r->stride, ring};
    float *out = malloc(sizeof(float) * (size_t)r->hd);
    fn(out, q, 1, &wrapped, lo, r->n, r->hd, scale);
    CHECKF(!memcmp(out, straight, sizeof(float) * (size_t)r->hd),
           "%s attention over a wrapped %s ring (head_dim %d, %d positions) differs from the straight one", path,
           f16 ? "f16" : "f32", r->hd, r->n);
    free(kr), free(vr), free(out);
}

static double max_diff(const float *a, const double *b, int n)
{
    double worst = 0;
    for (int j = 0; j < n; j++)
        worst = fmax(worst, fabs(a[j] - b[j]));
    return worst;
}

/* fn against the double reference; fills got with its answer. */
static void check_case(const char *path, attend_fn fn, const float *q, const rows *r, int f16, float scale, float *got,
                       const char *kind)
{
    double *want = malloc(sizeof(double) * (size_t)r->hd);
    const ops_kv_rows kv = view(r, f16);
    fn(got, q, 1, &kv, 0, r->n, r->hd, scale);
    attend_ref(want, q, r, f16, scale);
    double worst = max_diff(got, want, r->hd);
    CHECKF(worst <= ATTN_TOL, "%s attention, %s cache, %s scores, head_dim %d, %d positions: max error %.3g > %g", path,
           f16 ? "f16" : "f32", kind, r->hd, r->n, worst, ATTN_TOL);
    check_ring(path, fn, q, r, f16, scale, got);
    if (f16) {
        attend_ref(want, q, r, 0, scale);
        worst = max_diff(got, want, r->hd);
        CHECKF(worst <= ATTN_F16_TOL,
               "%s attention, f16 cache against f32 values, head_dim %d, %d positions: %.3g > %g", path, r->hd, r->n,
               worst, ATTN_F16_TOL);
    }
    free(want);
}

static void check_attention(const char *path, attend_fn fn)
{
    static const int hds[] = {8, 24, 64, 72, 128, 256};
    static const int npos[] = {1, 3, 7, 8, 9, 17, 63, 64, 65, 100, 129, 515, 2100};
    uint64_t seed = 1;
    for (size_t a = 0; a < sizeof hds / sizeof *hds; a++)
        for (size_t b = 0; b < sizeof npos / sizeof *npos; b++)
            for (int rising = 0; rising < 2; rising++) {
                const int hd = hds[a], n = npos[b];
                float *q = malloc(sizeof(float) * (size_t)hd), *out = malloc(sizeof(float) * (size_t)hd);
                for (int j = 0; j < hd; j++)
                    q[j] = 3 * frand(&seed);
                rows r;
                rows_make(&r, n, hd, q, rising, &seed);
                const float scale = 1.0f / sqrtf((float)hd);
                for (int f16 = 0; f16 < 2; f16++)
                    check_case(path, fn, q, &r, f16, scale, out, rising ? "rising" : "random");
                rows_free(&r);
                free(q), free(out);
            }
}

/* Groups of 1 to 11 heads over one KV head (past the AVX2 path's batch of
 * 8): each head gets the bits it gets alone. */
static void check_group(const char *path, attend_fn fn)
{
    uint64_t seed = 5;
    for (int g = 1; g <= 11; g += 2)
        for (int f16 = 0; f16 < 2; f16++) {
            const int hd = 64;
            float *q = malloc(sizeof(float) * (size_t)(g * hd)), *out = malloc(sizeof(float) * (size_t)(g * hd));
            float alone[64];
            for (int j = 0; j < g * hd; j++)
                q[j] = 2 * frand(&seed);
            rows r;
            rows_make(&r, 150, hd, q, 0, &seed);
            const ops_kv_rows kv = view(&r, f16);
            fn(out, q, g, &kv, 0, r.n, hd, 0.125f);
            int same = 1;
            for (int h = 0; h < g; h++) {
                fn(alone, q + h * hd, 1, &kv, 0, r.n, hd, 0.125f);
                same &= !memcmp(alone, out + h * hd, sizeof alone);
            }
            CHECKF(same, "%s attention: a group of %d heads (%s cache) differs from each head alone", path, g,
                   f16 ? "f16" : "f32");
            rows_free(&r);
            free(q), free(out);
        }
}

/* The dispatcher gives the bits of the path it names for this machine
 * (AVX2 needs head_dim a multiple of 8). */
static void check_dispatch(void)
{
    static const int hds[] = {20, 24, 72};
    uint64_t seed = 3;
    for (size_t a = 0; a < sizeof hds / sizeof *hds; a++) {
        const int hd = hds[a], g = 3;
        float q[3 * 72], want[3 * 72], got[3 * 72];
        for (int j = 0; j < g * hd; j++)
            q[j] = frand(&seed);
        rows r;
        rows_make(&r, 300, hd, q, 0, &seed);
        int avx2 = 0;
#if defined(__x86_64__) || defined(__i386__)
        avx2 = hd % 8 == 0 && matmul_uses_avx2();
#endif
        for (int f16 = 0; f16 < 2; f16++) {
            const ops_kv_rows kv = view(&r, f16);
#if defined(__x86_64__) || defined(__i386__)
            if (avx2)
                ops_attend_avx2(want, q, g, &kv, 0, r.n, hd, 0.125f);
            else
#endif
                ops_attend_portable(want, q, g, &kv, 0, r.n, hd, 0.125f);
            ops_attend(got, q, g, &kv, 0, r.n, hd, 0.125f);
            CHECKF(!memcmp(want, got, sizeof(float) * (size_t)(g * hd)),
                   "ops_attend (head_dim %d, %s) is not the %s path", hd, f16 ? "f16" : "f32",
                   avx2 ? "avx2" : "portable");
        }
        rows_free(&r);
    }
}

/* kv_put stores f16 rounded to nearest even (ties to the even mantissa),
 * at row pos % ring, readable through kv_head_rows. */
static void check_kv_store(void)
{
    borg_kvcache kv;
    borg_err err;
    const int32_t windows[2] = {0, 4};
    if (kv_create(2, 3, 16, 8, windows, 2, BORG_DT_F16, &kv, &err)) {
        CHECKF(0, "kv_create: %s", err.msg);
        return;
    }
    /* 1 + 2^-11 is halfway between 1 and the next half: even is 1; 1 +
     * 3 * 2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: even is the
     * latter. */
    const float k[8] = {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, -2.5f, 65504.0f, 1e-7f, 0.1f, -0.0f, 70000.0f};
    const uint16_t want[8] = {0x3c00, 0x3c02, 0xc100, 0x7bff, 0x0002, 0x2e66, 0x8000, 0x7c00};
    float v[8];
    for (int j = 0; j < 8; j++)
        v[j] = -k[j];
    kv_put(&kv, 1, 2, 9, k, v); /* layer 1's ring holds 4 + 2 - 1 = 5 rows: row 4 */
    const ops_kv_rows r = kv_head_rows(&kv, 1, 2, 0);
    const uint16_t *kr = (const uint16_t *)r.k + 4 * r.stride, *vr = (const uint16_t *)r.v + 4 * r.stride;
    int same = r.ring == 5 && r.type == BORG_DT_F16;
    for (int j = 0; j < 8; j++)
        same &= kr[j] == want[j] && vr[j] == (uint16_t)(want[j] ^ 0x8000);
    CHECKF(same, "kv_put's f16 row is not round-to-nearest-even at row pos %% ring");
    CHECK(kv.bytes == 2 * (3 * 16 * 8 + 3 * 5 * 8) && kv_bytes_per_position(2, 8, BORG_DT_F16) == 64 &&
          kv_bytes_per_position(2, 8, BORG_DT_F32) == 128);
    kv_free(&kv);
}

/* Plain, linearly scaled (positions times 1/4) and with Llama 3 style
 * frequency factors. */
static void check_rope(void)
{
    uint64_t seed = 7;
    float factors[32];
    for (int i = 0; i < 32; i++)
        factors[i] = 1.0f + (float)i / 4;
    for (int kind = 0; kind < 3; kind++)
        for (int neox = 0; neox < 2; neox++)
            for (int32_t pos = 0; pos < 5000; pos += 997) {
                float x[64], cs[64];
                double want[64];
                const float scale = kind == 1 ? 0.25f : 1.0f;
                const float *ff = kind == 2 ? factors : NULL;
                for (int j = 0; j < 64; j++)
                    x[j] = frand(&seed);
                for (int i = 0; i < 32; i++) {
                    int a = neox ? i : 2 * i, b = neox ? i + 32 : 2 * i + 1;
                    double th = pos * pow(10000.0, -2.0 * i / 64) * scale / (ff ? ff[i] : 1.0);
                    want[a] = x[a] * cos(th) - x[b] * sin(th);
                    want[b] = x[a] * sin(th) + x[b] * cos(th);
                }
                ops_rope_angles(cs, 64, pos, 10000.0f, scale, ff);
                ops_rope_apply(x, cs, 64, neox);
                double worst = 0;
                for (int j = 0; j < 64; j++)
                    worst = fmax(worst, fabs(x[j] - want[j]));
                CHECKF(worst < 1e-6, "rope (kind %d, neox %d) at position %d: max error %.3g", kind, neox, (int)pos,
                       worst);
            }
}

/* rmsnorm against double, over lengths with and without a tail of 8. */
static void check_rmsnorm(void)
{
    static const int ns[] = {1, 7, 64, 573};
    uint64_t seed = 11;
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
        const int n = ns[a];
        float x[573], w[573], out[573];
        double ss = 0;
        for (int i = 0; i < n; i++) {
            x[i] = 3.0f * frand(&seed);
            w[i] = 1.0f + 0.5f * frand(&seed);
            ss += (double)x[i] * x[i];
        }
        const double scale = 1.0 / sqrt(ss / n + 1e-5);
        ops_rmsnorm(out, x, w, n, 1e-5f);
        double worst = 0;
        for (int i = 0; i < n; i++)
            worst = fmax(worst, fabs(out[i] - x[i] * scale * w[i]) / fmax(1.0, fabs(x[i] * scale * w[i])));
        CHECKF(worst < 1e-6, "ops_rmsnorm (n %d): max relative error %.3g", n, worst);
    }
}

typedef void (*act_fn)(float *gate, const float *up, int64_t n);

/* silu, or gelu in its tanh form, times up, against double: over gates
 * from -100 to 100 (the ends clamp the fast exponential) and a length
 * that leaves a tail of 5. */
static void check_act(const char *name, act_fn fn, int gelu)
{
    enum { N = 253 };
    float g[N], u[N];
    double worst = 0;
    for (int i = 0; i < N; i++) {
        g[i] = i < 4 ? (i % 2 ? 100.0f : -100.0f) * (float)(i / 2 + 1) / 2 : -12.0f + 0.1f * (float)(i - 4);
        u[i] = 0.5f + 0.01f * (float)i;
    }
    double want[N];
    for (int i = 0; i < N; i++) {
        const double x = g[i];
        want[i] = (gelu ? 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) : x / (1 + exp(-x))) * u[i];
    }
    fn(g, u, N);
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs(g[i] - want[i]) / fmax(1.0, fabs(want[i])));
    CHECKF(worst < 1e-6, "%s: max relative error %.3g", name, worst);
}

int main(void)
{
    check_attention("portable", ops_attend_portable);
    check_group("portable", ops_attend_portable);
#if defined(__x86_64__) || defined(__i386__)
    if (matmul_uses_avx2()) {
        check_attention("avx2", ops_attend_avx2);
        check_group("avx2", ops_attend_avx2);
    } else
        printf("attention path avx2: not run (the CPU lacks AVX2/FMA/F16C, or BORG_ISA chose a lower path)\n");
#else
    printf("attention path avx2: not run (not an x86 build)\n");
#endif
    check_dispatch();
    check_kv_store();
    check_rope();
    check_rmsnorm();
    check_act("ops_swiglu_portable", ops_swiglu_portable, 0);
    check_act("ops_geglu_portable", ops_geglu_portable, 1);
#if defined(__x86_64__) || defined(__i386__)
    if (matmul_uses_avx2()) {
        check_act("ops_swiglu_avx2", ops_swiglu_avx2, 0);
        check_act("ops_geglu_avx2", ops_geglu_avx2, 1);
    } else
        printf("activation path avx2: not run (the CPU lacks AVX2/FMA, or BORG_ISA chose a lower path)\n");
#else
    printf("activation path avx2: not run (not an x86 build)\n");
#endif
    check_act("ops_swiglu", ops_swiglu, 0);
    check_act("ops_geglu", ops_geglu, 1);
    return check_report();
}
