#include "borg/sampler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "borg/cpu.h"

/* The passes over the whole vocabulary go CHUNK logits at a time through
 * flat loops the compiler vectorizes (one loop doing the clamp, exp_neg
 * and the sums, gcc 12 compiles into scalar code with a branch), and sum
 * into LANES accumulators: which accumulator adds which value, in which
 * order, is fixed by the code, not by the vector width. They are compiled
 * once per kernel path (vocab_passes below), with products never fused
 * into sums (-ffp-contract=off, CMakeLists.txt), so every path gives the
 * same bits. */
enum { CHUNK = 512, LANES = 8 };

/* Weights e^z below e^CLAMP_Z are taken as e^CLAMP_Z by the estimates:
 * a difference of at most 2^-115 a token, and exp_neg's scale stays a
 * normal float. */
#define CLAMP_Z -80.0f

/* The sorted prefix first holds the tokens within HEAD_REACH * T of the
 * top logit (weight e^-12 of the top's and more), then, only if a pick
 * needs more of them, WIDE_REACH * T, then every finite logit. */
#define HEAD_REACH 12.0f
#define WIDE_REACH 24.0f

/* Inlined into each path's passes, so compiled with its instructions. */
#define PASS_INLINE static inline __attribute__((always_inline))

enum { RADIX_BITS = 11, RADIX = 1 << RADIX_BITS, DIGITS = 3 };

typedef struct {
    float logit;
    int32_t id;
} candidate;

struct borg_sampler {
    int32_t n_vocab;
    candidate *cand;  /* the sorted prefix of the candidates */
    candidate *spare; /* the radix sort's other buffer */
    double *w;        /* weights of cand[0..), computed as a pick reaches them */
    uint32_t (*count)[RADIX];
};

borg_status sampler_create(int32_t n_vocab, borg_sampler **out, borg_err *err)
{
    borg_sampler *s = calloc(1, sizeof *s);
    if (s) {
        s->cand = malloc(sizeof *s->cand * (size_t)n_vocab);
        s->spare = malloc(sizeof *s->spare * (size_t)n_vocab);
        s->w = malloc(sizeof *s->w * (size_t)n_vocab);
        s->count = malloc(sizeof *s->count * DIGITS);
    }
    if (!s || !s->cand || !s->spare || !s->w || !s->count) {
        sampler_free(s);
        return borg_fail(err, BORG_ENOMEM, "out of memory for the sampler (%d tokens)", (int)n_vocab);
    }
    s->n_vocab = n_vocab;
    *out = s;
    return BORG_OK;
}

void sampler_free(borg_sampler *s)
{
    if (s) {
        free(s->cand);
        free(s->spare);
        free(s->w);
        free(s->count);
        free(s);
    }
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Uniform in [0, 1) from the top 53 bits. */
static double uniform(uint64_t seed, int64_t step)
{
    uint64_t r = splitmix64(splitmix64(seed) ^ (uint64_t)step);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

/* e^r 2^n for |r| <= ln(2) / 2 and an integer n in [-126, 0]: the Taylor
 * series of e^r to r^7, scaled by building 2^n's bits. */
PASS_INLINE float exp_parts(float r, float n)
{
    float e = 1.0f / 5040;
    e = e * r + 1.0f / 720;
    e = e * r + 1.0f / 120;
    e = e * r + 1.0f / 24;
    e = e * r + 1.0f / 6;
    e = e * r + 0.5f;
    e = e * r + 1.0f;
    e = e * r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale;
}

/* e^z = 2^n e^r with n = round(z / ln 2) (adding 1.5 * 2^23 rounds) and
 * r = z - n ln 2, ln 2 split in two (Cody and Waite) so that n * 0x1.63p-1
 * is exact. */
PASS_INLINE float exp_neg(float z)
{
    const float shift = 0x1.8p23f;
    float n = (z * 1.44269504f + shift) - shift;
    return exp_parts((z - n * 0x1.63p-1f) + n * 2.12194440e-4f, n);
}

float sampler_exp_neg(float z) { return exp_neg(z); }

/* Logits a scan looks at together: a scalar pass over them only where the
 * vectorized test finds one that matters. */
enum { SCAN = 64 };

/* The reference's argmax, `if (x[i] > x[best]) best = i` from best = 0:
 * the first index of the largest value, NaNs never winning unless x[0] is
 * one, and then nothing wins. */
PASS_INLINE int32_t argmax_body(const float *x, int32_t n)
{
    float lane[LANES];
    for (int j = 0; j < LANES; j++)
        lane[j] = x[0];
    int32_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
    float mx = x[0];
    for (int j = 0; j < LANES; j++)
        mx = lane[j] > mx ? lane[j] : mx;
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (i = 0; i + SCAN <= n; i += SCAN) {
        int hit = 0;
        for (int j = 0; j < SCAN; j++)
            hit |= x[i + j] == mx;
        if (hit)
            break;
    }
    for (; i < n; i++)
        if (x[i] == mx)
            return i;
    return 0;
}

/* Pads v[0, n) with zeros to a multiple of LANES (v holds CHUNK), and
 * adds it to the accumulators: acc[j] gets v[j], v[j + LANES], ... */
PASS_INLINE void add_lanes(double *acc, float *v, int n)
{
    for (; n % LANES; n++)
        v[n] = 0.0f;
    for (int i = 0; i < n; i += LANES)
        for (int j = 0; j < LANES; j++)
            acc[j] += v[i + j];
}

PASS_INLINE double sum_lanes(const double *acc)
{
    double s = 0.0;
    for (int j = 0; j < LANES; j++)
        s += acc[j];
    return s;
}

PASS_INLINE void exp_neg_all(float *z, int n)
{
    for (int i = 0; i < n; i++)
        z[i] = exp_neg(z[i]);
}

/* log(sum of e^(x[i] - mx)) + mx, through exp_neg: within 1e-6 of the
 * double-precision sum (test_sampler checks), far below a float's
 * resolution at the log-probabilities results carry. */
PASS_INLINE double log_sum_exp_body(const float *x, int32_t n, float mx)
{
    float e[CHUNK];
    double acc[LANES] = {0};
    for (int32_t i0 = 0; i0 < n; i0 += CHUNK) {
        int k = n - i0 < CHUNK ? (int)(n - i0) : CHUNK;
        for (int i = 0; i < k; i++) {
            float z = x[i0 + i] - mx;
            e[i] = z < CLAMP_Z ? CLAMP_Z : z;
        }
        exp_neg_all(e, k);
        add_lanes(acc, e, k);
    }
    return mx + log(sum_lanes(acc));
}

/* Ascending keys for descending logits; -0 and +0 share one, as the
 * definition's comparison holds them equal. */
static uint32_t desc_key(float f)
{
    f += 0.0f;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u & 0x80000000u ? u : u ^ 0x7fffffffu;
}

/* Sorts n candidates collected in ascending id order into the definition's
 * order: a least-significant-digit radix sort, stable, so that equal
 * logits keep ascending ids. */
static void sort_band(borg_sampler *s, candidate *a, int32_t n)
{
    memset(s->count, 0, sizeof *s->count * DIGITS);
    for (int32_t i = 0; i < n; i++) {
        uint32_t k = desc_key(a[i].logit);
        for (int d = 0; d < DIGITS; d++)
            s->count[d][(k >> (d * RADIX_BITS)) & (RADIX - 1)]++;
    }
    candidate *src = a, *dst = s->spare;
    for (int d = 0; d < DIGITS && n > 0; d++) {
        uint32_t *c = s->count[d];
        int shift = d * RADIX_BITS;
        if (c[(desc_key(src[0].logit) >> shift) & (RADIX - 1)] == (uint32_t)n)
            continue; /* every key has this digit */
        for (uint32_t b = 0, at = 0; b < RADIX; b++) {
            uint32_t k = c[b];
            c[b] = at;
            at += k;
        }
        for (int32_t i = 0; i < n; i++)
            dst[c[(desc_key(src[i].logit) >> shift) & (RADIX - 1)]++] = src[i];
        candidate *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, sizeof *a * (size_t)n);
}

/* The candidates of x with lo <= logit < hi, finite, into band in id
 * order; returns how many. */
PASS_INLINE int32_t band_body(const float *x, int32_t n, float lo, float hi, candidate *band)
{
    int32_t k = 0;
    for (int32_t i0 = 0; i0 < n; i0 += SCAN) {
        const int m = n - i0 < SCAN ? (int)(n - i0) : SCAN;
        int hit = 0;
        for (int j = 0; j < m; j++)
            hit |= (x[i0 + j] >= lo) & (x[i0 + j] < hi);
        for (int j = 0; hit && j < m; j++) {
            const float l = x[i0 + j];
            if (l >= lo && l < hi && isfinite(l))
                band[k++] = (candidate){l, i0 + j};
        }
    }
    return k;
}

/* The finite logits below `below`, counted, and their weights e^z, z =
 * (logit - top) / temperature, estimated: each as exp_parts(r, n), with n
 * = round(z / ln 2) and r = z - n ln 2 in double (ln 2 in two parts as in
 * exp_neg), then rounded to float (by at most 2^-26, r being below 0.35):
 * an error below 2^-22 (exp_parts) + 2^-26 of the weight (z in double is a
 * rounding or two from the definition's), bounded by estimate_tail as
 * 2^-21, or 2^-115 for a clamped z. */
PASS_INLINE void tail_body(const float *x, int32_t n, float below, float top_f, double inv_t, double *sum_out,
                           double *count_out)
{
    const double top = top_f, shift = 0x1.8p52;
    float l[CHUNK], in[CHUNK], r[CHUNK], pow2[CHUNK], w[CHUNK];
    double z[CHUNK], sum[LANES] = {0}, count[LANES] = {0};
    for (int32_t i0 = 0; i0 < n; i0 += CHUNK) {
        int k = n - i0 < CHUNK ? (int)(n - i0) : CHUNK;
        for (int i = 0; i < k; i++) {
            float tail = x[i0 + i] < below ? 1.0f : 0.0f;
            tail = fabsf(x[i0 + i]) <= FLT_MAX ? tail : 0.0f;
            in[i] = tail;
            l[i] = tail > 0.0f ? x[i0 + i] : top_f; /* a finite z for the rest, zeroed below */
        }
        for (int i = 0; i < k; i++) {
            z[i] = ((double)l[i] - top) * inv_t;
            z[i] = z[i] >= CLAMP_Z ? z[i] : CLAMP_Z;
        }
        for (int i = 0; i < k; i++) {
            double m = (z[i] * 1.4426950408889634 + shift) - shift;
            pow2[i] = (float)m;
            r[i] = (float)((z[i] - m * 0x1.62e42feep-1) - m * 0x1.a39ef35793c76p-33);
        }
        for (int i = 0; i < k; i++)
            w[i] = exp_parts(r[i], pow2[i]) * in[i];
        add_lanes(sum, w, k);
        add_lanes(count, in, k);
    }
    *sum_out = sum_lanes(sum);
    *count_out = sum_lanes(count);
}

/* The passes over the whole vocabulary, one set per kernel path. */
typedef struct {
    int32_t (*argmax)(const float *x, int32_t n);
    double (*log_sum_exp)(const float *x, int32_t n, float mx);
    int32_t (*band)(const float *x, int32_t n, float lo, float hi, candidate *band);
    void (*tail)(const float *x, int32_t n, float below, float top, double inv_t, double *sum, double *count);
} vocab_passes;

#define VOCAB_PASSES(name, TARGET)                                                                               \
    TARGET static int32_t name##_argmax(const float *x, int32_t n) { return argmax_body(x, n); }                 \
    TARGET static double name##_log_sum_exp(const float *x, int32_t n, float mx)                                 \
    {                                                                                                            \
        return log_sum_exp_body(x, n, mx);                                                                       \
    }                                                                                                            \
    TARGET static int32_t name##_band(const float *x, int32_t n, float lo, float hi, candidate *band)            \
    {                                                                                                            \
        return band_body(x, n, lo, hi, band);                                                                    \
    }                                                                                                            \
    TARGET static void name##_tail(const float *x, int32_t n, float below, float top, double inv_t, double *sum, \
                                   double *count)                                                                \
    {                                                                                                            \
        tail_body(x, n, below, top, inv_t, sum, count);                                                          \
    }                                                                                                            \
    static const vocab_passes name = {name##_argmax, name##_log_sum_exp, name##_band, name##_tail};

VOCAB_PASSES(passes_portable, )
#if defined(__x86_64__) || defined(__i386__)
VOCAB_PASSES(passes_avx2, __attribute__((target("avx2"))))
/* gcc keeps to 256-bit vectors on AVX-512 unless told otherwise; clang
 * takes no such target option. */
#ifdef __clang__
#define PASSES_AVX512 "avx512f,avx512bw,avx512dq,avx512vl"
#else
#define PASSES_AVX512 "avx512f,avx512bw,avx512dq,avx512vl,prefer-vector-width=512"
#endif
VOCAB_PASSES(passes_avx512, __attribute__((target(PASSES_AVX512))))
#endif

static const vocab_passes *passes(void)
{
#if defined(__x86_64__) || defined(__i386__)
    switch (cpu_isa()) {
    case BORG_ISA_AVX512: return &passes_avx512;
    case BORG_ISA_AVX2: return &passes_avx2;
    default: break;
    }
#endif
    return &passes_portable;
}

/* One pick: the candidates sorted so far, and what is known of the rest. */
typedef struct {
    borg_sampler *s;
    const vocab_passes *passes;
    const float *logits;
    float temperature;
    float top;         /* the largest finite logit; weights are relative to it */
    float floor;       /* cand[0, n_sorted) holds every finite logit >= floor */
    float head_floor;  /* floor after the first band */
    int bands;         /* bands sorted so far */
    int32_t n_sorted;  /* the sorted prefix */
    int32_t n_weighed; /* weights known: w[0, n_weighed) */
    int32_t n_head;    /* the first band */
    int32_t n_finite;  /* finite logits; -1 until estimate_tail has run */
    double tail;       /* estimated weight below head_floor */
    double tail_err;   /* a bound on its error */
} pick;

/* Sorts the next band of logits, [next threshold, floor), onto the end of
 * the prefix: each is below every logit already there, so the prefix stays
 * in the definition's order. */
static void extend(pick *c)
{
    float lo = c->bands == 0   ? c->top - HEAD_REACH * c->temperature
               : c->bands == 1 ? c->top - WIDE_REACH * c->temperature
                               : -INFINITY;
    candidate *band = c->s->cand + c->n_sorted;
    int32_t k = c->passes->band(c->logits, c->s->n_vocab, lo, c->floor, band);
    sort_band(c->s, band, k);
    if (c->bands++ == 0) {
        c->n_head = k;
        c->head_floor = lo;
    }
    c->n_sorted += k;
    c->floor = lo;
}

/* The weight of the i-th candidate in order, exactly as the definition
 * computes it; i must be below the number of finite logits. */
static double weight(pick *c, int32_t i)
{
    while (i >= c->n_sorted)
        extend(c);
    for (; c->n_weighed <= i; c->n_weighed++)
        c->s->w[c->n_weighed] = exp(((double)c->s->cand[c->n_weighed].logit - c->top) / c->temperature);
    return c->s->w[i];
}

/* Counts the finite logits below the first band and estimates their total
 * weight, with a bound on the estimate's error (tail_body). */
static void estimate_tail(pick *c)
{
    double s, k;
    c->passes->tail(c->logits, c->s->n_vocab, c->head_floor, c->top, 1.0 / c->temperature, &s, &k);
    c->n_finite = c->n_head + (int32_t)k;
    c->tail = s;
    c->tail_err = 0x1p-21 * s + 0x1p-115 * k;
}

static int32_t finite_count(pick *c)
{
    if (c->n_finite < 0)
        estimate_tail(c);
    return c->n_finite;
}

/* The sum of the first m weights, added in order as the definition adds them. */
static double prefix_sum(pick *c, int32_t m)
{
    double t = 0.0;
    for (int32_t i = 0; i < m; i++)
        t += weight(c, i);
    return t;
}

/* The definition's total weight of the first m candidates, within [lo, hi].
 * It is exact (lo == hi) unless the sum runs over the unsorted tail: then
 * it is the first band's sum (the definition's partial sum exactly) plus
 * the tail's estimate, give or take the estimate's error and what the
 * definition's own roundings, up to 2^-53 of the sum for each token added,
 * and those of this computation can move it. */
static void total(pick *c, int32_t m, double *lo, double *hi)
{
    if (m <= c->n_sorted || m < finite_count(c)) {
        *lo = *hi = prefix_sum(c, m);
        return;
    }
    double head = prefix_sum(c, c->n_head);
    double sum = head + c->tail + c->tail_err;
    double err = c->tail_err + ((double)(c->n_finite - c->n_head) * 0x1p-52 + 0x1p-50) * sum;
    *lo = head + c->tail - err;
    *hi = head + c->tail + err;
}

/* The definition's nucleus for the threshold x: tokens are kept while the
 * weight before them is below x. */
static int32_t nucleus(pick *c, int32_t m, double x)
{
    double cum = 0.0;
    int32_t keep = 0;
    while (keep < m && cum < x)
        cum += weight(c, keep++);
    return keep > 0 ? keep : 1;
}

/* The definition's draw for the target: the first token whose cumulative
 * weight passes it. */
static int32_t drawn(pick *c, int32_t m, double target)
{
    double cum = 0.0;
    for (int32_t i = 0; i < m; i++) {
        cum += weight(c, i);
        if (cum > target)
            return i;
    }
    return m - 1;
}

/* The definition's choice, as an index into the sorted candidates, or -1
 * when the tail's estimate leaves it open. Both thresholds (top_p * total,
 * u * total) grow with the total, and the nucleus and the draw grow with
 * them, so equal answers at both ends of the total's interval are the
 * answer. */
static int32_t choose(pick *c, const borg_sampling *p, double u)
{
    /* A top_k within the sorted prefix needs no count of the rest. */
    int32_t m = p->top_k > 0 && p->top_k <= c->n_sorted ? p->top_k : finite_count(c);
    if (p->top_k > 0 && p->top_k < m)
        m = p->top_k;
    if (p->min_p > 0.0f) {
        int32_t keep = 1;
        while (keep < m && weight(c, keep) >= p->min_p)
            keep++;
        m = keep;
    }
    double lo, hi;
    total(c, m, &lo, &hi);
    if (p->top_p < 1.0f) {
        int32_t keep = nucleus(c, m, p->top_p * hi);
        if (lo != hi && nucleus(c, m, p->top_p * lo) != keep)
            return -1;
        m = keep;
        lo = hi = prefix_sum(c, m);
    }
    int32_t i = drawn(c, m, u * hi);
    return lo != hi && drawn(c, m, u * lo) != i ? -1 : i;
}

int32_t sampler_pick(borg_sampler *s, const float *logits, const borg_sampling *p, int64_t step, float *logprob)
{
    const int32_t n = s->n_vocab;
    const vocab_passes *vp = passes();
    int32_t best = vp->argmax(logits, n), chosen = best;
    if (p->temperature > 0.0f && p->top_k != 1) {
        float top = logits[best];
        if (!isfinite(top)) {
            top = -INFINITY;
            for (int32_t i = 0; i < n; i++)
                if (isfinite(logits[i]) && logits[i] > top)
                    top = logits[i];
        }
        if (top > -INFINITY) { /* no finite logit leaves nothing to sample */
            pick c = {.s = s,
                      .passes = vp,
                      .logits = logits,
                      .temperature = p->temperature,
                      .top = top,
                      .floor = INFINITY,
                      .n_finite = -1};
            double u = uniform(p->seed, step);
            extend(&c);
            int32_t i = choose(&c, p, u);
            if (i < 0) {
                while (c.n_sorted < finite_count(&c))
                    extend(&c);
                i = choose(&c, p, u);
            }
            chosen = s->cand[i].id;
        }
    }
    if (logprob)
        *logprob = (float)(logits[chosen] - vp->log_sum_exp(logits, n, logits[best]));
    return chosen;
}
