/* The wire format between ranks.
 *
 * Every message is one frame: a fixed header (magic, version, kind, batch
 * id, counts, payload size, CRC32C) and a payload. A batch frame carries
 * the sequence table, the token ids and, past the first stage, the hidden
 * states of every token. A frame whose CRC or sizes do not check out is
 * rejected whole: nothing in it is used.
 *
 * Layout (little-endian): the 48-byte frame_header as declared, then the
 * payload.
 *   FRAME_BATCH   n_seqs 64-byte sequence records (req i64, slot i32, pos i32,
 *                 n_tokens i32, sample i32, step i32, score i32 (0 or 1),
 *                 next_token i32, top_k i32,
 *                 temperature f32, top_p f32, min_p f32, embed i32 (0 or 1),
 *                 seed u64), then n_tokens i32 token ids, then, when dim > 0,
 *                 n_tokens x dim activations in `dtype` (dim 0 <=> WIRE_NONE).
 *   FRAME_RESULT  n_seqs 24-byte records (req i64, token i32, logprob f32,
 *                 pos i32, pad u32 = 0), then n_tokens 16-byte hidden-state
 *                 row records (req i64, pos i32, pad u32 = 0), then their
 *                 n_tokens x dim f32 values (dtype WIRE_F32; with no rows
 *                 n_tokens, dim and dtype are 0).
 *   control kinds an opaque payload of payload_bytes (<= 1 MiB) at
 *                 p + sizeof(frame_header); all counts are 0, batch_id 0.
 * reserved and pad are 0. Limits: n_seqs, n_tokens <= 2^24, dim <= 2^20, so
 * no size computed from a header can overflow, and a frame's payload must be
 * exactly what its counts imply. */
#ifndef BORG_FRAME_H
#define BORG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "borg/batch.h"
#include "borg/error.h"

#define FRAME_MAGIC 0x47524f42u /* "BORG" little-endian */
#define FRAME_VERSION 5

typedef enum {
    FRAME_BATCH = 1,    /* coordinator -> stage 0 -> ... : sequences, tokens, activations */
    FRAME_RESULT = 2,   /* last stage -> coordinator: sampled tokens of a batch */
    FRAME_SHUTDOWN = 3, /* coordinator -> every stage */
    FRAME_STATS = 4,    /* stage -> coordinator on shutdown: busy time, memory */
    FRAME_ERROR = 5,    /* stage -> coordinator: the stage cannot go on, and why */
    FRAME_READY = 6,    /* stage -> coordinator at start-up: layers loaded, KV cache reserved */
    FRAME_RETRY = 7,    /* stage -> coordinator: a batch arrived damaged; payload: its int64 id */
    FRAME_CONFIG = 8,   /* coordinator -> stage: the run spec (spec.h) to build itself from */
    FRAME_TRACE = 9     /* stage -> coordinator, with --trace: trace_span records of batches it computed */
} frame_kind;

typedef enum { WIRE_NONE = 0, WIRE_F32 = 1, WIRE_F16 = 2, WIRE_BF16 = 3 } wire_dtype;

typedef struct {
    uint32_t magic;
    uint16_t version;
    uint16_t kind;
    int64_t batch_id;
    int32_t n_seqs;
    int32_t n_tokens;
    int32_t dim;    /* activation width; 0 without activations */
    uint16_t dtype; /* wire_dtype of the activations */
    uint16_t reserved;
    uint64_t payload_bytes;
    uint32_t crc; /* CRC32C of the header (with crc = 0) and the payload */
    uint32_t pad;
} frame_header;

typedef struct {
    double busy_s; /* time spent computing */
    double wall_s; /* time from the first batch to shutdown */
    double peak_rss_mib;
    int64_t batches;
    int64_t tokens;
    int32_t stage;
    int32_t replica;
    int32_t layer_begin, layer_end;
    int32_t kv_slots; /* sequences the stage's KV cache holds */
    int32_t slot_ctx; /* positions per sequence */
    int64_t crc_errors;
    int64_t kv_bytes_per_token; /* its KV cache: K and V of one position over its layers */
    int32_t threads;            /* compute threads */
    int32_t q8_activations;     /* the activation mode it computes in */
    int32_t kv_dtype;           /* what its KV cache holds (borg_dtype) */
    uint64_t model_hash;        /* gguf_fingerprint of the file it opened */
    uint64_t full_hash;         /* with --verify-model: gguf_full_hash of it; else 0 */
    uint64_t options_hash;      /* cli_run_options_hash of its own command line */
    int32_t asked_q8;           /* the activation mode its own options or environment ask for; -1: none */
    int32_t loaded;             /* 0: it found a mismatch and loaded nothing */
    int32_t final;              /* STATS: 1 at shutdown, 0 for the figures sent every few seconds while running */
    char host[64];              /* its host name, for messages */
    char isa[16];               /* the kernel path it computes with (matmul_isa) */
} stage_stats;

/* A growable byte buffer holding one frame. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} frame_buf;

void frame_buf_free(frame_buf *f);

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). Start with crc = 0;
 * the pre- and post-inversion happen inside, so calls chain:
 * crc32c(crc32c(0, a, n), b, m) is the CRC of a followed by b.
 * crc32c("123456789") = 0xE3069283. crc32c uses the SSE4.2 instruction when
 * the CPU has it; crc32c_portable (table-driven, exported for the tests)
 * gives identical results everywhere. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);

/* Encoders: replace f's contents with a complete frame (CRC set). f16 is
 * written with quant_f32_to_f16, bf16 rounded to nearest even. */
borg_status frame_put_batch(frame_buf *f, const borg_batch *b, const float *x, int dim, wire_dtype dt, borg_err *err);
/* n results, then n_rows hidden-state rows of dim floats each (row_data,
 * n_rows x dim; none when n_rows is 0). */
borg_status frame_put_results(frame_buf *f, int64_t batch_id, const batch_result *r, int n, const batch_row *rows,
                              const float *row_data, int n_rows, int dim, borg_err *err);
borg_status frame_put_control(frame_buf *f, frame_kind kind, const void *payload, size_t len, borg_err *err);

/* Checks magic, version, kind, sizes and CRC of the len bytes at p, and
 * fills *h. BORG_EINPUT names what is wrong and the batch id. p need not be
 * aligned. The CRC is over the header with crc = 0, then the payload. */
borg_status frame_check(const uint8_t *p, size_t len, frame_header *h, borg_err *err);

/* The batch id a frame's header claims, without trusting the rest (to ask
 * for a damaged batch again); -1 when too short to have a header. */
int64_t frame_peek_batch(const uint8_t *p, size_t len);

/* Decoders of a checked frame (p 4-byte aligned, as malloc'd buffers are).
 * frame_get_batch checks each sequence (n_tokens >= 1, slot and pos >= 0,
 * token counts summing to the frame's) and fills b and, when the frame has
 * activations and x is not NULL, *x (grown to n_tokens x dim floats; *x_cap
 * counts floats). */
borg_status frame_get_batch(const uint8_t *p, const frame_header *h, borg_batch *b, float **x, size_t *x_cap,
                            borg_err *err);
/* Copies the h->n_seqs results into r, which has room for that many (*n
 * gets the count), and the h->n_tokens rows into rows and their
 * h->n_tokens x h->dim values into row_data, which have room for them. */
borg_status frame_get_results(const uint8_t *p, const frame_header *h, batch_result *r, int *n, batch_row *rows,
                              float *row_data, borg_err *err);

#endif
