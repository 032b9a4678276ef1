/* The tokenizer of a real vocabulary (the GGUF named by BORG_FUZZ_MODEL)
 * over arbitrary input: the first byte picks encode (of the rest, as bytes,
 * with its flags) or decode (of the rest, as little-endian int32 ids, in
 * and out of range, whole and piece by piece). Valid UTF-8 text must come
 * back from decode(encode(text)) as it went in, without special tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "borg/gguf.h"
#include "borg/tokenizer.h"
#include "fuzz.h"

static gguf_file *file;
static borg_tokenizer *tok;
static int missing[256]; /* bytes the vocabulary has no token for */

/* GPT-2's byte-level alphabet: the printable bytes stand for themselves as
 * code points, the others for 256, 257, ... in order. */
static uint32_t byte_char(int b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))
        return (uint32_t)b;
    uint32_t n = 0;
    for (int c = 0; c < b; c++)
        n += !((c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff));
    return 256 + n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *path = getenv("BORG_FUZZ_MODEL");
    borg_err err;
    if (!path || gguf_open(path, &file, &err) || tokenizer_load(file, &tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer: BORG_FUZZ_MODEL must name a GGUF with a tokenizer (%s)\n",
                path ? err.msg : "not set");
        exit(2);
    }
    for (int b = 0; b < 256; b++) {
        const uint32_t c = byte_char(b);
        char piece[3] = {(char)(c < 0x80 ? c : 0xc0 | c >> 6), (char)(0x80 | (c & 0x3f)), 0};
        if (c < 0x80)
            piece[1] = 0;
        missing[b] = tokenizer_find(tok, piece) < 0;
    }
    return 0;
}

/* decode(encode(s)) gives back s, less the bytes that have no token (as
 * llama.cpp, the encoder drops them: SmolLM2 lacks 0x04, 0x06 and a few
 * more), when s is valid UTF-8 without a NUL (a prompt from JSON cannot
 * hold one). */
static int valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        const uint8_t c = s[i];
        size_t k = c == 0               ? 0
                   : c < 0x80           ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        if (k == 0 || i + k > n)
            return 0;
        uint32_t cp = k == 1 ? c : c & (0x7f >> k);
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k;
    }
    return 1;
}

static void encode(const uint8_t *text, size_t n, uint8_t flags)
{
    borg_err err;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    const int add_special = flags & 1, parse_special = flags & 2;
    if (tokenizer_encode(tok, (const char *)text, n, add_special, parse_special, &ids, &n_ids, &err) == BORG_OK) {
        char *back = NULL;
        size_t len = 0;
        uint8_t *want = malloc(n ? n : 1);
        size_t n_want = 0;
        for (size_t i = 0; want && i < n; i++)
            if (!missing[text[i]])
                want[n_want++] = text[i];
        if (want && !add_special && !parse_special && valid_utf8(text, n) &&
            tokenizer_decode(tok, ids, n_ids, 0, &back, &len, &err) == BORG_OK &&
            (len != n_want || memcmp(back, want, n_want) != 0)) {
            fprintf(stderr, "fuzz_tokenizer: decode(encode(%zu bytes)) gave %zu other bytes\n", n, len);
            abort();
        }
        free(want);
        free(back);
    }
    free(ids);
}

static void decode(const uint8_t *data, size_t n, uint8_t flags)
{
    const size_t n_ids = n / 4;
    int32_t *ids = calloc(n_ids ? n_ids : 1, sizeof *ids);
    if (!ids)
        return;
    for (size_t i = 0; i < n_ids; i++) {
        uint32_t v = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 | (uint32_t)data[4 * i + 2] << 16 |
                     (uint32_t)data[4 * i + 3] << 24;
        /* mostly in range, where the pieces are; sometimes anything */
        ids[i] = v & 0x80000000u ? (int32_t)v : (int32_t)(v % (uint32_t)(tokenizer_n_vocab(tok) + 2));
    }
    borg_err err;
    char *out = NULL;
    size_t len = 0;
    if (tokenizer_decode(tok, ids, n_ids, flags & 1, &out, &len, &err) == BORG_OK)
        free(out);
    char piece[16];
    for (size_t i = 0; i < n_ids; i++) {
        size_t plen;
        tokenizer_piece(tok, ids[i], flags & 1, piece, sizeof piece);
        tokenizer_piece_bytes(tok, ids[i], flags & 1, &plen);
        tokenizer_is_eog(tok, ids[i]);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 0x80)
        decode(data + 1, size - 1, data[0]);
    else
        encode(data + 1, size - 1, data[0]);
    return 0;
}
