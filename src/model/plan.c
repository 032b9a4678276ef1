#include "borg/plan.h"

#include <stdlib.h>
#include <string.h>

#include "borg/kvcache.h"
#include "borg/matmul.h"
#include "borg/quant.h"

static size_t elements(const gguf_tensor *t)
{
    return (size_t)t->ne[0] * (size_t)t->ne[1] * (size_t)t->ne[2] * (size_t)t->ne[3];
}

/* What one parameter of type t costs to multiply, in quarters of a 4-bit
 * one: the 8-bit activation kernels need the abs/sign trick and a widening
 * madd on every pass for signed codes (Q8_0, Q6_K), measured at 1.2-1.4x
 * the time per parameter of Q4_1 and Q4_K (bench/RESULTS.md). */
static size_t param_cost(uint32_t t) { return t == BORG_DT_Q8_0 || t == BORG_DT_Q6_K ? 5 : 4; }

/* The matrix kernels' copies of a tensor (its matrices are ne[0] wide). */
static size_t copy_bytes(const gguf_tensor *t)
{
    return t->ne[1] > 1 ? matmul_copy_bytes((borg_dtype)t->type, (int64_t)(elements(t) / t->ne[0]), (int64_t)t->ne[0])
                        : 0;
}

/* Bytes, copies, parameters and cost of one layer's tensors. */
static void layer_size(const gguf_file *f, int layer, size_t *bytes, size_t *copies, size_t *params, size_t *cost)
{
    char prefix[32];
    int n = snprintf(prefix, sizeof prefix, "blk.%d.", layer);
    *bytes = *copies = *params = *cost = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (!strncmp(t->name, prefix, (size_t)n)) {
            *bytes += t->nbytes;
            *copies += copy_bytes(t);
            *params += elements(t);
            *cost += elements(t) * param_cost(t->type);
        }
    }
}

static size_t tensor_bytes(const gguf_file *f, const char *name)
{
    const gguf_tensor *t = gguf_tensor_find(f, name);
    return t ? t->nbytes : 0;
}

/* Parameters of a tensor (0 when absent); *cost gets their cost. */
static size_t tensor_params(const gguf_file *f, const char *name, size_t *cost)
{
    const gguf_tensor *t = gguf_tensor_find(f, name);
    *cost = t ? elements(t) * param_cost(t->type) : 0;
    return t ? elements(t) : 0;
}

/* Contiguous split of n items into k parts minimising the largest part's
 * cost; cost[i] of item i, tail added to the last part. Every part gets at
 * least one item. O(k n^2), trivial for layer counts. */
static borg_status balance(const size_t *cost, int n, int k, size_t tail, int *cut, borg_err *err)
{
    size_t *prefix = calloc((size_t)n + 1, sizeof *prefix);
    size_t *best = malloc(sizeof *best * (size_t)(k + 1) * (size_t)(n + 1));
    int *from = malloc(sizeof *from * (size_t)(k + 1) * (size_t)(n + 1));
    if (!prefix || !best || !from) {
        free(prefix);
        free(best);
        free(from);
        return borg_fail(err, BORG_ENOMEM, "out of memory planning the split");
    }
    for (int i = 0; i < n; i++)
        prefix[i + 1] = prefix[i] + cost[i];
#define AT(a, p, i) (a)[(size_t)(p) * (size_t)(n + 1) + (size_t)(i)]
    for (int p = 0; p <= k; p++)
        for (int i = 0; i <= n; i++)
            AT(best, p, i) = SIZE_MAX;
    AT(best, 0, 0) = 0;
    for (int p = 1; p <= k; p++)
        for (int i = p; i <= n; i++)
            for (int j = p - 1; j < i; j++) {
                if (AT(best, p - 1, j) == SIZE_MAX)
                    continue;
                size_t part = prefix[i] - prefix[j] + (p == k && i == n ? tail : 0);
                size_t worst = part > AT(best, p - 1, j) ? part : AT(best, p - 1, j);
                if (worst < AT(best, p, i)) {
                    AT(best, p, i) = worst;
                    AT(from, p, i) = j;
                }
            }
    int i = n;
    for (int p = k; p >= 1; p--) {
        cut[p] = i;
        i = AT(from, p, i);
    }
    cut[0] = 0;
#undef AT
    free(prefix);
    free(best);
    free(from);
    return BORG_OK;
}

static borg_status parse_layers(const char *spec, int n_layer, int n_stages, int *cut, borg_err *err)
{
    const char *s = spec;
    int stage = 0, sum = 0;
    cut[0] = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > n_layer || (*end && *end != ','))
            return borg_fail(err, BORG_EUSAGE, "--layers '%s': expected comma-separated positive layer counts", spec);
        if (stage == n_stages)
            return borg_fail(err, BORG_EUSAGE, "--layers '%s' names more than %d stages", spec, n_stages);
        sum += (int)v;
        cut[++stage] = sum;
        s = *end ? end + 1 : end;
    }
    if (stage != n_stages || sum != n_layer)
        return borg_fail(err, BORG_EUSAGE,
                         "--layers '%s' gives %d stages and %d layers; the run has %d stages and the model %d layers",
                         spec, stage, sum, n_stages, n_layer);
    return BORG_OK;
}

borg_status plan_make(const gguf_file *f, const borg_hparams *hp, int n_stages, const char *layers_spec, borg_plan *out,
                      borg_err *err)
{
    memset(out, 0, sizeof *out);
    if (n_stages < 1 || n_stages > PLAN_MAX_STAGES)
        return borg_fail(err, BORG_EUSAGE, "%d stages: must be between 1 and %d", n_stages, PLAN_MAX_STAGES);
    if (n_stages > hp->n_layer)
        return borg_fail(err, BORG_EUSAGE, "%d stages for %d layers: each stage needs at least one layer", n_stages,
                         hp->n_layer);
    size_t *cost = malloc(sizeof *cost * (size_t)hp->n_layer * 4);
    if (!cost)
        return borg_fail(err, BORG_ENOMEM, "out of memory planning the split");
    size_t *bytes = cost + hp->n_layer, *params = bytes + hp->n_layer, *copies = params + hp->n_layer;
    for (int l = 0; l < hp->n_layer; l++)
        layer_size(f, l, &bytes[l], &copies[l], &params[l], &cost[l]);
    int tied = !gguf_tensor_find(f, "output.weight");
    const char *head_name = tied ? "token_embd.weight" : "output.weight";
    size_t head_cost, head = tensor_params(f, head_name, &head_cost);
    size_t head_bytes = tensor_bytes(f, "output_norm.weight") + tensor_bytes(f, head_name);
    const gguf_tensor *head_t = gguf_tensor_find(f, head_name);
    size_t head_copies = head_t ? copy_bytes(head_t) : 0;
    int cut[PLAN_MAX_STAGES + 1];
    borg_status st = layers_spec ? parse_layers(layers_spec, hp->n_layer, n_stages, cut, err)
                                 : balance(cost, hp->n_layer, n_stages, head_cost, cut, err);
    if (st) {
        free(cost);
        return st;
    }
    out->n_stages = n_stages;
    for (int s = 0; s < n_stages; s++) {
        out->begin[s] = cut[s];
        out->end[s] = cut[s + 1];
        for (int l = cut[s]; l < cut[s + 1]; l++) {
            out->params[s] += params[l];
            out->weight_bytes[s] += bytes[l];
            out->copy_bytes[s] += copies[l];
        }
        if (s == n_stages - 1) {
            out->params[s] += head;
            out->weight_bytes[s] += head_bytes;
            out->copy_bytes[s] += head_copies;
        }
        /* A tied embedding on a single stage is already counted as its head. */
        if (s == 0 && !(tied && n_stages == 1))
            out->weight_bytes[s] += tensor_bytes(f, "token_embd.weight");
        for (int l = cut[s]; l < cut[s + 1]; l++) {
            if (family_layer_window(hp, l))
                out->window_layers[s]++;
            else
                out->global_layers[s]++;
        }
    }
    free(cost);
    return BORG_OK;
}

void plan_print(const borg_plan *p, const borg_hparams *hp, int n_slots, int32_t slot_ctx, int batch_tokens,
                borg_dtype kv_dtype, FILE *out)
{
    /* A sliding-window layer's ring, as kv_create sizes it. */
    int64_t ring = hp->window ? (int64_t)hp->window + batch_tokens - 1 : 0;
    if (ring > slot_ctx)
        ring = slot_ctx;
    const int kv_dim = hp->n_kv_head * hp->head_dim;
    const double ring_bytes = (double)kv_bytes_per_position(1, kv_dim, kv_dtype) * (double)ring;
    fprintf(out, "%-6s %-10s %-8s %12s %12s %12s %14s\n", "stage", "layers", "count", "weights MiB", "copies MiB",
            "M params", "kv MiB (max)");
    for (int s = 0; s < p->n_stages; s++) {
        char range[32];
        snprintf(range, sizeof range, "%d-%d", p->begin[s], p->end[s] - 1);
        double kv = ((double)kv_bytes_per_position(p->global_layers[s], kv_dim, kv_dtype) * slot_ctx +
                     ring_bytes * p->window_layers[s]) *
                    n_slots / 1048576.0;
        fprintf(out, "%-6d %-10s %-8d %12.1f %12.1f %12.1f %14.1f%s%s\n", s, range, p->end[s] - p->begin[s],
                p->weight_bytes[s] / 1048576.0, p->copy_bytes[s] / 1048576.0, p->params[s] / 1e6, kv,
                s == 0 ? "  +embedding" : "", s == p->n_stages - 1 ? "  +output head" : "");
    }
    fprintf(out, "(%d layers; KV in %s for %d slots x %d positions, reserved lazily: only what is used is resident)\n",
            hp->n_layer, kv_dtype_name(kv_dtype), n_slots, (int)slot_ctx);
    fprintf(out,
            "(copies: the layouts the %s matrix kernels keep beside the mapped weights, on a stage with this "
            "machine's path; BORG_REPACK=0 keeps none)\n",
            matmul_isa());
    if (hp->window)
        fprintf(out, "(sliding-window layers keep %lld positions per slot: window %d + batch budget %d - 1)\n",
                (long long)ring, (int)hp->window, batch_tokens);
}
