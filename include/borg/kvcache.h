/* Key/value cache of one stage: for each of its layers, n_slots sequences
 * of up to slot_ctx positions. Slots are assigned by the coordinator; the
 * cache only stores. Memory is reserved lazily by the OS, so an unused
 * slot or position costs address space, not RAM.
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

typedef struct {
    int n_layers;
    int n_slots;
    int32_t slot_ctx;
    int kv_dim;
    int32_t *rows;   /* per layer: rows kept per slot (slot_ctx, or a window's ring) */
    int32_t *window; /* per layer: its sliding window, 0 for none */
    size_t *offset;  /* per layer: floats of k (and v) before its first row */
    float *k;        /* [layer][slot][row][kv_dim] */
    float *v;
    size_t bytes;
} borg_kvcache;

/* windows (NULL for none) has a sliding window per layer, 0 for a layer
 * that sees every position; max_chunk >= 1. */
borg_status kv_create(int n_layers, int n_slots, int32_t slot_ctx, int kv_dim, const int32_t *windows,
                      int32_t max_chunk, borg_kvcache *kv, borg_err *err);
void kv_free(borg_kvcache *kv);

/* Rows of K (or V) for a stage-local layer and slot: position p lives in
 * row p % kv->rows[layer]. */
static inline float *kv_k(const borg_kvcache *kv, int layer, int slot)
{
    return kv->k + kv->offset[layer] + (size_t)slot * kv->rows[layer] * kv->kv_dim;
}
static inline float *kv_v(const borg_kvcache *kv, int layer, int slot)
{
    return kv->v + kv->offset[layer] + (size_t)slot * kv->rows[layer] * kv->kv_dim;
}

#endif
