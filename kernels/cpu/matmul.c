#include "borg/matmul.h"

#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BORG_X86 1
#endif

/* Rows dequantized together; 8 rows of a 4096-wide matrix is 128 KiB, which
 * stays in L2 while every vector of the batch streams past it. */
enum { TILE_ROWS = 8 };

static float dot_portable(const float *a, const float *b, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

#ifdef BORG_X86
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int64_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    __m256 acc = _mm256_add_ps(acc0, acc1);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    float s = _mm_cvtss_f32(s4);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static int cpu_has_avx2_fma(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                 !getenv("BORG_NO_AVX2");
    }
    return cached;
}
#endif

float vec_dot_f32(const float *a, const float *b, int64_t n)
{
#ifdef BORG_X86
    if (cpu_has_avx2_fma())
        return dot_avx2(a, b, n);
#endif
    return dot_portable(a, b, n);
}

const char *matmul_isa(void)
{
#ifdef BORG_X86
    if (cpu_has_avx2_fma())
        return "avx2-fma";
#endif
    return "portable";
}

typedef struct {
    const borg_mat *w;
    const float *x;
    int64_t nb;
    float *y;
    volatile int out_of_memory;
} matmul_job;

static void matmul_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    const matmul_job *job = ctx;
    const borg_mat *w = job->w;
    const int64_t cols = w->cols;
    float *tile = NULL;
    if (w->type != BORG_DT_F32) {
        tile = malloc(sizeof(float) * (size_t)cols * TILE_ROWS);
        if (!tile) {
            ((matmul_job *)ctx)->out_of_memory = 1;
            return;
        }
    }
    for (int64_t r = r0; r < r1; r += TILE_ROWS) {
        int64_t nr = r1 - r < TILE_ROWS ? r1 - r : TILE_ROWS;
        const float *rows;
        if (tile) {
            for (int64_t i = 0; i < nr; i++)
                dequantize_row(w->type, (const char *)w->data + (size_t)(r + i) * w->row_bytes,
                               tile + i * cols, cols);
            rows = tile;
        } else {
            rows = (const float *)((const char *)w->data + (size_t)r * w->row_bytes);
        }
        for (int64_t b = 0; b < job->nb; b++) {
            const float *xb = job->x + b * cols;
            float *yb = job->y + b * w->rows + r;
            for (int64_t i = 0; i < nr; i++)
                yb[i] = vec_dot_f32(rows + i * cols, xb, cols);
        }
    }
    free(tile);
}

borg_status matmul(const borg_mat *w, const float *x, int64_t nb, float *y, borg_pool *pool)
{
    matmul_job job = {w, x, nb, y, 0};
    pool_run(pool, matmul_rows, &job, w->rows, TILE_ROWS);
    return job.out_of_memory ? BORG_ENOMEM : BORG_OK;
}
