/* Dequantization against gguf-py's reference output, and f16/bf16 conversions.
 * Usage: test_quant <fixture dir> (quant.gguf from tests/tools/gguf_fixtures.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "borg/cpu.h"
#include "borg/gguf.h"
#include "borg/quant.h"

#include "check.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int is_half_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

static void check_type(const gguf_file *f, borg_dtype t)
{
    char name[64], ref_name[64];
    snprintf(name, sizeof name, "q.%s", quant_dtype_name(t));
    snprintf(ref_name, sizeof ref_name, "q.%s.ref", quant_dtype_name(t));
    const gguf_tensor *q = gguf_tensor_find(f, name);
    const gguf_tensor *r = gguf_tensor_find(f, ref_name);
    CHECKF(q && r, "tensors %s / %s present", name, ref_name);
    if (!q || !r)
        return;
    CHECKF(q->type == (uint32_t)t && r->type == BORG_DT_F32, "%s types", name);
    CHECKF(q->ne[0] == r->ne[0] && q->ne[1] == r->ne[1], "%s shape matches reference", name);
    int64_t ne0 = q->ne[0], rows = q->ne[1];
    size_t rb = quant_dtype_row_bytes(t, ne0);
    CHECKF(rb * (size_t)rows == q->nbytes, "%s: row bytes %zu x %lld rows == nbytes %zu", name, rb, (long long)rows,
           q->nbytes);

    int exact = !(t == BORG_DT_Q4_K || t == BORG_DT_Q5_K || t == BORG_DT_Q6_K);
    float *out = malloc((size_t)ne0 * sizeof *out);
    unsigned char *shifted = malloc(rb + 1);
    int bad = 0;
    double max_diff = 0;
    for (int64_t row = 0; row < rows; row++) {
        const unsigned char *src = (const unsigned char *)q->data + (size_t)row * rb;
        /* an odd address checks that the dequantizer makes no aligned loads */
        memcpy(shifted + 1, src, rb);
        quant_dequantize_row(t, shifted + 1, out, ne0);
        for (int64_t i = 0; i < ne0; i++) {
            float ref;
            memcpy(&ref, (const unsigned char *)r->data + ((size_t)(row * ne0 + i)) * 4, 4);
            double diff = fabs((double)out[i] - (double)ref);
            int ok = exact ? (out[i] == ref || (isnan(out[i]) && isnan(ref)))
                           : diff <= 1e-6 * fmax(1.0, fabs((double)ref));
            if (!ok && bad++ < 5)
                printf("  %s row %lld elem %lld: got %.9g want %.9g\n", name, (long long)row, (long long)i, out[i],
                       ref);
            if (ok && isfinite(diff) && diff > max_diff)
                max_diff = diff;
        }
    }
    CHECKF(bad == 0, "%s: %d mismatching elements", name, bad);
    printf("%s %-5s %lld rows x %lld elems, max |diff| %g\n", bad ? "FAIL" : "ok  ", quant_dtype_name(t),
           (long long)rows, (long long)ne0, max_diff);
    free(out);
    free(shifted);
}

static void check_meta(void)
{
    static const struct {
        borg_dtype t;
        const char *name;
        int64_t elems;
        size_t bytes;
    } tab[] = {
        {BORG_DT_F32, "F32", 1, 4},       {BORG_DT_F16, "F16", 1, 2},       {BORG_DT_BF16, "BF16", 1, 2},
        {BORG_DT_Q4_0, "Q4_0", 32, 18},   {BORG_DT_Q4_1, "Q4_1", 32, 20},   {BORG_DT_Q5_0, "Q5_0", 32, 22},
        {BORG_DT_Q5_1, "Q5_1", 32, 24},   {BORG_DT_Q8_0, "Q8_0", 32, 34},   {BORG_DT_Q4_K, "Q4_K", 256, 144},
        {BORG_DT_Q5_K, "Q5_K", 256, 176}, {BORG_DT_Q6_K, "Q6_K", 256, 210},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        CHECKF(quant_dtype_supported(tab[i].t), "%s supported", tab[i].name);
        CHECKF(strcmp(quant_dtype_name(tab[i].t), tab[i].name) == 0, "name of %d", (int)tab[i].t);
        CHECKF(quant_dtype_block_elems(tab[i].t) == tab[i].elems, "%s block elems", tab[i].name);
        CHECKF(quant_dtype_block_bytes(tab[i].t) == tab[i].bytes, "%s block bytes", tab[i].name);
        CHECKF(quant_dtype_row_bytes(tab[i].t, tab[i].elems * 3) == tab[i].bytes * 3, "%s row bytes", tab[i].name);
    }
    static const uint32_t unsupported[] = {4, 5, 9, 10, 11, 15, 24, 28, 31, 99, 0xffffffffu};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        CHECKF(!quant_dtype_supported(unsupported[i]), "type %u unsupported", unsupported[i]);
        CHECKF(strcmp(quant_dtype_name(unsupported[i]), "unknown") == 0, "type %u named unknown", unsupported[i]);
    }
    printf("ok   dtype tables\n");
}

/* quant_f32_to_f16_row gives quant_f32_to_f16's bits on every path this
 * machine has, over the n values at src (any alignment, every tail). */
static void check_f16_row(const void *src, int64_t n)
{
    float *x = malloc(sizeof(float) * (size_t)(n + 1));
    uint16_t *y = malloc(sizeof(uint16_t) * (size_t)(n + 1));
    CHECK(x && y);
    if (!x || !y)
        return;
    memcpy(x + 1, src, sizeof(float) * (size_t)n);
    const borg_isa was = cpu_isa();
    borg_err err;
    for (int isa = BORG_ISA_PORTABLE; isa <= BORG_ISA_AVX2; isa++) {
        if (cpu_set_isa((borg_isa)isa, &err)) {
            printf("quant_f32_to_f16_row on the %s path: not run (%s)\n", cpu_isa_name((borg_isa)isa), err.msg);
            continue;
        }
        int bad = 0;
        for (int64_t len = n > 9 ? n - 9 : 0; len <= n; len++) {
            quant_f32_to_f16_row(x + 1, y + 1, len);
            for (int64_t i = 0; i < len; i++)
                bad += y[1 + i] != quant_f32_to_f16(x[1 + i]);
        }
        CHECKF(bad == 0, "quant_f32_to_f16_row on the %s path: %d values differ from quant_f32_to_f16",
               cpu_isa_name((borg_isa)isa), bad);
    }
    cpu_set_isa(was, &err);
    free(x), free(y);
}

/* quant_f32_to_f16 against numpy's rounding of the same values. */
static void check_f16_fixture(const gguf_file *f)
{
    const gguf_tensor *src = gguf_tensor_find(f, "f16_round.src");
    const gguf_tensor *ref = gguf_tensor_find(f, "f16_round.ref");
    CHECKF(src && ref && src->ne[0] == ref->ne[0], "f16_round tensors present");
    if (!src || !ref)
        return;
    int bad = 0;
    for (int64_t i = 0; i < src->ne[0]; i++) {
        float x;
        uint16_t want;
        memcpy(&x, (const char *)src->data + 4 * i, 4);
        memcpy(&want, (const char *)ref->data + 2 * i, 2);
        uint16_t got = quant_f32_to_f16(x);
        if (got != want && bad++ < 5)
            printf("  quant_f32_to_f16(%.9g = 0x%08x) = 0x%04x, numpy 0x%04x\n", x, bits_of(x), got, want);
    }
    CHECKF(bad == 0, "quant_f32_to_f16 vs numpy: %d mismatches of %lld", bad, (long long)src->ne[0]);
    printf("%s quant_f32_to_f16 vs numpy (%lld values)\n", bad ? "FAIL" : "ok  ", (long long)src->ne[0]);
    check_f16_row(src->data, src->ne[0]);
}

static double half_value(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

static void check_f16_properties(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float x = quant_f16_to_f32((uint16_t)h);
        if (is_half_nan((uint16_t)h)) {
            uint16_t back = quant_f32_to_f16(x);
            if ((!isnan(x) || !is_half_nan(back) || (back & 0x8000) != (h & 0x8000)) && bad++ < 5)
                printf("  NaN 0x%04x -> %g -> 0x%04x\n", h, x, back);
            continue;
        }
        int exp_max = (h & 0x7c00) == 0x7c00;
        double want = exp_max ? ((h & 0x8000) ? -INFINITY : INFINITY) : half_value((uint16_t)h);
        if ((double)x != want && bad++ < 5)
            printf("  quant_f16_to_f32(0x%04x) = %.9g, want %.9g\n", h, x, want);
        if (!!signbit(x) != !!(h & 0x8000) && bad++ < 5)
            printf("  quant_f16_to_f32(0x%04x) sign\n", h);
        if (quant_f32_to_f16(x) != h && bad++ < 5)
            printf("  round trip 0x%04x -> 0x%04x\n", h, quant_f32_to_f16(x));
    }
    CHECKF(bad == 0, "exhaustive f16 round trip");

    /* Halfway between adjacent halves goes to the even one; just off it goes to the nearer. */
    int bad_rne = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        double lo = half_value((uint16_t)h), hi = half_value((uint16_t)(h + 1));
        float mid = (float)((lo + hi) / 2); /* exact: needs 12 significant bits */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        uint16_t got = quant_f32_to_f16(mid);
        uint16_t got_neg = quant_f32_to_f16(-mid);
        float above = nextafterf(mid, INFINITY), below = nextafterf(mid, 0.0f);
        if ((got != even || got_neg != (even | 0x8000) || quant_f32_to_f16(above) != h + 1 ||
             quant_f32_to_f16(below) != h) &&
            bad_rne++ < 5)
            printf("  rounding between 0x%04x and 0x%04x: mid -> 0x%04x\n", h, h + 1, got);
    }
    CHECKF(bad_rne == 0, "round to nearest even at every halfway point");

    CHECKF(quant_f32_to_f16(65504.0f) == 0x7bff, "max half");
    CHECKF(quant_f32_to_f16(nextafterf(65520.0f, 0)) == 0x7bff, "just below 65520 rounds down");
    CHECKF(quant_f32_to_f16(65520.0f) == 0x7c00, "65520 overflows to inf");
    CHECKF(quant_f32_to_f16(-1e30f) == 0xfc00, "-1e30 -> -inf");
    CHECKF(quant_f32_to_f16(INFINITY) == 0x7c00 && quant_f32_to_f16(-INFINITY) == 0xfc00, "inf");
    CHECKF(is_half_nan(quant_f32_to_f16(NAN)), "NaN stays NaN");
    CHECKF(is_half_nan(quant_f32_to_f16(float_of(0x7f800001u))), "NaN with payload only in low bits stays NaN");
    CHECKF((quant_f32_to_f16(float_of(0xffc00000u)) & 0x8000) != 0, "NaN sign kept");
    CHECKF(quant_f32_to_f16(0x1p-24f) == 0x0001, "smallest subnormal");
    CHECKF(quant_f32_to_f16(0x1p-25f) == 0x0000, "2^-25 ties to even (zero)");
    CHECKF(quant_f32_to_f16(nextafterf(0x1p-25f, 1.0f)) == 0x0001, "just above 2^-25 rounds up");
    CHECKF(quant_f32_to_f16(-0x1p-25f) == 0x8000, "-2^-25 -> -0");
    CHECKF(quant_f32_to_f16(0x1p-14f - 0x1p-25f) == 0x0400, "rounding carries into the smallest normal");
    CHECKF(quant_f32_to_f16(float_of(1)) == 0 && quant_f32_to_f16(-0.0f) == 0x8000, "f32 subnormal and -0");
    CHECKF(quant_f16_to_f32(0x0001) == 0x1p-24f && quant_f16_to_f32(0x8000) == 0.0f &&
               signbit(quant_f16_to_f32(0x8000)),
           "quant_f16_to_f32 subnormal / -0");
    printf("%s f16 conversions (exhaustive, halfway points, specials)\n", bad || bad_rne ? "FAIL" : "ok  ");
}

static void check_bf16(void)
{
    CHECKF(quant_bf16_to_f32(0x3f80) == 1.0f, "bf16 1");
    CHECKF(quant_bf16_to_f32(0xc000) == -2.0f, "bf16 -2");
    CHECKF(quant_bf16_to_f32(0x7f80) == INFINITY, "bf16 inf");
    CHECKF(isnan(quant_bf16_to_f32(0x7fc1)), "bf16 nan");
    CHECKF(bits_of(quant_bf16_to_f32(0x0001)) == 0x00010000u, "bf16 subnormal bits");
    printf("ok   bf16 conversions\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/quant.gguf", argv[1]);
    gguf_file *f = NULL;
    borg_err err = {0};
    if (gguf_open(path, &f, &err) != BORG_OK) {
        printf("FAIL cannot open fixture: %s\n", err.msg);
        return 1;
    }
    check_meta();
    static const borg_dtype types[] = {BORG_DT_F32,  BORG_DT_F16,  BORG_DT_BF16, BORG_DT_Q8_0,
                                       BORG_DT_Q4_0, BORG_DT_Q4_1, BORG_DT_Q5_0, BORG_DT_Q5_1,
                                       BORG_DT_Q4_K, BORG_DT_Q5_K, BORG_DT_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        check_type(f, types[i]);
    check_f16_fixture(f);
    check_f16_properties();
    check_bf16();
    gguf_close(f);
    return check_report();
}
