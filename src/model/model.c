#include "borg/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "borg/matmul.h"
#include "borg/ops.h"
#include "borg/quant.h"

typedef struct {
    const float *attn_norm, *q_norm, *k_norm, *attn_post_norm;
    const float *ffn_norm, *ffn_post_norm;
    const float *bq, *bk, *bv, *bo; /* NULL where the file has no bias */
    borg_mat wq, wk, wv, wo;
    borg_mat w_gate, w_up, w_down;
} layer_weights;

/* Growable scratch for a micro-batch; sized by the largest batch seen. */
typedef struct {
    int cap_tokens;
    float *xb;           /* normed input, n x dim */
    float *q;            /* n x n_head*head_dim */
    float *k, *v;        /* n x kv_dim */
    float *att;          /* n x n_head*head_dim */
    float *proj;         /* n x dim */
    float *gate;         /* n x ffn */
    float *up;           /* n x ffn */
    float *angles;       /* n x rope_dim: cos, sin of each rotary pair, per token (global layers) */
    float *angles_local; /* the same for sliding-window layers, whose rope differs */
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
    const float *rope_freqs; /* NULL, or a divisor per rotary pair of the global layers */
    float **owned;           /* f32 copies of norm vectors stored as F16/BF16 */
    int n_owned;
    size_t weight_bytes;
    size_t packed_bytes; /* repacked copies of matrices (matmul_prepare) */
    scratch s;
};

static borg_status bind_matrix(borg_model *m, const char *name, int64_t cols, int64_t rows, borg_mat *out,
                               borg_err *err)
{
    const gguf_tensor *t = gguf_tensor_find(m->file, name);
    if (!t)
        return borg_fail(err, BORG_EINPUT, "%s: missing tensor '%s'", gguf_path(m->file), name);
    if (t->n_dims != 2 || t->ne[0] != cols || (rows >= 0 && t->ne[1] != rows))
        return borg_fail(err, BORG_EINPUT, "%s: tensor '%s' has shape [%lld, %lld] (%u dims), expected [%lld, %lld]",
                         gguf_path(m->file), name, (long long)t->ne[0], (long long)t->ne[1], t->n_dims, (long long)cols,
                         (long long)(rows >= 0 ? rows : t->ne[1]));
    out->data = t->data;
    out->type = (borg_dtype)t->type;
    out->cols = t->ne[0];
    out->rows = t->ne[1];
    out->row_bytes = quant_dtype_row_bytes(out->type, out->cols);
    m->weight_bytes += t->nbytes;
    return BORG_OK;
}

static borg_status bind_vector(borg_model *m, const char *name, int64_t n, const float **out, borg_err *err)
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
    quant_dequantize_row((borg_dtype)t->type, t->data, copy, n);
    m->owned[m->n_owned++] = copy;
    *out = copy;
    return BORG_OK;
}

/* The layout the matrix kernels want, made once here rather than on
 * every call (matmul_prepare). */
static borg_status prepare_matrix(borg_model *m, borg_mat *w, borg_pool *pool, borg_err *err)
{
    borg_status st = matmul_prepare(w, pool, err);
    m->packed_bytes += matmul_prepared_bytes(w);
    return st;
}

/* Every tensor of layer l the family has: required ones must be there,
 * optional ones (biases) are bound when present; shapes are checked. */
static borg_status bind_layer(borg_model *m, int l, layer_weights *w, borg_pool *pool, borg_err *err)
{
    const borg_hparams *hp = &m->hp;
    const int64_t dim = hp->dim, hd = hp->head_dim, q_dim = (int64_t)hp->n_head * hd;
    const int64_t kv_dim = (int64_t)hp->n_kv_head * hd, ffn = hp->ffn_dim;
    /* A vector has length cols; a matrix is cols x rows. */
    const struct {
        layer_tensor t;
        const float **vec;
        borg_mat *mat;
        int64_t cols, rows;
    } spec[] = {
        {LT_ATTN_NORM, &w->attn_norm, NULL, dim, 0},
        {LT_Q, NULL, &w->wq, dim, q_dim},
        {LT_K, NULL, &w->wk, dim, kv_dim},
        {LT_V, NULL, &w->wv, dim, kv_dim},
        {LT_O, NULL, &w->wo, q_dim, dim},
        {LT_Q_BIAS, &w->bq, NULL, q_dim, 0},
        {LT_K_BIAS, &w->bk, NULL, kv_dim, 0},
        {LT_V_BIAS, &w->bv, NULL, kv_dim, 0},
        {LT_O_BIAS, &w->bo, NULL, dim, 0},
        {LT_Q_NORM, &w->q_norm, NULL, hd, 0},
        {LT_K_NORM, &w->k_norm, NULL, hd, 0},
        {LT_ATTN_POST_NORM, &w->attn_post_norm, NULL, dim, 0},
        {LT_FFN_NORM, &w->ffn_norm, NULL, dim, 0},
        {LT_GATE, NULL, &w->w_gate, dim, ffn},
        {LT_UP, NULL, &w->w_up, dim, ffn},
        {LT_DOWN, NULL, &w->w_down, ffn, dim},
        {LT_FFN_POST_NORM, &w->ffn_post_norm, NULL, dim, 0},
    };
    for (size_t i = 0; i < sizeof spec / sizeof *spec; i++) {
        tensor_use use = family_layer_tensor_use(hp->family, spec[i].t);
        char name[96];
        snprintf(name, sizeof name, "blk.%d.%s", l, family_layer_tensor_name(spec[i].t));
        if (use == TENSOR_UNUSED || (use == TENSOR_OPTIONAL && !gguf_tensor_find(m->file, name)))
            continue;
        borg_status st = spec[i].mat ? bind_matrix(m, name, spec[i].cols, spec[i].rows, spec[i].mat, err)
                                     : bind_vector(m, name, spec[i].cols, spec[i].vec, err);
        if (!st && spec[i].mat)
            st = prepare_matrix(m, spec[i].mat, pool, err);
        if (st)
            return st;
    }
    return BORG_OK;
}

static borg_status bind_rope_freqs(borg_model *m, borg_err *err)
{
    const int n = m->hp.rope_dim / 2;
    borg_status st = bind_vector(m, "rope_freqs.weight", n, &m->rope_freqs, err);
    for (int i = 0; !st && i < n; i++)
        if (!(m->rope_freqs[i] > 0.0f) || !isfinite(m->rope_freqs[i]))
            st = borg_fail(err, BORG_EINPUT, "%s: tensor 'rope_freqs.weight' has factor %d = %g (must be > 0)",
                           gguf_path(m->file), i, m->rope_freqs[i]);
    return st;
}

borg_status model_load(const gguf_file *f, int layer_begin, int layer_end, int with_embed, int with_head,
                       borg_pool *pool, borg_model **out, borg_err *err)
{
    borg_model *m = calloc(1, sizeof *m);
    if (!m)
        return borg_fail(err, BORG_ENOMEM, "out of memory loading the model");
    borg_status st = family_hparams(f, &m->hp, err);
    if (st)
        goto fail;
    if (layer_begin < 0 || layer_end > m->hp.n_layer || layer_begin > layer_end) {
        st = borg_fail(err, BORG_EUSAGE, "layer range [%d, %d) is outside the model's %d layers", layer_begin,
                       layer_end, m->hp.n_layer);
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
        st = borg_fail(err, BORG_EINPUT, "%s: tensor 'token_embd.weight' is %s (expected [%d, n_vocab])", gguf_path(f),
                       emb ? "misshapen" : "missing", m->hp.dim);
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
        if ((st = bind_layer(m, l, &m->layers[l - layer_begin], pool, err)))
            goto fail;
    if (with_embed && (st = bind_matrix(m, "token_embd.weight", m->hp.dim, -1, &m->tok_embd, err)))
        goto fail;
    if (m->hp.has_rope_freqs && layer_end > layer_begin && (st = bind_rope_freqs(m, err)))
        goto fail;
    if (with_head) {
        if ((st = bind_vector(m, "output_norm.weight", m->hp.dim, &m->output_norm, err)))
            goto fail;
        const char *head = gguf_tensor_find(f, "output.weight") ? "output.weight" : "token_embd.weight";
        if ((st = bind_matrix(m, head, m->hp.dim, m->hp.n_vocab, &m->output, err)) ||
            (st = prepare_matrix(m, &m->output, pool, err)))
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
    for (int l = 0; m->layers && l < m->layer_end - m->layer_begin; l++) {
        layer_weights *w = &m->layers[l];
        borg_mat *mats[] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof *mats; i++)
            matmul_release(mats[i]);
    }
    matmul_release(&m->output);
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
    free(s->angles);
    free(s->angles_local);
    free(m);
}

const borg_hparams *model_hp(const borg_model *m) { return &m->hp; }

size_t model_weight_bytes(const borg_model *m) { return m->weight_bytes; }

size_t model_packed_bytes(const borg_model *m) { return m->packed_bytes; }

borg_status model_kv_create(const borg_model *m, int n_slots, int32_t slot_ctx, int32_t max_chunk, borg_dtype dtype,
                            borg_kvcache *kv, borg_err *err)
{
    const borg_hparams *hp = &m->hp;
    int n = m->layer_end - m->layer_begin;
    int32_t *windows = malloc(sizeof *windows * (size_t)(n ? n : 1));
    if (!windows)
        return borg_fail(err, BORG_ENOMEM, "out of memory for the KV cache");
    for (int l = 0; l < n; l++)
        windows[l] = family_layer_window(hp, m->layer_begin + l);
    borg_status st = kv_create(n, n_slots, slot_ctx, hp->n_kv_head * hp->head_dim, windows, max_chunk, dtype, kv, err);
    free(windows);
    return st;
}

static borg_status grow(float **p, size_t n)
{
    float *q = realloc(*p, n * sizeof(float));
    if (!q)
        return BORG_ENOMEM;
    *p = q;
    return BORG_OK;
}

static borg_status reserve_scratch(borg_model *m, int n, borg_err *err)
{
    scratch *s = &m->s;
    const borg_hparams *hp = &m->hp;
    if (n > s->cap_tokens) {
        size_t q_dim = (size_t)hp->n_head * hp->head_dim, kv_dim = (size_t)hp->n_kv_head * hp->head_dim;
        if (grow(&s->xb, (size_t)n * hp->dim) || grow(&s->q, n * q_dim) || grow(&s->k, n * kv_dim) ||
            grow(&s->v, n * kv_dim) || grow(&s->att, n * q_dim) || grow(&s->proj, (size_t)n * hp->dim) ||
            grow(&s->gate, (size_t)n * hp->ffn_dim) || grow(&s->up, (size_t)n * hp->ffn_dim) ||
            grow(&s->angles, (size_t)n * hp->rope_dim) ||
            (hp->window && grow(&s->angles_local, (size_t)n * hp->rope_dim)))
            return borg_fail(err, BORG_ENOMEM, "out of memory for a batch of %d tokens", n);
        s->cap_tokens = n;
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
        float *xi = x + (size_t)i * m->hp.dim;
        quant_dequantize_row(m->tok_embd.type,
                             (const char *)m->tok_embd.data + (size_t)tokens[i] * m->tok_embd.row_bytes, xi, m->hp.dim);
        if (m->hp.embed_scale != 1.0f)
            for (int d = 0; d < m->hp.dim; d++)
                xi[d] *= m->hp.embed_scale;
    }
    return BORG_OK;
}

typedef struct {
    const borg_model *m;
    const borg_kvcache *kv;
    int layer; /* stage-local */
    const int32_t *slot, *pos;
    int n;     /* tokens */
    int heads; /* query heads per item: a KV head's group, or 1 */
} attn_job;

typedef struct {
    const borg_hparams *hp;
    float *gate;
    const float *up;
} ffn_act_job;

/* The FFN's activation over tokens [begin, end): elementwise, so the
 * threads' shares change no bit; in a prefill it was a single-threaded
 * tenth of the time. */
static void ffn_act_rows(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const ffn_act_job *a = ctx;
    const int64_t w = a->hp->ffn_dim;
    if (a->hp->family->act == BORG_ACT_GELU_TANH)
        ops_geglu(a->gate + begin * w, a->up + begin * w, (end - begin) * w);
    else
        ops_swiglu(a->gate + begin * w, a->up + begin * w, (end - begin) * w);
}

/* One item per (run of `heads` query heads of one KV head, token): a KV
 * head's group attends together, reading its cached rows once, unless the
 * batch has too few tokens to keep the threads busy that way (a decode
 * step); a head's answer is the same bits either way. A token's cost grows
 * with its position, so in a prefill the later tokens cost most; the
 * threads take contiguous ranges of items, so within a run of heads the
 * tokens are taken from both ends in turn (0, n-1, 1, n-2, ...), and any
 * range costs about its share. Each item reads its slot's cache up to and
 * including its own position (within its window on a sliding-window
 * layer), which this batch has already written. */
static void attention_items(void *ctx, int64_t begin, int64_t end, int thread)
{
    const attn_job *job = ctx;
    const borg_model *m = job->m;
    const borg_hparams *hp = &m->hp;
    const borg_kvcache *kv = job->kv;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_kv_head;
    const size_t q_dim = (size_t)hp->n_head * hd;
    const int32_t window = kv->window[job->layer];
    for (int64_t it = begin; it < end; it++) {
        const int h = (int)(it / job->n) * job->heads;
        const int64_t k = it % job->n, i = k % 2 ? job->n - 1 - k / 2 : k / 2;
        int32_t lo = window && job->pos[i] >= window ? job->pos[i] - window + 1 : 0;
        const ops_kv_rows rows = kv_head_rows(kv, job->layer, job->slot[i], h / group * hd);
        const size_t first = i * q_dim + (size_t)h * hd;
        ops_attend(m->s.att + first, m->s.q + first, job->heads, &rows, lo, job->pos[i] - lo + 1, hd, hp->attn_scale);
    }
}

typedef struct {
    float *out;
    const float *x, *w;
    int width;
    float eps;
} norm_job;

static void norm_rows(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const norm_job *j = ctx;
    for (int64_t i = begin; i < end; i++)
        ops_rmsnorm(j->out + (size_t)i * j->width, j->x + (size_t)i * j->width, j->w, j->width, j->eps);
}

/* Row by row, so the threads' shares change no bit. */
static void rmsnorm_rows(float *out, const float *x, const float *w, int n, int width, float eps, borg_pool *pool)
{
    norm_job j = {out, x, w, width, eps};
    pool_run(pool, norm_rows, &j, n, 16);
}

/* One transformer block over n tokens, x updated in place:
 *   x += [post_norm] o(attention(rope([norm] q(norm x)), rope([norm] k(norm x)), v(norm x)))
 *   x += [post_norm] down(act(gate(norm x)) * up(norm x))
 * where the bracketed norms and the biases are there when the family has them. */
static borg_status forward_layer(borg_model *m, borg_kvcache *kv, int l, float *x, const int32_t *slot,
                                 const int32_t *pos, int n, borg_pool *pool, borg_err *err)
{
    const borg_hparams *hp = &m->hp;
    const layer_weights *w = &m->layers[l];
    scratch *s = &m->s;
    const int dim = hp->dim, hd = hp->head_dim;
    const size_t q_dim = (size_t)hp->n_head * hd, kv_dim = (size_t)hp->n_kv_head * hd;
    const float *angles = family_layer_window(hp, m->layer_begin + l) ? s->angles_local : s->angles;

    rmsnorm_rows(s->xb, x, w->attn_norm, n, dim, hp->rms_eps, pool);
    const borg_mat *qkv[] = {&w->wq, &w->wk, &w->wv};
    float *const qkv_out[] = {s->q, s->k, s->v};
    if (matmul_n(qkv, 3, s->xb, n, qkv_out, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory in layer %d", m->layer_begin + l);
    if (w->bq)
        vec_add_rows(s->q, w->bq, n, (int64_t)q_dim);
    if (w->bk)
        vec_add_rows(s->k, w->bk, n, (int64_t)kv_dim);
    if (w->bv)
        vec_add_rows(s->v, w->bv, n, (int64_t)kv_dim);
    if (w->q_norm) {
        rmsnorm_rows(s->q, s->q, w->q_norm, n * hp->n_head, hd, hp->rms_eps, pool);
        rmsnorm_rows(s->k, s->k, w->k_norm, n * hp->n_kv_head, hd, hp->rms_eps, pool);
    }
    for (int i = 0; i < n; i++) {
        const float *cs = angles + (size_t)i * hp->rope_dim;
        for (int h = 0; h < hp->n_head; h++)
            ops_rope_apply(s->q + i * q_dim + (size_t)h * hd, cs, hp->rope_dim, hp->family->rope_neox);
        for (int h = 0; h < hp->n_kv_head; h++)
            ops_rope_apply(s->k + i * kv_dim + (size_t)h * hd, cs, hp->rope_dim, hp->family->rope_neox);
        kv_put(kv, l, slot[i], pos[i], s->k + i * kv_dim, s->v + i * kv_dim);
    }
    /* Fewer than 4 groups per thread leave threads idle at the end. */
    const int group = hp->n_head / hp->n_kv_head;
    const int heads = (int64_t)n * hp->n_kv_head >= 4 * pool_threads(pool) ? group : 1;
    attn_job aj = {m, kv, l, slot, pos, n, heads};
    pool_run(pool, attention_items, &aj, (int64_t)n * (hp->n_head / heads), 1);
    if (matmul(&w->wo, s->att, n, s->proj, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory in layer %d", m->layer_begin + l);
    if (w->bo)
        vec_add_rows(s->proj, w->bo, n, dim);
    if (w->attn_post_norm)
        rmsnorm_rows(s->proj, s->proj, w->attn_post_norm, n, dim, hp->rms_eps, pool);
    vec_add(x, s->proj, (int64_t)n * dim);

    rmsnorm_rows(s->xb, x, w->ffn_norm, n, dim, hp->rms_eps, pool);
    const borg_mat *gate_up[] = {&w->w_gate, &w->w_up};
    float *const gate_up_out[] = {s->gate, s->up};
    if (matmul_n(gate_up, 2, s->xb, n, gate_up_out, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory in layer %d", m->layer_begin + l);
    ffn_act_job fj = {hp, s->gate, s->up};
    pool_run(pool, ffn_act_rows, &fj, n, 4);
    if (matmul(&w->w_down, s->gate, n, s->proj, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory in layer %d", m->layer_begin + l);
    if (w->ffn_post_norm)
        rmsnorm_rows(s->proj, s->proj, w->ffn_post_norm, n, dim, hp->rms_eps, pool);
    vec_add(x, s->proj, (int64_t)n * dim);
    return BORG_OK;
}

/* A sliding-window layer's ring must still hold, when a token attends,
 * every key of its window, though the batch's later tokens of the same
 * slot have already been written: a slot's run of tokens may span at most
 * rows - window + 1 positions. */
static borg_status check_rings(const borg_kvcache *kv, const int32_t *slot, const int32_t *pos, int n, borg_err *err)
{
    for (int l = 0; l < kv->n_layers; l++) {
        if (!kv->window[l] || kv->rows[l] >= kv->slot_ctx)
            continue;
        for (int i = 0, j; i < n; i = j) {
            for (j = i + 1; j < n && slot[j] == slot[i]; j++)
                ;
            if (pos[j - 1] - pos[i] > kv->rows[l] - kv->window[l])
                return borg_fail(
                    err, BORG_EINPUT,
                    "slot %d brings %d positions in one batch; its sliding-window cache holds chunks of %d",
                    (int)slot[i], (int)(pos[j - 1] - pos[i] + 1), kv->rows[l] - kv->window[l] + 1);
        }
        break; /* every window layer has the same ring */
    }
    return BORG_OK;
}

borg_status model_forward(borg_model *m, borg_kvcache *kv, float *x, const int32_t *slot, const int32_t *pos, int n,
                          borg_pool *pool, borg_err *err)
{
    int n_local = m->layer_end - m->layer_begin;
    if (n_local == 0 || n == 0)
        return BORG_OK;
    if (kv->n_layers != n_local)
        return borg_fail(err, BORG_EINTERNAL, "KV cache has %d layers, stage has %d", kv->n_layers, n_local);
    for (int l = 0; l < n_local; l++)
        if (kv->window[l] != family_layer_window(&m->hp, m->layer_begin + l))
            return borg_fail(err, BORG_EINTERNAL, "KV cache layer %d has window %d, the model %d", l,
                             (int)kv->window[l], (int)family_layer_window(&m->hp, m->layer_begin + l));
    for (int i = 0; i < n; i++)
        if (slot[i] < 0 || slot[i] >= kv->n_slots || pos[i] < 0 || pos[i] >= kv->slot_ctx)
            return borg_fail(err, BORG_EINPUT, "token %d has slot %d position %d outside the cache (%d slots x %d)", i,
                             (int)slot[i], (int)pos[i], kv->n_slots, (int)kv->slot_ctx);
    borg_status st = check_rings(kv, slot, pos, n, err);
    if (!st)
        st = reserve_scratch(m, n, err);
    if (st)
        return st;
    /* Every head of every layer of a kind rotates a token by the same
     * angles; sliding-window layers have their own base and no scaling. */
    const borg_hparams *hp = &m->hp;
    for (int i = 0; i < n; i++) {
        ops_rope_angles(m->s.angles + (size_t)i * hp->rope_dim, hp->rope_dim, pos[i], hp->rope_base, hp->rope_scale,
                        m->rope_freqs);
        if (hp->window)
            ops_rope_angles(m->s.angles_local + (size_t)i * hp->rope_dim, hp->rope_dim, pos[i], hp->rope_base_local,
                            1.0f, NULL);
    }
    for (int l = 0; l < n_local; l++)
        if ((st = forward_layer(m, kv, l, x, slot, pos, n, pool, err)))
            return st;
    return BORG_OK;
}

borg_status model_final_norm(const borg_model *m, const float *x, int n, float *out, borg_err *err)
{
    if (!m->with_head)
        return borg_fail(err, BORG_EINTERNAL, "this stage has no final norm");
    const int dim = m->hp.dim;
    for (int i = 0; i < n; i++)
        ops_rmsnorm(out + (size_t)i * dim, x + (size_t)i * dim, m->output_norm, dim, m->hp.rms_eps);
    return BORG_OK;
}

borg_status model_logits(borg_model *m, const float *x, int n, float *logits, borg_pool *pool, borg_err *err)
{
    if (!m->with_head)
        return borg_fail(err, BORG_EINTERNAL, "this stage has no output head");
    borg_status st = reserve_scratch(m, n, err);
    if (st)
        return st;
    const int dim = m->hp.dim;
    for (int i = 0; i < n; i++)
        ops_rmsnorm(m->s.xb + (size_t)i * dim, x + (size_t)i * dim, m->output_norm, dim, m->hp.rms_eps);
    if (matmul(&m->output, m->s.xb, n, logits, pool))
        return borg_fail(err, BORG_ENOMEM, "out of memory computing logits");
    return BORG_OK;
}
