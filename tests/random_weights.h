/* Random weight matrices of any supported type, for the matmul test and
 * bench: random quant bytes with small positive f16 scales (so the values
 * look like a trained layer's), random floats for F32/F16/BF16. */
#ifndef BORG_TESTS_RANDOM_WEIGHTS_H
#define BORG_TESTS_RANDOM_WEIGHTS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "borg/matmul.h"
#include "borg/quant.h"

static uint64_t rw_state = 0x9e3779b97f4a7c15ull;

static uint32_t rw_next(void)
{
    rw_state ^= rw_state << 13;
    rw_state ^= rw_state >> 7;
    rw_state ^= rw_state << 17;
    return (uint32_t)(rw_state >> 16);
}

/* Uniform in [-1, 1). */
static float rw_float(void) { return (float)(rw_next() >> 8) * 0x1p-23f - 1.0f; }

static void rw_put_f16(uint8_t *p, float f)
{
    uint16_t h = quant_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* One block of type t at p: its bytes random, or for fill >= 0 all that
 * byte, then its scales set. */
static void rw_block(borg_dtype t, uint8_t *p, int fill)
{
    size_t bytes = quant_dtype_block_bytes(t);
    for (size_t i = 0; i < bytes; i++)
        p[i] = fill >= 0 ? (uint8_t)fill : (uint8_t)rw_next();
    float scale = 0.002f + 0.02f * (rw_float() + 1.0f);
    switch (t) {
    case BORG_DT_F32: {
        float f = rw_float();
        memcpy(p, &f, 4);
        break;
    }
    case BORG_DT_F16: rw_put_f16(p, rw_float()); break;
    case BORG_DT_BF16: {
        float f = rw_float();
        memcpy(p, (const uint8_t *)&f + 2, 2);
        break;
    }
    case BORG_DT_Q4_0:
    case BORG_DT_Q5_0:
    case BORG_DT_Q8_0: rw_put_f16(p, scale); break;
    case BORG_DT_Q4_1:
        rw_put_f16(p, scale);
        rw_put_f16(p + 2, -8.0f * scale * (rw_float() + 1.0f));
        break;
    case BORG_DT_Q5_1:
        rw_put_f16(p, scale);
        rw_put_f16(p + 2, -16.0f * scale * (rw_float() + 1.0f));
        break;
    case BORG_DT_Q4_K:
    case BORG_DT_Q5_K:
        rw_put_f16(p, scale / 16.0f);
        rw_put_f16(p + 2, scale / 32.0f);
        break;
    case BORG_DT_Q6_K: rw_put_f16(p + 208, scale / 64.0f); break;
    }
}

/* A rows x cols matrix of type t (cols a multiple of its block size) with
 * the bytes rw_block gives for fill, in memory the caller frees with
 * free(m->data). NULL data on failure. */
static borg_mat rw_matrix_filled(borg_dtype t, int64_t rows, int64_t cols, int fill)
{
    borg_mat m = {NULL, t, rows, cols, quant_dtype_row_bytes(t, cols), NULL, NULL};
    uint8_t *d = malloc(m.row_bytes * (size_t)rows);
    if (!d)
        return m;
    size_t bb = quant_dtype_block_bytes(t);
    for (size_t off = 0; off < m.row_bytes * (size_t)rows; off += bb)
        rw_block(t, d + off, fill);
    m.data = d;
    return m;
}

static borg_mat rw_matrix(borg_dtype t, int64_t rows, int64_t cols) { return rw_matrix_filled(t, rows, cols, -1); }

static const borg_dtype rw_types[] = {BORG_DT_F32,  BORG_DT_F16,  BORG_DT_BF16, BORG_DT_Q4_0,
                                      BORG_DT_Q4_1, BORG_DT_Q5_0, BORG_DT_Q5_1, BORG_DT_Q8_0,
                                      BORG_DT_Q4_K, BORG_DT_Q5_K, BORG_DT_Q6_K};
enum { RW_N_TYPES = sizeof rw_types / sizeof rw_types[0] };

#endif
