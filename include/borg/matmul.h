/* Matrix times a batch of vectors, on weights stored in any supported
 * GGUF type. The weights are never expanded in memory as a whole: rows are
 * dequantized a small tile at a time and reused across the batch, so a
 * micro-batch of many sequences costs one pass over the weights. */
#ifndef BORG_MATMUL_H
#define BORG_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "borg/quant.h"
#include "borg/threadpool.h"

typedef struct {
    const void *data; /* rows * row_bytes bytes, row-major */
    borg_dtype type;
    int64_t rows; /* output features */
    int64_t cols; /* input features: the contiguous GGUF dimension */
    size_t row_bytes;
    void *packed; /* NULL, or the rows as the integer tiles read them (matmul_prepare) */
    void *rows8;  /* NULL, or the rows eight at a time for a batch of one (matmul_prepare) */
} borg_mat;

/* y[b][r] = sum_k W[r][k] * x[b][k] for b < nb, r < rows, in f32; where W
 * has a quantized type, x meets it as 8-bit codes per 32 values, as in
 * llama.cpp (kernels/cpu/matmul_kernels.h has the arithmetic), unless
 * 8-bit activations are off.
 * x is nb x cols, y is nb x rows, both row-major. Fails only with
 * BORG_ENOMEM (per-thread scratch). */
borg_status matmul(const borg_mat *w, const float *x, int64_t nb, float *y, borg_pool *pool);

/* ys[i] = matmul(ws[i], x) for n matrices of x's width (a layer's q, k and
 * v; its gate and up): the same bits as n calls, with x quantized once for
 * all those of one type on the 8-bit path. */
borg_status matmul_n(const borg_mat *const *ws, int n, const float *x, int64_t nb, float *const *ys, borg_pool *pool);

/* Repacks a quantized matrix once, at load, into the layout the integer
 * tiles of the 8-bit activation path read (codes in block order, lane
 * scales and offsets: matmul_kernels.h), so that batches of two or more
 * vectors stop decoding every row on every call. The repacked rows are
 * exact (same bits as packing per call) and cost about 2x the weights'
 * bytes for 4-bit types. Rows are also copied eight rows interleaved
 * (about 1x more) for a batch of one, which otherwise streams the
 * original rows.
 * Does nothing for other types, on the portable path, with f32
 * activations, or where BORG_REPACK is "0". The copies are made on pool's
 * threads (NULL: this one). Fails only with BORG_ENOMEM. */
borg_status matmul_prepare(borg_mat *w, borg_pool *pool, borg_err *err);
/* Frees what matmul_prepare made; w->packed becomes NULL. */
void matmul_release(borg_mat *w);
/* Bytes matmul_prepare holds for w. */
size_t matmul_prepared_bytes(const borg_mat *w);
/* Bytes matmul_prepare would hold for a rows x cols matrix of type t on
 * this process's kernel path, without making them: what a plan counts. */
size_t matmul_copy_bytes(borg_dtype t, int64_t rows, int64_t cols);

/* 1 when quantized weights meet 8-bit activations: the default, off where
 * BORG_Q8_ACTIVATIONS is "0" or matmul_set_q8_activations(0) said so. The
 * integer kernels are faster at every batch size (bench/RESULTS.md); f32
 * activations stay as the closer-to-exact choice. */
int matmul_q8_activations(void);
/* Overrides the environment for this process; call before any matmul. */
void matmul_set_q8_activations(int on);
/* What this process was asked for: the last matmul_set_q8_activations, else
 * BORG_Q8_ACTIVATIONS where set; -1 when neither (so that a stage can tell
 * rank 0 it was started asking for something else than the run spec). */
int matmul_q8_asked(void);

/* Dot product of two float vectors (AVX2/FMA when the CPU has it). */
float vec_dot_f32(const float *a, const float *b, int64_t n);

/* 1 when the AVX2/FMA kernels are in use: on the avx2 path and every path
 * above it (borg/cpu.h). Other kernel families (attention) follow it. */
int matmul_uses_avx2(void);

/* The kernel path in use, by name (cpu_isa_name of cpu_isa()). */
const char *matmul_isa(void);

#endif
