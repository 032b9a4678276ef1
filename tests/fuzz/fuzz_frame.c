/* A frame off the wire, damaged or forged: the check (magic, version,
 * kind, sizes, CRC), then the decoder of its kind into buffers sized from
 * its header, as the coordinator and the stages size theirs. The CRC is
 * set right first for half the inputs (the first byte's low bit), so that
 * the decoders behind it are reached. */
#include <stdlib.h>
#include <string.h>

#include "borg/batch.h"
#include "borg/frame.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static void decode(const uint8_t *p, const frame_header *h)
{
    borg_err err;
    if (h->kind == FRAME_BATCH) {
        borg_batch b;
        batch_init(&b);
        float *x = NULL;
        size_t cap = 0;
        frame_get_batch(p, h, &b, &x, &cap, &err);
        free(x);
        batch_free(&b);
    } else if (h->kind == FRAME_RESULT && h->n_seqs >= 0 && h->n_tokens >= 0 && h->dim >= 0) {
        /* frame_check has held these counts to the payload's size */
        batch_result *r = malloc(sizeof *r * ((size_t)h->n_seqs + 1));
        batch_row *rows = malloc(sizeof *rows * ((size_t)h->n_tokens + 1));
        float *data = malloc(sizeof *data * ((size_t)h->n_tokens * (size_t)h->dim + 1));
        int n;
        if (r && rows && data)
            frame_get_results(p, h, r, &n, rows, data, &err);
        free(r);
        free(rows);
        free(data);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const int fix_crc = data[0] & 1;
    size--, data++;
    /* malloc'd, so 4-byte aligned as the decoders ask */
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    frame_header h;
    if (fix_crc && size >= sizeof h) {
        memcpy(&h, p, sizeof h);
        h.crc = 0;
        memcpy(p, &h, sizeof h);
        h.crc = crc32c(0, p, size);
        memcpy(p, &h, sizeof h);
    }
    borg_err err;
    if (frame_check(p, size, &h, &err) == BORG_OK)
        decode(p, &h);
    free(p);
    return 0;
}
