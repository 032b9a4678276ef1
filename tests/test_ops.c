/* Attention and rotary kernels against double-precision references:
 * ops_attend_head on both paths (AVX2 when the CPU has it, and portable) over
 * head sizes and position counts that exercise every tail, and
 * ops_rope_angles + ops_rope_apply against a direct rotation. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "borg/matmul.h"
#include "borg/ops.h"
#include "ops_kernels.h"
#include "check.h"

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void attend_ref(double *out, const float *q, const float *k, const float *v, int64_t stride, int n_pos, int hd,
                       double scale)
{
    double *sc = malloc(sizeof(double) * (size_t)n_pos), mx = -INFINITY, sum = 0;
    for (int p = 0; p < n_pos; p++) {
        double d = 0;
        for (int j = 0; j < hd; j++)
            d += (double)q[j] * k[p * stride + j];
        sc[p] = d * scale;
        mx = sc[p] > mx ? sc[p] : mx;
    }
    for (int p = 0; p < n_pos; p++)
        sum += sc[p] = exp(sc[p] - mx);
    for (int j = 0; j < hd; j++) {
        double o = 0;
        for (int p = 0; p < n_pos; p++)
            o += sc[p] / sum * v[p * stride + j];
        out[j] = o;
    }
    free(sc);
}

typedef void (*attend_fn)(float *, const float *, const float *, const float *, int64_t, int32_t, int32_t, int32_t, int,
                          float, float *);

/* The same n positions laid in a ring of n + 5 rows starting at row
 * lo % ring (so the span wraps) give the same bits as the straight call. */
static void check_ring(const char *path, attend_fn fn, const float *q, const float *k, const float *v, int64_t stride,
                       int n, int hd, float scale, const float *straight)
{
    const int32_t ring = n + 5, lo = 3 * ring - 2;
    float *kr = calloc((size_t)(ring * stride), sizeof(float)), *vr = calloc((size_t)(ring * stride), sizeof(float));
    float *out = malloc(sizeof(float) * (size_t)hd), *scores = malloc(sizeof(float) * (size_t)n);
    for (int p = 0; p < n; p++)
        for (int64_t j = 0; j < stride; j++) {
            kr[((lo + p) % ring) * stride + j] = k[p * stride + j];
            vr[((lo + p) % ring) * stride + j] = v[p * stride + j];
        }
    fn(out, q, kr, vr, stride, ring, lo, n, hd, scale, scores);
    int same = 1;
    for (int j = 0; j < hd; j++)
        same &= out[j] == straight[j];
    CHECKF(same, "%s attention over a wrapped ring (head_dim %d, %d positions) differs from the straight one", path, hd,
           n);
    free(kr), free(vr), free(out), free(scores);
}

static void check_attention(const char *path, attend_fn fn)
{
    static const int hds[] = {8, 24, 64, 72, 128};
    static const int npos[] = {1, 3, 7, 8, 9, 17, 100, 515};
    uint64_t seed = 1;
    for (size_t a = 0; a < sizeof hds / sizeof *hds; a++)
        for (size_t b = 0; b < sizeof npos / sizeof *npos; b++) {
            int hd = hds[a], n = npos[b];
            int64_t stride = 3 * hd + 8; /* other kv heads interleaved, as in the cache */
            float *q = malloc(sizeof(float) * (size_t)hd), *out = malloc(sizeof(float) * (size_t)hd);
            float *k = malloc(sizeof(float) * (size_t)(n * stride)), *v = malloc(sizeof(float) * (size_t)(n * stride));
            float *scores = malloc(sizeof(float) * (size_t)n);
            double *want = malloc(sizeof(double) * (size_t)hd);
            for (int j = 0; j < hd; j++)
                q[j] = 3 * frand(&seed);
            for (int64_t j = 0; j < n * stride; j++) {
                k[j] = frand(&seed);
                v[j] = frand(&seed);
            }
            float scale = 1.0f / sqrtf((float)hd);
            fn(out, q, k, v, stride, n, 0, n, hd, scale, scores);
            attend_ref(want, q, k, v, stride, n, hd, scale);
            check_ring(path, fn, q, k, v, stride, n, hd, scale, out);
            double worst = 0;
            for (int j = 0; j < hd; j++)
                worst = fmax(worst, fabs(out[j] - want[j]));
            CHECKF(worst < 2e-6, "%s attention, head_dim %d, %d positions: max error %.3g", path, hd, n, worst);
            free(q), free(out), free(k), free(v), free(scores), free(want);
        }
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

/* gelu in its tanh form times up, against double. */
static void check_geglu(void)
{
    float g[64], u[64];
    double want[64];
    for (int i = 0; i < 64; i++) {
        g[i] = -8.0f + 0.25f * (float)i;
        u[i] = 0.5f + 0.01f * (float)i;
        double x = g[i];
        want[i] = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * u[i];
    }
    ops_geglu(g, u, 64);
    double worst = 0;
    for (int i = 0; i < 64; i++)
        worst = fmax(worst, fabs(g[i] - want[i]) / fmax(1.0, fabs(want[i])));
    CHECKF(worst < 1e-6, "ops_geglu: max relative error %.3g", worst);
}

int main(void)
{
    check_attention("portable", ops_attend_head_portable);
#if defined(__x86_64__) || defined(__i386__)
    if (matmul_uses_avx2())
        check_attention("avx2", ops_attend_head_avx2);
    else
        printf("no AVX2/FMA on this CPU: AVX2 attention not tested here\n");
#endif
    check_attention("dispatched", ops_attend_head);
    check_rope();
    check_geglu();
    return check_report();
}
