/* Sampling: greedy is argmax, draws are reproducible per (seed, step), and
 * each truncation keeps exactly the tokens it should. The sampler draws
 * exactly what the sort-based sampler it replaced drew (kept below as the
 * reference) over random logits and settings, and its log-probabilities
 * are those of the double-precision sum, on every kernel path alike. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "borg/cpu.h"
#include "borg/sampler.h"
#include "check.h"

enum { V = 50 };

/* The reference: the sampler as it was, sorting every finite logit, split
 * in two so that one sort serves many draws. */
typedef struct {
    float logit;
    int32_t id;
} ref_candidate;

static uint64_t ref_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double ref_uniform(uint64_t seed, int64_t step)
{
    uint64_t r = ref_splitmix64(ref_splitmix64(seed) ^ (uint64_t)step);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

static int ref_by_logit_desc(const void *a, const void *b)
{
    const ref_candidate *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static double ref_log_sum_exp(const float *logits, int32_t n, float max)
{
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    return max + log(sum);
}

static int32_t ref_argmax(const float *logits, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

/* The finite logits, sorted; returns how many. */
static int32_t ref_sort(const float *logits, int32_t n, ref_candidate *cand)
{
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++)
        if (isfinite(logits[i]))
            cand[m++] = (ref_candidate){logits[i], i};
    qsort(cand, (size_t)m, sizeof *cand, ref_by_logit_desc);
    return m;
}

static int32_t ref_draw(const ref_candidate *cand, int32_t m, int32_t best, const borg_sampling *p, int64_t step)
{
    if (!(p->temperature > 0.0f && p->top_k != 1))
        return best;
    if (p->top_k > 0 && p->top_k < m)
        m = p->top_k;
    float top = cand[0].logit;
    if (p->min_p > 0.0f) {
        int32_t keep = 1;
        while (keep < m && exp(((double)cand[keep].logit - top) / p->temperature) >= p->min_p)
            keep++;
        m = keep;
    }
    double total = 0.0;
    for (int32_t i = 0; i < m; i++)
        total += exp(((double)cand[i].logit - top) / p->temperature);
    if (p->top_p < 1.0f) {
        double cum = 0.0;
        int32_t keep = 0;
        while (keep < m && cum < p->top_p * total)
            cum += exp(((double)cand[keep++].logit - top) / p->temperature);
        m = keep > 0 ? keep : 1;
    }
    total = 0.0;
    for (int32_t i = 0; i < m; i++)
        total += exp(((double)cand[i].logit - top) / p->temperature);
    double target = ref_uniform(p->seed, step) * total, cum = 0.0;
    int32_t chosen = cand[m - 1].id;
    for (int32_t i = 0; i < m; i++) {
        cum += exp(((double)cand[i].logit - top) / p->temperature);
        if (cum > target) {
            chosen = cand[i].id;
            break;
        }
    }
    return chosen;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double uniform01(void) { return (double)(next_u64() >> 11) * 0x1p-53; }

static double gaussian(void) { return sqrt(-2.0 * log(1.0 - uniform01())) * cos(6.283185307179586 * uniform01()); }

/* Logits shaped like a language model's, and some that are not: a
 * Gaussian bulk of the given spread with a few tokens far above it, and
 * in some vectors ties (values on a coarse grid), masked tokens (-inf), a
 * NaN, signed zeros or a flat stretch. */
static void random_logits(float *x, int32_t n, double spread, int shape)
{
    for (int32_t i = 0; i < n; i++)
        x[i] = (float)(spread * gaussian());
    int peaks = (int)(next_u64() % 8);
    for (int k = 0; k < peaks; k++)
        x[next_u64() % (uint64_t)n] = (float)(spread * (2.0 + 3.0 * uniform01()));
    switch (shape) {
    case 1:
        for (int32_t i = 0; i < n; i++)
            x[i] = roundf(x[i] * 2.0f) / 2.0f;
        break;
    case 2:
        for (int32_t i = 0; i < n / 10; i++)
            x[next_u64() % (uint64_t)n] = -INFINITY;
        x[next_u64() % (uint64_t)n] = NAN;
        break;
    case 3:
        for (int32_t i = 0; i < n; i += 3)
            x[i] = i % 2 ? -0.0f : 0.0f;
        break;
    case 4:
        for (int32_t i = 0; i < n / 2; i++)
            x[i] = 1.0f;
        break;
    }
}

static const float temperatures[] = {0.05f, 0.3f, 0.7f, 0.8f, 1.0f, 1.3f, 2.0f, 5.0f};
static const int32_t top_ks[] = {0, 0, 0, 2, 40, 300, 5000};
static const float top_ps[] = {1.0f, 1.0f, 0.95f, 0.9f, 0.99f, 0.5f, 0.999f};
static const float min_ps[] = {0.0f, 0.0f, 0.0f, 0.05f, 1e-4f, 1e-12f};

#define PICK(a) (a)[next_u64() % (sizeof(a) / sizeof *(a))]

/* The reference's tokens over n_vectors random vectors of n logits, draws
 * draws each; returns the number that differ, and the largest difference
 * of a log-probability from the double-precision one. */
static int compare_with_reference(int32_t n, int n_vectors, int draws, double *worst_logprob)
{
    borg_sampler *s;
    borg_err err = {0};
    CHECK(sampler_create(n, &s, &err) == BORG_OK);
    float *x = malloc(sizeof *x * (size_t)n);
    ref_candidate *cand = malloc(sizeof *cand * (size_t)n);
    int differ = 0;
    for (int v = 0; v < n_vectors; v++) {
        random_logits(x, n, 0.5 + 5.0 * uniform01(), (int)(next_u64() % 6));
        int32_t m = ref_sort(x, n, cand), best = ref_argmax(x, n);
        double lse = ref_log_sum_exp(x, n, x[best]);
        for (int d = 0; d < draws; d++) {
            borg_sampling p = {PICK(temperatures), PICK(top_ks), PICK(top_ps), PICK(min_ps), next_u64()};
            int64_t step = (int64_t)(next_u64() % 100000);
            float lp;
            int32_t got = sampler_pick(s, x, &p, step, &lp), want = ref_draw(cand, m, best, &p, step);
            if (got != want && differ++ < 5)
                fprintf(stderr, "n %d T %g top_k %d top_p %g min_p %g: token %d, the reference %d\n", (int)n,
                        p.temperature, (int)p.top_k, p.top_p, p.min_p, (int)got, (int)want);
            double e = fabs((double)lp - ((double)x[want] - lse));
            if (got == want && e > *worst_logprob)
                *worst_logprob = e;
        }
    }
    free(x);
    free(cand);
    sampler_free(s);
    return differ;
}

/* The largest relative error of sampler_exp_neg over [-80, 0]: about a
 * million floats evenly spread over their bit patterns (so every binade
 * and every reduced argument), and a million spread evenly in value. */
static double exp_neg_error(void)
{
    double worst = 0.0;
    const float end = -80.0f;
    uint32_t last;
    memcpy(&last, &end, sizeof last);
    for (uint32_t bits = 0x80000000u; bits <= last; bits += 1021) {
        float z;
        memcpy(&z, &bits, sizeof z);
        double e = fabs(sampler_exp_neg(z) / exp((double)z) - 1.0);
        worst = e > worst ? e : worst;
    }
    for (int i = 0; i < 1000000; i++) {
        float z = (float)(-80.0 * uniform01());
        double e = fabs(sampler_exp_neg(z) / exp((double)z) - 1.0);
        worst = e > worst ? e : worst;
    }
    return worst;
}

/* Every kernel path this machine has gives the portable path's tokens and
 * log-probabilities, to the bit, over random vectors of n logits; a path
 * it lacks is named as not run. Returns the number of draws that differ. */
static int same_on_every_path(int32_t n, int n_vectors, int draws)
{
    borg_sampler *s;
    borg_err err = {0};
    CHECK(sampler_create(n, &s, &err) == BORG_OK);
    float *x = malloc(sizeof *x * (size_t)n);
    const borg_isa start = cpu_isa();
    int differ = 0;
    for (int v = 0; v < n_vectors; v++) {
        random_logits(x, n, 0.5 + 5.0 * uniform01(), (int)(next_u64() % 6));
        for (int d = 0; d < draws; d++) {
            borg_sampling p = {PICK(temperatures), PICK(top_ks), PICK(top_ps), PICK(min_ps), next_u64()};
            if (d == 0)
                p.temperature = 0.0f;
            int64_t step = (int64_t)(next_u64() % 100000);
            CHECK(cpu_set_isa(BORG_ISA_PORTABLE, &err) == BORG_OK);
            float want_lp, lp;
            int32_t want = sampler_pick(s, x, &p, step, &want_lp);
            for (borg_isa isa = BORG_ISA_PORTABLE + 1; isa < BORG_ISA_COUNT; isa++) {
                if (!cpu_isa_available(isa))
                    continue;
                CHECK(cpu_set_isa(isa, &err) == BORG_OK);
                int32_t got = sampler_pick(s, x, &p, step, &lp);
                if ((got != want || memcmp(&lp, &want_lp, sizeof lp)) && differ++ < 5)
                    fprintf(stderr, "path %s: token %d log-probability %.9g, portable %d %.9g\n", cpu_isa_name(isa),
                            (int)got, lp, (int)want, want_lp);
            }
        }
    }
    CHECK(cpu_set_isa(start, &err) == BORG_OK);
    free(x);
    sampler_free(s);
    return differ;
}

int main(void)
{
    borg_sampler *s;
    borg_err err = {0};
    CHECK(sampler_create(V, &s, &err) == BORG_OK);
    float logits[V];
    for (int i = 0; i < V; i++)
        logits[i] = (float)((i * 37) % V) / 10.0f; /* a permutation: max at i with (i*37)%50 == 49 */
    int top = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] > logits[top])
            top = i;

    borg_sampling greedy = {0.0f, 0, 1.0f, 0.0f, 1};
    float lp;
    CHECK(sampler_pick(s, logits, &greedy, 0, &lp) == top);
    double lse = 0;
    for (int i = 0; i < V; i++)
        lse += exp(logits[i]);
    CHECK(fabs(lp - (logits[top] - log(lse))) < 1e-5);

    borg_sampling k1 = {1.0f, 1, 1.0f, 0.0f, 1};
    CHECK(sampler_pick(s, logits, &k1, 3, NULL) == top);

    /* Same seed and step, same token; the sequence over steps varies. */
    borg_sampling hot = {1.5f, 0, 1.0f, 0.0f, 99};
    int distinct = 0, first = sampler_pick(s, logits, &hot, 0, NULL);
    for (int step = 0; step < 64; step++) {
        int a = sampler_pick(s, logits, &hot, step, NULL);
        CHECK(a == sampler_pick(s, logits, &hot, step, NULL));
        distinct += a != first;
    }
    CHECK(distinct > 0);

    /* top_k = 3 only ever yields the three largest logits. */
    borg_sampling k3 = {2.0f, 3, 1.0f, 0.0f, 5};
    for (int step = 0; step < 200; step++) {
        int t = sampler_pick(s, logits, &k3, step, NULL);
        CHECK(logits[t] >= 4.7f - 1e-6f);
    }
    /* min_p = 0.5 keeps tokens with p >= p_max / 2: logit within ln 2 of the top. */
    borg_sampling mp = {1.0f, 0, 1.0f, 0.5f, 6};
    for (int step = 0; step < 200; step++) {
        int t = sampler_pick(s, logits, &mp, step, NULL);
        CHECK(logits[t] >= logits[top] - (float)log(2.0) - 1e-6f);
    }
    /* top_p small enough keeps only the top token. */
    borg_sampling tp = {1.0f, 0, 0.01f, 0.0f, 7};
    for (int step = 0; step < 50; step++)
        CHECK(sampler_pick(s, logits, &tp, step, NULL) == top);

    /* Frequencies follow softmax: over 4000 draws between two equal-logit
     * tokens and one far below, the two share the draws about evenly. */
    float two[V];
    for (int i = 0; i < V; i++)
        two[i] = -30.0f;
    two[10] = two[20] = 1.0f;
    borg_sampling t1 = {1.0f, 0, 1.0f, 0.0f, 11};
    int c10 = 0, c20 = 0;
    for (int step = 0; step < 4000; step++) {
        int t = sampler_pick(s, two, &t1, step, NULL);
        c10 += t == 10;
        c20 += t == 20;
    }
    CHECK(c10 + c20 == 4000);
    CHECK(c10 > 1800 && c20 > 1800);

    /* Nothing finite to sample: the argmax, as greedy would answer. */
    float masked[V];
    for (int i = 0; i < V; i++)
        masked[i] = -INFINITY;
    CHECK(sampler_pick(s, masked, &hot, 0, NULL) == 0);
    sampler_free(s);

    /* The estimates' exponential is as accurate as the error bound of the
     * tail's estimate (sampler.c) assumes. */
    double e = exp_neg_error();
    CHECKF(e < 0x1p-22, "sampler_exp_neg's relative error %.3g, want below 2^-22", e);

    /* The reference's token for every draw: small vocabularies (the
     * whole distribution within the sorted band), mid-sized ones and the
     * default model's 49,152, where most of the weight lies unsorted. */
    double worst = 0.0;
    int differ = compare_with_reference(V, 200, 50, &worst);
    differ += compare_with_reference(3000, 200, 50, &worst);
    differ += compare_with_reference(49152, 6, 40, &worst);
    CHECKF(differ == 0, "%d draws differ from the reference's", differ);
    CHECKF(worst < 1e-5, "a log-probability %.3g from the double-precision one", worst);

    for (borg_isa isa = BORG_ISA_PORTABLE + 1; isa < BORG_ISA_COUNT; isa++)
        printf("path %s: %s\n", cpu_isa_name(isa),
               cpu_isa_available(isa) ? "compared with portable" : "not run (this CPU lacks it)");
    differ = same_on_every_path(V, 50, 20) + same_on_every_path(49152, 8, 20);
    CHECKF(differ == 0, "%d draws differ between kernel paths", differ);

    /* Where the definition's roundings decide: two tokens of weight 1 and
     * 49,150 of weight e^-36.2 or e^-35.9, each just below or above half
     * an ulp of 2, so that the definition's running total ends at 2
     * exactly (each one rounded away) or at 2 + 49,150 ulps (each rounded
     * up), while the exact sum lies between. With top_p = 0.5 the nucleus
     * is the first token in the first case and both in the second: the
     * sampler must see that its estimate cannot tell, and compute it. */
    enum { N_ROUNDING = 49152 };
    const float tails[2] = {-36.2f, -35.9f};
    for (int c = 0; c < 2; c++) {
        float *x = malloc(sizeof *x * N_ROUNDING);
        ref_candidate *cand = malloc(sizeof *cand * N_ROUNDING);
        CHECK(sampler_create(N_ROUNDING, &s, &err) == BORG_OK);
        for (int i = 0; i < N_ROUNDING; i++)
            x[i] = i < 2 ? 0.0f : tails[c];
        int32_t m = ref_sort(x, N_ROUNDING, cand), seen[2] = {0, 0};
        borg_sampling half = {1.0f, 0, 0.5f, 0.0f, 3};
        for (int step = 0; step < 40; step++) {
            int32_t got = sampler_pick(s, x, &half, step, NULL);
            CHECK(got == ref_draw(cand, m, 0, &half, step));
            if (got < 2)
                seen[got]++;
        }
        CHECKF(c == 0 ? seen[1] == 0 : seen[1] > 0, "tail at %g: token 1 drawn %d times", tails[c], seen[1]);
        sampler_free(s);
        free(x);
        free(cand);
    }
    return check_report();
}
