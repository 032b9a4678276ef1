/* matmul() for quantized weights, on 8-bit activations (the contract and
 * the block layout are in matmul_kernels.h):
 *
 *   quantize every vector of x, 32 values per scale, into block order
 *   (threads split vectors)
 *   for each block of vectors whose codes stay in L2
 *     for each panel of PANEL_ROWS rows (rows split across threads)
 *       pack the rows into codes in block order and lane scales, once
 *       for each group of MQ_NR vectors
 *         for each MQ_MR rows of the panel: one tile of integer dot products
 *
 * On AVX2 and up a single vector skips the panel (mq_one_avx2 decodes in
 * registers), and so do batches of up to R8_MAX_NB vectors on matrices with
 * an eight-row copy (mq_one_r8_avx2, vector by vector). Every kernel keeps
 * the per-pair contract, so a (row, vector) result depends on the ISA only,
 * never on batching or threads. This file
 * also holds the portable kernels. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "borg/cpu.h"
#include "matmul_kernels.h"

enum {
    ROW_GRAIN = 16,
    VEC_GRAIN = 16,
    PANEL_ROWS = 16 /* decoded together; each group of vectors meets them all while in L1 */
};

/* Batches up to this size meet the eight-row copy vector by vector (each
 * group of rows is in L1 for the later ones), not the tile copy: it is
 * half the bytes, and small batches are bound by streaming them. */
#define R8_MAX_NB 8

/* Activation codes one block of vectors may take, so it stays in L2. */
#define X_BLOCK_BYTES (192 * 1024)

mq_shape mq_shape_of(borg_dtype t, int64_t cols)
{
    mq_shape sh;
    sh.unit = t == BORG_DT_Q6_K ? 16 : 32;
    sh.passes = sh.unit / 4;
    sh.nfull = cols / sh.unit / 8;
    sh.tail = (int)(cols / sh.unit % 8);
    return sh;
}

/* Natural-order codes into block order, pass i of block k at spread *
 * (its start + 32 i): spread 2 leaves room for a pair's other vector. */
static void interleave(const mq_shape *sh, const int8_t *src, int8_t *dst, int spread)
{
    for (int64_t k = 0; k < mq_nblk(sh); k++)
        mq_interleave_block(sh, k, src, dst, spread);
}

/* quant_decompose_row's scales (8 per group of 32) and offsets (one per group)
 * into lanes per block. A unit's scale is that of its first element. */
static void weight_lanes(const mq_shape *sh, const float *dw, const float *m, float *dwl, float *ml)
{
    for (int64_t k = 0; k < sh->nfull; k++, dwl += 8, ml += 8)
        for (int j = 0; j < 8; j++) {
            const int64_t e = (8 * k + j) * sh->unit;
            dwl[j] = dw[8 * (e / 32) + e % 32 / 4];
            ml[j] = m[e / 32];
        }
    for (int64_t k = sh->nfull; k < mq_nblk(sh); k++, dwl += 8, ml += 8) {
        const int L = 8 / mq_block_units(sh, k);
        for (int j = 0; j < 8; j++) {
            const int64_t g = mq_lane_unit(sh, k, j);
            dwl[j] = dw[8 * g + j % L];
            ml[j] = m[g];
        }
    }
}

/* The quantizer's scales and sums (one per group of 32) into lanes per
 * block; 16-element units (Q6_K, signed) need no sums. */
static void act_lanes(const mq_shape *sh, const float *d, const float *s, float *dl, float *sl, int64_t stride)
{
    for (int64_t k = 0; k < sh->nfull; k++, dl += stride, sl += stride) {
        if (sh->unit == 32) { /* unit j of block k is group 8k + j */
            memcpy(dl, d + 8 * k, 8 * sizeof *dl);
            memcpy(sl, s + 8 * k, 8 * sizeof *sl);
            continue;
        }
        for (int j = 0; j < 8; j++) {
            dl[j] = d[(8 * k + j) / 2];
            sl[j] = 0;
        }
    }
    for (int64_t k = sh->nfull; k < mq_nblk(sh); k++, dl += stride, sl += stride) {
        const int L = 8 / mq_block_units(sh, k);
        for (int j = 0; j < 8; j++) {
            const int64_t g = mq_lane_unit(sh, k, j);
            dl[j] = d[g];
            sl[j] = j % L == 0 ? s[g] : 0;
        }
    }
}

void mq_pack_portable(borg_dtype t, const void *row, int64_t cols, int8_t *q, float *dw, float *m)
{
    /* 256 elements at a time: one K super-block, or 8 blocks of 32 */
    const size_t span_bytes = quant_dtype_block_bytes(t) * 256 / quant_dtype_block_elems(t);
    const mq_shape sh = mq_shape_of(t, cols);
    int8_t nq[256];
    float ndw[64], nm[8];
    for (int64_t e = 0; e < cols; e += 256) {
        const int64_t n = cols - e < 256 ? cols - e : 256;
        const mq_shape span = mq_shape_of(t, n);
        const int64_t k = e / (8 * sh.unit); /* first block of the span */
        quant_decompose_row(t, (const char *)row + (size_t)(e / 256) * span_bytes, n / 32, nq, ndw, nm);
        interleave(&span, nq, q + e, 1);
        weight_lanes(&span, ndw, nm, dw + 8 * k, m + 8 * k);
    }
}

void mq_quantize_portable(const float *x, int64_t ng, int8_t *q, float *d, float *s)
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
        s[g] = d[g] * (float)sum;
    }
}

void mq_tile_portable(const mq_tile *t, int nv)
{
    const mq_shape *sh = &t->sh;
    const int64_t nblk = mq_nblk(sh);
    const int sgn = quant_decompose_signed(t->type);
    for (int r = 0; r < t->nr; r++)
        for (int b = 0; b < nv; b++) {
            const int8_t *xq = t->xq + b * t->cols;
            const float *xd = t->xd + b * nblk * 8, *xs = t->xs + b * nblk * 8;
            float acc[8] = {0};
            for (int64_t k = 0; k < nblk; k++) {
                const int passes = mq_block_passes(sh, k);
                const int64_t c0 = mq_block_start(sh, k);
                for (int j = 0; j < 8; j++) {
                    if (!sgn)
                        acc[j] += t->m[r][8 * k + j] * xs[8 * k + j];
                    int isum = 0;
                    for (int i = 0; i < passes; i++)
                        for (int e = 0; e < 4; e++)
                            isum += t->q[r][c0 + 32 * i + 4 * j + e] * xq[c0 + 32 * i + 4 * j + e];
                    acc[j] += (float)isum * (t->dw[r][8 * k + j] * xd[8 * k + j]);
                }
            }
            t->y[b * t->ys + r] = mm_hsum8(acc);
        }
}

static int32_t code_sum(const int8_t *q, int n)
{
    int32_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += q[i];
    return sum;
}

/* Lane j of block k: -bias times the sum of the x codes the lane meets
 * over the block's passes, from codes in natural order: all of unit j in
 * a full block, so contiguous there (the common case, kept a plain sum). */
static void xc_lanes(const mq_shape *sh, const int8_t *xn, int32_t *xc, int64_t stride, int32_t bias)
{
    for (int64_t k = 0; k < sh->nfull; k++, xc += stride)
        for (int j = 0; j < 8; j++)
            xc[j] = -bias * code_sum(xn + mq_block_start(sh, k) + sh->unit * j, sh->unit);
    for (int64_t k = sh->nfull; k < mq_nblk(sh); k++, xc += stride)
        for (int j = 0; j < 8; j++) {
            int32_t sum = 0;
            for (int i = 0; i < mq_block_passes(sh, k); i++)
                sum += code_sum(xn + mq_block_start(sh, k) + mq_lane_elem(sh, k, j, i), 4);
            xc[j] = -bias * sum;
        }
}

/* Bytes of eight-row copies this process holds. Where they pass the
 * last-level cache, a batch of one reads each from memory on every call
 * (a stage's layers, token after token), and its kernels prefetch; where
 * they fit, they are read from cache. Only this process's copies count:
 * stages sharing a cache each see their own. */
static _Atomic size_t rows8_held;

typedef struct {
    const borg_mat *w;
    const float *x;
    int64_t nb, ng, nblk;
    mq_shape sh;
    float *y;
    borg_isa isa;
    int in_place;    /* rows met as stored or as the eight-row copy (mq_one), no panel */
    int stream;      /* the eight-row copies pass the last-level cache (rows8_held) */
    int pairs;       /* x in the pair layout of mq_ptile, else vector after vector */
    int8_t *xn;      /* nb * cols codes in natural order */
    float *gd, *gs;  /* nb * ng group scales and sums */
    int8_t *xq;      /* the codes in block order (xn itself for one vector) */
    float *xd, *xs;  /* 8 lane scales and sums per block and vector */
    int32_t *xc;     /* lane code sums (mq_ptile.xc) as xd, or NULL */
    int64_t x_block; /* vectors per block */
    volatile int out_of_memory;
} q8_job;

static void quantize_vectors(void *ctx, int64_t b0, int64_t b1, int thread)
{
    (void)thread;
    q8_job *job = ctx;
    const int64_t cols = job->w->cols, ng = job->ng, lanes = job->nblk * 8;
    const int spread = job->pairs ? 2 : 1;
    for (int64_t b = b0; b < b1; b++) {
        const float *x = job->x + b * cols;
        int8_t *q = job->xn + b * cols;
        float *d = job->gd + b * ng, *s = job->gs + b * ng;
#ifdef BORG_HAVE_AVX2_KERNELS
        if (job->isa >= BORG_ISA_AVX2)
            mq_quantize_avx2(x, ng, q, d, s);
        else
#endif
            mq_quantize_portable(x, ng, q, d, s);
        /* vector b's place: its own, or one half of its pair's */
        const int64_t codes_at = job->pairs ? b / 2 * 2 * cols + 32 * (b % 2) : b * cols;
        const int64_t lanes_at = job->pairs ? b / 2 * 2 * lanes + 8 * (b % 2) : b * lanes;
        act_lanes(&job->sh, d, s, job->xd + lanes_at, job->xs + lanes_at, 8 * spread);
        if (job->xq != job->xn) {
#ifdef BORG_HAVE_AVX2_KERNELS
            if (job->isa >= BORG_ISA_AVX2)
                mq_interleave_avx2(&job->sh, q, job->xq + codes_at, spread);
            else
#endif
                interleave(&job->sh, q, job->xq + codes_at, spread);
        }
        if (job->xc)
            /* the one-vector kernel meets Q6_K's codes as stored, 32 up */
            xc_lanes(&job->sh, q, job->xc + lanes_at, 8 * spread,
                     !job->pairs && job->w->type == BORG_DT_Q6_K ? 32 : 128);
    }
}

static void pack(const q8_job *job, const char *row, int8_t *q, float *dw, float *m)
{
#ifdef BORG_HAVE_AVX2_KERNELS
    if (job->isa >= BORG_ISA_AVX2) {
        mq_pack_avx2(job->w->type, row, job->w->cols, q, dw, m);
        return;
    }
#endif
    mq_pack_portable(job->w->type, row, job->w->cols, q, dw, m);
}

/* The panel's np rows (from row r) against vectors [b0, b1), MQ_MR rows by
 * MQ_NR vectors at a time. */
static void vector_tiles(const q8_job *job, const char *panel, size_t row_bytes, int np, int64_t r, int64_t b0,
                         int64_t b1)
{
    const borg_mat *w = job->w;
    const int64_t cols = w->cols, nblk = job->nblk;
    void (*tile_fn)(const mq_tile *, int) = mq_tile_portable;
#ifdef BORG_HAVE_AVX2_KERNELS
    if (job->isa >= BORG_ISA_AVX2)
        tile_fn = mq_tile_avx2;
#endif
    mq_tile t;
    t.type = w->type;
    t.sh = job->sh;
    t.cols = cols;
    t.ys = w->rows;
    for (int64_t b = b0; b < b1; b += MQ_NR) {
        t.xq = job->xq + b * cols;
        t.xd = job->xd + b * nblk * 8;
        t.xs = job->xs + b * nblk * 8;
        for (int i0 = 0; i0 < np; i0 += MQ_MR) {
            t.nr = np - i0 < MQ_MR ? np - i0 : MQ_MR;
            for (int i = 0; i < MQ_MR; i++) {
                const char *p = panel + (size_t)(i0 + (i < t.nr ? i : t.nr - 1)) * row_bytes;
                t.q[i] = (const int8_t *)p;
                t.dw[i] = (const float *)(p + cols);
                t.m[i] = t.dw[i] + 8 * nblk;
            }
            t.y = job->y + b * w->rows + r + i0;
            tile_fn(&t, b1 - b < MQ_NR ? (int)(b1 - b) : MQ_NR);
        }
    }
}

#ifdef BORG_HAVE_AVX2_KERNELS
/* vector_tiles on the pair layout, MP_MR rows by 2 * MP_NP vectors. */
static void pair_tiles(const q8_job *job, const char *panel, size_t row_bytes, int np, int64_t r, int64_t b0,
                       int64_t b1)
{
    const borg_mat *w = job->w;
    const int64_t cols = w->cols, nblk = job->nblk;
    mq_ptile t;
    t.type = w->type;
    t.sh = job->sh;
    t.cols = cols;
    t.ys = w->rows;
    for (int64_t b = b0; b < b1; b += 2 * MP_NP) {
        t.xq = job->xq + b * cols;
        t.xd = job->xd + b * nblk * 8;
        t.xs = job->xs + b * nblk * 8;
        t.xc = job->xc ? job->xc + b * nblk * 8 : NULL;
        for (int i0 = 0; i0 < np; i0 += MP_MR) {
            t.nr = np - i0 < MP_MR ? np - i0 : MP_MR;
            for (int i = 0; i < MP_MR; i++) {
                const char *p = panel + (size_t)(i0 + (i < t.nr ? i : t.nr - 1)) * row_bytes;
                t.q[i] = (const int8_t *)p;
                t.dw[i] = (const float *)(p + cols);
                t.m[i] = t.dw[i] + 8 * nblk;
            }
            t.y = job->y + b * w->rows + r + i0;
            mq_ptile_avx512(&t, b1 - b < 2 * MP_NP ? (int)(b1 - b) : 2 * MP_NP);
        }
    }
}
#endif

/* Bytes of a packed row of cols elements of type t: its codes in block
 * order, lane scales, lane offsets. */
static size_t row_bytes_of(borg_dtype t, int64_t cols)
{
    const mq_shape sh = mq_shape_of(t, cols);
    return (size_t)cols + sizeof(float) * (size_t)(16 * mq_nblk(&sh));
}

static size_t packed_row_bytes(const borg_mat *w) { return row_bytes_of(w->type, w->cols); }

/* The panel's np rows (from row r) against vectors [b0, b1) on the path's
 * tiles. */
static void panel_tiles(const q8_job *job, const char *panel, size_t row_bytes, int np, int64_t r, int64_t b0,
                        int64_t b1)
{
#ifdef BORG_HAVE_AVX2_KERNELS
    if (job->pairs) {
        pair_tiles(job, panel, row_bytes, np, r, b0, b1);
        return;
    }
#endif
    vector_tiles(job, panel, row_bytes, np, r, b0, b1);
}

static void q8_rows(void *ctx, int64_t r0, int64_t r1, int thread)
{
    (void)thread;
    q8_job *job = ctx;
    const borg_mat *w = job->w;
    const int64_t cols = w->cols, nblk = job->nblk;
#ifdef BORG_HAVE_AVX2_KERNELS
    if (job->in_place) {
        const int wide = job->isa >= BORG_ISA_AVX512;
        void (*one_fn)(const mq_one *, int64_t, int64_t) = wide ? mq_one_avx512 : mq_one_avx2;
        void (*r8_fn)(const mq_one *, int64_t, int64_t) = wide ? mq_one_r8_avx512 : mq_one_r8_avx2;
        mq_one one[R8_MAX_NB];
        for (int64_t b = 0; b < job->nb; b++) {
            const int64_t l = b * nblk * 8;
            /* the later vectors meet the groups the first brought in */
            one[b] = (mq_one){w,
                              job->xq + b * cols,
                              job->xd + l,
                              job->xs + l,
                              job->xc ? job->xc + l : NULL,
                              job->y + b * w->rows,
                              job->stream && b == 0};
        }
        /* whole groups of eight rows from the eight-row copy, the rest in
         * place; each vector meets a few groups while they are in L1 */
        const int64_t g0 = w->rows8 ? (r0 + MQ_R8 - 1) / MQ_R8 : 0, g1 = w->rows8 ? r1 / MQ_R8 : 0;
        const int64_t a = g0 < g1 ? MQ_R8 * g0 : r1, z = g0 < g1 ? MQ_R8 * g1 : r1;
        for (int64_t b = 0; b < job->nb; b++)
            if (r0 < a)
                one_fn(&one[b], r0, a);
        for (int64_t g = g0; g < g1; g += 2)
            for (int64_t b = 0; b < job->nb; b++)
                r8_fn(&one[b], g, g1 - g < 2 ? g1 : g + 2);
        for (int64_t b = 0; b < job->nb; b++)
            if (z < r1)
                one_fn(&one[b], z, r1);
        return;
    }
#endif
    const size_t row_bytes = packed_row_bytes(w);
    if (w->packed) {
        for (int64_t b0 = 0; b0 < job->nb; b0 += job->x_block) {
            const int64_t b1 = job->nb - b0 < job->x_block ? job->nb : b0 + job->x_block;
            for (int64_t r = r0; r < r1; r += PANEL_ROWS)
                panel_tiles(job, (const char *)w->packed + (size_t)r * row_bytes, row_bytes,
                            r1 - r < PANEL_ROWS ? (int)(r1 - r) : PANEL_ROWS, r, b0, b1);
        }
        return;
    }
    char *panel = aligned_alloc(64, (PANEL_ROWS * row_bytes + 63) & ~(size_t)63);
    if (!panel) {
        job->out_of_memory = 1;
        return;
    }
    for (int64_t b0 = 0; b0 < job->nb; b0 += job->x_block) {
        const int64_t b1 = job->nb - b0 < job->x_block ? job->nb : b0 + job->x_block;
        for (int64_t r = r0; r < r1; r += PANEL_ROWS) {
            const int np = r1 - r < PANEL_ROWS ? (int)(r1 - r) : PANEL_ROWS;
            for (int i = 0; i < np; i++) {
                char *p = panel + (size_t)i * row_bytes;
                float *dw = (float *)(p + cols);
                pack(job, (const char *)w->data + (size_t)(r + i) * w->row_bytes, (int8_t *)p, dw, dw + 8 * nblk);
            }
            panel_tiles(job, panel, row_bytes, np, r, b0, b1);
        }
    }
    free(panel);
}

borg_status matmul_q8(const borg_mat *w, const float *x, int64_t nb, float *y, borg_pool *pool, borg_isa isa)
{
    return matmul_q8_n(&w, 1, x, nb, &y, pool, isa);
}

int matmul_q8_shares_x(const borg_mat *const *ws, int n, int64_t nb)
{
    if (nb <= 0 || ws[0]->rows <= 0 || ws[0]->cols <= 0 || quant_dtype_block_elems(ws[0]->type) <= 1)
        return 0;
    for (int i = 1; i < n; i++)
        if (ws[i]->type != ws[0]->type || ws[i]->cols != ws[0]->cols || !ws[i]->rows8 != !ws[0]->rows8 ||
            ws[i]->rows <= 0)
            return 0;
    return 1;
}

/* x's layout follows from the first matrix; the others share it
 * (matmul_q8_shares_x). */
borg_status matmul_q8_n(const borg_mat *const *ws, int n, const float *x, int64_t nb, float *const *ys, borg_pool *pool,
                        borg_isa isa)
{
    const borg_mat *w = ws[0];
    const int64_t cols = w->cols, ng = cols / 32;
    const mq_shape sh = mq_shape_of(w->type, cols);
    const int64_t nblk = mq_nblk(&sh);
    /* in place: x in natural order, vector after vector (mq_one) */
    const int in_place = isa >= BORG_ISA_AVX2 && (nb == 1 || (w->rows8 && nb <= R8_MAX_NB));
    const int pairs = !in_place && isa >= BORG_ISA_AVX512;
    /* the pair layout rounds the batch up to whole pairs */
    const int64_t nv = pairs ? nb + nb % 2 : nb;
    /* the AVX-512 kernels start a signed type's lanes from their code sums */
    /* ...and so does Q6_K's eight-row kernel on every path */
    const int with_xc = quant_decompose_signed(w->type) &&
                        (isa >= BORG_ISA_AVX512 || (in_place && w->rows8 && w->type == BORG_DT_Q6_K));
    const size_t codes = (size_t)(nv * cols), groups = sizeof(float) * (size_t)(nb * ng);
    const size_t lanes = sizeof(float) * (size_t)(nv * nblk * 8);
    char *buf = aligned_alloc(64, (codes * (in_place ? 1 : 2) + 2 * groups + (2 + with_xc) * lanes + 63) & ~(size_t)63);
    if (!buf)
        return BORG_ENOMEM;
    q8_job job = {0};
    job.w = w, job.x = x, job.nb = nb, job.ng = ng, job.nblk = nblk, job.sh = sh, job.isa = isa;
    job.in_place = in_place;
    job.stream = atomic_load_explicit(&rows8_held, memory_order_relaxed) > cpu_llc_bytes();
    job.pairs = pairs;
    job.xd = (float *)buf;
    job.xs = job.xd + nv * nblk * 8;
    job.xc = with_xc ? (int32_t *)(job.xs + nv * nblk * 8) : NULL;
    job.gd = job.xs + nv * nblk * 8 + (with_xc ? nv * nblk * 8 : 0);
    job.gs = job.gd + nb * ng;
    job.xn = (int8_t *)(job.gs + nb * ng);
    job.xq = in_place ? job.xn : job.xn + codes;
    if (nv > nb) { /* an odd batch's last pair: a zero second vector */
        memset(job.xq + (nb - 1) * cols, 0, 2 * (size_t)cols);
        for (float *l = job.xd + (nb - 1) * nblk * 8; l < job.xd + nv * nblk * 8; l++)
            *l = 0;
        for (float *l = job.xs + (nb - 1) * nblk * 8; l < job.xs + nv * nblk * 8; l++)
            *l = 0;
        if (job.xc)
            memset(job.xc + (nb - 1) * nblk * 8, 0, sizeof(int32_t) * 2 * (size_t)(nblk * 8));
    }
    pool_run(pool, quantize_vectors, &job, nb, VEC_GRAIN);
    /* whole tiles of vectors (MQ_NR and 2 * MP_NP alike) */
    const int64_t xb = X_BLOCK_BYTES / cols / MQ_NR * MQ_NR;
    job.x_block = xb < MQ_NR ? MQ_NR : xb;
    for (int i = 0; i < n; i++) {
        job.w = ws[i];
        job.y = ys[i];
        pool_run(pool, q8_rows, &job, ws[i]->rows, ROW_GRAIN);
    }
    free(buf);
    return job.out_of_memory ? BORG_ENOMEM : BORG_OK;
}

static int repack_wanted(borg_dtype t, int64_t cols)
{
    const char *v = getenv("BORG_REPACK");
    return quant_dtype_block_elems(t) > 1 && cols % 32 == 0 && matmul_q8_activations() && cpu_isa() >= BORG_ISA_AVX2 &&
           !(v && !strcmp(v, "0"));
}

/* A unit's codes (32, natural order) as row r of an eight-row unit's c,
 * and where p is not NULL their fifth bits into its plane p. */
static void rows8_codes(const int8_t *q, int r, uint8_t *c, uint8_t *p)
{
    for (int e = 0; e < 4; e++) {
        uint8_t hb = 0;
        for (int i = 0; i < 4; i++) {
            c[32 * i + 4 * r + e] = (uint8_t)((q[4 * i + e] & 15) | (q[16 + 4 * i + e] & 15) << 4);
            hb |= (uint8_t)((q[4 * i + e] >> 4 & 1) << i | (q[16 + 4 * i + e] >> 4 & 1) << (4 + i));
        }
        if (p)
            p[4 * r + e] = hb;
    }
}

/* Row r's Q8_0 block b into the eight-row unit dst. */
static void rows8_q8_0(const uint8_t *b, int r, uint8_t *dst)
{
    memcpy(dst + 2 * r, b, 2);
    for (int i = 0; i < 8; i++)
        memcpy(dst + 16 + 32 * i + 4 * r, b + 2 + 4 * i, 4);
}

/* Row r's f16 scale, and where the header is 32 bytes its second f16 (m,
 * or dmin), from the start of its block b into the eight-row header. */
static void rows8_header(const uint8_t *b, int r, uint8_t *dst, size_t h)
{
    memcpy(dst + 2 * r, b, 2);
    if (h == 32)
        memcpy(dst + 16 + 2 * r, b + 2, 2);
}

/* Row r's Q4_0 or Q4_1 block b into the eight-row unit dst: d (and m),
 * then the codes, whose bytes hold elements l and 16 + l already. */
static void rows8_q4(const uint8_t *b, int r, uint8_t *dst, size_t h)
{
    rows8_header(b, r, dst, h);
    for (int i = 0; i < 4; i++)
        memcpy(dst + h + 32 * i + 4 * r, b + h / 8 + 4 * i, 4);
}

static void rows8_q4_0(const uint8_t *b, int r, uint8_t *dst) { rows8_q4(b, r, dst, 16); }
static void rows8_q4_1(const uint8_t *b, int r, uint8_t *dst) { rows8_q4(b, r, dst, 32); }

/* Row r's Q5_0 or Q5_1 block b into the eight-row unit dst, through its
 * decomposed codes. */
static void rows8_q5(borg_dtype t, const uint8_t *b, int r, uint8_t *dst, size_t h)
{
    int8_t q[32];
    float dw[8], m[1];
    quant_decompose_row(t, b, 1, q, dw, m);
    rows8_header(b, r, dst, h);
    rows8_codes(q, r, dst + h, dst + h + 128);
}

static void rows8_q5_0(const uint8_t *b, int r, uint8_t *dst) { rows8_q5(BORG_DT_Q5_0, b, r, dst, 16); }
static void rows8_q5_1(const uint8_t *b, int r, uint8_t *dst) { rows8_q5(BORG_DT_Q5_1, b, r, dst, 32); }

/* Row r's Q4_K super-block sb into the eight-row super-block dst: unit j
 * is nibble j % 2 of 32 bytes. */
static void rows8_q4k(const uint8_t *sb, int r, uint8_t *dst)
{
    rows8_header(sb, r, dst, 32);
    for (int j = 0; j < 8; j++) {
        quant_k4_scale_min(j, sb + 4, dst + 32 + 8 * j + r, dst + 96 + 8 * j + r);
        uint8_t *c = dst + 160 + 128 * j;
        const uint8_t *qs = sb + 16 + 32 * (j >> 1);
        const int sh = 4 * (j & 1);
        for (int i = 0; i < 4; i++)
            for (int e = 0; e < 4; e++)
                c[32 * i + 4 * r + e] = (uint8_t)((qs[4 * i + e] >> sh & 15) | (qs[16 + 4 * i + e] >> sh & 15) << 4);
    }
}

/* Row r's Q5_K super-block sb into the eight-row super-block dst, through
 * its decomposed codes. */
static void rows8_q5k(const uint8_t *sb, int r, uint8_t *dst)
{
    int8_t q[256];
    float dw[64], m[8];
    quant_decompose_row(BORG_DT_Q5_K, sb, 8, q, dw, m);
    rows8_header(sb, r, dst, 32);
    for (int j = 0; j < 8; j++) {
        quant_k4_scale_min(j, sb + 4, dst + 32 + 8 * j + r, dst + 96 + 8 * j + r);
        rows8_codes(q + 32 * j, r, dst + 160 + 160 * j, dst + 160 + 160 * j + 128);
    }
}

/* Row r's Q6_K super-block sb into the eight-row super-block dst. */
static void rows8_q6k(const uint8_t *sb, int r, uint8_t *dst)
{
    int8_t q[256];
    float dw[64], m[8];
    quant_decompose_row(BORG_DT_Q6_K, sb, 8, q, dw, m);
    memcpy(dst + 2 * r, sb + 208, 2);
    for (int u = 0; u < 16; u++) {
        const int8_t *e = q + 16 * u; /* codes - 32 */
        uint8_t *c = dst + 144 + 96 * u;
        dst[16 + 8 * u + r] = sb[192 + u];
        for (int k = 0; k < 4; k++) {
            uint8_t hb = 0;
            for (int i = 0; i < 4; i++)
                hb |= (uint8_t)(((e[4 * i + k] + 32) >> 4) << 2 * i);
            c[4 * r + k] = (uint8_t)(((e[k] + 32) & 15) | ((e[8 + k] + 32) & 15) << 4);
            c[32 + 4 * r + k] = (uint8_t)(((e[4 + k] + 32) & 15) | ((e[12 + k] + 32) & 15) << 4);
            c[64 + 4 * r + k] = hb;
        }
    }
}

/* Each type of the eight-row copy: the elements of one of its units (a
 * block, or a K super-block), the bytes of that unit for eight rows
 * (matmul_kernels.h has the layouts), and what puts row r's unit there. */
typedef struct {
    borg_dtype type;
    int span;
    size_t unit_bytes;
    void (*row)(const uint8_t *src, int r, uint8_t *dst);
} rows8_kind;

static const rows8_kind ROWS8_KINDS[] = {
    {BORG_DT_Q4_0, 32, MQ_R8_Q4_0, rows8_q4_0}, {BORG_DT_Q4_1, 32, MQ_R8_Q4_1, rows8_q4_1},
    {BORG_DT_Q5_0, 32, MQ_R8_Q5_0, rows8_q5_0}, {BORG_DT_Q5_1, 32, MQ_R8_Q5_1, rows8_q5_1},
    {BORG_DT_Q8_0, 32, MQ_R8_Q8_0, rows8_q8_0}, {BORG_DT_Q4_K, 256, MQ_R8_Q4K, rows8_q4k},
    {BORG_DT_Q5_K, 256, MQ_R8_Q5K, rows8_q5k},  {BORG_DT_Q6_K, 256, MQ_R8_Q6K, rows8_q6k},
};

static const rows8_kind *rows8_kind_of(borg_dtype t)
{
    for (size_t i = 0; i < sizeof ROWS8_KINDS / sizeof *ROWS8_KINDS; i++)
        if (ROWS8_KINDS[i].type == t)
            return &ROWS8_KINDS[i];
    return NULL;
}

/* Group g (rows 8g .. 8g + 7) of a matrix into its eight-row copy at dst. */
static void pack_rows8(const borg_mat *w, const rows8_kind *kind, int64_t g, uint8_t *dst)
{
    const uint8_t *rows = (const uint8_t *)w->data + (size_t)(MQ_R8 * g) * w->row_bytes;
    const size_t src_bytes = quant_dtype_block_bytes(w->type) * (size_t)kind->span / quant_dtype_block_elems(w->type);
    for (int64_t k = 0; k < w->cols / kind->span; k++, dst += kind->unit_bytes)
        for (int r = 0; r < MQ_R8; r++)
            kind->row(rows + (size_t)r * w->row_bytes + src_bytes * (size_t)k, r, dst);
}

static size_t rows8_bytes_of(borg_dtype t, int64_t rows, int64_t cols)
{
    const rows8_kind *kind = rows8_kind_of(t);
    return kind ? (size_t)(rows / MQ_R8) * (size_t)(cols / kind->span) * kind->unit_bytes : 0;
}

static size_t rows8_bytes(const borg_mat *w) { return rows8_bytes_of(w->type, w->rows, w->cols); }

/* Both copies of a matrix, made on the pool's threads: each thread writes
 * its own rows (and so also takes the page faults of first touching them,
 * most of a large model's load time). */
typedef struct {
    const borg_mat *w;
    const rows8_kind *kind;
    uint8_t *rows8;
    size_t group_bytes; /* of the eight-row copy */
    char *packed;
    size_t row_bytes, nblk;
} prepare_job;

static void prepare_rows8(void *ctx, int64_t g0, int64_t g1, int thread)
{
    (void)thread;
    const prepare_job *j = ctx;
    for (int64_t g = g0; g < g1; g++)
        pack_rows8(j->w, j->kind, g, j->rows8 + (size_t)g * j->group_bytes);
}

static void prepare_packed(void *ctx, int64_t r0, int64_t r1, int thread)
{
    (void)thread;
    const prepare_job *j = ctx;
    const borg_mat *w = j->w;
    for (int64_t r = r0; r < r1; r++) {
        char *row = j->packed + (size_t)r * j->row_bytes;
        float *dw = (float *)(row + w->cols);
        const char *src = (const char *)w->data + (size_t)r * w->row_bytes;
#ifdef BORG_HAVE_AVX2_KERNELS
        mq_pack_avx2(w->type, src, w->cols, (int8_t *)row, dw, dw + 8 * j->nblk);
#else
        mq_pack_portable(w->type, src, w->cols, (int8_t *)row, dw, dw + 8 * j->nblk);
#endif
    }
}

borg_status matmul_prepare(borg_mat *w, borg_pool *pool, borg_err *err)
{
    w->packed = NULL;
    w->rows8 = NULL;
    if (!repack_wanted(w->type, w->cols))
        return BORG_OK;
    prepare_job job = {.w = w, .kind = rows8_kind_of(w->type), .group_bytes = rows8_bytes_of(w->type, MQ_R8, w->cols)};
    if (rows8_bytes(w)) {
        w->rows8 = aligned_alloc(64, (rows8_bytes(w) + 63) & ~(size_t)63);
        if (!w->rows8)
            return borg_fail(err, BORG_ENOMEM, "out of memory copying a %lld x %lld %s matrix eight rows at a time",
                             (long long)w->rows, (long long)w->cols, quant_dtype_name(w->type));
        job.rows8 = w->rows8;
        pool_run(pool, prepare_rows8, &job, w->rows / MQ_R8, 1);
        atomic_fetch_add_explicit(&rows8_held, rows8_bytes(w), memory_order_relaxed);
    }
    job.row_bytes = packed_row_bytes(w);
    job.nblk = (job.row_bytes - (size_t)w->cols) / (16 * sizeof(float));
    job.packed = aligned_alloc(64, ((size_t)w->rows * job.row_bytes + 63) & ~(size_t)63);
    if (!job.packed) {
        matmul_release(w);
        return borg_fail(err, BORG_ENOMEM, "out of memory repacking a %lld x %lld %s matrix (%zu MiB)",
                         (long long)w->rows, (long long)w->cols, quant_dtype_name(w->type),
                         (size_t)w->rows * job.row_bytes >> 20);
    }
    pool_run(pool, prepare_packed, &job, w->rows, 8);
    w->packed = job.packed;
    return BORG_OK;
}

void matmul_release(borg_mat *w)
{
    if (w->rows8)
        atomic_fetch_sub_explicit(&rows8_held, rows8_bytes(w), memory_order_relaxed);
    free(w->packed);
    free(w->rows8);
    w->packed = NULL;
    w->rows8 = NULL;
}

size_t matmul_prepared_bytes(const borg_mat *w)
{
    return (w->packed ? (size_t)w->rows * packed_row_bytes(w) : 0) + (w->rows8 ? rows8_bytes(w) : 0);
}

size_t matmul_copy_bytes(borg_dtype t, int64_t rows, int64_t cols)
{
    if (!repack_wanted(t, cols))
        return 0;
    return (size_t)rows * row_bytes_of(t, cols) + rows8_bytes_of(t, rows, cols);
}
