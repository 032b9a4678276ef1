/* Model families as data, and the hyper-parameters a GGUF file asks for.
 *
 * A family (GGUF `general.architecture`) is one row of a table: its rope
 * style, which optional norms sit where, its FFN activation, whether its
 * embeddings are scaled, its sliding-window pattern. The forward pass reads
 * the row and the tensors present; it has no per-architecture branches.
 *
 * Reading a file's hyper-parameters also checks that nothing in it changes
 * the arithmetic in a way this program does not implement: an unknown
 * architecture, an unknown `<arch>.*` metadata key, a rope scaling type
 * other than none/linear, a tensor the family does not use. Each is refused
 * by name (BORG_EINPUT) before any rank computes. */
#ifndef BORG_FAMILY_H
#define BORG_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"
#include "borg/gguf.h"

typedef enum {
    BORG_ACT_SILU = 0,     /* FFN: down(silu(gate x) * up x) */
    BORG_ACT_GELU_TANH = 1 /* FFN: down(gelu_tanh(gate x) * up x) */
} borg_activation;

typedef struct {
    const char *arch;
    int rope_neox;   /* rotate (x[i], x[i + d/2]) instead of adjacent pairs */
    int qk_norm;     /* per-head RMSNorm of q and k before rope */
    int post_norms;  /* RMSNorm of the attention and FFN outputs before each residual add */
    int embed_scale; /* embeddings multiplied by sqrt(dim) */
    borg_activation act;
    int rope_freqs;      /* may carry rope_freqs.weight (Llama 3.x frequency factors) */
    int swa_pattern;     /* with a sliding window, layer l is global iff l % swa_pattern == swa_pattern - 1 */
    float swa_rope_base; /* rope base of the sliding-window layers, unless the file gives one */
} borg_family;

typedef struct {
    char arch[32];
    const borg_family *family;
    int n_layer;
    int dim;
    int n_head;
    int n_kv_head;
    int head_dim;
    int ffn_dim;
    int n_vocab;
    int32_t ctx_len;
    int rope_dim;
    float rope_base;       /* global layers */
    float rope_base_local; /* sliding-window layers */
    float rope_scale;      /* linear rope scaling: positions times this (1 / factor); 1 without */
    float rms_eps;
    float attn_scale;   /* multiplies q . k */
    float embed_scale;  /* multiplies the embeddings (1 but for gemma) */
    int32_t window;     /* sliding window of the local layers (a query sees this many keys); 0: none */
    int has_rope_freqs; /* rope_freqs.weight divides the global layers' frequencies */
} borg_hparams;

/* The tensors of one layer, blk.<l>.<name>. */
typedef enum {
    LT_ATTN_NORM,
    LT_Q,
    LT_K,
    LT_V,
    LT_O,
    LT_Q_BIAS,
    LT_K_BIAS,
    LT_V_BIAS,
    LT_O_BIAS,
    LT_Q_NORM,
    LT_K_NORM,
    LT_ATTN_POST_NORM,
    LT_FFN_NORM,
    LT_GATE,
    LT_UP,
    LT_DOWN,
    LT_FFN_POST_NORM,
    LT_COUNT
} layer_tensor;

typedef enum { TENSOR_UNUSED = 0, TENSOR_OPTIONAL = 1, TENSOR_REQUIRED = 2 } tensor_use;

/* "attn_q.weight" etc. */
const char *family_layer_tensor_name(layer_tensor t);
/* Whether a family's layers have tensor t. */
tensor_use family_layer_tensor_use(const borg_family *fam, layer_tensor t);

/* The row for an architecture name; NULL when unknown. */
const borg_family *family_find(const char *arch, size_t len);

/* Names of the families this program implements, comma-separated. */
const char *family_names(void);

/* Reads and checks the hyper-parameters, the architecture-specific
 * metadata keys and the tensor names of f, as described above. */
borg_status family_hparams(const gguf_file *f, borg_hparams *hp, borg_err *err);

/* The sliding window of layer l: hp->window for a local layer, 0 for a
 * layer that attends to every position. */
int32_t family_layer_window(const borg_hparams *hp, int l);

#endif
