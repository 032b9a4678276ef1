/* The FFN activations on AVX2/FMA, eight elements at a time: silu(g) and
 * the tanh form of gelu(g) are both g / (1 + e^-z), z = g for silu and
 * z = 2 sqrt(2/pi) (g + 0.044715 g^3) for gelu (0.5 (1 + tanh(u)) is the
 * sigmoid of 2u), with exp_avx2 in place of expf: libm's scalar expf was
 * most of the activation's time, 6% of a prefill. */
#include "ops_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "exp_avx2.h"

#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* gate[i] = gate[i] / (1 + e^-z(gate[i])) * up[i]; the tail of n % 8
 * elements goes through the same lanes from a padded copy. */
AVX2_INLINE void gated(float *gate, const float *up, int64_t n, const int GELU)
{
    const __m256 one = _mm256_set1_ps(1.0f), c = _mm256_set1_ps(-2.0f * 0.7978845608028654f),
                 k = _mm256_set1_ps(0.044715f);
    for (int64_t i = 0; i < n; i += 8) {
        float g8[8] = {0}, u8[8] = {0};
        const int tail = n - i < 8;
        if (tail)
            for (int j = 0; j < n - i; j++)
                g8[j] = gate[i + j], u8[j] = up[i + j];
        const __m256 g = _mm256_loadu_ps(tail ? g8 : gate + i), u = _mm256_loadu_ps(tail ? u8 : up + i);
        const __m256 mz = GELU ? _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, g), _mm256_mul_ps(g, g), g))
                               : _mm256_sub_ps(_mm256_setzero_ps(), g);
        const __m256 y = _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, exp_avx2(mz))), u);
        if (!tail) {
            _mm256_storeu_ps(gate + i, y);
            continue;
        }
        _mm256_storeu_ps(g8, y);
        for (int j = 0; j < n - i; j++)
            gate[i + j] = g8[j];
    }
}

__attribute__((target("avx2,fma"))) void ops_swiglu_avx2(float *gate, const float *up, int64_t n)
{
    gated(gate, up, n, 0);
}

__attribute__((target("avx2,fma"))) void ops_geglu_avx2(float *gate, const float *up, int64_t n)
{
    gated(gate, up, n, 1);
}
#endif
