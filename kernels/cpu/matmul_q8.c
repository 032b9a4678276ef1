/* matmul() for quantized weights, on 8-bit activations (the contract is in
 * matmul_kernels.h):
 *
 *   quantize every vector of x, 32 values per scale (threads split vectors)
 *   for each block of vectors whose codes stay in L2
 *     for each panel of PANEL_ROWS rows (rows split across threads)
 *       decompose the rows into codes and scales, once
 *       for each group of MQ_NR vectors
 *         for each MQ_MR rows of the panel: one tile of integer dot products
 *
 * A single vector skips the panel on AVX2 (mq_one_avx2 decodes in
 * registers). Every kernel keeps the per-pair contract, so a (row, vector)
 * result depends on the ISA only, never on batching or threads. This file
 * also holds the portable kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "borg/matmul_kernels.h"

enum {
    ROW_GRAIN = 16,
    VEC_GRAIN = 16,
    PANEL_ROWS = 4 /* decoded together; each group of vectors meets them all while in L1 */
};

/* Activation codes one block of vectors may take, so it stays in L2. */
#define X_BLOCK_BYTES (192 * 1024)

void mq_quantize_portable(const float *x, int64_t ng, int8_t *q, float *d, float *s, int64_t s_stride)
{
    for (int64_t g = 0; g < ng; g++, x += 32, q += 32) {
        float amax = 0;
        for (int k = 0; k < 32; k++)
            amax = fabsf(x[k]) > amax ? fabsf(x[k]) : amax;
        const float id = amax > 0 ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int k = 0; k < 32; k++) {
            q[k] = (int8_t)nearbyintf(x[k] * id);
            sum += q[k];
        }
        d[g] = amax / 127.0f;
        s[g * s_stride] = d[g] * (float)sum;
    }
}

void mq_tile_portable(const mq_tile *t, int nv)
{
    for (int r = 0; r < t->nr; r++)
        for (int b = 0; b < nv; b++) {
            const int8_t *xq = t->xq + b * t->ng * 32;
            const float *xd = t->xd + b * t->ng;
            float acc[8] = {0};
            for (int64_t g = 0; g < t->ng; g++)
                for (int j = 0; j < 8; j++) {
                    const int8_t *wq = t->q[r] + 32 * g + 4 * j, *aq = xq + 32 * g + 4 * j;
                    const int isum = wq[0] * aq[0] + wq[1] * aq[1] + wq[2] * aq[2] + wq[3] * aq[3];
                    acc[j] += (float)isum * (t->dw[r][8 * g + j] * xd[g]);
                }
            float off = 0;
            for (int64_t g = 0; g < t->ng && !t->sgn; g++)
                off += t->m[r][g] * t->xs[MQ_NR * g + b];
            t->y[b * t->ys + r] = mm_hsum8(acc) + off;
        }
}

typedef struct {
    const borg_mat *w;
    const float *x;
    int64_t nb, ng;
    float *y;
    int avx2;
    int8_t *xq; /* nb * ng * 32 activation codes */
    float *xd;  /* nb * ng scales */
    float *xs;  /* sums, MQ_NR vectors interleaved per group (mq_tile) */
    int64_t x_block; /* vectors per block */
    volatile int out_of_memory;
} q8_job;

static void quantize_vectors(void *ctx, int64_t b0, int64_t b1, int thread)
{
    (void)thread;
    q8_job *job = ctx;
    for (int64_t b = b0; b < b1; b++) {
        const float *x = job->x + b * job->w->cols;
        int8_t *q = job->xq + b * job->ng * 32;
        float *s = job->xs + (b / MQ_NR) * job->ng * MQ_NR + b % MQ_NR;
#ifdef BORG_HAVE_AVX2_KERNELS
        if (job->avx2) {
            mq_quantize_avx2(x, job->ng, q, job->xd + b * job->ng, s, MQ_NR);
            continue;
        }
#endif
        mq_quantize_portable(x, job->ng, q, job->xd + b * job->ng, s, MQ_NR);
    }
}

static void decompose(const q8_job *job, const char *row, int8_t *q, float *dw, float *m)
{
#ifdef BORG_HAVE_AVX2_KERNELS
    if (job->avx2) {
        mq_decompose_avx2(job->w->type, row, job->ng, q, dw, m);
        return;
    }
#endif
    decompose_row(job->w->type, row, job->ng, q, dw, m);
}

static void q8_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    (void)thread;
    q8_job *job = ctx;
    const borg_mat *w = job->w;
    const int64_t ng = job->ng;
#ifdef BORG_HAVE_AVX2_KERNELS
    if (job->avx2 && job->nb == 1) {
        const mq_one one = {w, job->xq, job->xd, job->xs, job->y};
        mq_one_avx2(&one, r0, r1);
        return;
    }
#endif
    /* per panel row: codes, then lane scales, then offsets */
    const size_t row_bytes = (size_t)ng * (32 + 8 * sizeof(float) + sizeof(float));
    char *panel = aligned_alloc(64, (PANEL_ROWS * row_bytes + 63) & ~(size_t)63);
    if (!panel) {
        job->out_of_memory = 1;
        return;
    }
    void (*tile_fn)(const mq_tile *, int) = mq_tile_portable;
#ifdef BORG_HAVE_AVX2_KERNELS
    if (job->avx2)
        tile_fn = mq_tile_avx2;
#endif
    mq_tile t;
    t.ng = ng;
    t.sgn = decompose_signed(w->type);
    t.ys = w->rows;
    for (int64_t b0 = 0; b0 < job->nb; b0 += job->x_block) {
        const int64_t b1 = job->nb - b0 < job->x_block ? job->nb : b0 + job->x_block;
        for (int64_t r = r0; r < r1; r += PANEL_ROWS) {
            const int np = r1 - r < PANEL_ROWS ? (int)(r1 - r) : PANEL_ROWS;
            for (int i = 0; i < np; i++) {
                char *p = panel + (size_t)i * row_bytes;
                decompose(job, (const char *)w->data + (size_t)(r + i) * w->row_bytes, (int8_t *)p,
                          (float *)(p + 32 * ng), (float *)(p + 64 * ng));
            }
            for (int64_t b = b0; b < b1; b += MQ_NR) {
                t.xq = job->xq + b * ng * 32;
                t.xd = job->xd + b * ng;
                t.xs = job->xs + b * ng; /* b is a multiple of MQ_NR */
                for (int i0 = 0; i0 < np; i0 += MQ_MR) {
                    t.nr = np - i0 < MQ_MR ? np - i0 : MQ_MR;
                    for (int i = 0; i < MQ_MR; i++) {
                        const char *p = panel + (size_t)(i0 + (i < t.nr ? i : t.nr - 1)) * row_bytes;
                        t.q[i] = (const int8_t *)p;
                        t.dw[i] = (const float *)(p + 32 * ng);
                        t.m[i] = (const float *)(p + 64 * ng);
                    }
                    t.y = job->y + b * w->rows + r + i0;
                    tile_fn(&t, b1 - b < MQ_NR ? (int)(b1 - b) : MQ_NR);
                }
            }
        }
    }
    free(panel);
}

borg_status matmul_q8(const borg_mat *w, const float *x, int64_t nb, float *y, borg_pool *pool, int avx2)
{
    const int64_t ng = w->cols / 32, padded = (nb + MQ_NR - 1) / MQ_NR * MQ_NR;
    const size_t codes = (size_t)(nb * ng * 32), scales = sizeof(float) * (size_t)(nb * ng);
    const size_t sums = sizeof(float) * (size_t)(padded * ng);
    char *buf = aligned_alloc(64, (codes + scales + sums + 63) & ~(size_t)63);
    if (!buf)
        return BORG_ENOMEM;
    memset(buf + codes + scales, 0, sums); /* the sums of missing vectors of the last tile */
    q8_job job = {w, x, nb, ng, y, avx2, (int8_t *)buf, (float *)(buf + codes), (float *)(buf + codes + scales),
                  0, 0};
    pool_run(pool, quantize_vectors, &job, nb, VEC_GRAIN);
    const int64_t xb = X_BLOCK_BYTES / (ng * 32) / MQ_NR * MQ_NR;
    job.x_block = xb < MQ_NR ? MQ_NR : xb;
    pool_run(pool, q8_rows, &job, w->rows, ROW_GRAIN);
    free(buf);
    return job.out_of_memory ? BORG_ENOMEM : BORG_OK;
}
