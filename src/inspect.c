#include "borg/inspect.h"

#include <stdlib.h>
#include <string.h>

#include "borg/chat_template.h"
#include "borg/gguf.h"
#include "borg/model.h"
#include "borg/plan.h"
#include "borg/stage.h"
#include "borg/quant.h"
#include "borg/spec.h"
#include "borg/tokenizer.h"

static void print_str_key(const gguf_file *f, FILE *out, const char *label, const char *key)
{
    gguf_str s;
    if (gguf_has_key(f, key) && gguf_get_str(f, key, &s, NULL) == BORG_OK)
        fprintf(out, "%-22s %.*s\n", label, (int)(s.len > 200 ? 200 : s.len), s.ptr);
}

borg_status inspect_info(const borg_config *cfg, FILE *out, borg_err *err)
{
    gguf_file *f;
    borg_tokenizer *tok = NULL;
    borg_status st = gguf_open(cfg->model, &f, err);
    if (st)
        return st;
    borg_hparams hp;
    borg_model *m = NULL;
    if ((st = family_hparams(f, &hp, err)) || (st = model_load(f, 0, hp.n_layer, 1, 1, NULL, &m, err)) ||
        (st = tokenizer_load(f, &tok, err)))
        goto done;
    hp = *model_hp(m);

    uint64_t count[64] = {0}, params = 0;
    size_t bytes[64] = {0};
    for (uint64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t n = (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
        params += n;
        if (t->type < 64) {
            count[t->type]++;
            bytes[t->type] += t->nbytes;
        }
    }
    gguf_str tmpl = {0};
    if (gguf_has_key(f, "tokenizer.chat_template"))
        gguf_get_str(f, "tokenizer.chat_template", &tmpl, NULL);
    chat_template chat;
    chat_template_init(tmpl.ptr, tmpl.len, chat_vocab_style(tok), &chat, NULL);

    const double kv_per_token = 2.0 * hp.n_layer * hp.n_kv_head * hp.head_dim * sizeof(float);
    fprintf(out, "%-22s %s\n", "file", cfg->model);
    fprintf(out, "%-22s %u\n", "gguf version", gguf_version(f));
    print_str_key(f, out, "name", "general.name");
    fprintf(out, "%-22s %s\n", "architecture", hp.arch);
    fprintf(out, "%-22s %d\n", "layers", hp.n_layer);
    fprintf(out, "%-22s %d\n", "embedding", hp.dim);
    fprintf(out, "%-22s %d query, %d key/value (head size %d)\n", "attention heads", hp.n_head, hp.n_kv_head,
            hp.head_dim);
    fprintf(out, "%-22s %d\n", "feed-forward", hp.ffn_dim);
    fprintf(out, "%-22s %d\n", "vocabulary", hp.n_vocab);
    fprintf(out, "%-22s %d\n", "context", (int)hp.ctx_len);
    const borg_family *fam = hp.family;
    fprintf(out, "%-22s base %g, %d dims, %s pairs", "rope", hp.rope_base, hp.rope_dim,
            fam->rope_neox ? "neox" : "adjacent");
    if (hp.rope_scale != 1.0f)
        fprintf(out, ", linear scaling x%g", 1.0 / hp.rope_scale);
    if (hp.has_rope_freqs)
        fprintf(out, ", frequency factors (rope_freqs.weight)");
    fputc('\n', out);
    if (hp.window) {
        int local = 0;
        for (int l = 0; l < hp.n_layer; l++)
            local += family_layer_window(&hp, l) != 0;
        fprintf(out, "%-22s %d tokens on %d of %d layers (rope base %g there), the rest global\n", "sliding window",
                (int)hp.window, local, hp.n_layer, hp.rope_base_local);
    }
    static const char *const bias_names[] = {"q", "k", "v", "output"};
    char biases[32] = "", name[64];
    for (int t = LT_Q_BIAS; t <= LT_O_BIAS; t++) {
        snprintf(name, sizeof name, "blk.0.%s", family_layer_tensor_name((layer_tensor)t));
        if (gguf_tensor_find(f, name))
            snprintf(biases + strlen(biases), sizeof biases - strlen(biases), "%s%s", *biases ? ", " : "",
                     bias_names[t - LT_Q_BIAS]);
    }
    fprintf(out, "%-22s RMS (epsilon %g)%s%s\n", "norms", hp.rms_eps, fam->qk_norm ? ", per-head q/k" : "",
            fam->post_norms ? ", after attention and FFN too" : "");
    fprintf(out, "%-22s %s\n", "attention biases", *biases ? biases : "none");
    fprintf(out, "%-22s scale %g\n", "attention", hp.attn_scale);
    fprintf(out, "%-22s %s\n", "feed-forward gate", fam->act == BORG_ACT_GELU_TANH ? "GELU (tanh)" : "SiLU");
    if (hp.embed_scale != 1.0f)
        fprintf(out, "%-22s x%g\n", "embedding scale", hp.embed_scale);
    fprintf(out, "%-22s %s\n", "output", gguf_tensor_find(f, "output.weight") ? "separate" : "tied to embedding");
    fprintf(out, "%-22s %s\n", "chat template", chat_style_name(chat.style));
    fprintf(out, "%-22s %.1f M\n", "parameters", params / 1e6);
    fprintf(out, "%-22s %llu\n", "tensors", (unsigned long long)gguf_tensor_count(f));
    for (uint32_t t = 0; t < 64; t++)
        if (count[t])
            fprintf(out, "  %-20s %llu tensors, %.1f MiB\n", quant_dtype_name(t), (unsigned long long)count[t],
                    bytes[t] / 1048576.0);
    fprintf(out, "%-22s %.1f MiB\n", "weights", model_weight_bytes(m) / 1048576.0);
    fprintf(out, "%-22s %.1f KiB per token (f32), %.1f MiB per 4096-token sequence\n", "kv cache",
            kv_per_token / 1024.0, kv_per_token * 4096 / 1048576.0);
    chat_template_free(&chat);
done:
    tokenizer_free(tok);
    model_free(m);
    gguf_close(f);
    return st;
}

borg_status inspect_tokenize(const borg_config *cfg, FILE *out, borg_err *err)
{
    gguf_file *f;
    borg_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    borg_status st = gguf_open(cfg->model, &f, err);
    if (st)
        return st;
    if (!(st = tokenizer_load(f, &tok, err)) &&
        !(st = tokenizer_encode(tok, cfg->text, strlen(cfg->text), 1, !cfg->no_special, &ids, &n, err))) {
        for (size_t i = 0; i < n; i++)
            fprintf(out, i ? " %d" : "%d", (int)ids[i]);
        fputc('\n', out);
    }
    free(ids);
    tokenizer_free(tok);
    gguf_close(f);
    return st;
}

borg_status inspect_plan(const borg_config *cfg, FILE *out, borg_err *err)
{
    gguf_file *f;
    borg_status st = gguf_open(cfg->model, &f, err);
    if (st)
        return st;
    borg_hparams hp;
    borg_plan plan;
    if (!(st = family_hparams(f, &hp, err)) && !(st = plan_make(f, &hp, cfg->stages, cfg->layers, &plan, err))) {
        fprintf(out, "%s: %d layers over %d stages\n", cfg->model, hp.n_layer, cfg->stages);
        plan_print(&plan, &hp, cfg->slots, spec_slot_ctx(cfg->ctx, hp.ctx_len), cfg->batch_tokens, cfg->kv_dtype, out);
    }
    gguf_close(f);
    return st;
}
