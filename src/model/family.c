#include "borg/family.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What llama.cpp computes for each architecture, as data. Gemma 3's local
 * layers and their rope base are llama.cpp's defaults for gemma3 (a pattern
 * of 6; base 10000 unless <arch>.rope.freq_base_swa says otherwise). */
static const borg_family k_families[] = {
    {.arch = "llama", .act = BORG_ACT_SILU, .rope_freqs = 1},
    {.arch = "qwen2", .rope_neox = 1, .act = BORG_ACT_SILU},
    {.arch = "qwen3", .rope_neox = 1, .qk_norm = 1, .act = BORG_ACT_SILU},
    {.arch = "gemma3",
     .rope_neox = 1,
     .qk_norm = 1,
     .post_norms = 1,
     .embed_scale = 1,
     .act = BORG_ACT_GELU_TANH,
     .swa_pattern = 6,
     .swa_rope_base = 10000.0f},
};

#define N_FAMILIES (sizeof k_families / sizeof *k_families)

const borg_family *family_find(const char *arch, size_t len)
{
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (len == strlen(k_families[i].arch) && !memcmp(arch, k_families[i].arch, len))
            return &k_families[i];
    return NULL;
}

const char *family_names(void) { return "llama, qwen2, qwen3, gemma3"; }

static const char *const k_layer_tensor_names[LT_COUNT] = {
    [LT_ATTN_NORM] = "attn_norm.weight",
    [LT_Q] = "attn_q.weight",
    [LT_K] = "attn_k.weight",
    [LT_V] = "attn_v.weight",
    [LT_O] = "attn_output.weight",
    [LT_Q_BIAS] = "attn_q.bias",
    [LT_K_BIAS] = "attn_k.bias",
    [LT_V_BIAS] = "attn_v.bias",
    [LT_O_BIAS] = "attn_output.bias",
    [LT_Q_NORM] = "attn_q_norm.weight",
    [LT_K_NORM] = "attn_k_norm.weight",
    [LT_ATTN_POST_NORM] = "post_attention_norm.weight",
    [LT_FFN_NORM] = "ffn_norm.weight",
    [LT_GATE] = "ffn_gate.weight",
    [LT_UP] = "ffn_up.weight",
    [LT_DOWN] = "ffn_down.weight",
    [LT_FFN_POST_NORM] = "post_ffw_norm.weight",
};

const char *family_layer_tensor_name(layer_tensor t) { return k_layer_tensor_names[t]; }

tensor_use family_layer_tensor_use(const borg_family *fam, layer_tensor t)
{
    switch (t) {
    case LT_Q_BIAS:
    case LT_K_BIAS:
    case LT_V_BIAS:
    case LT_O_BIAS: return TENSOR_OPTIONAL;
    case LT_Q_NORM:
    case LT_K_NORM: return fam->qk_norm ? TENSOR_REQUIRED : TENSOR_UNUSED;
    case LT_ATTN_POST_NORM:
    case LT_FFN_POST_NORM: return fam->post_norms ? TENSOR_REQUIRED : TENSOR_UNUSED;
    default: return TENSOR_REQUIRED;
    }
}

/* `<arch>.` keys this program reads or knows to leave the arithmetic alone.
 * Any other one may ask for something not implemented, so it is refused. */
static const char *const k_known_keys[] = {
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "vocab_size",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.layer_norm_rms_epsilon",
    "attention.key_length",
    "attention.value_length",
    "attention.sliding_window",
    "rope.dimension_count",
    "rope.freq_base",
    "rope.freq_base_swa",
    "rope.scaling.type",
    "rope.scaling.factor",
    "rope.scaling.original_context_length",
    "rope.scaling.finetuned",
};

static int is_known_key(const char *suffix, size_t len)
{
    for (size_t i = 0; i < sizeof k_known_keys / sizeof *k_known_keys; i++)
        if (len == strlen(k_known_keys[i]) && !memcmp(suffix, k_known_keys[i], len))
            return 1;
    return 0;
}

static borg_status check_keys(const gguf_file *f, const borg_hparams *hp, borg_err *err)
{
    const size_t alen = strlen(hp->arch);
    for (uint64_t i = 0; i < gguf_kv_count(f); i++) {
        gguf_str k = gguf_key_at(f, i);
        if (k.len <= alen + 1 || memcmp(k.ptr, hp->arch, alen) || k.ptr[alen] != '.')
            continue;
        if (!is_known_key(k.ptr + alen + 1, k.len - alen - 1))
            return borg_fail(err, BORG_EINPUT, "%s: metadata key '%.*s' asks for something not implemented for %s",
                             gguf_path(f), (int)(k.len > 128 ? 128 : k.len), k.ptr, hp->arch);
    }
    return BORG_OK;
}

/* Tensor names the family uses: the globals and blk.<l>.<suffix> for a
 * layer below n_layer with a suffix the family has. */
static int is_known_tensor(const borg_hparams *hp, const char *name)
{
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "output_norm.weight") || !strcmp(name, "output.weight"))
        return 1;
    if (!strcmp(name, "rope_freqs.weight"))
        return hp->family->rope_freqs;
    int l, used = 0;
    if (sscanf(name, "blk.%d.%n", &l, &used) != 1 || used == 0 || l < 0 || l >= hp->n_layer)
        return 0;
    char canon[48];
    snprintf(canon, sizeof canon, "blk.%d.", l);
    if (strncmp(name, canon, (size_t)used) || strlen(canon) != (size_t)used)
        return 0;
    for (int t = 0; t < LT_COUNT; t++)
        if (!strcmp(name + used, k_layer_tensor_names[t]))
            return family_layer_tensor_use(hp->family, (layer_tensor)t) != TENSOR_UNUSED;
    return 0;
}

static borg_status check_tensors(const gguf_file *f, const borg_hparams *hp, borg_err *err)
{
    for (uint64_t i = 0; i < gguf_tensor_count(f); i++) {
        const char *name = gguf_tensor_at(f, i)->name;
        if (!is_known_tensor(hp, name))
            return borg_fail(err, BORG_EINPUT, "%s: tensor '%.128s' is not part of the %s family as implemented",
                             gguf_path(f), name, hp->arch);
    }
    return BORG_OK;
}

static borg_status key_u32(const gguf_file *f, const char *arch, const char *suffix, uint32_t *out, int optional,
                           borg_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (optional && !gguf_has_key(f, key))
        return BORG_OK;
    return gguf_get_u32(f, key, out, err);
}

static borg_status key_f32(const gguf_file *f, const char *arch, const char *suffix, float *out, borg_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!gguf_has_key(f, key))
        return BORG_OK;
    return gguf_get_f32(f, key, out, err);
}

/* Rope scaling: none, or linear (positions divided by the factor, as
 * llama.cpp's freq_scale); YaRN and the rest are refused by name. */
static borg_status read_rope_scaling(const gguf_file *f, borg_hparams *hp, borg_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", hp->arch);
    hp->rope_scale = 1.0f;
    gguf_str type = {"none", 4};
    borg_status st;
    if (gguf_has_key(f, key) && (st = gguf_get_str(f, key, &type, err)))
        return st;
    float factor = 1.0f;
    if ((st = key_f32(f, hp->arch, "rope.scaling.factor", &factor, err)))
        return st;
    if (type.len == 4 && !memcmp(type.ptr, "none", 4))
        return BORG_OK;
    if (type.len == 6 && !memcmp(type.ptr, "linear", 6)) {
        if (!(factor > 0.0f) || !isfinite(factor))
            return borg_fail(err, BORG_EINPUT, "%s: %s.rope.scaling.factor is %g (must be > 0)", gguf_path(f), hp->arch,
                             factor);
        hp->rope_scale = 1.0f / factor;
        return BORG_OK;
    }
    return borg_fail(err, BORG_EINPUT, "%s: rope scaling type '%.*s' (%s) is not implemented (supported: none, linear)",
                     gguf_path(f), (int)(type.len > 32 ? 32 : type.len), type.ptr, key);
}

borg_status family_hparams(const gguf_file *f, borg_hparams *hp, borg_err *err)
{
    memset(hp, 0, sizeof *hp);
    gguf_str arch;
    borg_status st = gguf_get_str(f, "general.architecture", &arch, err);
    if (st)
        return st;
    hp->family = family_find(arch.ptr, arch.len);
    if (!hp->family)
        return borg_fail(err, BORG_EINPUT, "%s: unsupported architecture '%.*s' (supported: %s)", gguf_path(f),
                         (int)(arch.len > 64 ? 64 : arch.len), arch.ptr, family_names());
    memcpy(hp->arch, arch.ptr, arch.len);
    const char *a = hp->arch;
    const borg_family *fam = hp->family;

    uint32_t n_layer = 0, dim = 0, n_head = 0, n_kv_head = 0, ffn = 0, ctx = 2048;
    uint32_t head_dim = 0, value_dim = 0, rope_dim = 0, window = 0;
    hp->rope_base = 10000.0f;
    hp->rope_base_local = fam->swa_rope_base;
    hp->rms_eps = 1e-5f;
    if ((st = key_u32(f, a, "block_count", &n_layer, 0, err)) ||
        (st = key_u32(f, a, "embedding_length", &dim, 0, err)) ||
        (st = key_u32(f, a, "attention.head_count", &n_head, 0, err)) ||
        (st = key_u32(f, a, "feed_forward_length", &ffn, 0, err)) ||
        (st = key_u32(f, a, "context_length", &ctx, 1, err)) ||
        (st = key_u32(f, a, "attention.key_length", &head_dim, 1, err)) ||
        (st = key_u32(f, a, "attention.value_length", &value_dim, 1, err)) ||
        (st = key_u32(f, a, "rope.dimension_count", &rope_dim, 1, err)) ||
        (st = key_u32(f, a, "attention.sliding_window", &window, 1, err)) ||
        (st = key_f32(f, a, "rope.freq_base", &hp->rope_base, err)) ||
        (st = key_f32(f, a, "rope.freq_base_swa", &hp->rope_base_local, err)) ||
        (st = key_f32(f, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps, err)) ||
        (st = read_rope_scaling(f, hp, err)))
        return st;
    n_kv_head = n_head;
    if ((st = key_u32(f, a, "attention.head_count_kv", &n_kv_head, 1, err)))
        return st;

    /* Bounds that keep every later size computation far from overflow. */
    if (n_layer < 1 || n_layer > 4096 || dim < 1 || dim > 65536 || n_head < 1 || n_head > dim || n_kv_head < 1 ||
        n_kv_head > n_head || n_head % n_kv_head || ffn < 1 || ffn > 1048576 || ctx < 1 || ctx > (1u << 24))
        return borg_fail(err, BORG_EINPUT,
                         "%s: implausible hyper-parameters (layers %u, dim %u, heads %u/%u, ffn %u, context %u)",
                         gguf_path(f), n_layer, dim, n_head, n_kv_head, ffn, ctx);
    if (!head_dim)
        head_dim = dim / n_head;
    if (value_dim && value_dim != head_dim)
        return borg_fail(err, BORG_EINPUT,
                         "%s: %s.attention.value_length %u differs from the key length %u (not implemented)",
                         gguf_path(f), a, value_dim, head_dim);
    if (!rope_dim)
        rope_dim = head_dim;
    if (head_dim < 2 || head_dim > 1024 || head_dim % 2 || rope_dim > head_dim || rope_dim % 2)
        return borg_fail(err, BORG_EINPUT, "%s: unsupported head size %u (rope %u)", gguf_path(f), head_dim, rope_dim);
    if (window && !fam->swa_pattern)
        return borg_fail(err, BORG_EINPUT,
                         "%s: %s.attention.sliding_window is set, and a sliding window is not implemented for %s",
                         gguf_path(f), a, a);
    if (!(hp->rope_base > 0.0f) || !(hp->rms_eps > 0.0f) || !isfinite(hp->rope_base) ||
        (window && (!(hp->rope_base_local > 0.0f) || !isfinite(hp->rope_base_local))))
        return borg_fail(err, BORG_EINPUT, "%s: invalid rope base %g (local %g) or RMS epsilon %g", gguf_path(f),
                         hp->rope_base, hp->rope_base_local, hp->rms_eps);
    if (fam->swa_pattern && !window)
        return borg_fail(err, BORG_EINPUT, "%s: %s.attention.sliding_window is missing (%s needs it)", gguf_path(f), a,
                         a);
    if (window > (1u << 24))
        return borg_fail(err, BORG_EINPUT, "%s: sliding window %u is implausible", gguf_path(f), window);
    hp->n_layer = (int)n_layer;
    hp->dim = (int)dim;
    hp->n_head = (int)n_head;
    hp->n_kv_head = (int)n_kv_head;
    hp->head_dim = (int)head_dim;
    hp->ffn_dim = (int)ffn;
    hp->ctx_len = (int32_t)ctx;
    hp->rope_dim = (int)rope_dim;
    hp->window = (int32_t)window;
    hp->n_vocab = 0; /* set from the embedding by model_load */
    hp->embed_scale = fam->embed_scale ? sqrtf((float)dim) : 1.0f;
    /* llama.cpp scales Gemma 3 27B (62 layers) by its query_pre_attn_scalar
     * of dim / heads, every other model by the key length. */
    if (fam->embed_scale && n_layer == 62)
        hp->attn_scale = 1.0f / sqrtf((float)(dim / n_head));
    else
        hp->attn_scale = 1.0f / sqrtf((float)head_dim);

    const gguf_tensor *freqs = gguf_tensor_find(f, "rope_freqs.weight");
    if (freqs && fam->rope_freqs) {
        if (freqs->type != 0 || freqs->ne[0] != rope_dim / 2 || freqs->ne[1] != 1 || freqs->ne[2] != 1 ||
            freqs->ne[3] != 1)
            return borg_fail(err, BORG_EINPUT, "%s: tensor 'rope_freqs.weight' must be %u F32 values", gguf_path(f),
                             rope_dim / 2);
        hp->has_rope_freqs = 1;
    }
    if ((st = check_keys(f, hp, err)) || (st = check_tensors(f, hp, err)))
        return st;
    return BORG_OK;
}

int32_t family_layer_window(const borg_hparams *hp, int l)
{
    const int p = hp->family->swa_pattern;
    return hp->window && p && l % p != p - 1 ? hp->window : 0;
}
