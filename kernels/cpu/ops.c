#include "borg/ops.h"

#include <math.h>
#include <string.h>

#include "borg/matmul.h"
#include "ops_kernels.h"

void ops_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps)
{
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++)
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

void ops_softmax(float *x, int64_t n)
{
    float mx = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

void ops_swiglu(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void ops_geglu(float *gate, const float *up, int64_t n)
{
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = 0.5f * g * (1.0f + tanhf(c * (g + 0.044715f * g * g * g))) * up[i];
    }
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

void ops_attend_head_portable(float *out, const float *q, const float *k, const float *v, int64_t stride, int32_t ring,
                              int32_t lo, int32_t n_pos, int head_dim, float scale, float *scores)
{
    for (int32_t p = 0; p < n_pos; p++)
        scores[p] = vec_dot_f32(q, k + ((lo + p) % ring) * stride, head_dim) * scale;
    ops_softmax(scores, n_pos);
    memset(out, 0, sizeof(float) * (size_t)head_dim);
    for (int32_t p = 0; p < n_pos; p++) {
        const float *vp = v + ((lo + p) % ring) * stride;
        float a = scores[p];
        for (int d = 0; d < head_dim; d++)
            out[d] += a * vp[d];
    }
}

void ops_attend_head(float *out, const float *q, const float *k, const float *v, int64_t stride, int32_t ring,
                     int32_t lo, int32_t n_pos, int head_dim, float scale, float *scores)
{
#if defined(__x86_64__) || defined(__i386__)
    if (head_dim % 8 == 0 && matmul_uses_avx2()) {
        ops_attend_head_avx2(out, q, k, v, stride, ring, lo, n_pos, head_dim, scale, scores);
        return;
    }
#endif
    ops_attend_head_portable(out, q, k, v, stride, ring, lo, n_pos, head_dim, scale, scores);
}
