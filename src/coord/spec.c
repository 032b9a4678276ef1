#include "borg/spec.h"

#include <stdio.h>
#include <string.h>

#include "borg/family.h"
#include "borg/kvcache.h"
#include "borg/matmul.h"

int32_t spec_slot_ctx(int32_t requested, int32_t model_ctx)
{
    if (requested)
        return requested;
    return model_ctx < 4096 ? model_ctx : 4096;
}

borg_status spec_make(const borg_config *cfg, const gguf_file *f, const borg_topology *topo, int generation,
                      borg_spec *out, borg_err *err)
{
    borg_hparams hp;
    borg_plan plan;
    borg_status st = family_hparams(f, &hp, err);
    if (st)
        return st;
    if (!topo->replicas || topo->stages < 1 || topo->stages > PLAN_MAX_STAGES)
        return borg_fail(err, BORG_EINTERNAL, "a spec needs stage ranks (topology of %d stage(s), %d replica(s))",
                         topo->stages, topo->replicas);
    if ((st = plan_make(f, &hp, topo->stages, generation ? NULL : cfg->layers, &plan, err)))
        return st;
    memset(out, 0, sizeof *out);
    out->version = SPEC_VERSION;
    out->verify_model = cfg->verify_model != 0;
    out->model_size = gguf_file_size(f);
    out->model_hash = gguf_fingerprint(f);
    out->full_hash = cfg->verify_model ? gguf_full_hash(f) : 0;
    out->options_hash = cli_run_options_hash(cfg);
    snprintf(out->arch, sizeof out->arch, "%s", hp.arch);
    out->n_layer = hp.n_layer;
    out->replicas = topo->replicas;
    out->stages = topo->stages;
    for (int s = 0; s < plan.n_stages; s++) {
        out->begin[s] = plan.begin[s];
        out->end[s] = plan.end[s];
    }
    out->n_slots = cfg->slots;
    out->slot_ctx = spec_slot_ctx(cfg->ctx, hp.ctx_len);
    out->batch_tokens = cfg->batch_tokens;
    out->q8_activations = matmul_q8_activations();
    out->wire_dtype = cfg->wire_dtype;
    out->kv_dtype = cfg->kv_dtype;
    out->generation = generation;
    out->trace = cfg->trace != NULL;
    return BORG_OK;
}

borg_status spec_decode(const void *payload, uint64_t len, borg_spec *out, borg_err *err)
{
    if (len != sizeof *out)
        return borg_fail(err, BORG_EINPUT, "the run spec from rank 0 is %llu bytes, this build expects %zu",
                         (unsigned long long)len, sizeof *out);
    memcpy(out, payload, sizeof *out);
    if (out->version != SPEC_VERSION)
        return borg_fail(err, BORG_EINPUT, "the run spec from rank 0 has version %u, this build %u", out->version,
                         SPEC_VERSION);
    if (out->stages < 1 || out->stages > PLAN_MAX_STAGES || out->replicas < 1 || out->n_slots < 1 ||
        out->slot_ctx < 2 || out->batch_tokens < 1 || !kv_dtype_supported((borg_dtype)out->kv_dtype))
        return borg_fail(err, BORG_EINPUT, "the run spec from rank 0 is malformed");
    out->arch[sizeof out->arch - 1] = '\0';
    return BORG_OK;
}

static const char *mode_name(int q8) { return q8 ? "q8" : "f32"; }

borg_status spec_check_ready(const borg_spec *spec, int rank, const stage_stats *got, borg_err *err)
{
    const int stage = spec_stage_of(spec, rank);
    const char *host = memchr(got->host, '\0', sizeof got->host) ? got->host : "?";
    if (got->model_hash != spec->model_hash)
        return borg_fail(err, BORG_EINPUT,
                         "rank %d (host %s) opened a different model file: fingerprint %016llx, rank 0's %016llx "
                         "(each node must see the same file)",
                         rank, host, (unsigned long long)got->model_hash, (unsigned long long)spec->model_hash);
    if (spec->verify_model && got->full_hash != spec->full_hash)
        return borg_fail(err, BORG_EINPUT,
                         "rank %d (host %s): the model file's bytes differ from rank 0's (--verify-model: hash "
                         "%016llx, rank 0's %016llx)",
                         rank, host, (unsigned long long)got->full_hash, (unsigned long long)spec->full_hash);
    if (got->options_hash != spec->options_hash)
        return borg_fail(err, BORG_EINPUT,
                         "rank %d (host %s) was started with other run options than rank 0 (--layers, --ctx, "
                         "--slots, --batch-tokens, --wire-dtype, --kv-dtype, --replicas, --stages or "
                         "--verify-model): rank 0 decides them; give every rank the same",
                         rank, host);
    if (got->asked_q8 >= 0 && got->asked_q8 != spec->q8_activations)
        return borg_fail(err, BORG_EINPUT,
                         "rank %d (host %s) was started asking for %s activations (--activations or "
                         "BORG_Q8_ACTIVATIONS), rank 0 runs with %s: give every rank the same",
                         rank, host, mode_name(got->asked_q8), mode_name(spec->q8_activations));
    if (!got->loaded)
        return borg_fail(err, BORG_EINTERNAL, "rank %d (host %s) loaded nothing and said nothing of why", rank, host);
    if (got->layer_begin != spec->begin[stage] || got->layer_end != spec->end[stage])
        return borg_fail(err, BORG_EINPUT, "rank %d (host %s) loaded layers %d-%d; the spec gives stage %d %d-%d", rank,
                         host, got->layer_begin, got->layer_end - 1, stage, spec->begin[stage], spec->end[stage] - 1);
    if (got->q8_activations != spec->q8_activations)
        return borg_fail(err, BORG_EINPUT, "rank %d (host %s) computes with %s activations, the spec says %s", rank,
                         host, mode_name(got->q8_activations), mode_name(spec->q8_activations));
    if (got->kv_dtype != spec->kv_dtype)
        return borg_fail(err, BORG_EINPUT, "rank %d (host %s) keeps its KV cache in %s, the spec says %s", rank, host,
                         kv_dtype_name((borg_dtype)got->kv_dtype), kv_dtype_name((borg_dtype)spec->kv_dtype));
    if (got->slot_ctx != spec->slot_ctx || got->kv_slots != spec->n_slots)
        return borg_fail(err, BORG_EINPUT,
                         "rank %d (host %s) holds %d sequences of %d positions; the spec says %d of %d", rank, host,
                         (int)got->kv_slots, (int)got->slot_ctx, (int)spec->n_slots, (int)spec->slot_ctx);
    return BORG_OK;
}
