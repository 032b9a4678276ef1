/* Internal to matmul.c and its AVX2 kernels (matmul_avx2.c); exposed so the
 * kernels can be tested one by one against their references.
 *
 * The contract that keeps matmul() deterministic: for every (row, vector)
 * pair, one 8-lane accumulator takes FMAs (AVX2; mul then add on the
 * portable path) of weight times x in column order, 8 columns at a time,
 * starting from zero; then the lanes are summed as
 * ((a0 + a2) + (a1 + a3)) + ((a4 + a6) + (a5 + a7)), then any columns past
 * the last multiple of 8 are added one by one. Every kernel below keeps it,
 * so which kernel, tile or thread computes a pair never changes its value. */
#ifndef BORG_MATMUL_KERNELS_H
#define BORG_MATMUL_KERNELS_H

#include <stdint.h>

#include "borg/matmul.h"
#include "borg/quant.h"

enum {
    MM_MR = 4, /* rows of a register tile */
    MM_NR = 3  /* vectors of a register tile */
};

/* A register tile: MM_MR rows of f32 weights against nv <= MM_NR vectors
 * over n columns. Row pointers past the nr rows wanted repeat a valid row
 * (computed, not stored), so every tile has the same shape. acc parks the
 * MM_MR * MM_NR * 8 partial sums between column chunks. */
typedef struct {
    const float *w[MM_MR];
    const float *x;
    int64_t xs; /* floats between vectors of x */
    int64_t n;
    float *acc;
    int first, last; /* first chunk: start from zero; last: reduce into y */
    int nr;
    float *y;
    int64_t ys; /* floats between vectors of y */
} mm_tile;

typedef void (*mm_tile_fn)(const mm_tile *t, int nv);
/* Elements [k0, k0 + n) of a weight row into f32. k0 and n are multiples
 * of the block size, except that n may run to the end of an F16/BF16 row. */
typedef void (*mm_dequant_fn)(borg_dtype t, const void *row, int64_t k0, int64_t n, float *dst);

void mm_tile_portable(const mm_tile *t, int nv);
void mm_dequant_portable(borg_dtype t, const void *row, int64_t k0, int64_t n, float *dst);
float mm_dot_portable(const float *a, const float *b, int64_t n);

#if defined(__x86_64__) || defined(__i386__)
#define BORG_HAVE_AVX2_KERNELS 1
/* These need AVX2, FMA and F16C. */
void mm_tile_avx2(const mm_tile *t, int nv);
void mm_dequant_avx2(borg_dtype t, const void *row, int64_t k0, int64_t n, float *dst);
float mm_dot_avx2(const float *a, const float *b, int64_t n);

/* Rows [r0, r1) of w against nb <= MM_SMALL_NB vectors, dequantizing in
 * registers straight from the weights (no f32 tile): for a batch too small
 * to amortize writing one. cols must be a multiple of 32. */
enum { MM_SMALL_NB = 3 };
void mm_small_batch_avx2(const borg_mat *w, const float *x, int64_t nb, float *y, int64_t r0, int64_t r1);
#endif

#endif
