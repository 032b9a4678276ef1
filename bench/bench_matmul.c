/* matmul() throughput for every weight type at a few batch sizes, on the
 * shapes of SmolLM2-135M (FFN down, FFN up/gate, output head).
 *
 * Usage: bench_matmul [--threads N] [--reps N] [--type NAME] [--isa NAME]
 *                     [--shape ROWSxCOLS] [--nb N] [--this-path-only]
 *                     [--peak]
 * Prints the median time of the repetitions as GFLOP/s (2*rows*cols*nb per
 * call) and GB/s of weights read, for every kernel path this machine has,
 * best first (borg/cpu.h); --isa runs one path, --this-path-only the one
 * BORG_ISA or the machine selects. Quantized matrices are repacked first,
 * as the engine loads them, unless BORG_REPACK=0. --nb runs one batch size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "borg/cpu.h"
#include "borg/matmul.h"
#include "random_weights.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

static int bench_one(const borg_mat *w, int64_t nb, borg_pool *pool, int reps, double *median_s)
{
    float *x = malloc(sizeof(float) * (size_t)(nb * w->cols));
    float *y = malloc(sizeof(float) * (size_t)(nb * w->rows));
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!x || !y || !t) {
        free(x), free(y), free(t);
        return -1;
    }
    for (int64_t i = 0; i < nb * w->cols; i++)
        x[i] = rw_float();
    int rc = matmul(w, x, nb, y, pool) ? -1 : 0; /* warm-up: caches, pages */
    for (int r = 0; r < reps && !rc; r++) {
        double t0 = bench_now_s();
        rc = matmul(w, x, nb, y, pool) ? -1 : 0;
        t[r] = bench_now_s() - t0;
    }
    *median_s = bench_median(t, reps);
    free(x), free(y), free(t);
    return rc;
}

enum { PEAK_ITERS = 20000000, PEAK_CHAINS = 12 };

#if defined(__x86_64__) || defined(__i386__)
/* Byte products of PEAK_ITERS rounds of PEAK_CHAINS independent dot
 * products; the chains outnumber the instruction's latency in cycles. */
__attribute__((target("avx512f,avx512vnni"))) static double peak_avx512(void)
{
    __m512i a[PEAK_CHAINS], w = _mm512_set1_epi8(1), x = _mm512_set1_epi8(1);
    for (int i = 0; i < PEAK_CHAINS; i++)
        a[i] = _mm512_set1_epi32(i);
    for (long k = 0; k < PEAK_ITERS; k++) {
        for (int i = 0; i < PEAK_CHAINS; i++)
            a[i] = _mm512_dpbusd_epi32(a[i], w, x);
        __asm__ volatile("" : "+v"(w), "+v"(x));
    }
    int sum = 0;
    for (int i = 0; i < PEAK_CHAINS; i++)
        sum += _mm512_reduce_add_epi32(a[i]);
    __asm__ volatile("" : : "r"(sum));
    return 64.0 * PEAK_CHAINS * PEAK_ITERS;
}

/* The kernels' own step, a maddubs product added as 16 bits, 8 at a time
 * into 8 sums, written out: in C, GCC kept the chains partly on the stack
 * (a store and a load a round), which measured this peak at two thirds of
 * what the unit does. The products do not wait on the sums, and whatever
 * ymm8 and ymm9 hold, integer steps take the same time. */
#define PEAK_AVX2_STEP(acc, tmp) "vpmaddubsw %%ymm9, %%ymm8, %%" tmp "\n\tvpaddw %%" tmp ", %%" acc ", %%" acc "\n\t"

__attribute__((target("avx2"))) static double peak_avx2(void)
{
    __asm__ volatile("vpxor %%ymm8, %%ymm8, %%ymm8\n\tvpxor %%ymm9, %%ymm9, %%ymm9" : : : "xmm8", "xmm9");
    for (long k = 0; k < PEAK_ITERS; k++)
        __asm__ volatile(
            PEAK_AVX2_STEP("ymm0", "ymm10") PEAK_AVX2_STEP("ymm1", "ymm11") PEAK_AVX2_STEP("ymm2", "ymm12")
                PEAK_AVX2_STEP("ymm3", "ymm13") PEAK_AVX2_STEP("ymm4", "ymm10") PEAK_AVX2_STEP("ymm5", "ymm11")
                    PEAK_AVX2_STEP("ymm6", "ymm12") PEAK_AVX2_STEP("ymm7", "ymm13")
            :
            :
            : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm10", "xmm11", "xmm12", "xmm13");
    return 32.0 * 8 * PEAK_ITERS;
}
#endif

static void peak_thread(void *ctx, int64_t b, int64_t e, int thread)
{
    double *macs = ctx;
    for (int64_t i = b; i < e; i++) {
#if defined(__x86_64__) || defined(__i386__)
        macs[i] = cpu_isa() >= BORG_ISA_AVX512 ? peak_avx512() : peak_avx2();
#endif
    }
}

/* The path's 8-bit peak over the pool's threads, in GOP/s. */
static int bench_peak(borg_pool *pool, int reps, int threads)
{
    if (cpu_isa() < BORG_ISA_AVX2) {
        printf("# int8 peak: path %s has no integer dot kernels\n", matmul_isa());
        return 0;
    }
    double *t = malloc(sizeof(double) * (size_t)reps), macs[64] = {0};
    if (!t || threads > 64) {
        free(t);
        return 1;
    }
    for (int r = 0; r < reps; r++) {
        const double t0 = bench_now_s();
        pool_run(pool, peak_thread, macs, threads, 1);
        t[r] = bench_now_s() - t0;
    }
    double total = 0;
    for (int i = 0; i < threads; i++)
        total += macs[i];
    printf("# int8 peak: path %s, %d thread(s), median of %d: %.1f GOP/s (2 per byte product)\n", matmul_isa(), threads,
           reps, 2.0 * total / bench_median(t, reps) * 1e-9);
    free(t);
    return 0;
}

/* SmolLM2-135M's FFN down, FFN up/gate and output head, unless --shape. */
static int64_t shapes[3][2] = {{576, 1536}, {1536, 576}, {49152, 576}};
static size_t n_shapes = 3;

static int64_t nbs[] = {1, 8, 32, 64, 256};
static size_t n_nbs = sizeof nbs / sizeof nbs[0];

/* Every shape, type and batch size on the path in use. */
static int bench_path(borg_pool *pool, int reps, int threads, const char *only_type)
{
    printf("# matmul: path %s, %d thread(s), median of %d\n", matmul_isa(), threads, reps);
    printf("%-11s %-5s %4s %10s %9s %8s\n", "rows x cols", "type", "nb", "ms", "GFLOP/s", "GB/s");
    for (size_t s = 0; s < n_shapes; s++) {
        for (int ti = 0; ti < RW_N_TYPES; ti++) {
            borg_dtype t = rw_types[ti];
            if (only_type && strcmp(only_type, quant_dtype_name(t)))
                continue;
            int64_t rows = shapes[s][0], cols = shapes[s][1];
            char shape[32];
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)rows, (long long)cols);
            if (cols % quant_dtype_block_elems(t)) {
                printf("%-11s %-5s    - (cols not a multiple of the block)\n", shape, quant_dtype_name(t));
                continue;
            }
            borg_mat w = rw_matrix(t, rows, cols);
            borg_err err;
            if (!w.data || matmul_prepare(&w, pool, &err)) { /* repacked as the engine loads it */
                fprintf(stderr, "bench_matmul: out of memory\n");
                return 1;
            }
            for (size_t n = 0; n < n_nbs; n++) {
                double sec;
                if (bench_one(&w, nbs[n], pool, reps, &sec)) {
                    fprintf(stderr, "bench_matmul: out of memory\n");
                    return 1;
                }
                double flop = 2.0 * (double)rows * (double)cols * (double)nbs[n];
                double bytes = (double)w.row_bytes * (double)rows;
                printf("%-11s %-5s %4lld %10.3f %9.2f %8.2f\n", shape, quant_dtype_name(t), (long long)nbs[n],
                       1e3 * sec, flop / sec * 1e-9, bytes / sec * 1e-9);
                fflush(stdout);
            }
            matmul_release(&w);
            free((void *)w.data);
        }
    }
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 7, this_only = 0, peak = 0;
    const char *only_type = NULL, *only_isa = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--type") && i + 1 < argc)
            only_type = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            long long r, c;
            if (sscanf(argv[++i], "%lldx%lld", &r, &c) != 2 || r < 1 || c < 1) {
                fprintf(stderr, "bench_matmul: --shape wants ROWSxCOLS, not %s\n", argv[i]);
                return 2;
            }
            shapes[0][0] = r, shapes[0][1] = c, n_shapes = 1;
        } else if (!strcmp(argv[i], "--nb") && i + 1 < argc) {
            nbs[0] = atoll(argv[++i]), n_nbs = 1;
            if (nbs[0] < 1) {
                fprintf(stderr, "bench_matmul: --nb wants a batch size of 1 or more\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--isa") && i + 1 < argc)
            only_isa = argv[++i];
        else if (!strcmp(argv[i], "--this-path-only"))
            this_only = 1;
        else if (!strcmp(argv[i], "--peak"))
            peak = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--reps N] [--type NAME] [--isa NAME] [--shape ROWSxCOLS] [--nb N]\n"
                    "       [--this-path-only] [--peak]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1)
        reps = 1;
    borg_pool *pool = NULL;
    borg_err err = {0};
    if (pool_create(threads, &pool, &err)) {
        fprintf(stderr, "bench_matmul: %s\n", err.msg);
        return 1;
    }

    if (cpu_isa_check(&err)) {
        fprintf(stderr, "bench_matmul: %s\n", err.msg);
        return 2;
    }
    int rc = 0;
    for (int isa = this_only ? cpu_isa() : cpu_isa_best(); isa >= 0 && !rc; isa = this_only ? -1 : isa - 1) {
        if (only_isa && strcmp(only_isa, cpu_isa_name((borg_isa)isa)))
            continue;
        if (cpu_set_isa((borg_isa)isa, &err)) {
            fprintf(stderr, "bench_matmul: %s\n", err.msg);
            return 2;
        }
        rc = peak ? bench_peak(pool, reps, threads) : bench_path(pool, reps, threads, only_type);
    }
    pool_destroy(pool);
    return rc;
}
