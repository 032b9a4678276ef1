/* Tensor element types as GGUF numbers them, and their block layouts.
 *
 * Quantized types store elements in fixed-size blocks; a row of a matrix is
 * always a whole number of blocks. Dequantization follows ggml's layouts
 * exactly so results match llama.cpp and the `gguf` Python package. */
#ifndef BORG_QUANT_H
#define BORG_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    BORG_DT_F32 = 0,
    BORG_DT_F16 = 1,
    BORG_DT_Q4_0 = 2,
    BORG_DT_Q4_1 = 3,
    BORG_DT_Q5_0 = 6,
    BORG_DT_Q5_1 = 7,
    BORG_DT_Q8_0 = 8,
    BORG_DT_Q4_K = 12,
    BORG_DT_Q5_K = 13,
    BORG_DT_Q6_K = 14,
    BORG_DT_BF16 = 30
} borg_dtype;

/* 1 if t is one of the types above (the ones this program can compute with). */
int quant_dtype_supported(uint32_t t);

/* "Q4_K" etc.; "unknown" for anything unsupported. */
const char *quant_dtype_name(uint32_t t);

/* Elements per block (1 for F32/F16/BF16, 32 for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0,
 * 256 for K types). */
int64_t quant_dtype_block_elems(borg_dtype t);

/* Bytes per block. */
size_t quant_dtype_block_bytes(borg_dtype t);

/* Bytes for n elements; n must be a multiple of quant_dtype_block_elems(t). */
size_t quant_dtype_row_bytes(borg_dtype t, int64_t n);

/* Expands n elements (a multiple of the block size) from src into dst. */
void quant_dequantize_row(borg_dtype t, const void *src, float *dst, int64_t n);

/* A quantized row (any type but F32/F16/BF16) as integer codes, for the
 * integer matrix kernels. For each group g of 32 elements, element k of the
 * group is worth dw[8g + k/4] * q[32g + k] + m[g]: the eight dw of a group
 * are one scale, or for Q6_K the scale of its first 16 elements four times
 * then the second's. Codes are signed (Q8_0, Q6_K, with m = 0) or unsigned
 * with an offset m (Q4_0: m = -8 d; Q5_0: m = -16 d; Q4_1, Q5_1, Q4_K,
 * Q5_K: their minimum).
 * ng = n / 32 groups. */
void quant_decompose_row(borg_dtype t, const void *src, int64_t ng, int8_t *q, float *dw, float *m);

/* Pair j (0..7) of the 8 six-bit (scale, min) pairs that Q4_K and Q5_K
 * pack into 12 bytes at q, as ggml's get_scale_min_k4 reads them. */
void quant_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m);

/* 1 for the types whose quant_decompose_row codes are signed (m is 0). */
int quant_decompose_signed(borg_dtype t);

/* IEEE half and bfloat16 conversions; to half rounds to nearest even. */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);

/* y[i] = quant_f32_to_f16(x[i]) for i < n, by F16C on the avx2 path and
 * above (borg/cpu.h): the same bits. */
void quant_f32_to_f16_row(const float *x, uint16_t *y, int64_t n);

#endif
