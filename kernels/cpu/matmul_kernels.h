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
#include <string.h>

#include "borg/cpu.h"
#include "borg/matmul.h"
#include "borg/quant.h"

/* The lane sum of the contract, in portable C. */
static inline float mm_hsum8(const float *a)
{
    return ((a[0] + a[2]) + (a[1] + a[3])) + ((a[4] + a[6]) + (a[5] + a[7]));
}

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

/* Quantized weights meet 8-bit activations (matmul_q8.c). A vector is
 * quantized per group of 32 values: d = max|x| / 127, q = x * (127 / max|x|)
 * rounded to nearest even, s = d * sum(q). Weight rows are decomposed
 * (quant_decompose_row in quant.h) into codes, scales and offsets.
 *
 * Both sides are then cut into units that share one weight scale: 32
 * elements, or 16 for Q6_K. Eight consecutive units make a block, stored
 * interleaved: pass i of a block is 32 bytes whose lane j (bytes 4j..4j+3)
 * holds elements 4i..4i+3 of unit j, so that lane j sums one unit's
 * integer dot over the block's passes (4 passes of 16-element units, 8 of
 * 32) without ever mixing scales. Units past the last multiple of 8 (types
 * with 32-element units only) make tail blocks of 4, 2 and 1 units, largest
 * first, as many as the tail holds: a block of b units gives each unit
 * L = 8 / b lanes and takes b passes, pass i holding 4L elements of each
 * unit in turn, so that lane j sums elements 4(iL + j % L) .. + 3 of unit
 * j / L over its passes (a full block is b = 8, L = 1). A tail then costs
 * one float step per block, not one per unit. Each block carries 8 lane
 * scales and offsets (weights: dw, m) and 8 lane scales and sums (x: d,
 * s; a unit's sum sits in its first lane, its other lanes' are zero).
 *
 * The contract, for every (row, vector) pair: 8 lanes start from zero; for
 * each block in order, lane j takes acc_j += m_j * s_j for types with an
 * offset, then acc_j += isum_j * (dw_j * d_j) (each one FMA on AVX2),
 * isum_j being the exact integer sum of the lane over the block's passes.
 * The result is the lane sum as in the f32 contract. Integer sums are exact
 * whatever order they take, so only these float steps are fixed. */
enum {
    MQ_MR = 2, /* weight rows per tile */
    MQ_NR = 4  /* vectors per tile */
};

/* How a row of one type is cut: nfull blocks of 8 units, then the tail's
 * units in blocks of 4, 2, 1; passes per full block. */
typedef struct {
    int64_t nfull;
    int tail;   /* units past the full blocks, 0..7 */
    int unit;   /* elements per unit: 32, or 16 for Q6_K */
    int passes; /* passes of 32 bytes per full block: unit / 4 */
} mq_shape;

mq_shape mq_shape_of(borg_dtype t, int64_t cols);

static inline int64_t mq_nblk(const mq_shape *sh) { return sh->nfull + __builtin_popcount((unsigned)sh->tail); }

/* Units of block k: 8, or a tail block's 4, 2 or 1. */
static inline int mq_block_units(const mq_shape *sh, int64_t k)
{
    if (k < sh->nfull)
        return 8;
    int64_t i = k - sh->nfull;
    for (int b = 4; b; b >>= 1)
        if ((sh->tail & b) && i-- == 0)
            return b;
    return 0;
}

/* Passes of 32 bytes in block k (a tail's units are 32 elements). */
static inline int mq_block_passes(const mq_shape *sh, int64_t k)
{
    return k < sh->nfull ? sh->passes : mq_block_units(sh, k);
}

/* Where block k's codes start in a packed row or vector: also where its
 * elements start in natural order. */
static inline int64_t mq_block_start(const mq_shape *sh, int64_t k)
{
    if (k < sh->nfull)
        return 32 * sh->passes * k;
    const int b = mq_block_units(sh, k);
    return 32 * (sh->passes * sh->nfull + (sh->tail & ~(2 * b - 1)));
}

/* The first of the four elements that lane j of block k holds in pass i,
 * counted from the block's start in natural order. */
static inline int mq_lane_elem(const mq_shape *sh, int64_t k, int j, int i)
{
    const int L = 8 / mq_block_units(sh, k);
    return (j / L) * sh->unit + 4 * (i * L + j % L);
}

/* The unit of the row (counted from 0) whose sum lane j of tail block k
 * takes: tail units are 32 elements, L = 8 / units lanes each. */
static inline int64_t mq_lane_unit(const mq_shape *sh, int64_t k, int j)
{
    return mq_block_start(sh, k) / 32 + j / (8 / mq_block_units(sh, k));
}

/* Block k of natural-order codes src into block order, pass i at spread *
 * (the block's start + 32 i) of dst. */
static inline void mq_interleave_block(const mq_shape *sh, int64_t k, const int8_t *src, int8_t *dst, int spread)
{
    const int64_t c0 = mq_block_start(sh, k);
    for (int i = 0; i < mq_block_passes(sh, k); i++)
        for (int j = 0; j < 8; j++)
            memcpy(dst + spread * (c0 + 32 * i) + 4 * j, src + c0 + mq_lane_elem(sh, k, j, i), 4);
}

typedef struct {
    borg_dtype type;
    mq_shape sh;
    const int8_t *q[MQ_MR]; /* codes of each row in block order (rows past nr repeat one) */
    const float *dw[MQ_MR]; /* 8 lane scales per block */
    const float *m[MQ_MR];  /* 8 lane offsets per block */
    const int8_t *xq;       /* first vector's codes in block order; the next one cols later */
    const float *xd, *xs;   /* 8 lane scales and sums per block, vector after vector */
    int64_t cols;
    int nr;
    float *y;
    int64_t ys; /* floats between vectors of y */
} mq_tile;

/* matmul() for quantized weight types, on the kernels of path isa. */
borg_status matmul_q8(const borg_mat *w, const float *x, int64_t nb, float *y, borg_pool *pool, borg_isa isa);
/* 1 when n matrices of a quantized type meet one quantization of a batch
 * of nb vectors: one type and width, and the same choice of kernels (an
 * eight-row copy or none), which is what x's layout follows from. */
int matmul_q8_shares_x(const borg_mat *const *ws, int n, int64_t nb);
/* matmul_q8 for n matrices that matmul_q8_shares_x, against one x,
 * quantized once. */
borg_status matmul_q8_n(const borg_mat *const *ws, int n, const float *x, int64_t nb, float *const *ys, borg_pool *pool,
                        borg_isa isa);
/* Group g of x: codes at q + 32g, scale d[g], sum s[g]. */
void mq_quantize_portable(const float *x, int64_t ng, int8_t *q, float *d, float *s);
void mq_tile_portable(const mq_tile *t, int nv);
/* A weight row as tiles read it: codes in block order, then per block 8
 * lane scales (dw) and 8 lane offsets (m), from quant_decompose_row. */
void mq_pack_portable(borg_dtype t, const void *row, int64_t cols, int8_t *q, float *dw, float *m);

/* Rows for a batch of one, eight at a time (matmul_prepare; every type
 * of the 8-bit path): a vector register's 32-bit lane r holds four codes of row r, so
 * one dot instruction serves eight rows, each lane stays one (row, unit)
 * pair, and the contract's lane j becomes register j of eight rows,
 * summed vertically in the contract's order at the end: no horizontal
 * step per block. A unit's codes are 128 bytes, 4 chunks of 32: byte
 * 4r + e of chunk i holds element 4i + e of row r (low nibble) and
 * element 16 + 4i + e (high nibble). Group g (rows 8g..8g+7) is
 *   Q4_0, Q4_1, Q5_0, Q5_1: unit after unit, each the rows' f16 d[8]
 *               (Q4_1, Q5_1: then m[8]) and the codes, for Q5 then 32 bytes
 *               of fifth bits (bit i of byte 4r + e: element 4i + e's,
 *               bit 4 + i: element 16 + 4i + e's): the size of the rows;
 *   Q4_K, Q5_K: super-block after super-block, MQ_R8_Q4K or MQ_R8_Q5K
 *               bytes each: the rows' f16 d[8], dmin[8]; unit j's 6-bit
 *               scale of row r at 32 + 8j + r and its min at 96 + 8j + r;
 *               unit j's codes at 160 + 128j (Q5_K: at 160 + 160j, each
 *               followed by its plane of fifth bits, as Q5_0's); 16 bytes
 *               per super-block of 8 rows more than the rows;
 *   Q6_K:       super-block after super-block, MQ_R8_Q6K bytes each: the
 *               rows' f16 d[8]; unit u's (16 elements) int8 scale of row r
 *               at 16 + 8u + r; unit u's codes at 144 + 96u (one_r8_q6k
 *               has their layout): the size of the rows;
 *   Q8_0:       unit after unit, MQ_R8_Q8_0 bytes each: the rows' f16 d[8],
 *               then 8 chunks of 32 codes (one_r8_q8_0): the size of the
 *               rows. */
enum {
    MQ_R8 = 8,
    MQ_R8_Q4_0 = 16 + 128,
    MQ_R8_Q4_1 = 32 + 128,
    MQ_R8_Q5_0 = 16 + 128 + 32,
    MQ_R8_Q5_1 = 32 + 128 + 32,
    MQ_R8_Q4K = 160 + 8 * 128,
    MQ_R8_Q5K = 160 + 8 * 160,
    MQ_R8_Q6K = 144 + 16 * 96,
    MQ_R8_Q8_0 = 16 + 8 * 32
};

/* Bytes of one unit of eight rows, for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0. */
static inline int mq_r8_unit_bytes(borg_dtype t)
{
    return t == BORG_DT_Q4_0   ? MQ_R8_Q4_0
           : t == BORG_DT_Q4_1 ? MQ_R8_Q4_1
           : t == BORG_DT_Q5_0 ? MQ_R8_Q5_0
           : t == BORG_DT_Q5_1 ? MQ_R8_Q5_1
                               : MQ_R8_Q8_0;
}

#if defined(__x86_64__) || defined(__i386__)
#define BORG_HAVE_AVX2_KERNELS 1
void mq_quantize_avx2(const float *x, int64_t ng, int8_t *q, float *d, float *s);
/* Natural-order codes into block order, pass i of block k at spread * (its
 * start + 32 i): spread 2 leaves room for a pair's other vector (mq_ptile). */
void mq_interleave_avx2(const mq_shape *sh, const int8_t *src, int8_t *dst, int spread);
/* A batch of one vector against quantized rows, decoding codes in
 * registers instead of a panel (same per-pair steps, same bits). */
typedef struct {
    const borg_mat *w;
    const int8_t *xq;     /* codes in natural order */
    const float *xd, *xs; /* lane scales and sums per block, as in mq_tile */
    const int32_t *xc;    /* signed types on avx512, and Q6_K's eight-row kernel: -bias (32 for Q6_K, else 128)
                             times the lane code sums */
    float *y;
    int stream; /* the eight-row copy is read from memory, not cache: prefetch ahead */
} mq_one;
void mq_one_avx2(const mq_one *o, int64_t r0, int64_t r1);
/* mq_one_avx2 on the eight-row layout (mq_r8 below): groups [g0, g1) of
 * rows 8 g .. 8 g + 7, the same bits. */
void mq_one_r8_avx2(const mq_one *o, int64_t g0, int64_t g1);
void mq_one_r8_avx512(const mq_one *o, int64_t g0, int64_t g1);
/* mq_one_avx2's bits with VNNI dot products; signed types need o->xc. */
void mq_one_avx512(const mq_one *o, int64_t r0, int64_t r1);
/* mq_pack_portable, bit for bit. */
void mq_pack_avx2(borg_dtype t, const void *row, int64_t cols, int8_t *q, float *dw, float *m);
void mq_tile_avx2(const mq_tile *t, int nv);
/* The AVX-512 tile: MP_MR rows against MP_NP pairs of vectors. A pair's
 * codes are its two vectors' block-order codes interleaved 32 bytes at a
 * time (pass i of a block: the first vector's 32 bytes, then the
 * second's), so one 512-bit register holds a pass of both and a weight
 * pass broadcast to both halves meets them in one instruction; its lane
 * scales and sums likewise are 8 of the first vector, 8 of the second, per
 * block. Signed types (Q6_K, Q8_0) also carry xc: per block and lane,
 * -128 times the lane's sum of x codes over the block's passes. An odd
 * batch's last pair has a zero second vector. Same per-pair steps as
 * mq_tile, so the same bits as mq_tile_avx2. */
enum {
    MP_MR = 4, /* weight rows per tile */
    MP_NP = 2  /* vector pairs per tile */
};

typedef struct {
    borg_dtype type;
    mq_shape sh;
    const int8_t *q[MP_MR];
    const float *dw[MP_MR];
    const float *m[MP_MR];
    const int8_t *xq;     /* first pair's codes; the next pair 2 * cols later */
    const float *xd, *xs; /* first pair's 16 lane scales and sums per block; the next 16 * nblk later */
    const int32_t *xc;    /* likewise 16 per block, signed types only */
    int64_t cols;
    int nr;
    float *y;
    int64_t ys;
} mq_ptile;

/* nv <= 2 * MP_NP vectors. */
void mq_ptile_avx512(const mq_ptile *t, int nv);
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
