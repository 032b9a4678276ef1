/* e^x eight lanes at a time, shared by the AVX2 attention and activation
 * kernels; private to kernels/cpu, x86 builds only. */
#ifndef BORG_KERNELS_EXP_AVX2_H
#define BORG_KERNELS_EXP_AVX2_H

#include <immintrin.h>

/* Within 2 ulp: Cephes' expf (x = n ln2 + r with ln2 in two parts,
 * |r| <= ln2 / 2, a degree-5 polynomial in r, 2^n put in the exponent
 * bits). x is clamped to [-87, 88], where 2^n stays a normal float: below,
 * e^-87 (~1.6e-38) is nothing against the terms it meets (a softmax's
 * maximum is 1, a sigmoid's 1 + e^x >= 1); above, e^88 (~1.7e38) still
 * makes 1 / (1 + e^x) round to the zero it tends to. */
static inline __attribute__((always_inline, target("avx2,fma"))) __m256 exp_avx2(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

#endif
