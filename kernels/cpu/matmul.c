/* y[b][r] = dot(W[r,:], x[b,:]) in f32, blocked for registers and caches
 * (with BORG_Q8_ACTIVATIONS set, quantized weights go to the 8-bit
 * activation path of matmul_q8.c instead):
 *
 *   for each block of vectors whose x stays in L2
 *     for each tile of MM_MR rows (rows split across threads)
 *       for each chunk of at most KC columns
 *         dequantize the tile's weights into f32 in L1, once
 *         for each group of MM_NR vectors: MM_MR x MM_NR accumulators of FMAs
 *
 * A batch of one to three vectors skips the f32 tile on AVX2: it decodes
 * weights in registers (mm_small_batch_avx2). Every path keeps the
 * summation contract of matmul_kernels.h, so results depend on the ISA
 * only, never on batch size, batch position or threads. */
#include "borg/matmul.h"

#include <stdlib.h>
#include <string.h>

#include "matmul_kernels.h"

enum {
    KC = 1024,      /* most columns dequantized at once: MM_MR * KC floats = 16 KiB */
    ROW_GRAIN = 16, /* rows per thread share rounded to this: whole cache lines of y */
};

/* x bytes one block of vectors may take, so it stays in L2 across row tiles. */
#define X_BLOCK_BYTES (256 * 1024)

static inline void tile_body_portable(const mm_tile *t, const int B)
{
    float acc[MM_MR][MM_NR][8];
    for (int r = 0; r < MM_MR; r++)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < 8; j++)
                acc[r][b][j] = t->first ? 0.0f : t->acc[(r * MM_NR + b) * 8 + j];
    const int64_t n8 = t->n & ~(int64_t)7;
    for (int64_t k = 0; k < n8; k += 8)
        for (int r = 0; r < MM_MR; r++)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < 8; j++)
                    acc[r][b][j] += t->w[r][k + j] * t->x[b * t->xs + k + j];
    if (!t->last) {
        for (int r = 0; r < MM_MR; r++)
            for (int b = 0; b < B; b++)
                memcpy(t->acc + (r * MM_NR + b) * 8, acc[r][b], sizeof acc[r][b]);
        return;
    }
    for (int r = 0; r < t->nr; r++)
        for (int b = 0; b < B; b++) {
            float s = mm_hsum8(acc[r][b]);
            for (int64_t k = n8; k < t->n; k++)
                s += t->w[r][k] * t->x[b * t->xs + k];
            t->y[b * t->ys + r] = s;
        }
}

void mm_tile_portable(const mm_tile *t, int nv)
{
    if (nv == 3)
        tile_body_portable(t, 3);
    else if (nv == 2)
        tile_body_portable(t, 2);
    else
        tile_body_portable(t, 1);
}

void mm_dequant_portable(borg_dtype t, const void *row, int64_t k0, int64_t n, float *dst)
{
    const int64_t be = quant_dtype_block_elems(t);
    quant_dequantize_row(t, (const char *)row + (size_t)(k0 / be) * quant_dtype_block_bytes(t), dst, n);
}

float mm_dot_portable(const float *a, const float *b, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = mm_hsum8(acc);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* The AVX2 kernels serve the avx2 path and every path above it. */
static int use_avx2(void)
{
#ifdef BORG_HAVE_AVX2_KERNELS
    return cpu_isa() >= BORG_ISA_AVX2;
#else
    return 0;
#endif
}

float vec_dot_f32(const float *a, const float *b, int64_t n)
{
#ifdef BORG_HAVE_AVX2_KERNELS
    if (use_avx2())
        return mm_dot_avx2(a, b, n);
#endif
    return mm_dot_portable(a, b, n);
}

static int q8_mode = -1;

int matmul_q8_activations(void)
{
    if (q8_mode < 0) {
        const char *v = getenv("BORG_Q8_ACTIVATIONS");
        q8_mode = !(v && !strcmp(v, "0"));
    }
    return q8_mode;
}

static int q8_set = -1;

void matmul_set_q8_activations(int on)
{
    q8_mode = on != 0;
    q8_set = q8_mode;
}

int matmul_q8_asked(void)
{
    if (q8_set >= 0)
        return q8_set;
    const char *v = getenv("BORG_Q8_ACTIVATIONS");
    return v ? strcmp(v, "0") != 0 : -1;
}

int matmul_uses_avx2(void) { return use_avx2(); }

const char *matmul_isa(void) { return cpu_isa_name(cpu_isa()); }

static void prefetch_rows(const char *p, size_t stride, int nrows, size_t off, size_t len)
{
    for (int i = 0; i < nrows; i++)
        for (size_t o = off; o < off + len; o += 64)
            __builtin_prefetch(p + (size_t)i * stride + o);
}

typedef struct {
    const borg_mat *w;
    const float *x;
    int64_t nb;
    float *y;
    int small; /* use mm_small_batch_avx2 */
    mm_tile_fn tile;
    mm_dequant_fn dequant; /* NULL for F32: rows are read in place */
    int64_t kc;            /* columns per chunk */
    int64_t x_block;       /* vectors per block */
    volatile int out_of_memory;
} matmul_job;

static void matmul_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    matmul_job *job = ctx;
    const borg_mat *w = job->w;
#ifdef BORG_HAVE_AVX2_KERNELS
    if (job->small) {
        mm_small_batch_avx2(w, job->x, job->nb, job->y, r0, r1);
        return;
    }
#endif
    const int64_t cols = w->cols, kc = job->kc, be = quant_dtype_block_elems(w->type);
    const size_t bb = quant_dtype_block_bytes(w->type);
    const int64_t groups = (job->x_block + MM_NR - 1) / MM_NR;
    const size_t tile_bytes = job->dequant ? sizeof(float) * MM_MR * (size_t)kc : 0;
    const size_t acc_bytes = kc < cols ? sizeof(float) * MM_MR * MM_NR * 8 * (size_t)groups : 0;
    float *scratch = NULL;
    if (tile_bytes + acc_bytes) {
        scratch = aligned_alloc(64, (tile_bytes + acc_bytes + 63) & ~(size_t)63);
        if (!scratch) {
            job->out_of_memory = 1;
            return;
        }
    }
    float *tile = scratch, *acc = acc_bytes ? scratch + tile_bytes / sizeof(float) : NULL;

    for (int64_t b0 = 0; b0 < job->nb; b0 += job->x_block) {
        const int64_t b1 = job->nb - b0 < job->x_block ? job->nb : b0 + job->x_block;
        for (int64_t r = r0; r < r1; r += MM_MR) {
            const int nr = r1 - r < MM_MR ? (int)(r1 - r) : MM_MR;
            const char *row = (const char *)w->data + (size_t)r * w->row_bytes;
            for (int64_t k0 = 0; k0 < cols; k0 += kc) {
                mm_tile t;
                t.n = cols - k0 < kc ? cols - k0 : kc;
                for (int i = 0; i < MM_MR; i++) {
                    const int ri = i < nr ? i : nr - 1;
                    if (!job->dequant) {
                        t.w[i] = (const float *)(row + (size_t)ri * w->row_bytes) + k0;
                    } else {
                        t.w[i] = tile + ri * kc;
                        if (i < nr)
                            job->dequant(w->type, row + (size_t)i * w->row_bytes, k0, t.n, tile + i * kc);
                    }
                }
                if (r + MM_MR < r1) /* the next tile's weights, while this one computes */
                    prefetch_rows(row + (size_t)MM_MR * w->row_bytes, w->row_bytes,
                                  r1 - r - MM_MR < MM_MR ? (int)(r1 - r - MM_MR) : MM_MR, (size_t)(k0 / be) * bb,
                                  (size_t)(t.n / be) * bb);
                t.xs = cols;
                t.ys = w->rows;
                t.first = k0 == 0;
                t.last = k0 + t.n == cols;
                t.nr = nr;
                for (int64_t b = b0; b < b1; b += MM_NR) {
                    t.x = job->x + b * cols + k0;
                    t.y = job->y + b * w->rows + r;
                    t.acc = acc ? acc + (b - b0) / MM_NR * (MM_MR * MM_NR * 8) : NULL;
                    job->tile(&t, b1 - b < MM_NR ? (int)(b1 - b) : MM_NR);
                }
            }
        }
    }
    free(scratch);
}

borg_status matmul(const borg_mat *w, const float *x, int64_t nb, float *y, borg_pool *pool)
{
    if (nb <= 0 || w->rows <= 0)
        return BORG_OK;
    if (w->cols <= 0) {
        memset(y, 0, sizeof(float) * (size_t)(nb * w->rows));
        return BORG_OK;
    }
    if (quant_dtype_block_elems(w->type) > 1 && matmul_q8_activations())
        return matmul_q8(w, x, nb, y, pool, cpu_isa());
    matmul_job job = {w, x, nb, y, 0, mm_tile_portable, mm_dequant_portable, 0, 0, 0};
#ifdef BORG_HAVE_AVX2_KERNELS
    if (use_avx2()) {
        job.tile = mm_tile_avx2;
        job.dequant = mm_dequant_avx2;
        job.small = nb <= MM_SMALL_NB && w->cols % 32 == 0;
    }
#endif
    if (w->type == BORG_DT_F32)
        job.dequant = NULL;
    /* Equal chunks of whole blocks, and of whole 8-column steps so that only
     * the last chunk of an F32/F16/BF16 row has a scalar tail. */
    const int64_t unit = quant_dtype_block_elems(w->type) < 8 ? 8 : quant_dtype_block_elems(w->type);
    const int64_t chunks = (w->cols + KC - 1) / KC;
    job.kc = ((w->cols + chunks - 1) / chunks + unit - 1) / unit * unit;
    const int64_t xb = X_BLOCK_BYTES / (int64_t)sizeof(float) / w->cols / MM_NR * MM_NR;
    job.x_block = xb < MM_NR ? MM_NR : xb;
    if (job.x_block > nb)
        job.x_block = nb;
    pool_run(pool, matmul_rows, &job, w->rows, ROW_GRAIN);
    return job.out_of_memory ? BORG_ENOMEM : BORG_OK;
}

borg_status matmul_n(const borg_mat *const *ws, int n, const float *x, int64_t nb, float *const *ys, borg_pool *pool)
{
    if (n > 1 && matmul_q8_shares_x(ws, n, nb) && matmul_q8_activations())
        return matmul_q8_n(ws, n, x, nb, ys, pool, cpu_isa());
    for (int i = 0; i < n; i++) {
        borg_status st = matmul(ws[i], x, nb, ys[i], pool);
        if (st)
            return st;
    }
    return BORG_OK;
}
