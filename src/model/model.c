#include "borg/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "borg/matmul.h"
#include "borg/ops.h"
#include "borg/quant.h"

typedef struct {
    const float *attn_norm;
    const float *ffn_norm;
    borg_mat wq, wk, wv, wo;
    borg_mat w_gate, w_up, w_down;
} layer_weights;

/* Growable scratch for a micro-batch; sized by the largest batch seen. */
typedef struct {
    int cap_tokens;
    float *xb;     /* normed input, n x dim */
    float *q;      /* n x n_head*head_dim */
    float *k, *v;  /* n x kv_dim */
    float *att;    /* n x n_head*head_dim */
    float *proj;   /* n x dim */
    float *gate;   /* n x ffn */
    float *up;     /* n x ffn */
    float *angles; /* n x rope_dim: cos, sin of each rotary pair, per token */
    int32_t cap_scores;
    int score_threads;
    float *scores; /* score_threads x cap_scores */
} scratch;

struct borg_model {
    borg_hparams hp;
    const gguf_file *file;
    int layer_begin, layer_end;
    layer_weights *layers;
    int with_embed, with_head;
    borg_mat tok_embd;
    borg_mat output;
    const float *output_norm;
    float **owned; /* f32 copies of norm vectors stored as F16/BF16 */
    int n_owned;
    size_t weight_bytes;
    scratch s;
};

static const char *const k_supported_arch[] = {"llama"};

static borg_status key_u32(const gguf_file *f, const char *arch, const char *suffix, uint32_t *out,
                           int optional, borg_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (optional && !gguf_has_key(f, key))
        return BORG_OK;
    return gguf_get_u32(f, key, out, err);
}

static borg_status key_f32(const gguf_file *f, const char *arch, const char *suffix, float *out,
                           borg_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!gguf_has_key(f, key))
        return BORG_OK;
    return gguf_get_f32(f, key, out, err);
}

borg_status model_hparams(const gguf_file *f, borg_hparams *hp, borg_err *err)
{
    memset(hp, 0, sizeof *hp);
    gguf_str arch;
    borg_status st = gguf_get_str(f, "general.architecture", &arch, err);
    if (st)
        return st;
    int known = 0;
    for (size_t i = 0; i < sizeof k_supported_arch / sizeof *k_supported_arch; i++)
        if (arch.len == strlen(k_supported_arch[i]) && !memcmp(arch.ptr, k_supported_arch[i], arch.len))
            known = 1;
    if (!known || arch.len >= sizeof hp->arch)
        return borg_fail(err, BORG_EINPUT, "%s: unsupported architecture '%.*s' (supported: llama)",
                         gguf_path(f), (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    memcpy(hp->arch, arch.ptr, arch.len);
    const char *a = hp->arch;

    uint32_t n_layer = 0, dim = 0, n_head = 0, n_kv_head = 0, ffn = 0, ctx = 2048;
    uint32_t head_dim = 0, rope_dim = 0, n_vocab = 0;
    hp->rope_base = 10000.0f;
    hp->rms_eps = 1e-5f;
    if ((st = key_u32(f, a, "block_count", &n_layer, 0, err)) ||
        (st = key_u32(f, a, "embedding_length", &dim, 0, err)) ||
        (st = key_u32(f, a, "attention.head_count", &n_head, 0, err)) ||
        (st = key_u32(f, a, "feed_forward_length", &ffn, 0, err)) ||
        (st = key_u32(f, a, "context_length", &ctx, 1, err)) ||
        (st = key_u32(f, a, "attention.key_length", &head_dim, 1, err)) ||
        (st = key_u32(f, a, "rope.dimension_count", &rope_dim, 1, err)) ||
        (st = key_u32(f, a, "vocab_size", &n_vocab, 1, err)) ||
        (st = key_f32(f, a, "rope.freq_base", &hp->rope_base, err)) ||
        (st = key_f32(f, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps, err)))
        return st;
    n_kv_head = n_head;
    if ((st = key_u32(f, a, "attention.head_count_kv", &n_kv_head, 1, err)))
        return st;

    /* Bounds that keep every later size computation far from overflow. */
    if (n_layer < 1 || n_layer > 4096 || dim < 1 || dim > 65536 || n_head < 1 || n_head > dim ||
        n_kv_head < 1 || n_kv_head > n_head || n_head % n_kv_head || ffn < 1 || ffn > 1048576 ||
        ctx < 1 || ctx > (1u << 24))
        return borg_fail(err, BORG_EINPUT,
                         "%s: implausible hyper-parameters (layers %u, dim %u, heads %u/%u, ffn %u, context %u)",
                         gguf_path(f), n_layer, dim, n_head, n_kv_head, ffn, ctx);
    if (!head_dim)
        head_dim = dim / n_head;
    if (!rope_dim)
        rope_dim = head_dim;
    if (head_dim < 2 || head_dim > 1024 || head_dim % 2 || rope_dim > head_dim || rope_dim % 2)
        return borg_fail(err, BORG_EINPUT, "%s: unsupported head size %u (rope %u)", gguf_path(f),
                         head_dim, rope_dim);
    if (!(hp->rope_base > 0.0f) || !(hp->rms_eps > 0.0f) || !isfinite(hp->rope_base))
        return borg_fail(err, BORG_EINPUT, "%s: invalid rope base %g or RMS epsilon %g", gguf_path(f),
                         hp->rope_base, hp->rms_eps);
    hp->n_layer = (int)n_layer;
    hp->dim = (int)dim;
    hp->n_head = (int)n_head;
    hp->n_kv_head = (int)n_kv_head;
    hp->head_dim = (int)head_dim;
    hp->ffn_dim = (int)ffn;
    hp->ctx_len = (int32_t)ctx;
    hp->rope_dim = (int)rope_dim;
    hp->n_vocab = (int)n_vocab; /* 0 until the embedding is seen */
    hp->rope_neox = 0;
    return BORG_OK;
}

static borg_status bind_matrix(borg_model *m, const char *name, int64_t cols, int64_t rows,
                               borg_mat *out, borg_err *err)
{
    const gguf_tensor *t = gguf_tensor_find(m->file, name);
    if (!t)
        return borg_fail(err, BORG_EINPUT, "%s: missing tensor '%s'", gguf_path(m->file), name);
    if (t->n_dims != 2 || t->ne[0] != cols || (rows >= 0 && t->ne[1] != rows))
        return borg_fail(err, BORG_EINPUT, "%s: tensor '%s' has shape [%lld, %lld] (%u dims), expected [%lld, %lld]",
                         gguf_path(m->file), name, (long long)t->ne[0], (long long)t->ne[1], t->n_dims,
                         (long long)cols, (long long)(rows >= 0 ? rows : t->ne[1]));
    out->data = t->data;
    out->type = (borg_dtype)t->type;
    out->cols = t->ne[0];
    out->rows = t->ne[1];
    out->row_bytes = dtype_row_bytes(out->type, out->cols);
    m->weight_bytes += t->nbytes;
    return BORG_OK;
}

static borg_status bind_vector(borg_model *m, const char *name, int64_t n, const float **out,
                               borg_err *err)
{
    const gguf_tensor *t = gguf_tensor_find(m->file, name);
    if (!t)
        return borg_fail(err, BORG_EINPUT, "%s: missing tensor '%s'", gguf_path(m->file), name);
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return borg_fail(err, BORG_EINPUT, "%s: tensor '%s' has %lld x %lld elements, expected a vector of %lld",
                         gguf_path(m->file), name, (long long)t->ne[0], (long long)t->ne[1], (long long)n);
    m->weight_bytes += t->nbytes;
    if (t->type == BORG_DT_F32) {
        *out = t->data;
        return BORG_OK;
    }
    float **owned = realloc(m->owned, sizeof *owned * (size_t)(m->n_owned + 1));
    if (!owned)
        return borg_fail(err, BORG_ENOMEM, "out of memory loading '%s'", name);
    m->owned = owned;
    float *copy = malloc(sizeof(float) * (size_t)n);
    if (!copy)
        return borg_fail(err, BORG_ENOMEM, "out of memory loading '%s'", name);
    dequantize_row((borg_dtype)t->type, t->data, copy, n);
    m->owned[m->n_owned++] = copy;
    *out = copy;
    return BORG_OK;
}

static borg_status bind_layer(borg_model *m, int l, layer_weights *w, borg_err *err)
{
    const borg_hparams *hp = &m->hp;
    const int64_t dim = hp->dim, q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_kv_head * hp->head_dim, ffn = hp->ffn_dim;
    char name[96];
    borg_status st;
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, l), name)
    if ((st = bind_vector(m, NAME("attn_norm.weight"), dim, &w->attn_norm, err)) ||
        (st = bind_vector(m, NAME("ffn_norm.weight"), dim, &w->ffn_norm, err)) ||
        (st = bind_matrix(m, NAME("attn_q.weight"), dim, q_dim, &w->wq, err)) ||
        (st = bind_matrix(m, NAME("attn_k.weight"), dim, kv_dim, &w->wk, err)) ||
        (st = bind_matrix(m, NAME("attn_v.weight"), dim, kv_dim, &w->wv, err)) ||
        (st = bind_matrix(m, NAME("attn_output.weight"), q_dim, dim, &w->wo, err)) ||
        (st = bind_matrix(m, NAME("ffn_gate.weight"), dim, ffn, &w->w_gate, err)) ||
        (st = bind_matrix(m, NAME("ffn_up.weight"), dim, ffn, &w->w_up, err)) ||
        (st = bind_matrix(m, NAME("ffn_down.weight"), ffn, dim, &w->w_down, err)))
        return st;
#undef NAME
    return BORG_OK;
}

borg_status model_load(const gguf_file *f, int layer_begin, int layer_end, int with_embed,
                       int with_head, borg_model **out, borg_err *err)
{
    borg_model *m = calloc(1, sizeof *m);
    if (!m)
        return borg_fail(err, BORG_ENOMEM, "out of memory loading the model");
    borg_status st = model_hparams(f, &m->hp, err);
    if (st)
        goto fail;
    if (layer_begin < 0 || layer_end > m->hp.n_layer || layer_begin > layer_end) {
        st = borg_fail(err, BORG_EUSAGE, "layer range [%d, %d) is outside the model's %d layers",
                       layer_begin, layer_end, m->hp.n_layer);
        goto fail;
    }
    m->file = f;
    m->layer_begin = layer_begin;
    m->layer_end = layer_end;
    m->with_embed = with_embed;
    m->with_head = with_head;

    /* The vocabulary size comes from the embedding matrix, which every stage
     * can read cheaply from the tensor table without touching its data. */
    const gguf_tensor *emb = gguf_tensor_find(f, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[0] != m->hp.dim || emb->ne[1] < 1 || emb->ne[1] > (1 << 24)) {
        st = borg_fail(err, BORG_EINPUT, "%s: tensor 'token_embd.weight' is %s (expected [%d, n_vocab])",
                       gguf_path(f), emb ? "misshapen" : "missing", m->hp.dim);
        goto fail;
    }
    m->hp.n_vocab = (int)emb->ne[1];

    int n = layer_end - layer_begin;
    m->layers = calloc(n ? (size_t)n : 1, sizeof *m->layers);
    if (!m->layers) {
        st = borg_fail(err, BORG_ENOMEM, "out of memory loading the model");
        goto fail;
    }
    for (int l = layer_begin; l < layer_end; l++)
        if ((st = bind_layer(m, l, &m->layers[l - layer_begin], err)))
            goto fail;
    if (with_embed && (st = bind_matrix(m, "token_embd.weight", m->hp.dim, -1, &m->tok_embd, err)))
        goto fail;
    if (with_head) {
        if ((st = bind_vector(m, "output_norm.weight", m->hp.dim, &m->output_norm, err)))
            goto fail;
        const char *head = gguf_tensor_find(f, "output.weight") ? "output.weight" : "token_embd.weight";
        if ((st = bind_matrix(m, head, m->hp.dim, m->hp.n_vocab, &m->output, err)))
            goto fail;
    }
    *out = m;
    return BORG_OK;
fail:
    model_free(m);
    return st;
}

void model_free(borg_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    scratch *s = &m->s;
    free(s->xb);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->att);
    free(s->proj);
    free(s->gate);
    free(s->up);
    free(s->scores);
    free(s->angles);
    free(m);
}

const borg_hparams *model_hp(const borg_model *m) { return &m->hp; }

size_t model_weight_bytes(const borg_model *m) { return m->weight_bytes; }

static int grow(float **p, size_t n)
{
    float *q = realloc(*p, n * sizeof(float));
    if (!q)
        return -1;
    *p = q;
    return 0;
}

static borg_status reserve_scratch(borg_model *m, int n, int32_t ctx, int threads, borg_err *err)
{
    scratch *s = &m->s;
    const borg_hparams *hp = &m->hp;
    if (n > s->cap_tokens) {
        size_t q_dim = (size_t)hp->n_head * hp->head_dim, kv_dim = (size_t)hp->n_kv_head * hp->head_dim;
        if (grow(&s->xb, (size_t)n * hp->dim) || grow(&s->q, n * q_dim) || grow(&s->k, n * kv_dim) ||
            grow(&s->v, n * kv_dim) || grow(&s->att, n * q_dim) || grow(&s->proj, (size_t)n * hp->dim) ||
            grow(&s->gate, (size_t)n * hp->ffn_dim) || grow(&s->up, (size_t)n * hp->ffn_dim) ||
            grow(&s->angles, (size_t)n * (hp->rope_dim > 0 ? hp->rope_dim : 1)))
            return borg_fail(err, BORG_ENOMEM, "out of memory for a batch of %d tokens", n);
        s->cap_tokens = n;
    }
    if (ctx > s->cap_scores || threads > s->score_threads) {
        int32_t c = ctx > s->cap_scores ? ctx : s->cap_scores;
        int t = threads > s->score_threads ? threads : s->score_threads;
        if (grow(&s->scores, (size_t)c * t))
            return borg_fail(err, BORG_ENOMEM, "out of memory for attention scores");
        s->cap_scores = c;
        s->score_threads = t;
    }
    return BORG_OK;
}

borg_status model_embed(borg_model *m, const int32_t *tokens, int n, float *x, borg_err *err)
{
    if (!m->with_embed)
        return borg_fail(err, BORG_EINTERNAL, "this stage has no embedding");
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
            return borg_fail(err, BORG_EINPUT, "token id %d is outside the vocabulary (0..%d)", (int)tokens[i],
                             m->hp.n_vocab - 1);
        dequantize_row(m->tok_embd.type,
                       (const char *)m->tok_embd.data + (size_t)tokens[i] * m->tok_embd.row_bytes,
                       x + (size_t)i * m->hp.dim, m->hp.dim);
    }
    return BORG_OK;
}

typedef struct {
    const borg_model *m;
    const borg_kvcache *kv;
    int layer;
    const int32_t *slot, *pos;
    int n; /* tokens */
} attn_job;

/* One item per (query head, token), head-major: a token's cost grows with
 * its position, so in a prefill the later tokens cost most, and a split of
 * token-major items would hand one thread most of the work. Each item reads
 * its slot's cache up to and including its own position, which this batch
 * has already written. */
static void attention_items(void *ctx, int64_t begin, int64_t end, int thread)
{
    const attn_job *job = ctx;
    const borg_model *m = job->m;
    const borg_hparams *hp = &m->hp;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_kv_head;
    const size_t q_dim = (size_t)hp->n_head * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scores = m->s.scores + (size_t)thread * m->s.cap_scores;
    for (int64_t it = begin; it < end; it++) {
        int h = (int)(it / job->n);
        int64_t i = it % job->n;
        int kvh = h / group;
        const float *k0 = kv_k(job->kv, job->layer, job->slot[i], 0) + (size_t)kvh * hd;
        const float *v0 = kv_v(job->kv, job->layer, job->slot[i], 0) + (size_t)kvh * hd;
        attend_head(m->s.att + i * q_dim + (size_t)h * hd, m->s.q + i * q_dim + (size_t)h * hd, k0, v0,
                    job->kv->kv_dim, job->pos[i] + 1, hd, scale, scores);
    }
}

static borg_status forward_layer(borg_model *m, borg_kvcache *kv, int l, float *x, const int32_t *slot,
                                 const int32_t *pos, int n, borg_pool *pool, borg_err *err)
{
    const borg_hparams *hp = &m->hp;
    const layer_weights *w = &m->layers[l];
    scratch *s = &m->s;
    const int dim = hp->dim, hd = hp->head_dim;
    const size_t q_dim = (size_t)hp->n_head * hd, kv_dim = (size_t)hp->n_kv_head * hd;

    for (int i = 0; i < n; i++)
        rmsnorm(s->xb + (size_t)i * dim, x + (size_t)i * dim, w->attn_norm, dim, hp->rms_eps);
    if (matmul(&w->wq, s->xb, n, s->q, pool) || matmul(&w->wk, s->xb, n, s->k, pool) ||
        matmul(&w->wv, s->xb, n, s->v, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory in layer %d", m->layer_begin + l);
    for (int i = 0; i < n; i++) {
        const float *cs = s->angles + (size_t)i * hp->rope_dim;
        for (int h = 0; h < hp->n_head; h++)
            rope_apply(s->q + i * q_dim + (size_t)h * hd, cs, hp->rope_dim, hp->rope_neox);
        for (int h = 0; h < hp->n_kv_head; h++)
            rope_apply(s->k + i * kv_dim + (size_t)h * hd, cs, hp->rope_dim, hp->rope_neox);
        memcpy(kv_k(kv, l, slot[i], pos[i]), s->k + i * kv_dim, kv_dim * sizeof(float));
        memcpy(kv_v(kv, l, slot[i], pos[i]), s->v + i * kv_dim, kv_dim * sizeof(float));
    }
    attn_job aj = {m, kv, l, slot, pos, n};
    pool_run(pool, attention_items, &aj, (int64_t)n * hp->n_head, 1);
    if (matmul(&w->wo, s->att, n, s->proj, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory in layer %d", m->layer_begin + l);
    vec_add(x, s->proj, (int64_t)n * dim);

    for (int i = 0; i < n; i++)
        rmsnorm(s->xb + (size_t)i * dim, x + (size_t)i * dim, w->ffn_norm, dim, hp->rms_eps);
    if (matmul(&w->w_gate, s->xb, n, s->gate, pool) || matmul(&w->w_up, s->xb, n, s->up, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory in layer %d", m->layer_begin + l);
    swiglu(s->gate, s->up, (int64_t)n * hp->ffn_dim);
    if (matmul(&w->w_down, s->gate, n, s->proj, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory in layer %d", m->layer_begin + l);
    vec_add(x, s->proj, (int64_t)n * dim);
    return BORG_OK;
}

borg_status model_forward(borg_model *m, borg_kvcache *kv, float *x, const int32_t *slot,
                          const int32_t *pos, int n, borg_pool *pool, borg_err *err)
{
    int n_local = m->layer_end - m->layer_begin;
    if (n_local == 0 || n == 0)
        return BORG_OK;
    if (kv->n_layers != n_local)
        return borg_fail(err, BORG_EINTERNAL, "KV cache has %d layers, stage has %d", kv->n_layers, n_local);
    for (int i = 0; i < n; i++)
        if (slot[i] < 0 || slot[i] >= kv->n_slots || pos[i] < 0 || pos[i] >= kv->slot_ctx)
            return borg_fail(err, BORG_EINPUT, "token %d has slot %d position %d outside the cache (%d slots x %d)",
                             i, (int)slot[i], (int)pos[i], kv->n_slots, (int)kv->slot_ctx);
    borg_status st = reserve_scratch(m, n, kv->slot_ctx, pool_threads(pool), err);
    if (st)
        return st;
    /* Every head of every layer rotates a token by the same angles. */
    for (int i = 0; i < n; i++)
        rope_angles(m->s.angles + (size_t)i * m->hp.rope_dim, m->hp.rope_dim, pos[i], m->hp.rope_base);
    for (int l = 0; l < n_local; l++)
        if ((st = forward_layer(m, kv, l, x, slot, pos, n, pool, err)))
            return st;
    return BORG_OK;
}

borg_status model_logits(borg_model *m, const float *x, int n, float *logits, borg_pool *pool,
                         borg_err *err)
{
    if (!m->with_head)
        return borg_fail(err, BORG_EINTERNAL, "this stage has no output head");
    borg_status st = reserve_scratch(m, n, 1, pool_threads(pool), err);
    if (st)
        return st;
    const int dim = m->hp.dim;
    for (int i = 0; i < n; i++)
        rmsnorm(m->s.xb + (size_t)i * dim, x + (size_t)i * dim, m->output_norm, dim, m->hp.rms_eps);
    if (matmul(&m->output, m->s.xb, n, logits, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory computing logits");
    return BORG_OK;
}
