/* ops_attend throughput on one thread, as prefill calls it: a prompt of
 * --ctx positions, and for each position p one call per KV head group of
 * --heads query heads over positions 0 .. p (causal), head_dim --head-dim,
 * over an f16 or f32 cache (--kv). Defaults are SmolLM2-135M's: 3 query
 * heads per KV head, head_dim 64, a 512-token prompt, f16.
 *
 * Usage: bench_attention [--ctx N] [--heads G] [--head-dim D] [--kv f16|f32]
 *                        [--reps N] [--isa portable|avx2]
 * Prints, per path, the median over the repetitions of one whole prompt's
 * calls, as ms and GFLOP/s (4 * head_dim flops per head and position:
 * the scores' and the values' multiply-adds). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "borg/cpu.h"
#include "borg/matmul.h"
#include "borg/quant.h"
#include "ops_kernels.h"

typedef void (*attend_fn)(float *, const float *, int, const ops_kv_rows *, int32_t, int32_t, int, float);

/* Uniform in [-1, 1), the same every run. */
static float rand_float(void)
{
    static uint64_t state = 0x9e3779b97f4a7c15ull;
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return (float)(state >> 40) * 0x1p-23f - 1.0f;
}

static double bench(attend_fn fn, const ops_kv_rows *kv, const float *q, float *out, int ctx, int g, int hd, int reps)
{
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!t)
        return -1;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int r = -1; r < reps; r++) { /* r = -1 warms the caches */
        const double t0 = bench_now_s();
        for (int p = 0; p < ctx; p++)
            fn(out, q + (size_t)p * g * hd, g, kv, 0, p + 1, hd, scale);
        if (r >= 0)
            t[r] = bench_now_s() - t0;
    }
    const double med = bench_median(t, reps);
    free(t);
    return med;
}

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--ctx N] [--heads G] [--head-dim D] [--kv f16|f32] [--reps N] [--isa portable|avx2]\n",
            prog);
    return 2;
}

int main(int argc, char **argv)
{
    int ctx = 512, g = 3, hd = 64, reps = 7, f16 = 1;
    const char *isa = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage(argv[0]);
        if (!strcmp(a, "--ctx"))
            ctx = atoi(v);
        else if (!strcmp(a, "--heads"))
            g = atoi(v);
        else if (!strcmp(a, "--head-dim"))
            hd = atoi(v);
        else if (!strcmp(a, "--reps"))
            reps = atoi(v);
        else if (!strcmp(a, "--kv") && (!strcmp(v, "f16") || !strcmp(v, "f32")))
            f16 = !strcmp(v, "f16");
        else if (!strcmp(a, "--isa") && (!strcmp(v, "portable") || !strcmp(v, "avx2")))
            isa = v;
        else
            return usage(argv[0]);
        i++;
    }
    if (ctx < 1 || g < 1 || hd < 8 || hd % 8 || reps < 1) {
        fprintf(stderr, "bench_attention: --ctx, --heads, --reps must be >= 1, --head-dim a multiple of 8\n");
        return 2;
    }
    const size_t cells = (size_t)ctx * (size_t)hd;
    float *q = malloc(sizeof(float) * cells * (size_t)g), *out = malloc(sizeof(float) * (size_t)(g * hd));
    float *k32 = malloc(sizeof(float) * cells), *v32 = malloc(sizeof(float) * cells);
    uint16_t *k16 = malloc(sizeof(uint16_t) * cells), *v16 = malloc(sizeof(uint16_t) * cells);
    if (!q || !out || !k32 || !v32 || !k16 || !v16) {
        fprintf(stderr, "bench_attention: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < cells * (size_t)g; i++)
        q[i] = rand_float();
    for (size_t i = 0; i < cells; i++) {
        k32[i] = rand_float(), v32[i] = rand_float();
        k16[i] = quant_f32_to_f16(k32[i]), v16[i] = quant_f32_to_f16(v32[i]);
    }
    const ops_kv_rows kv = {.k = f16 ? (const void *)k16 : k32,
                            .v = f16 ? (const void *)v16 : v32,
                            .type = f16 ? BORG_DT_F16 : BORG_DT_F32,
                            .stride = hd,
                            .ring = ctx};
    const double flops = 4.0 * hd * g * ((double)ctx * (ctx + 1) / 2);
    printf("attention, %d positions, %d heads per KV head, head_dim %d, %s cache, 1 thread, median of %d\n", ctx, g, hd,
           f16 ? "f16" : "f32", reps);
    struct {
        const char *name;
        attend_fn fn;
        int have;
    } paths[] = {
#if defined(__x86_64__) || defined(__i386__)
        {"avx2", ops_attend_avx2, matmul_uses_avx2()},
#endif
        {"portable", ops_attend_portable, 1},
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        if (isa && strcmp(isa, paths[i].name))
            continue;
        if (!paths[i].have) {
            printf("  %-8s not run: this CPU lacks it\n", paths[i].name);
            continue;
        }
        const double s = bench(paths[i].fn, &kv, q, out, ctx, g, hd, reps);
        printf("  %-8s %9.2f ms  %7.2f GFLOP/s\n", paths[i].name, 1e3 * s, flops / s * 1e-9);
    }
    free(q), free(out), free(k32), free(v32), free(k16), free(v16);
    return 0;
}
