/* Key/value cache of one stage: for each of its layers, n_slots sequences
 * of up to slot_ctx positions. Slots are assigned by the coordinator; the
 * cache only stores. Memory is reserved lazily by the OS, so an unused
 * slot or position costs address space, not RAM.
 *
 * K and V are stored as f32, or as IEEE half (f16, rounded to nearest
 * even when a row is stored: half the memory per position, as llama.cpp's
 * default cache). Attention reads either (ops.h's ops_kv_rows).
 *
 * A sliding-window layer keeps only the positions its queries can still
 * see: a ring of window + max_chunk - 1 rows per slot, where max_chunk is
 * the most tokens one slot adds in one forward call (a token's window may
 * reach back to keys the same call's later tokens would overwrite in a
 * shorter ring). */
#ifndef BORG_KVCACHE_H
#define BORG_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"
#include "borg/ops.h"
#include "borg/quant.h"

typedef struct {
    int n_layers;
    int n_slots;
    int32_t slot_ctx;
    int kv_dim;
    borg_dtype dtype;  /* BORG_DT_F32 or BORG_DT_F16 */
    size_t elem_bytes; /* of dtype */
    int32_t *rows;     /* per layer: rows kept per slot (slot_ctx, or a window's ring) */
    int32_t *window;   /* per layer: its sliding window, 0 for none */
    size_t *offset;    /* per layer: elements of k (and v) before its first row */
    unsigned char *k;  /* [layer][slot][row][kv_dim] elements of dtype */
    unsigned char *v;
    size_t bytes; /* of k, and of v */
} borg_kvcache;

/* 1 for the element types a cache can hold. */
int kv_dtype_supported(borg_dtype t);

/* "f16" or "f32", as --kv-dtype spells them. */
const char *kv_dtype_name(borg_dtype t);

/* Bytes one cached position takes, K and V together, in n_layers layers
 * of kv_dim elements of type t: what the summary and `plan` report. */
size_t kv_bytes_per_position(int n_layers, int kv_dim, borg_dtype t);

/* windows (NULL for none) has a sliding window per layer, 0 for a layer
 * that sees every position; max_chunk >= 1; dtype BORG_DT_F32 or
 * BORG_DT_F16. */
borg_status kv_create(int n_layers, int n_slots, int32_t slot_ctx, int kv_dim, const int32_t *windows,
                      int32_t max_chunk, borg_dtype dtype, borg_kvcache *kv, borg_err *err);
void kv_free(borg_kvcache *kv);

/* Stores the K and V rows (kv_dim floats each) of position pos of a slot
 * in a stage-local layer, converted to the cache's type. */
void kv_put(borg_kvcache *kv, int layer, int slot, int32_t pos, const float *k, const float *v);

/* The cached rows of one KV head (its elements start at `first` in each
 * row) of a stage-local layer and slot, as attention reads them: position
 * p lives in row p % kv->rows[layer]. */
static inline ops_kv_rows kv_head_rows(const borg_kvcache *kv, int layer, int slot, int first)
{
    const size_t at = (kv->offset[layer] + (size_t)slot * kv->rows[layer] * kv->kv_dim + (size_t)first) *
                      kv->elem_bytes;
    return (ops_kv_rows){kv->k + at, kv->v + at, kv->dtype, kv->kv_dim, kv->rows[layer]};
}

#endif
