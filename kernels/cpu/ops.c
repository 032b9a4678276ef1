#include "borg/ops.h"

#include <math.h>
#include <string.h>

#include "borg/matmul.h"
#include "ops_kernels.h"

/* The sum of squares in double, as eight running sums (element i into sum
 * i % 8) added in a fixed order at the end: one sum was a chain of
 * dependent adds, 2% of a prefill; eight keep the adders busy, vectorize
 * on any path and give the same bits on every one. */
void ops_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps)
{
    double part[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            part[k] += (double)x[i + k] * x[i + k];
    for (int k = 0; i < n; i++, k++)
        part[k] += (double)x[i] * x[i];
    const double ss = ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

void ops_rope_angles(float *cs, int rot_dim, int32_t pos, float base, float scale, const float *factors)
{
    for (int i = 0; i < rot_dim / 2; i++) {
        /* double keeps large positions from drifting (pos * theta grows). */
        double theta = (double)pos * pow((double)base, -2.0 * i / rot_dim) * scale;
        if (factors)
            theta /= factors[i];
        cs[2 * i] = (float)cos(theta);
        cs[2 * i + 1] = (float)sin(theta);
    }
}

void ops_rope_apply(float *x, const float *cs, int rot_dim, int neox)
{
    int half = rot_dim / 2;
    for (int i = 0; i < half; i++) {
        float c = cs[2 * i], s = cs[2 * i + 1];
        int a = neox ? i : 2 * i;
        int b = neox ? i + half : 2 * i + 1;
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }
}

void ops_swiglu_portable(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void ops_geglu_portable(float *gate, const float *up, int64_t n)
{
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = 0.5f * g * (1.0f + tanhf(c * (g + 0.044715f * g * g * g))) * up[i];
    }
}

void ops_swiglu(float *gate, const float *up, int64_t n)
{
#if defined(__x86_64__) || defined(__i386__)
    if (matmul_uses_avx2()) {
        ops_swiglu_avx2(gate, up, n);
        return;
    }
#endif
    ops_swiglu_portable(gate, up, n);
}

void ops_geglu(float *gate, const float *up, int64_t n)
{
#if defined(__x86_64__) || defined(__i386__)
    if (matmul_uses_avx2()) {
        ops_geglu_avx2(gate, up, n);
        return;
    }
#endif
    ops_geglu_portable(gate, up, n);
}

void vec_add_rows(float *x, const float *bias, int64_t n, int64_t width)
{
    for (int64_t i = 0; i < n; i++)
        vec_add(x + i * width, bias, width);
}

void vec_add(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

static float kv_elem(const void *rows, borg_dtype t, int64_t i)
{
    return t == BORG_DT_F16 ? quant_f16_to_f32(((const uint16_t *)rows)[i]) : ((const float *)rows)[i];
}

static void attend_head_portable(float *out, const float *q, const ops_kv_rows *kv, int32_t lo, int32_t n_pos,
                                 int head_dim, float scale)
{
    float s[OPS_ATTN_TILE];
    float mx = -INFINITY, sum = 0;
    memset(out, 0, sizeof(float) * (size_t)head_dim);
    for (int32_t t0 = 0; t0 < n_pos; t0 += OPS_ATTN_TILE) {
        const int n = n_pos - t0 < OPS_ATTN_TILE ? n_pos - t0 : OPS_ATTN_TILE;
        float tile_mx = -INFINITY;
        for (int j = 0; j < n; j++) {
            const int64_t row = (int64_t)((lo + t0 + j) % kv->ring) * kv->stride;
            float d = 0;
            for (int e = 0; e < head_dim; e++)
                d += q[e] * kv_elem(kv->k, kv->type, row + e);
            s[j] = d * scale;
            tile_mx = s[j] > tile_mx ? s[j] : tile_mx;
        }
        /* A larger maximum rescales what the earlier tiles added. */
        if (tile_mx > mx) {
            const float c = expf(mx - tile_mx);
            sum *= c;
            for (int e = 0; e < head_dim; e++)
                out[e] *= c;
            mx = tile_mx;
        }
        for (int j = 0; j < n; j++) {
            const int64_t row = (int64_t)((lo + t0 + j) % kv->ring) * kv->stride;
            const float p = expf(s[j] - mx);
            sum += p;
            for (int e = 0; e < head_dim; e++)
                out[e] += p * kv_elem(kv->v, kv->type, row + e);
        }
    }
    const float inv = 1.0f / sum;
    for (int e = 0; e < head_dim; e++)
        out[e] *= inv;
}

void ops_attend_portable(float *out, const float *q, int n_q, const ops_kv_rows *kv, int32_t lo, int32_t n_pos,
                         int head_dim, float scale)
{
    for (int h = 0; h < n_q; h++)
        attend_head_portable(out + (size_t)h * head_dim, q + (size_t)h * head_dim, kv, lo, n_pos, head_dim, scale);
}

void ops_attend(float *out, const float *q, int n_q, const ops_kv_rows *kv, int32_t lo, int32_t n_pos, int head_dim,
                float scale)
{
#if defined(__x86_64__) || defined(__i386__)
    if (head_dim % 8 == 0 && matmul_uses_avx2()) {
        ops_attend_avx2(out, q, n_q, kv, lo, n_pos, head_dim, scale);
        return;
    }
#endif
    ops_attend_portable(out, q, n_q, kv, lo, n_pos, head_dim, scale);
}
