/* matmul() on every weight type against quant_dequantize_row + a double-precision
 * dot, and its promise that a (row, vector) result is bit-identical
 * whatever the batch size, the vector's place in it, or the thread count.
 * With 8-bit activations (the default) quantized weights meet 8-bit codes,
 * so their reference dot takes the activations through mq_quantize_portable
 * and back; a second check bounds what that quantization costs against the
 * f32 activations. The AVX2 quantizer and row packer must match their
 * portable references bit for bit, and the avx512 path must give the avx2
 * path's bits. Runs on the path BORG_ISA names (the best one where unset);
 * ctest runs it once per path, with BORG_Q8_ACTIVATIONS=0 and 1. A path
 * this machine lacks is reported as not run (ctest: skipped). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "borg/cpu.h"
#include "borg/matmul.h"
#include "matmul_kernels.h"
#include "check.h"
#include "random_weights.h"

/* Allowed |y - reference| as a fraction of sum_k |w_k x_k|: f32 sums of up
 * to ~1000 products in 8 lanes stay well inside it. */
#define REL_TOL 1e-5

static int quantized(borg_dtype t) { return quant_dtype_block_elems(t) > 1; }

static int q8_path(borg_dtype t) { return quantized(t) && matmul_q8_activations(); }

/* x as the 8-bit path sees it: codes times their group's scale. */
static void act_roundtrip(const float *x, int64_t cols, float *out)
{
    const int64_t ng = cols / 32;
    int8_t *q = malloc((size_t)cols);
    float *d = malloc(sizeof(float) * (size_t)ng), *s = malloc(sizeof(float) * (size_t)ng);
    CHECK(q && d && s);
    if (q && d && s) {
        mq_quantize_portable(x, ng, q, d, s);
        for (int64_t k = 0; k < cols; k++)
            out[k] = d[k / 32] * (float)q[k];
    }
    free(q), free(d), free(s);
}

static float *random_vectors(int64_t n)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n && x; i++)
        x[i] = rw_float();
    return x;
}

static const char *row_at(const borg_mat *w, int64_t r) { return (const char *)w->data + (size_t)r * w->row_bytes; }

/* Columns to test a type at: one register step or less, one chunk, and
 * more than one chunk (matmul.c's KC is 1024), with an odd tail where the
 * type allows. */
static int test_cols(borg_dtype t, int64_t out[3])
{
    switch (quant_dtype_block_elems(t)) {
    case 1: out[0] = 5, out[1] = 576, out[2] = 1031; return 3;
    case 32: out[0] = 32, out[1] = 576, out[2] = 1248; return 3;
    default: out[0] = 256, out[1] = 1280; return 2;
    }
}

static void check_accuracy(borg_dtype t, int64_t rows, int64_t cols, int64_t nb, borg_pool *pool)
{
    borg_mat w = rw_matrix(t, rows, cols);
    float *x = random_vectors(nb * cols), *y = malloc(sizeof(float) * (size_t)(nb * rows));
    float *wrow = malloc(sizeof(float) * (size_t)cols), *xr = malloc(sizeof(float) * (size_t)(nb * cols));
    CHECK(w.data && x && y && wrow && xr);
    if (!w.data || !x || !y || !wrow || !xr)
        goto out;
    CHECK(matmul(&w, x, nb, y, pool) == BORG_OK);
    for (int64_t b = 0; b < nb; b++)
        if (q8_path(t))
            act_roundtrip(x + b * cols, cols, xr + b * cols);
        else
            memcpy(xr + b * cols, x + b * cols, sizeof(float) * (size_t)cols);
    double worst = 0, worst_act = 0;
    for (int64_t r = 0; r < rows; r++) {
        quant_dequantize_row(t, row_at(&w, r), wrow, cols);
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = x + b * cols, *xq = xr + b * cols;
            double dot = 0, mag = 0, exact = 0, bound = 0;
            for (int64_t k = 0; k < cols; k++) {
                dot += (double)wrow[k] * xq[k];
                mag += fabs((double)wrow[k] * xq[k]);
                exact += (double)wrow[k] * xb[k];
                /* rounding to the nearest code moves x by at most half a step */
                bound += fabs((double)wrow[k]) * (xq[k] == xb[k] ? 0 : fabs((double)xq[k] - xb[k]));
            }
            double err = fabs(y[b * rows + r] - dot) / (mag > 0 ? mag : 1);
            if (!(err <= worst))
                worst = err;
            /* against the f32 activations: within the quantization bound */
            double act = fabs(y[b * rows + r] - exact) - bound - REL_TOL * mag;
            if (!(act <= worst_act))
                worst_act = act;
        }
    }
    if (!(worst <= REL_TOL) || !(worst_act <= 0))
        fprintf(stderr, "%s %lldx%lld nb=%lld: relative error %.3g, past the quantization bound by %.3g\n",
                quant_dtype_name(t), (long long)rows, (long long)cols, (long long)nb, worst, worst_act);
    CHECK(worst <= REL_TOL);
    CHECK(worst_act <= 0);
out:
    free((void *)w.data), free(x), free(y), free(wrow), free(xr);
}

/* Each element's half step: what act_roundtrip may move it by. */
static void check_act_quantizer(void)
{
    const int64_t cols = 32 * 9;
    float *x = random_vectors(cols), *xr = malloc(sizeof(float) * cols);
    CHECK(x && xr);
    if (!x || !xr)
        goto out;
    for (int64_t k = 0; k < 32; k++) /* an all-zero group, and one exact maximum */
        x[k] = 0;
    x[40] = 3.0f;
    act_roundtrip(x, cols, xr);
    for (int64_t g = 0; g < cols / 32; g++) {
        float amax = 0;
        for (int k = 0; k < 32; k++)
            amax = fabsf(x[32 * g + k]) > amax ? fabsf(x[32 * g + k]) : amax;
        for (int k = 0; k < 32; k++)
            CHECK(fabsf(xr[32 * g + k] - x[32 * g + k]) <= amax / 254.0f * 1.0001f);
    }
    CHECK(xr[40] == 3.0f);
#ifdef BORG_HAVE_AVX2_KERNELS
    if (cpu_isa() >= BORG_ISA_AVX2) {
        const int64_t ng = cols / 32;
        int8_t q1[32 * 9], q2[32 * 9];
        float d1[9], d2[9], s1[9], s2[9];
        mq_quantize_portable(x, ng, q1, d1, s1);
        mq_quantize_avx2(x, ng, q2, d2, s2);
        CHECK(!memcmp(q1, q2, sizeof q1) && !memcmp(d1, d2, sizeof d1) && !memcmp(s1, s2, sizeof s1));
    }
#endif
out:
    free(x), free(xr);
}

/* The block layout of matmul_kernels.h, written out: block k starts at
 * element c0[k] and holds units[k] units; lane j of pass i holds the four
 * elements from c0 + lane_elem(...). Returns the number of blocks. */
static int64_t layout_blocks(const mq_shape *sh, int64_t *c0, int *units)
{
    int64_t n = 0, at = 0;
    for (; n < sh->nfull; n++, at += 8 * sh->unit) {
        c0[n] = at;
        units[n] = 8;
    }
    for (int b = 4; b; b >>= 1)
        if (sh->tail & b) {
            c0[n] = at;
            units[n++] = b;
            at += 32 * b;
        }
    return n;
}

/* Passes of a block of b units; lane j's first element in pass i: unit
 * j / L, group i L + j % L, L = 8 / b. */
static int layout_passes(const mq_shape *sh, int b) { return b == 8 ? sh->passes : b; }

static int64_t layout_elem(const mq_shape *sh, int b, int j, int i)
{
    const int L = 8 / b;
    return (j / L) * sh->unit + 4 * (i * L + j % L);
}

/* A packed row (codes in block order and lane scales, matmul_kernels.h)
 * against the definition of the layout, and the AVX2 packer against the
 * portable one, bit for bit; with a tail of 4 + 2 + 1 units after the full
 * blocks where the type allows one. */
static void check_pack(borg_dtype t)
{
    const int64_t cols = quant_dtype_block_elems(t) == 32 ? 1248 : 1280, ng = cols / 32;
    const mq_shape sh = mq_shape_of(t, cols);
    int64_t c0s[64];
    int units[64];
    const int64_t nblk = layout_blocks(&sh, c0s, units), lanes = 8 * nblk;
    CHECK(nblk == mq_nblk(&sh));
    borg_mat w = rw_matrix(t, 1, cols);
    int8_t *nq = malloc(cols), *q1 = malloc(cols), *q2 = malloc(cols);
    float *ndw = malloc(sizeof(float) * 8 * ng), *nm = malloc(sizeof(float) * ng);
    float *s1 = malloc(sizeof(float) * 4 * lanes), *s2 = s1 ? s1 + 2 * lanes : NULL;
    CHECK(w.data && nq && q1 && q2 && ndw && nm && s1);
    if (!w.data || !nq || !q1 || !q2 || !ndw || !nm || !s1)
        goto out;
    quant_decompose_row(t, w.data, ng, nq, ndw, nm);
    mq_pack_portable(t, w.data, cols, q1, s1, s1 + lanes);
    int64_t bad = 0;
    for (int64_t k = 0; k < nblk; k++) {
        const int64_t c0 = c0s[k];
        for (int i = 0; i < layout_passes(&sh, units[k]); i++)
            for (int j = 0; j < 8; j++) {
                const int64_t e = c0 + layout_elem(&sh, units[k], j, i);
                bad += memcmp(q1 + c0 + 32 * i + 4 * j, nq + e, 4) != 0;
                bad += s1[8 * k + j] != ndw[8 * (e / 32) + e % 32 / 4];
                bad += s1[lanes + 8 * k + j] != nm[e / 32] && !quant_decompose_signed(t);
            }
    }
    if (bad)
        fprintf(stderr, "%s: %lld misplaced lanes in the packed row\n", quant_dtype_name(t), (long long)bad);
    CHECK(bad == 0);
#ifdef BORG_HAVE_AVX2_KERNELS
    if (cpu_isa() >= BORG_ISA_AVX2) {
        mq_pack_avx2(t, w.data, cols, q2, s2, s2 + lanes);
        CHECK(!memcmp(q1, q2, cols));
        CHECK(!memcmp(s1, s2, sizeof(float) * 2 * lanes));
    }
#endif
out:
    free((void *)w.data), free(nq), free(q1), free(q2), free(ndw), free(nm), free(s1);
}

/* quant_decompose_row against quant_dequantize_row: dw * q + m is the dequantized
 * value within one rounding. */
static void check_decompose(borg_dtype t)
{
    const int64_t cols = 1024, ng = cols / 32;
    borg_mat w = rw_matrix(t, 1, cols);
    float *ref = malloc(sizeof(float) * cols), *dw = malloc(sizeof(float) * 8 * ng), *m = malloc(sizeof(float) * ng);
    int8_t *q = malloc(cols);
    CHECK(w.data && ref && dw && m && q);
    if (!w.data || !ref || !dw || !m || !q)
        goto out;
    quant_dequantize_row(t, w.data, ref, cols);
    quant_decompose_row(t, w.data, ng, q, dw, m);
    float scale = 0;
    for (int64_t k = 0; k < cols; k++)
        scale = fabsf(ref[k]) > scale ? fabsf(ref[k]) : scale;
    int64_t bad = 0;
    for (int64_t k = 0; k < cols; k++) {
        const float v = dw[8 * (k / 32) + (k % 32) / 4] * (float)q[k] + m[k / 32];
        bad += !(fabsf(v - ref[k]) <= 0x1p-22f * scale);
        if (quant_decompose_signed(t))
            bad += m[k / 32] != 0;
    }
    if (bad)
        fprintf(stderr, "%s: %lld of %lld decomposed values differ\n", quant_dtype_name(t), (long long)bad,
                (long long)cols);
    CHECK(bad == 0);
    check_pack(t);
out:
    free((void *)w.data), free(ref), free(dw), free(m), free(q);
}

/* y of one vector v computed alone and inside batches, with 1 to 3
 * threads: every result must have the same bits as alone on one thread. */
static void check_determinism(borg_dtype t, int64_t rows, int64_t cols, borg_pool **pools)
{
    static const int64_t batch[] = {1, 2, 3, 7, 17, 17, 64, 150};
    static const int64_t place[] = {0, 1, 2, 6, 5, 16, 33, 149};
    const int64_t max_nb = 150;
    borg_mat w = rw_matrix(t, rows, cols);
    float *x = random_vectors(max_nb * cols), *v = random_vectors(cols);
    float *y = malloc(sizeof(float) * (size_t)(max_nb * rows)), *alone = malloc(sizeof(float) * (size_t)rows);
    CHECK(w.data && x && v && y && alone);
    if (!w.data || !x || !v || !y || !alone)
        goto out;
    CHECK(matmul(&w, v, 1, alone, NULL) == BORG_OK);
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < sizeof batch / sizeof batch[0]; i++) {
            memcpy(x + place[i] * cols, v, sizeof(float) * (size_t)cols);
            CHECK(matmul(&w, x, batch[i], y, pools[p]) == BORG_OK);
            int same = !memcmp(y + place[i] * rows, alone, sizeof(float) * (size_t)rows);
            if (!same)
                fprintf(stderr, "%s %lldx%lld: batch %lld place %lld, %d thread(s) differs from alone\n",
                        quant_dtype_name(t), (long long)rows, (long long)cols, (long long)batch[i], (long long)place[i],
                        pool_threads(pools[p]));
            CHECK(same);
            /* the others of the batch are overwritten with fresh vectors so
             * each place sees different neighbours */
            for (int64_t k = 0; k < cols; k++)
                x[place[i] * cols + k] = rw_float();
        }
out:
    free((void *)w.data), free(x), free(v), free(y), free(alone);
}

#ifdef BORG_HAVE_AVX2_KERNELS
/* The AVX2 dequantizers against quant_dequantize_row: bit-exact where the value is
 * a product, within one rounding of d * q where it is d * q + m (an FMA). */
static void check_dequant_avx2(borg_dtype t)
{
    const int64_t cols = 1024;
    borg_mat w = rw_matrix(t, 1, cols);
    float *ref = malloc(sizeof(float) * cols), *got = malloc(sizeof(float) * cols);
    CHECK(w.data && ref && got);
    if (!w.data || !ref || !got)
        goto out;
    quant_dequantize_row(t, w.data, ref, cols);
    const int64_t half = cols / 2; /* from an offset too, as matmul's chunks do */
    mm_dequant_avx2(t, w.data, 0, half, got);
    mm_dequant_avx2(t, w.data, half, cols - half, got + half);
    const int fused = t == BORG_DT_Q4_1 || t == BORG_DT_Q5_1 || t == BORG_DT_Q4_K || t == BORG_DT_Q5_K;
    float scale = 0;
    for (int64_t k = 0; k < cols; k++)
        scale = fabsf(ref[k]) > scale ? fabsf(ref[k]) : scale;
    int64_t bad = 0;
    for (int64_t k = 0; k < cols; k++)
        if (fused ? !(fabsf(got[k] - ref[k]) <= 0x1p-23f * scale) : memcmp(&got[k], &ref[k], 4))
            bad++;
    if (bad)
        fprintf(stderr, "%s: %lld of %lld dequantized values differ\n", quant_dtype_name(t), (long long)bad,
                (long long)cols);
    CHECK(bad == 0);
out:
    free((void *)w.data), free(ref), free(got);
}
#endif

#ifdef BORG_HAVE_AVX2_KERNELS
/* A path above avx2 against the avx2 path: the same bits for every batch
 * size, since its integer sums are exact and its float steps the same. */
static void check_same_as_avx2(borg_dtype t, int64_t rows, int64_t cols, borg_pool *pool)
{
    static const int64_t nbs[] = {1, 2, 3, 4, 5, 8, 17, 64};
    const borg_isa isa = cpu_isa();
    const int64_t max_nb = 64;
    borg_mat w = rw_matrix(t, rows, cols);
    float *x = random_vectors(max_nb * cols);
    float *y1 = malloc(sizeof(float) * (size_t)(max_nb * rows)), *y2 = malloc(sizeof(float) * (size_t)(max_nb * rows));
    CHECK(w.data && x && y1 && y2);
    if (!w.data || !x || !y1 || !y2)
        goto out;
    for (size_t i = 0; i < sizeof nbs / sizeof nbs[0]; i++) {
        borg_err err;
        CHECK(matmul(&w, x, nbs[i], y1, pool) == BORG_OK);
        CHECK(cpu_set_isa(BORG_ISA_AVX2, &err) == BORG_OK);
        CHECK(matmul(&w, x, nbs[i], y2, pool) == BORG_OK);
        CHECK(cpu_set_isa(isa, &err) == BORG_OK);
        const int same = !memcmp(y1, y2, sizeof(float) * (size_t)(nbs[i] * rows));
        if (!same)
            fprintf(stderr, "%s %lldx%lld nb=%lld: path %s differs from avx2\n", quant_dtype_name(t), (long long)rows,
                    (long long)cols, (long long)nbs[i], cpu_isa_name(isa));
        CHECK(same);
    }
out:
    free((void *)w.data), free(x), free(y1), free(y2);
}
#endif

/* A matrix repacked at load (matmul_prepare, on pool's threads) gives the
 * bits of the same matrix packed per call, at every batch size. */
static void check_prepared(borg_dtype t, int64_t rows, int64_t cols, borg_pool *pool)
{
    static const int64_t nbs[] = {1, 2, 3, 5, 8, 17, 64};
    const int64_t max_nb = 64;
    borg_mat w = rw_matrix(t, rows, cols), wp = w;
    float *x = random_vectors(max_nb * cols);
    float *y1 = malloc(sizeof(float) * (size_t)(max_nb * rows)), *y2 = malloc(sizeof(float) * (size_t)(max_nb * rows));
    borg_err err;
    CHECK(w.data && x && y1 && y2);
    if (!w.data || !x || !y1 || !y2)
        goto out;
    CHECK(matmul_prepare(&wp, pool, &err) == BORG_OK);
    CHECK((wp.packed != NULL) == (cpu_isa() >= BORG_ISA_AVX2 && cols % 32 == 0));
    CHECK(matmul_prepared_bytes(&wp) >= (wp.packed ? (size_t)(rows * cols) : 0));
    /* what a plan counts for the matrix is what preparing it holds */
    CHECKF(matmul_copy_bytes(t, rows, cols) == matmul_prepared_bytes(&wp), "%s %lldx%lld: copy bytes %zu, held %zu",
           quant_dtype_name(t), (long long)rows, (long long)cols, matmul_copy_bytes(t, rows, cols),
           matmul_prepared_bytes(&wp));
    for (size_t i = 0; i < sizeof nbs / sizeof nbs[0]; i++) {
        CHECK(matmul(&w, x, nbs[i], y1, pool) == BORG_OK);
        CHECK(matmul(&wp, x, nbs[i], y2, pool) == BORG_OK);
        const int same = !memcmp(y1, y2, sizeof(float) * (size_t)(nbs[i] * rows));
        if (!same)
            fprintf(stderr, "%s %lldx%lld nb=%lld: repacked rows differ from packing per call\n", quant_dtype_name(t),
                    (long long)rows, (long long)cols, (long long)nbs[i]);
        CHECK(same);
    }
    matmul_release(&wp);
    CHECK(wp.packed == NULL);
out:
    free((void *)w.data), free(x), free(y1), free(y2);
}

/* Codes at their largest against activation codes of +-127: the sums the
 * kernels keep in 16 bits at their bound. The repacked rows' kernels
 * against those of the rows as stored (32-bit sums), bit for bit, and
 * both against the dequantized dot. */
static void check_extremes(borg_dtype t, int64_t cols, borg_pool *pool)
{
    static const int64_t nbs[] = {1, 2, 8};
    const int64_t rows = 16, max_nb = 8;
    borg_mat w = rw_matrix_filled(t, rows, cols, t == BORG_DT_Q8_0 ? 0x80 : 0xff), wp = w;
    float *x = malloc(sizeof(float) * (size_t)(max_nb * cols)), *xr = malloc(sizeof(float) * (size_t)(max_nb * cols));
    float *y1 = malloc(sizeof(float) * (size_t)(max_nb * rows)), *y2 = malloc(sizeof(float) * (size_t)(max_nb * rows));
    float *wrow = malloc(sizeof(float) * (size_t)cols);
    borg_err err;
    CHECK(w.data && x && xr && y1 && y2 && wrow);
    if (!w.data || !x || !xr || !y1 || !y2 || !wrow)
        goto out;
    for (int64_t i = 0; i < max_nb * cols; i++)
        x[i] = (i / cols) % 2 ? -1.0f : 1.0f;
    for (int64_t b = 0; b < max_nb; b++)
        act_roundtrip(x + b * cols, cols, xr + b * cols);
    CHECK(matmul_prepare(&wp, pool, &err) == BORG_OK);
    for (size_t i = 0; i < sizeof nbs / sizeof nbs[0]; i++) {
        const int64_t nb = nbs[i];
        CHECK(matmul(&w, x, nb, y1, pool) == BORG_OK);
        CHECK(matmul(&wp, x, nb, y2, pool) == BORG_OK);
        CHECKF(!memcmp(y1, y2, sizeof(float) * (size_t)(nb * rows)), "%s %lldx%lld nb=%lld: repacked rows differ",
               quant_dtype_name(t), (long long)rows, (long long)cols, (long long)nb);
        double worst = 0;
        for (int64_t r = 0; r < rows; r++) {
            quant_dequantize_row(t, row_at(&w, r), wrow, cols);
            for (int64_t b = 0; b < nb; b++) {
                double dot = 0, mag = 0;
                for (int64_t k = 0; k < cols; k++) {
                    dot += (double)wrow[k] * xr[b * cols + k];
                    mag += fabs((double)wrow[k] * xr[b * cols + k]);
                }
                const double err1 = fabs(y2[b * rows + r] - dot) / (mag > 0 ? mag : 1);
                worst = err1 > worst || err1 != err1 ? err1 : worst;
            }
        }
        CHECKF(worst <= REL_TOL, "%s %lldx%lld nb=%lld: relative error %.3g at the largest codes", quant_dtype_name(t),
               (long long)rows, (long long)cols, (long long)nb, worst);
    }
    matmul_release(&wp);
out:
    free((void *)w.data), free(x), free(xr), free(y1), free(y2), free(wrow);
}

#ifdef BORG_HAVE_AVX2_KERNELS
/* Eight-row copies past the last-level cache: the batch of one then
 * prefetches as it reads (matmul_q8.c's rows8_held), with the bits of
 * the rows as stored. */
static void check_streaming(borg_pool *pool)
{
    const borg_dtype t = BORG_DT_Q4_K;
    const int64_t cols = 2048;
    const size_t llc = cpu_llc_bytes();
    if (llc > (size_t)64 << 20) {
        printf("streaming eight-row copies: not run (a %zu MiB last-level cache)\n", llc >> 20);
        return;
    }
    const int64_t rows = ((int64_t)(llc / quant_dtype_row_bytes(t, cols)) + 64) / 8 * 8;
    borg_mat w = rw_matrix(t, rows, cols), wp = w;
    float *x = random_vectors(cols), *y1 = malloc(sizeof(float) * (size_t)rows),
          *y2 = malloc(sizeof(float) * (size_t)rows);
    borg_err err;
    CHECK(w.data && x && y1 && y2);
    if (!w.data || !x || !y1 || !y2)
        goto out;
    CHECK(matmul_prepare(&wp, pool, &err) == BORG_OK);
    CHECK(matmul_prepared_bytes(&wp) > llc);
    CHECK(matmul(&w, x, 1, y1, pool) == BORG_OK);
    CHECK(matmul(&wp, x, 1, y2, pool) == BORG_OK);
    CHECKF(!memcmp(y1, y2, sizeof(float) * (size_t)rows), "%s %lldx%lld: streamed eight-row copy differs",
           quant_dtype_name(t), (long long)rows, (long long)cols);
    matmul_release(&wp);
out:
    free((void *)w.data), free(x), free(y1), free(y2);
}

/* mq_interleave_avx2 against the block layout of matmul_kernels.h, byte
 * by byte: full blocks of 32- and 16-element units, tails of 1 to 7
 * units, both spreads. */
static void check_interleave(void)
{
    static const struct {
        borg_dtype t;
        int64_t cols;
    } cases[] = {{BORG_DT_Q4_1, 576}, {BORG_DT_Q4_1, 32}, {BORG_DT_Q4_1, 480},
                 {BORG_DT_Q4_1, 384}, {BORG_DT_Q4_1, 96}, {BORG_DT_Q6_K, 512}};
    int8_t src[576], dst[2 * 576];
    for (int i = 0; i < 576; i++)
        src[i] = (int8_t)(i * 37 + 11);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int spread = 1; spread <= 2; spread++) {
            const mq_shape sh = mq_shape_of(cases[c].t, cases[c].cols);
            memset(dst, 0, sizeof dst);
            mq_interleave_avx2(&sh, src, dst, spread);
            int64_t c0s[32];
            int units[32], bad = 0;
            const int64_t nblk = layout_blocks(&sh, c0s, units);
            for (int64_t k = 0; k < nblk; k++)
                for (int i = 0; i < layout_passes(&sh, units[k]); i++)
                    for (int j = 0; j < 8; j++)
                        for (int e = 0; e < 4; e++) {
                            const int64_t from = c0s[k] + layout_elem(&sh, units[k], j, i) + e;
                            bad += dst[spread * (c0s[k] + 32 * i) + 4 * j + e] != src[from];
                        }
            CHECKF(!bad, "mq_interleave_avx2 (%s, %lld columns, spread %d): %d bytes misplaced",
                   quant_dtype_name(cases[c].t), (long long)cases[c].cols, spread, bad);
        }
}
#endif

/* matmul_n gives each matrix the bits of its own matmul: three of type t
 * (prepared as at load, of 16, 37 and 8 rows), then the same with a fourth
 * of another type, which x cannot be shared with. */
static void check_matmul_n(borg_dtype t, int64_t cols, borg_pool *pool)
{
    static const int64_t nbs[] = {1, 5, 17};
    static const int64_t rows[] = {16, 37, 8, 9};
    const borg_dtype other = t == BORG_DT_F32 ? BORG_DT_F16 : BORG_DT_F32;
    borg_mat w[4];
    const borg_mat *ws[4];
    float *y1[4], *y2[4];
    float *x = random_vectors(17 * cols);
    borg_err err;
    CHECK(x != NULL);
    for (int i = 0; i < 4; i++) {
        w[i] = rw_matrix(i < 3 ? t : other, rows[i], cols);
        CHECK(w[i].data && matmul_prepare(&w[i], pool, &err) == BORG_OK);
        ws[i] = &w[i];
        y1[i] = malloc(sizeof(float) * (size_t)(17 * rows[i]));
        y2[i] = malloc(sizeof(float) * (size_t)(17 * rows[i]));
        CHECK(y1[i] && y2[i]);
    }
    for (int n = 3; n <= 4; n++)
        for (size_t k = 0; k < sizeof nbs / sizeof *nbs; k++) {
            CHECK(matmul_n(ws, n, x, nbs[k], y2, pool) == BORG_OK);
            for (int i = 0; i < n; i++) {
                CHECK(matmul(ws[i], x, nbs[k], y1[i], pool) == BORG_OK);
                CHECKF(!memcmp(y1[i], y2[i], sizeof(float) * (size_t)(nbs[k] * rows[i])),
                       "matmul_n (%s, %d matrices, nb %lld): matrix %d differs from its own matmul",
                       quant_dtype_name(t), n, (long long)nbs[k], i);
            }
        }
    for (int i = 0; i < 4; i++) {
        matmul_release(&w[i]);
        free((void *)w[i].data), free(y1[i]), free(y2[i]);
    }
    free(x);
}

static void check_vec_dot(void)
{
    for (int64_t n = 0; n < 100; n += 7) {
        float *a = random_vectors(n + 1), *b = random_vectors(n + 1);
        double dot = 0, mag = 0;
        for (int64_t k = 0; k < n; k++) {
            dot += (double)a[k] * b[k];
            mag += fabs((double)a[k] * b[k]);
        }
        CHECK(fabs(vec_dot_f32(a, b, n) - dot) <= REL_TOL * mag);
        free(a), free(b);
    }
}

int main(void)
{
    borg_err err;
    if (cpu_isa_check(&err)) {
        printf("matmul path %s: not run: %s\n", getenv("BORG_ISA"), err.msg);
        return CHECK_SKIPPED;
    }
    printf("matmul path: %s, %s activations\n", matmul_isa(), matmul_q8_activations() ? "8-bit" : "f32");
    borg_pool *pools[3] = {NULL, NULL, NULL};
    for (int p = 0; p < 3; p++)
        if (pool_create(p + 1, &pools[p], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    static const int64_t rows[] = {1, 7, 37};
    static const int64_t nbs[] = {1, 2, 3, 7, 17, 64};
    for (int ti = 0; ti < RW_N_TYPES; ti++) {
        borg_dtype t = rw_types[ti];
        int64_t cols[3];
        int n_cols = test_cols(t, cols);
        for (int c = 0; c < n_cols; c++) {
            for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
                for (size_t n = 0; n < sizeof nbs / sizeof nbs[0]; n++)
                    check_accuracy(t, rows[r], cols[c], nbs[n], pools[n % 3]);
            check_determinism(t, 37, cols[c], pools);
#ifdef BORG_HAVE_AVX2_KERNELS
            if (cpu_isa() > BORG_ISA_AVX2)
                check_same_as_avx2(t, 37, cols[c], pools[c % 3]);
#endif
            if (q8_path(t)) {
                check_prepared(t, 37, cols[c], pools[(c + 1) % 3]);
                check_extremes(t, cols[c], pools[c % 3]);
            }
            check_matmul_n(t, cols[c], pools[c % 3]);
        }
        if (quantized(t))
            check_decompose(t);
#ifdef BORG_HAVE_AVX2_KERNELS
        if (cpu_isa() >= BORG_ISA_AVX2)
            check_dequant_avx2(t);
#endif
    }
    check_act_quantizer();
    check_vec_dot();
#ifdef BORG_HAVE_AVX2_KERNELS
    if (cpu_isa() >= BORG_ISA_AVX2) {
        check_interleave();
        if (q8_path(BORG_DT_Q4_K))
            check_streaming(pools[1]);
    } else
        printf("interleave and streaming, path avx2: not run (the CPU lacks AVX2, or BORG_ISA chose a lower path)\n");
#endif
    for (int p = 0; p < 3; p++)
        pool_destroy(pools[p]);
    return check_report();
}
