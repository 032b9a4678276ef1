#include "borg/backend.h"

#include <stdlib.h>

#include "borg/kvcache.h"
#include "borg/log.h"
#include "borg/matmul.h"
#include "borg/model.h"
#include "borg/threadpool.h"

struct backend_state {
    borg_model *model;
    borg_kvcache kv;
    borg_pool *pool;
};

static void cpu_destroy(backend_state *b)
{
    if (!b)
        return;
    model_free(b->model);
    kv_free(&b->kv);
    pool_destroy(b->pool);
    free(b);
}

static borg_status cpu_create(const gguf_file *f, const stage_config *cfg, backend_state **out, borg_err *err)
{
    backend_state *b = calloc(1, sizeof *b);
    if (!b)
        return borg_fail(err, BORG_ENOMEM, "out of memory creating a stage");
    borg_status st = pool_create(cfg->threads, &b->pool, err);
    if (!st)
        st = model_load(f, cfg->layer_begin, cfg->layer_end, cfg->first, cfg->last, b->pool, &b->model, err);
    if (!st && model_packed_bytes(b->model))
        log_event(LOG_DEBUG, "weights_repacked", NULL,
                  LOG_FIELDS(LOG_I("bytes", model_packed_bytes(b->model)), LOG_S("isa", matmul_isa())),
                  "layers %d-%d: %.1f MiB of weights repacked for the %s integer kernels", cfg->layer_begin,
                  cfg->layer_end - 1, model_packed_bytes(b->model) / 1048576.0, matmul_isa());
    if (!st)
        st = model_kv_create(b->model, cfg->n_slots, cfg->slot_ctx, cfg->max_chunk, cfg->kv_dtype, &b->kv, err);
    if (st) {
        cpu_destroy(b);
        return st;
    }
    *out = b;
    return BORG_OK;
}

static const borg_hparams *cpu_hparams(const backend_state *b) { return model_hp(b->model); }

static size_t cpu_weight_bytes(const backend_state *b) { return model_weight_bytes(b->model); }

static borg_status cpu_embed(backend_state *b, const int32_t *tokens, int n, float *x, borg_err *err)
{
    return model_embed(b->model, tokens, n, x, err);
}

static borg_status cpu_forward(backend_state *b, float *x, const int32_t *slot, const int32_t *pos, int n,
                               borg_err *err)
{
    return model_forward(b->model, &b->kv, x, slot, pos, n, b->pool, err);
}

static borg_status cpu_final_norm(backend_state *b, const float *x, int n, float *out, borg_err *err)
{
    return model_final_norm(b->model, x, n, out, err);
}

static borg_status cpu_logits(backend_state *b, const float *x, int n, float *logits, borg_err *err)
{
    return model_logits(b->model, x, n, logits, b->pool, err);
}

static borg_pool *cpu_host_pool(backend_state *b) { return b->pool; }

const backend_ops backend_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .hparams = cpu_hparams,
    .weight_bytes = cpu_weight_bytes,
    .embed = cpu_embed,
    .forward = cpu_forward,
    .final_norm = cpu_final_norm,
    .logits = cpu_logits,
    .host_pool = cpu_host_pool,
};
