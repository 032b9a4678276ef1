#include "borg/kvcache.h"

#include <string.h>
#include <sys/mman.h>

/* Anonymous mappings are zero pages until written, so a cache sized for
 * the worst case only costs the positions actually used. */
static float *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

borg_status kv_create(int n_layers, int n_slots, int32_t slot_ctx, int kv_dim, borg_kvcache *kv,
                      borg_err *err)
{
    memset(kv, 0, sizeof *kv);
    if (n_layers < 0 || n_slots < 1 || slot_ctx < 1 || kv_dim < 1)
        return borg_fail(err, BORG_EUSAGE, "invalid KV cache shape (%d layers, %d slots, %d positions)",
                         n_layers, n_slots, (int)slot_ctx);
    if (n_layers == 0)
        return BORG_OK;
    double want = (double)n_layers * n_slots * slot_ctx * kv_dim * sizeof(float);
    if (want > (double)(SIZE_MAX / 4))
        return borg_fail(err, BORG_EUSAGE, "KV cache of %.0f bytes is too large", want);
    size_t bytes = (size_t)want;
    kv->bytes = bytes;
    kv->k = map_zeroed(bytes);
    kv->v = kv->k ? map_zeroed(bytes) : NULL;
    if (!kv->v) {
        kv_free(kv);
        return borg_fail(err, BORG_ENOMEM, "cannot reserve %zu bytes for the KV cache", 2 * bytes);
    }
    kv->n_layers = n_layers;
    kv->n_slots = n_slots;
    kv->slot_ctx = slot_ctx;
    kv->kv_dim = kv_dim;
    kv->bytes = bytes;
    return BORG_OK;
}

void kv_free(borg_kvcache *kv)
{
    if (kv->k)
        munmap(kv->k, kv->bytes);
    if (kv->v)
        munmap(kv->v, kv->bytes);
    memset(kv, 0, sizeof *kv);
}
