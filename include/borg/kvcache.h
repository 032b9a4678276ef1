/* Key/value cache of one stage: for each of its layers, n_slots sequences
 * of up to slot_ctx positions. Slots are assigned by the coordinator; the
 * cache only stores. Memory is reserved lazily by the OS, so an unused
 * slot or position costs address space, not RAM. */
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
    float *k; /* [layer][slot][pos][kv_dim] */
    float *v;
    size_t bytes;
} borg_kvcache;

borg_status kv_create(int n_layers, int n_slots, int32_t slot_ctx, int kv_dim, borg_kvcache *kv,
                      borg_err *err);
void kv_free(borg_kvcache *kv);

/* Row of K (or V) for a stage-local layer, slot and position. */
static inline float *kv_k(const borg_kvcache *kv, int layer, int slot, int32_t pos)
{
    return kv->k + (((size_t)layer * kv->n_slots + slot) * kv->slot_ctx + pos) * kv->kv_dim;
}
static inline float *kv_v(const borg_kvcache *kv, int layer, int slot, int32_t pos)
{
    return kv->v + (((size_t)layer * kv->n_slots + slot) * kv->slot_ctx + pos) * kv->kv_dim;
}

#endif
