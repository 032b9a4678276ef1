#include "borg/frame.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "borg/quant.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

/* Fields are copied with memcpy in host order, which is the wire order only
 * on a little-endian host. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the frame codec assumes a little-endian host"
#endif

/* The header goes on the wire as the struct itself, so it must have no
 * padding anywhere. */
_Static_assert(sizeof(frame_header) == 48, "frame_header must be 48 bytes");
_Static_assert(offsetof(frame_header, batch_id) == 8 && offsetof(frame_header, payload_bytes) == 32 &&
                   offsetof(frame_header, crc) == 40,
               "frame_header must have no padding");

#define HEADER_BYTES sizeof(frame_header)

enum {
    SEQ_BYTES = 8 + 8 * 4 + 3 * 4 + 4 + 8, /* see put_seq */
    RESULT_BYTES = 8 + 4 + 4 + 4 + 4,
    ROW_BYTES = 8 + 4 + 4, /* a hidden-state row's record: req, pos, pad; its floats follow all records */
    MAX_SEQS = 1 << 24,
    MAX_TOKENS = 1 << 24,
    MAX_DIM = 1 << 20,
    MAX_CONTROL = 1 << 20
};

/* ---- CRC-32C ---- */

/* The byte-wise table, built by the preprocessor so it is constant data:
 * entry n is n shifted through the reflected polynomial eight times. */
#define CRC_POLY 0x82F63B78u
#define CRC_R(c) (((c) >> 1) ^ (CRC_POLY & (0u - ((c)&1u))))
#define CRC_T(n) CRC_R(CRC_R(CRC_R(CRC_R(CRC_R(CRC_R(CRC_R(CRC_R((uint32_t)(n)))))))))
#define CRC_T4(n) CRC_T(n), CRC_T((n) + 1), CRC_T((n) + 2), CRC_T((n) + 3)
#define CRC_T16(n) CRC_T4(n), CRC_T4((n) + 4), CRC_T4((n) + 8), CRC_T4((n) + 12)
#define CRC_T64(n) CRC_T16(n), CRC_T16((n) + 16), CRC_T16((n) + 32), CRC_T16((n) + 48)
static const uint32_t crc_table[256] = {CRC_T64(0), CRC_T64(64), CRC_T64(128), CRC_T64(192)};

uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_sse42(crc, data, len);
#endif
    return crc32c_portable(crc, data, len);
}

/* ---- buffers and field copies ---- */

void frame_buf_free(frame_buf *f)
{
    free(f->p);
    memset(f, 0, sizeof *f);
}

/* Makes f hold len bytes (contents undefined), growing it geometrically. */
static borg_status frame_size(frame_buf *f, size_t len, borg_err *err)
{
    if (len > f->cap) {
        size_t cap = f->cap > 128 ? f->cap : 128;
        while (cap < len)
            cap = cap > SIZE_MAX / 2 ? len : cap * 2;
        uint8_t *p = realloc(f->p, cap);
        if (!p)
            return borg_fail(err, BORG_ENOMEM, "out of memory for a frame of %zu bytes", len);
        f->p = p;
        f->cap = cap;
    }
    f->len = len;
    return BORG_OK;
}

static uint8_t *put(uint8_t *q, const void *v, size_t n)
{
    memcpy(q, v, n);
    return q + n;
}

static const uint8_t *get(const uint8_t *q, void *v, size_t n)
{
    memcpy(v, q, n);
    return q + n;
}

static uint8_t *put_seq(uint8_t *q, const batch_seq *s)
{
    q = put(q, &s->req, sizeof s->req);
    q = put(q, &s->slot, sizeof s->slot);
    q = put(q, &s->pos, sizeof s->pos);
    q = put(q, &s->n_tokens, sizeof s->n_tokens);
    q = put(q, &s->sample, sizeof s->sample);
    q = put(q, &s->step, sizeof s->step);
    q = put(q, &s->score, sizeof s->score);
    q = put(q, &s->next_token, sizeof s->next_token);
    q = put(q, &s->sampling.top_k, sizeof s->sampling.top_k);
    q = put(q, &s->sampling.temperature, sizeof s->sampling.temperature);
    q = put(q, &s->sampling.top_p, sizeof s->sampling.top_p);
    q = put(q, &s->sampling.min_p, sizeof s->sampling.min_p);
    q = put(q, &s->embed, sizeof s->embed);
    return put(q, &s->sampling.seed, sizeof s->sampling.seed);
}

static const uint8_t *get_seq(const uint8_t *q, batch_seq *s)
{
    memset(s, 0, sizeof *s);
    q = get(q, &s->req, sizeof s->req);
    q = get(q, &s->slot, sizeof s->slot);
    q = get(q, &s->pos, sizeof s->pos);
    q = get(q, &s->n_tokens, sizeof s->n_tokens);
    q = get(q, &s->sample, sizeof s->sample);
    q = get(q, &s->step, sizeof s->step);
    q = get(q, &s->score, sizeof s->score);
    q = get(q, &s->next_token, sizeof s->next_token);
    q = get(q, &s->sampling.top_k, sizeof s->sampling.top_k);
    q = get(q, &s->sampling.temperature, sizeof s->sampling.temperature);
    q = get(q, &s->sampling.top_p, sizeof s->sampling.top_p);
    q = get(q, &s->sampling.min_p, sizeof s->sampling.min_p);
    q = get(q, &s->embed, sizeof s->embed);
    return get(q, &s->sampling.seed, sizeof s->sampling.seed);
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a (quiet) NaN */
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(x >> 16);
}

static size_t wire_elem_bytes(uint32_t dt)
{
    switch (dt) {
    case WIRE_F32: return 4;
    case WIRE_F16:
    case WIRE_BF16: return 2;
    default: return 0;
    }
}

static void put_activations(uint8_t *q, const float *x, size_t n, wire_dtype dt)
{
    if (dt == WIRE_F32) {
        memcpy(q, x, n * sizeof *x);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h = dt == WIRE_F16 ? quant_f32_to_f16(x[i]) : f32_to_bf16(x[i]);
        memcpy(q + 2 * i, &h, 2);
    }
}

static void get_activations(const uint8_t *q, float *x, size_t n, uint32_t dt)
{
    if (dt == WIRE_F32) {
        memcpy(x, q, n * sizeof *x);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, q + 2 * i, 2);
        x[i] = dt == WIRE_F16 ? quant_f16_to_f32(h) : quant_bf16_to_f32(h);
    }
}

/* Sizes f for a frame of this header's payload, writes the header, and
 * returns where the payload goes; frame_seal then sets the CRC. */
static borg_status frame_start(frame_buf *f, frame_header *h, uint8_t **payload, borg_err *err)
{
    h->magic = FRAME_MAGIC;
    h->version = FRAME_VERSION;
    h->crc = 0;
    borg_status st = frame_size(f, HEADER_BYTES + (size_t)h->payload_bytes, err);
    if (st)
        return st;
    memcpy(f->p, h, HEADER_BYTES);
    *payload = f->p + HEADER_BYTES;
    return BORG_OK;
}

static void frame_seal(frame_buf *f)
{
    uint32_t crc = crc32c(0, f->p, f->len);
    memcpy(f->p + offsetof(frame_header, crc), &crc, sizeof crc);
}

/* ---- encoders ---- */

borg_status frame_put_batch(frame_buf *f, const borg_batch *b, const float *x, int dim, wire_dtype dt, borg_err *err)
{
    if (dim > 0 && (!x || !wire_elem_bytes(dt)))
        return borg_fail(err, BORG_EINTERNAL, "batch %lld: activations of width %d need data and a wire dtype",
                         (long long)b->id, dim);
    if (b->n_seqs < 0 || b->n_seqs > MAX_SEQS || b->n_tokens < 0 || b->n_tokens > MAX_TOKENS || dim < 0 ||
        dim > MAX_DIM)
        return borg_fail(err, BORG_EINTERNAL, "batch %lld: %d sequences, %d tokens of width %d do not fit a frame",
                         (long long)b->id, b->n_seqs, b->n_tokens, dim);
    size_t n_act = (size_t)b->n_tokens * (size_t)dim;
    frame_header h = {
        .kind = FRAME_BATCH,
        .batch_id = b->id,
        .n_seqs = b->n_seqs,
        .n_tokens = b->n_tokens,
        .dim = dim,
        .dtype = dim > 0 ? (uint16_t)dt : WIRE_NONE,
        .payload_bytes = (uint64_t)b->n_seqs * SEQ_BYTES + (uint64_t)b->n_tokens * sizeof(int32_t) +
                         (dim > 0 ? n_act * wire_elem_bytes(dt) : 0),
    };
    uint8_t *q;
    borg_status st = frame_start(f, &h, &q, err);
    if (st)
        return st;
    for (int i = 0; i < b->n_seqs; i++)
        q = put_seq(q, &b->seqs[i]);
    q = put(q, b->tokens, (size_t)b->n_tokens * sizeof(int32_t));
    if (dim > 0)
        put_activations(q, x, n_act, dt);
    frame_seal(f);
    return BORG_OK;
}

borg_status frame_put_results(frame_buf *f, int64_t batch_id, const batch_result *r, int n, const batch_row *rows,
                              const float *row_data, int n_rows, int dim, borg_err *err)
{
    if (n < 0 || n > MAX_SEQS || n_rows < 0 || n_rows > MAX_TOKENS || (n_rows && (dim < 1 || dim > MAX_DIM)))
        return borg_fail(err, BORG_EINTERNAL, "batch %lld: %d results and %d rows of width %d do not fit a frame",
                         (long long)batch_id, n, n_rows, dim);
    if (!n_rows)
        dim = 0;
    frame_header h = {.kind = FRAME_RESULT,
                      .batch_id = batch_id,
                      .n_seqs = n,
                      .n_tokens = n_rows,
                      .dim = dim,
                      .dtype = n_rows ? WIRE_F32 : WIRE_NONE,
                      .payload_bytes = (uint64_t)n * RESULT_BYTES +
                                       (uint64_t)n_rows * (ROW_BYTES + (uint64_t)dim * sizeof(float))};
    uint8_t *q;
    borg_status st = frame_start(f, &h, &q, err);
    if (st)
        return st;
    const uint32_t pad = 0;
    for (int i = 0; i < n; i++) {
        q = put(q, &r[i].req, sizeof r[i].req);
        q = put(q, &r[i].token, sizeof r[i].token);
        q = put(q, &r[i].logprob, sizeof r[i].logprob);
        q = put(q, &r[i].pos, sizeof r[i].pos);
        q = put(q, &pad, sizeof pad);
    }
    for (int i = 0; i < n_rows; i++) {
        q = put(q, &rows[i].req, sizeof rows[i].req);
        q = put(q, &rows[i].pos, sizeof rows[i].pos);
        q = put(q, &pad, sizeof pad);
    }
    if (n_rows)
        put(q, row_data, (size_t)n_rows * (size_t)dim * sizeof(float));
    frame_seal(f);
    return BORG_OK;
}

static int is_control(uint32_t kind)
{
    return kind == FRAME_SHUTDOWN || kind == FRAME_STATS || kind == FRAME_ERROR || kind == FRAME_READY ||
           kind == FRAME_RETRY || kind == FRAME_CONFIG || kind == FRAME_TRACE;
}

borg_status frame_put_control(frame_buf *f, frame_kind kind, const void *payload, size_t len, borg_err *err)
{
    if (!is_control(kind) || len > MAX_CONTROL || (len && !payload))
        return borg_fail(err, BORG_EINTERNAL, "control frame of kind %d with %zu bytes", (int)kind, len);
    frame_header h = {.kind = (uint16_t)kind, .payload_bytes = len};
    uint8_t *q;
    borg_status st = frame_start(f, &h, &q, err);
    if (st)
        return st;
    if (len)
        memcpy(q, payload, len);
    frame_seal(f);
    return BORG_OK;
}

/* ---- checking and decoding ---- */

/* The payload size a well-formed header of its kind implies; the counts
 * are bounded first so the arithmetic cannot overflow. */
static borg_status expected_payload(const frame_header *h, uint64_t *bytes, borg_err *err)
{
    const long long id = (long long)h->batch_id;
    if (h->kind == FRAME_BATCH) {
        size_t esz = wire_elem_bytes(h->dtype);
        if (h->n_seqs < 0 || h->n_seqs > MAX_SEQS || h->n_tokens < 0 || h->n_tokens > MAX_TOKENS ||
            h->n_seqs > h->n_tokens || h->dim < 0 || h->dim > MAX_DIM)
            return borg_fail(err, BORG_EINPUT, "frame for batch %lld: bad counts: %d sequences, %d tokens, width %d",
                             id, h->n_seqs, h->n_tokens, h->dim);
        if (h->dim == 0 ? h->dtype != WIRE_NONE : esz == 0)
            return borg_fail(err, BORG_EINPUT, "frame for batch %lld: activation width %d with wire dtype %u", id,
                             h->dim, h->dtype);
        *bytes = (uint64_t)h->n_seqs * SEQ_BYTES + (uint64_t)h->n_tokens * sizeof(int32_t) +
                 (uint64_t)h->n_tokens * (uint64_t)h->dim * esz;
        return BORG_OK;
    }
    if (h->kind == FRAME_RESULT) {
        if (h->n_seqs < 0 || h->n_seqs > MAX_SEQS || h->n_tokens < 0 || h->n_tokens > MAX_TOKENS || h->dim < 0 ||
            h->dim > MAX_DIM || (h->n_tokens ? h->dim == 0 || h->dtype != WIRE_F32 : h->dim || h->dtype != WIRE_NONE))
            return borg_fail(err, BORG_EINPUT, "frame for batch %lld: bad counts: %d results, %d rows of width %d", id,
                             h->n_seqs, h->n_tokens, h->dim);
        *bytes = (uint64_t)h->n_seqs * RESULT_BYTES +
                 (uint64_t)h->n_tokens * (ROW_BYTES + (uint64_t)h->dim * sizeof(float));
        return BORG_OK;
    }
    if (h->n_tokens || h->dim || h->dtype != WIRE_NONE)
        return borg_fail(err, BORG_EINPUT, "frame for batch %lld: kind %u carries tokens or activations", id, h->kind);
    if (h->n_seqs || h->payload_bytes > MAX_CONTROL)
        return borg_fail(err, BORG_EINPUT, "frame for batch %lld: control frame with %d sequences and %llu bytes", id,
                         h->n_seqs, (unsigned long long)h->payload_bytes);
    *bytes = h->payload_bytes;
    return BORG_OK;
}

borg_status frame_check(const uint8_t *p, size_t len, frame_header *out, borg_err *err)
{
    frame_header h;
    if (len < HEADER_BYTES)
        return borg_fail(err, BORG_EINPUT, "frame of %zu bytes is shorter than its %zu-byte header", len, HEADER_BYTES);
    memcpy(&h, p, HEADER_BYTES);
    const long long id = (long long)h.batch_id;
    if (h.magic != FRAME_MAGIC)
        return borg_fail(err, BORG_EINPUT, "frame for batch %lld: bad magic 0x%08x", id, h.magic);
    if (h.version != FRAME_VERSION)
        return borg_fail(err, BORG_EINPUT, "frame for batch %lld: version %u, expected %d", id, h.version,
                         FRAME_VERSION);
    if (h.kind != FRAME_BATCH && h.kind != FRAME_RESULT && !is_control(h.kind))
        return borg_fail(err, BORG_EINPUT, "frame for batch %lld: unknown kind %u", id, h.kind);
    if (h.payload_bytes != len - HEADER_BYTES)
        return borg_fail(err, BORG_EINPUT, "frame for batch %lld: %zu bytes, but the header says %zu + %llu", id, len,
                         HEADER_BYTES, (unsigned long long)h.payload_bytes);
    frame_header zeroed = h;
    zeroed.crc = 0;
    uint32_t crc = crc32c(crc32c(0, &zeroed, HEADER_BYTES), p + HEADER_BYTES, len - HEADER_BYTES);
    if (crc != h.crc)
        return borg_fail(err, BORG_EINPUT, "frame for batch %lld: CRC mismatch (got 0x%08x, computed 0x%08x)", id,
                         h.crc, crc);
    if (h.reserved || h.pad)
        return borg_fail(err, BORG_EINPUT, "frame for batch %lld: reserved header fields are not zero", id);
    uint64_t want = 0;
    borg_status st = expected_payload(&h, &want, err);
    if (st)
        return st;
    if (want != h.payload_bytes)
        return borg_fail(err, BORG_EINPUT,
                         "frame for batch %lld: payload of %llu bytes, but %d sequences and %d tokens of width %d "
                         "need %llu",
                         id, (unsigned long long)h.payload_bytes, h.n_seqs, h.n_tokens, h.dim,
                         (unsigned long long)want);
    *out = h;
    return BORG_OK;
}

borg_status frame_get_batch(const uint8_t *p, const frame_header *h, borg_batch *b, float **x, size_t *x_cap,
                            borg_err *err)
{
    const long long id = (long long)h->batch_id;
    if (h->kind != FRAME_BATCH || (uintptr_t)p % alignof(int32_t))
        return borg_fail(err, BORG_EINTERNAL, "frame for batch %lld: not a batch frame in an aligned buffer", id);
    const uint8_t *q = p + HEADER_BYTES;
    const uint8_t *tokens = q + (size_t)h->n_seqs * SEQ_BYTES;
    batch_clear(b);
    b->id = h->batch_id;
    int64_t used = 0;
    for (int i = 0; i < h->n_seqs; i++) {
        batch_seq s;
        q = get_seq(q, &s);
        if (s.n_tokens < 1 || s.slot < 0 || s.pos < 0 || s.pos > INT32_MAX - s.n_tokens || (s.score & ~1) ||
            (s.embed & ~1))
            return borg_fail(err, BORG_EINPUT, "frame for batch %lld: sequence %d has slot %d, pos %d, %d tokens", id,
                             i, s.slot, s.pos, s.n_tokens);
        if (used + s.n_tokens > h->n_tokens)
            return borg_fail(err, BORG_EINPUT, "frame for batch %lld: sequences hold more than its %d tokens", id,
                             h->n_tokens);
        borg_status st = batch_add(b, &s, (const int32_t *)(const void *)(tokens + (size_t)used * sizeof(int32_t)),
                                   err);
        if (st)
            return st;
        used += s.n_tokens;
    }
    if (used != h->n_tokens)
        return borg_fail(err, BORG_EINPUT, "frame for batch %lld: sequences hold %lld tokens, header says %d", id,
                         (long long)used, h->n_tokens);
    if (h->dim > 0 && h->n_tokens > 0 && x) { /* an empty batch has no activations to copy */
        size_t n = (size_t)h->n_tokens * (size_t)h->dim;
        if (n > *x_cap) {
            float *nx = realloc(*x, n * sizeof *nx);
            if (!nx)
                return borg_fail(err, BORG_ENOMEM, "out of memory for activations of batch %lld", id);
            *x = nx;
            *x_cap = n;
        }
        get_activations(tokens + (size_t)h->n_tokens * sizeof(int32_t), *x, n, h->dtype);
    }
    return BORG_OK;
}

borg_status frame_get_results(const uint8_t *p, const frame_header *h, batch_result *r, int *n, batch_row *rows,
                              float *row_data, borg_err *err)
{
    if (h->kind != FRAME_RESULT)
        return borg_fail(err, BORG_EINTERNAL, "frame for batch %lld: kind %u is not a result frame",
                         (long long)h->batch_id, h->kind);
    const uint8_t *q = p + HEADER_BYTES;
    uint32_t pad;
    for (int i = 0; i < h->n_seqs; i++) {
        q = get(q, &r[i].req, sizeof r[i].req);
        q = get(q, &r[i].token, sizeof r[i].token);
        q = get(q, &r[i].logprob, sizeof r[i].logprob);
        q = get(q, &r[i].pos, sizeof r[i].pos);
        q = get(q, &pad, sizeof pad);
    }
    for (int i = 0; i < h->n_tokens; i++) {
        q = get(q, &rows[i].req, sizeof rows[i].req);
        q = get(q, &rows[i].pos, sizeof rows[i].pos);
        q = get(q, &pad, sizeof pad);
    }
    if (h->n_tokens && h->dim)
        get(q, row_data, (size_t)h->n_tokens * (size_t)h->dim * sizeof(float));
    *n = h->n_seqs;
    return BORG_OK;
}

int64_t frame_peek_batch(const uint8_t *p, size_t len)
{
    frame_header h;
    if (len < sizeof h)
        return -1;
    memcpy(&h, p, sizeof h);
    return h.batch_id;
}
