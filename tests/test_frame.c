/* The wire frame codec: CRC-32C, round trips, and rejection of every
 * damaged or lying frame. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "borg/frame.h"
#include "borg/quant.h"
#include "check.h"

#define HDR sizeof(frame_header)

static uint32_t rng_state = 12345;

static uint32_t rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static float rnd_normal(void)
{
    float u = (rnd() + 1.0f) / 16777217.0f, v = rnd() / 16777216.0f;
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Recomputes a frame's CRC after a test edits it, so that only the
 * structural checks stand between the edit and acceptance. */
static void reseal(uint8_t *p, size_t len)
{
    memset(p + offsetof(frame_header, crc), 0, 4);
    uint32_t crc = crc32c(0, p, len);
    memcpy(p + offsetof(frame_header, crc), &crc, 4);
}

static void set_i32(uint8_t *p, size_t off, int32_t v) { memcpy(p + off, &v, sizeof v); }

static borg_status check_copy(const uint8_t *p, size_t len, frame_header *h, borg_err *err)
{
    /* A heap copy of exactly len bytes, so ASan sees any read past the end. */
    uint8_t *c = malloc(len ? len : 1);
    memcpy(c, p, len);
    borg_status st = frame_check(c, len, h, err);
    free(c);
    return st;
}

static void test_crc(void)
{
    static const uint8_t ascending[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                          16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    uint8_t zeros[32] = {0}, ones[32], descending[32];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++)
        descending[i] = (uint8_t)(31 - i);

    uint32_t (*const impl[2])(uint32_t, const void *, size_t) = {crc32c, crc32c_portable};
    for (int k = 0; k < 2; k++) {
        CHECK(impl[k](0, "123456789", 9) == 0xE3069283u);
        CHECK(impl[k](0, "", 0) == 0);
        CHECK(impl[k](0, "The quick brown fox jumps over the lazy dog", 43) == 0x22620404u);
        /* RFC 3720 (iSCSI) B.4 */
        CHECK(impl[k](0, zeros, 32) == 0x8A9136AAu);
        CHECK(impl[k](0, ones, 32) == 0x62A8AB43u);
        CHECK(impl[k](0, ascending, 32) == 0x46DD794Eu);
        CHECK(impl[k](0, descending, 32) == 0x113FDB5Cu);
    }

    /* The two paths agree at every length and misalignment, and chain. */
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rnd();
    int agree = 1, chains = 1;
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= 200; len++)
            agree &= crc32c(7, buf + off, len) == crc32c_portable(7, buf + off, len);
    uint32_t whole = crc32c(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut++) {
        chains &= crc32c(crc32c(0, buf, cut), buf + cut, sizeof buf - cut) == whole;
        chains &= crc32c_portable(crc32c(0, buf, cut), buf + cut, sizeof buf - cut) == whole;
    }
    CHECK(agree);
    CHECK(chains);
}

typedef struct {
    borg_batch b;
    float *x;
    int dim;
} sample_batch;

/* Three sequences (a prefill chunk and two decodes) with distinct fields. */
static void make_batch(sample_batch *s, int dim)
{
    batch_init(&s->b);
    s->b.id = 12;
    const int32_t toks[] = {1, 9038, 2253, 30, 0, 49151, 7};
    const batch_seq seqs[] = {
        {.req = 5,
         .slot = 0,
         .pos = 0,
         .n_tokens = 5,
         .sample = 1,
         .step = 0,
         .sampling = {.temperature = 0.7f, .top_k = 40, .top_p = 0.9f, .min_p = 0.05f, .seed = 0xDEADBEEFCAFEF00Dull}},
        {.req = INT64_MAX,
         .slot = 31,
         .pos = 1000,
         .n_tokens = 1,
         .sample = 0,
         .step = 17,
         .score = 1,
         .next_token = 4242,
         .sampling = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 1}},
        {.req = 0,
         .slot = 7,
         .pos = 2,
         .n_tokens = 1,
         .sample = 1,
         .step = 3,
         .sampling = {.temperature = 1.5f, .top_k = 1, .top_p = 0.5f, .min_p = 0.2f, .seed = UINT64_MAX}},
    };
    int t = 0;
    for (int i = 0; i < 3; i++) {
        batch_add(&s->b, &seqs[i], toks + t, NULL);
        t += seqs[i].n_tokens;
    }
    s->dim = dim;
    s->x = malloc(sizeof(float) * (size_t)(dim ? 7 * dim : 1));
    for (int i = 0; i < 7 * dim; i++)
        s->x[i] = rnd_normal() * 4.0f;
}

static void free_batch(sample_batch *s)
{
    batch_free(&s->b);
    free(s->x);
}

static int same_seq(const batch_seq *a, const batch_seq *b)
{
    return a->req == b->req && a->slot == b->slot && a->pos == b->pos && a->n_tokens == b->n_tokens &&
           a->sample == b->sample && a->step == b->step && a->score == b->score && a->next_token == b->next_token &&
           a->sampling.top_k == b->sampling.top_k &&
           bits_of(a->sampling.temperature) == bits_of(b->sampling.temperature) &&
           bits_of(a->sampling.top_p) == bits_of(b->sampling.top_p) &&
           bits_of(a->sampling.min_p) == bits_of(b->sampling.min_p) && a->sampling.seed == b->sampling.seed;
}

/* Encodes, checks and decodes s in dtype dt; returns the decoded
 * activations (NULL without) and checks the rest came back exactly. */
static float *round_trip(const sample_batch *s, wire_dtype dt, size_t elem_bytes)
{
    frame_buf f = {0};
    borg_err err = {0};
    frame_header h;
    borg_batch out;
    batch_init(&out);
    float *x = NULL;
    size_t x_cap = 0;
    CHECK(frame_put_batch(&f, &s->b, s->x, s->dim, dt, &err) == BORG_OK);
    size_t want = HDR + 3 * 64 + 7 * 4 + (size_t)(7 * s->dim) * elem_bytes;
    CHECK(f.len == want);
    CHECK(frame_check(f.p, f.len, &h, &err) == BORG_OK);
    CHECK(h.kind == FRAME_BATCH && h.batch_id == 12 && h.n_seqs == 3 && h.n_tokens == 7 && h.dim == s->dim);
    CHECK(h.dtype == (s->dim ? dt : WIRE_NONE));
    CHECK(h.payload_bytes == want - HDR);
    CHECK(frame_get_batch(f.p, &h, &out, &x, &x_cap, &err) == BORG_OK);
    CHECK(out.id == 12 && out.n_seqs == 3 && out.n_tokens == 7);
    CHECK(!memcmp(out.tokens, s->b.tokens, sizeof(int32_t) * 7));
    for (int i = 0; i < 3 && out.n_seqs == 3; i++)
        CHECK(same_seq(&out.seqs[i], &s->b.seqs[i]));
    CHECK(s->dim ? x_cap >= (size_t)(7 * s->dim) : x == NULL);
    batch_free(&out);
    frame_buf_free(&f);
    return x;
}

static void test_batch_round_trip(void)
{
    sample_batch s;
    make_batch(&s, 0);
    free(round_trip(&s, WIRE_F32, 0));
    free_batch(&s);

    make_batch(&s, 6);
    s.x[0] = -0.0f;
    s.x[1] = INFINITY;
    s.x[2] = float_of(1); /* the smallest subnormal */
    s.x[3] = float_of(0x7fc01234u);
    float *x = round_trip(&s, WIRE_F32, 4);
    CHECK(x && !memcmp(x, s.x, sizeof(float) * 42));
    free(x);

    /* f16 matches the shared conversion bit for bit: relative error <= 2^-11. */
    x = round_trip(&s, WIRE_F16, 2);
    int f16_ok = x != NULL;
    for (int i = 4; x && i < 42; i++)
        f16_ok &= x[i] == quant_f16_to_f32(quant_f32_to_f16(s.x[i])) &&
                  fabsf(x[i] - s.x[i]) <= fabsf(s.x[i]) * 0x1p-11f;
    CHECK(f16_ok);
    CHECK(x && signbit(x[0]) && x[0] == 0 && isinf(x[1]) && isnan(x[3]));
    free(x);

    /* bf16: relative error <= 2^-8, ties to even. */
    s.x[4] = 1.0f + 0x1p-8f;     /* halfway between 1 and 1 + 2^-7: down to even */
    s.x[5] = 1.0f + 3 * 0x1p-8f; /* halfway between 1 + 2^-7 and 1 + 2^-6: up to even */
    s.x[6] = 3.0e38f;
    x = round_trip(&s, WIRE_BF16, 2);
    int bf16_ok = x != NULL;
    for (int i = 6; x && i < 42; i++)
        bf16_ok &= fabsf(x[i] - s.x[i]) <= fabsf(s.x[i]) * 0x1p-8f;
    CHECK(bf16_ok);
    CHECK(x && x[4] == 1.0f && x[5] == 1.0f + 0x1p-6f);
    CHECK(x && signbit(x[0]) && x[0] == 0 && isinf(x[1]) && isnan(x[3]));
    free(x);
    free_batch(&s);
}

static void test_buffer_reuse(void)
{
    sample_batch s;
    make_batch(&s, 64);
    frame_buf f = {0};
    borg_err err = {0};
    frame_header h;
    CHECK(frame_put_control(&f, FRAME_SHUTDOWN, NULL, 0, &err) == BORG_OK);
    size_t small_cap = f.cap;
    CHECK(f.len == HDR && small_cap >= HDR);
    CHECK(frame_put_batch(&f, &s.b, s.x, s.dim, WIRE_F32, &err) == BORG_OK);
    CHECK(f.cap >= f.len && f.cap >= 2 * small_cap);
    CHECK(frame_put_results(&f, 3, NULL, 0, NULL, NULL, 0, 0, &err) == BORG_OK);
    CHECK(f.len == HDR && frame_check(f.p, f.len, &h, &err) == BORG_OK);
    frame_buf_free(&f);
    CHECK(f.p == NULL && f.len == 0 && f.cap == 0);
    free_batch(&s);
}

static void test_results_and_control(void)
{
    frame_buf f = {0};
    borg_err err = {0};
    frame_header h;
    const batch_result r[] = {{5, 42, -0.25f, -1}, {INT64_MIN, 0, -INFINITY, 7}, {9, 49151, 0.0f, INT32_MAX}};
    batch_result back[3] = {{0}};
    int n = -1;
    CHECK(frame_put_results(&f, 77, r, 3, NULL, NULL, 0, 0, &err) == BORG_OK);
    CHECK(f.len == HDR + 3 * 24);
    CHECK(frame_check(f.p, f.len, &h, &err) == BORG_OK);
    CHECK(h.kind == FRAME_RESULT && h.batch_id == 77 && h.n_seqs == 3);
    CHECK(frame_get_results(f.p, &h, back, &n, NULL, NULL, &err) == BORG_OK);
    CHECK(n == 3);
    for (int i = 0; i < 3; i++)
        CHECK(back[i].req == r[i].req && back[i].token == r[i].token && back[i].pos == r[i].pos &&
              bits_of(back[i].logprob) == bits_of(r[i].logprob));

    /* With hidden-state rows: their records and values come back bit for bit. */
    const batch_row rows[] = {{5, 0}, {5, 1}};
    const float data[] = {1.0f, -2.5f, NAN, 3.0f, 0.0f, -0.0f};
    batch_row rows_back[2] = {{0}};
    float data_back[6] = {0};
    CHECK(frame_put_results(&f, 79, r, 1, rows, data, 2, 3, &err) == BORG_OK);
    CHECK(f.len == HDR + 24 + 2 * 16 + 6 * 4);
    CHECK(frame_check(f.p, f.len, &h, &err) == BORG_OK && h.n_tokens == 2 && h.dim == 3 && h.dtype == WIRE_F32);
    CHECK(frame_get_results(f.p, &h, back, &n, rows_back, data_back, &err) == BORG_OK && n == 1);
    CHECK(rows_back[0].req == 5 && rows_back[1].pos == 1 && !memcmp(data, data_back, sizeof data));
    CHECK(frame_put_results(&f, 80, r, 1, rows, data, 2, 0, &err) == BORG_EINTERNAL);

    CHECK(frame_put_results(&f, 78, NULL, 0, NULL, NULL, 0, 0, &err) == BORG_OK);
    CHECK(frame_check(f.p, f.len, &h, &err) == BORG_OK);
    CHECK(frame_get_results(f.p, &h, back, &n, NULL, NULL, &err) == BORG_OK && n == 0);

    stage_stats st = {.busy_s = 1.5, .batches = 10, .stage = 2, .layer_begin = 10, .layer_end = 20, .crc_errors = 1};
    const frame_kind kinds[] = {FRAME_STATS, FRAME_READY};
    for (int k = 0; k < 2; k++) {
        CHECK(frame_put_control(&f, kinds[k], &st, sizeof st, &err) == BORG_OK);
        CHECK(frame_check(f.p, f.len, &h, &err) == BORG_OK);
        CHECK(h.kind == kinds[k] && h.payload_bytes == sizeof st && !memcmp(f.p + HDR, &st, sizeof st));
    }
    const char msg[] = "stage 1 of replica 0: out of memory";
    CHECK(frame_put_control(&f, FRAME_ERROR, msg, sizeof msg - 1, &err) == BORG_OK);
    CHECK(frame_check(f.p, f.len, &h, &err) == BORG_OK);
    CHECK(h.kind == FRAME_ERROR && h.payload_bytes == sizeof msg - 1 && !memcmp(f.p + HDR, msg, sizeof msg - 1));
    CHECK(frame_put_control(&f, FRAME_SHUTDOWN, NULL, 0, &err) == BORG_OK);
    CHECK(frame_check(f.p, f.len, &h, &err) == BORG_OK && h.kind == FRAME_SHUTDOWN && h.payload_bytes == 0);

    /* Decoders and the control encoder refuse the wrong kinds. */
    CHECK(frame_put_control(&f, FRAME_BATCH, NULL, 0, &err) == BORG_EINTERNAL);
    CHECK(frame_put_control(&f, FRAME_ERROR, NULL, 5, &err) == BORG_EINTERNAL);
    borg_batch b;
    batch_init(&b);
    CHECK(frame_get_batch(f.p, &h, &b, NULL, NULL, &err) == BORG_EINTERNAL);
    CHECK(frame_get_results(f.p, &h, back, &n, NULL, NULL, &err) == BORG_EINTERNAL);
    batch_free(&b);
    frame_buf_free(&f);
}

/* Every single-bit flip of the frame in f is rejected as bad input. */
static int all_flips_rejected(const frame_buf *f)
{
    uint8_t *c = malloc(f->len);
    frame_header h;
    borg_err err;
    int ok = 1;
    for (size_t bit = 0; bit < f->len * 8; bit++) {
        memcpy(c, f->p, f->len);
        c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (frame_check(c, f->len, &h, &err) != BORG_EINPUT) {
            fprintf(stderr, "bit %zu flipped was accepted\n", bit);
            ok = 0;
        }
    }
    free(c);
    return ok;
}

static void test_bit_flips(void)
{
    sample_batch s;
    make_batch(&s, 2);
    frame_buf f = {0};
    borg_err err = {0};
    CHECK(frame_put_batch(&f, &s.b, s.x, 2, WIRE_F16, &err) == BORG_OK);
    CHECK(all_flips_rejected(&f));
    const batch_result r[] = {{5, 42, -0.25f, -1}, {6, 43, -1.0f, -1}};
    CHECK(frame_put_results(&f, 4, r, 2, NULL, NULL, 0, 0, &err) == BORG_OK);
    CHECK(all_flips_rejected(&f));
    CHECK(frame_put_control(&f, FRAME_ERROR, "why", 3, &err) == BORG_OK);
    CHECK(all_flips_rejected(&f));
    CHECK(frame_put_control(&f, FRAME_SHUTDOWN, NULL, 0, &err) == BORG_OK);
    CHECK(all_flips_rejected(&f));

    /* The message names the batch and both CRCs. */
    CHECK(frame_put_batch(&f, &s.b, s.x, 2, WIRE_F32, &err) == BORG_OK);
    f.p[f.len - 1] ^= 0x10;
    frame_header h;
    CHECK(frame_check(f.p, f.len, &h, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, "frame for batch 12: CRC mismatch (got 0x");
    CHECK_CONTAINS(err.msg, ", computed 0x");
    frame_buf_free(&f);
    free_batch(&s);
}

static void test_truncated_and_lying(void)
{
    sample_batch s;
    make_batch(&s, 4);
    frame_buf f = {0};
    borg_err err = {0};
    frame_header h;
    CHECK(frame_put_batch(&f, &s.b, s.x, 4, WIRE_BF16, &err) == BORG_OK);
    const size_t len = f.len;

    int cut_ok = 1;
    for (size_t n = 0; n < len; n++)
        cut_ok &= check_copy(f.p, n, &h, &err) == BORG_EINPUT;
    CHECK(cut_ok);
    CHECK(check_copy(f.p, 10, &h, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, "shorter than its 48-byte header");
    CHECK(check_copy(f.p, len - 1, &h, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, "frame for batch 12:");

    /* A byte too many, even with the size field and CRC made to agree. */
    uint8_t *c = calloc(1, len + 4);
    memcpy(c, f.p, len);
    CHECK(check_copy(c, len + 1, &h, &err) == BORG_EINPUT);
    uint64_t pb = len + 4 - HDR;
    memcpy(c + offsetof(frame_header, payload_bytes), &pb, 8);
    reseal(c, len + 4);
    CHECK(check_copy(c, len + 4, &h, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, "need");
    free(c);

    /* Each header field lies in turn; the CRC is recomputed so only the
     * structural checks can catch it. */
    struct {
        size_t off, size;
        int64_t value;
        const char *expect;
    } lies[] = {
        {offsetof(frame_header, magic), 4, 0x46524f42, "bad magic"},
        {offsetof(frame_header, version), 2, 1, "version 1"},
        {offsetof(frame_header, kind), 2, 0, "unknown kind 0"},
        {offsetof(frame_header, kind), 2, 10, "unknown kind 10"},
        {offsetof(frame_header, kind), 2, FRAME_RESULT, "bad counts"},
        {offsetof(frame_header, kind), 2, FRAME_SHUTDOWN, "carries tokens"},
        {offsetof(frame_header, n_seqs), 4, 4, "need"},
        {offsetof(frame_header, n_seqs), 4, -1, "bad counts"},
        {offsetof(frame_header, n_seqs), 4, 8, "bad counts"}, /* more sequences than tokens */
        {offsetof(frame_header, n_tokens), 4, 6, "need"},
        {offsetof(frame_header, n_tokens), 4, INT32_MIN, "bad counts"},
        {offsetof(frame_header, dim), 4, 2, "need"},
        {offsetof(frame_header, dim), 4, 0, "wire dtype"},
        {offsetof(frame_header, dim), 4, -4, "bad counts"},
        {offsetof(frame_header, dtype), 2, WIRE_F32, "need"},
        {offsetof(frame_header, dtype), 2, WIRE_NONE, "wire dtype"},
        {offsetof(frame_header, dtype), 2, 4, "wire dtype"},
        {offsetof(frame_header, reserved), 2, 1, "reserved"},
        {offsetof(frame_header, pad), 4, 1, "reserved"},
        {offsetof(frame_header, payload_bytes), 8, 0, "header says"},
        {offsetof(frame_header, payload_bytes), 8, -1, "header says"},
    };
    c = malloc(len);
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        memcpy(c, f.p, len);
        memcpy(c + lies[i].off, &lies[i].value, lies[i].size);
        reseal(c, len);
        if (frame_check(c, len, &h, &err) != BORG_EINPUT)
            fprintf(stderr, "lie %zu accepted\n", i);
        CHECK_CONTAINS(err.msg, lies[i].expect);
    }

    /* Sequences that disagree with the header pass frame_check (the sizes
     * are right) and are caught by frame_get_batch. */
    const size_t seq0 = HDR, seq1 = HDR + 64;
    struct {
        size_t off;
        int32_t value;
        const char *expect;
    } bad_seqs[] = {
        {seq0 + 16, 0, "sequence 0 has slot 0, pos 0, 0 tokens"},
        {seq0 + 16, 4, "sequences hold 6 tokens, header says 7"},
        {seq0 + 16, 6, "sequences hold more than its 7 tokens"},
        {seq1 + 16, -1, "sequence 1 has slot 31, pos 1000, -1 tokens"},
        {seq1 + 8, -1, "sequence 1 has slot -1"},
        {seq1 + 12, -5, "pos -5"},
        {seq1 + 12, INT32_MAX, "pos 2147483647"},
    };
    borg_batch b;
    batch_init(&b);
    float *x = NULL;
    size_t x_cap = 0;
    for (size_t i = 0; i < sizeof bad_seqs / sizeof bad_seqs[0]; i++) {
        memcpy(c, f.p, len);
        set_i32(c, bad_seqs[i].off, bad_seqs[i].value);
        reseal(c, len);
        CHECK(frame_check(c, len, &h, &err) == BORG_OK);
        CHECK(frame_get_batch(c, &h, &b, &x, &x_cap, &err) == BORG_EINPUT);
        CHECK_CONTAINS(err.msg, bad_seqs[i].expect);
        CHECK_CONTAINS(err.msg, "frame for batch 12:");
    }
    CHECK(x == NULL && x_cap == 0);
    batch_free(&b);
    free(c);
    frame_buf_free(&f);
    free_batch(&s);
}

/* Headers claiming enormous counts are refused by frame_check from the
 * 48 bytes alone, before any decoder could size a buffer from them. */
static void test_absurd_counts(void)
{
    struct {
        int32_t n_seqs, n_tokens, dim;
        uint16_t dtype;
        uint64_t payload;
    } absurd[] = {
        {1 << 30, 1 << 30, 0, WIRE_NONE, (1ull << 30) * 60},
        {1, INT32_MAX, 0, WIRE_NONE, 64 + 4ull * INT32_MAX},
        {1, 1 << 24, INT32_MAX, WIRE_F32, 64 + (1ull << 26) + (4ull << 24) * INT32_MAX},
        {1, 1 << 24, 1 << 21, WIRE_F32, 64 + (1ull << 26) + (1ull << 47)},
        {(1 << 24) + 1, (1 << 24) + 1, 0, WIRE_NONE, 60ull * ((1 << 24) + 1)},
    };
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        frame_header h = {.magic = FRAME_MAGIC,
                          .version = FRAME_VERSION,
                          .kind = FRAME_BATCH,
                          .batch_id = 3,
                          .n_seqs = absurd[i].n_seqs,
                          .n_tokens = absurd[i].n_tokens,
                          .dim = absurd[i].dim,
                          .dtype = absurd[i].dtype,
                          .payload_bytes = absurd[i].payload};
        uint8_t p[HDR];
        memcpy(p, &h, HDR);
        reseal(p, HDR);
        frame_header out;
        borg_err err = {0};
        CHECK(frame_check(p, HDR, &out, &err) == BORG_EINPUT);
        CHECK_CONTAINS(err.msg, "frame for batch 3:");
        /* Even when the length field agrees with the bytes at hand. */
        h.payload_bytes = 0;
        memcpy(p, &h, HDR);
        reseal(p, HDR);
        CHECK(frame_check(p, HDR, &out, &err) == BORG_EINPUT);
    }
    frame_header h = {.magic = FRAME_MAGIC, .version = FRAME_VERSION, .kind = FRAME_RESULT, .n_seqs = INT32_MAX};
    uint8_t p[HDR];
    memcpy(p, &h, HDR);
    reseal(p, HDR);
    frame_header out;
    borg_err err = {0};
    CHECK(frame_check(p, HDR, &out, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, "bad counts: 2147483647 results");

    /* Encoders refuse what the checker would. */
    borg_batch b;
    batch_init(&b);
    frame_buf f = {0};
    float x = 0;
    CHECK(frame_put_batch(&f, &b, &x, 1 << 21, WIRE_F32, &err) == BORG_EINTERNAL);
    CHECK(frame_put_batch(&f, &b, NULL, 4, WIRE_F32, &err) == BORG_EINTERNAL);
    CHECK(frame_put_batch(&f, &b, &x, 4, WIRE_NONE, &err) == BORG_EINTERNAL);
    CHECK(frame_put_results(&f, 1, NULL, -1, NULL, NULL, 0, 0, &err) == BORG_EINTERNAL);
    CHECK(frame_put_control(&f, FRAME_ERROR, &x, (1u << 20) + 1, &err) == BORG_EINTERNAL);
    CHECK(f.p == NULL);
    batch_free(&b);
}

int main(void)
{
    test_crc();
    test_batch_round_trip();
    test_buffer_reuse();
    test_results_and_control();
    test_bit_flips();
    test_truncated_and_lying();
    test_absurd_counts();
    return check_report();
}
