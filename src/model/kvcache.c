#include "borg/kvcache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Anonymous mappings are zero pages until written, so a cache sized for
 * the worst case only costs the positions actually used. */
static unsigned char *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int kv_dtype_supported(borg_dtype t) { return t == BORG_DT_F32 || t == BORG_DT_F16; }

const char *kv_dtype_name(borg_dtype t) { return t == BORG_DT_F16 ? "f16" : t == BORG_DT_F32 ? "f32" : "unknown"; }

size_t kv_bytes_per_position(int n_layers, int kv_dim, borg_dtype t)
{
    return 2 * (size_t)n_layers * (size_t)kv_dim * quant_dtype_row_bytes(t, 1);
}

borg_status kv_create(int n_layers, int n_slots, int32_t slot_ctx, int kv_dim, const int32_t *windows,
                      int32_t max_chunk, borg_dtype dtype, borg_kvcache *kv, borg_err *err)
{
    memset(kv, 0, sizeof *kv);
    if (n_layers < 0 || n_slots < 1 || slot_ctx < 1 || kv_dim < 1 || max_chunk < 1)
        return borg_fail(err, BORG_EUSAGE, "invalid KV cache shape (%d layers, %d slots, %d positions)", n_layers,
                         n_slots, (int)slot_ctx);
    if (!kv_dtype_supported(dtype))
        return borg_fail(err, BORG_EUSAGE, "a KV cache holds f16 or f32, not %s", quant_dtype_name(dtype));
    if (n_layers == 0)
        return BORG_OK;
    kv->rows = malloc(sizeof *kv->rows * (size_t)n_layers);
    kv->window = malloc(sizeof *kv->window * (size_t)n_layers);
    kv->offset = malloc(sizeof *kv->offset * (size_t)n_layers);
    if (!kv->rows || !kv->window || !kv->offset) {
        kv_free(kv);
        return borg_fail(err, BORG_ENOMEM, "out of memory for the KV cache");
    }
    double elems = 0;
    for (int l = 0; l < n_layers; l++) {
        int32_t w = windows ? windows[l] : 0;
        int64_t ring = w > 0 ? (int64_t)w + max_chunk - 1 : slot_ctx;
        kv->window[l] = w > 0 ? w : 0;
        kv->rows[l] = (int32_t)(ring < slot_ctx ? ring : slot_ctx);
        kv->offset[l] = (size_t)elems;
        elems += (double)n_slots * kv->rows[l] * kv_dim;
    }
    kv->dtype = dtype;
    kv->elem_bytes = quant_dtype_row_bytes(dtype, 1);
    double want = elems * (double)kv->elem_bytes;
    if (want > (double)(SIZE_MAX / 4)) {
        kv_free(kv);
        return borg_fail(err, BORG_EUSAGE, "KV cache of %.0f bytes is too large", want);
    }
    kv->bytes = (size_t)want;
    kv->k = map_zeroed(kv->bytes);
    kv->v = kv->k ? map_zeroed(kv->bytes) : NULL;
    if (!kv->v) {
        size_t bytes = kv->bytes;
        kv_free(kv);
        return borg_fail(err, BORG_ENOMEM, "cannot reserve %zu bytes for the KV cache", 2 * bytes);
    }
    kv->n_layers = n_layers;
    kv->n_slots = n_slots;
    kv->slot_ctx = slot_ctx;
    kv->kv_dim = kv_dim;
    return BORG_OK;
}

void kv_free(borg_kvcache *kv)
{
    if (kv->k)
        munmap(kv->k, kv->bytes);
    if (kv->v)
        munmap(kv->v, kv->bytes);
    free(kv->rows);
    free(kv->window);
    free(kv->offset);
    memset(kv, 0, sizeof *kv);
}

/* dst is aligned to its element: the mapping is page-aligned and every
 * row a whole number of elements. */
static void put_row(unsigned char *dst, const float *src, int n, borg_dtype t)
{
    if (t == BORG_DT_F32)
        memcpy(dst, src, sizeof(float) * (size_t)n);
    else
        quant_f32_to_f16_row(src, (uint16_t *)(void *)dst, n);
}

void kv_put(borg_kvcache *kv, int layer, int slot, int32_t pos, const float *k, const float *v)
{
    const int32_t rows = kv->rows[layer];
    const size_t at = (kv->offset[layer] + ((size_t)slot * rows + (size_t)(pos % rows)) * kv->kv_dim) * kv->elem_bytes;
    put_row(kv->k + at, k, kv->kv_dim, kv->dtype);
    put_row(kv->v + at, v, kv->kv_dim, kv->dtype);
}
