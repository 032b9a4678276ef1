/* Tokenizer built from a GGUF file's tokenizer.ggml.* metadata.
 *
 * Two models: "gpt2" (byte-level BPE with a pre-tokenizer regex chosen by
 * tokenizer.ggml.pre: SmolLM2, Llama-3, Qwen2 ...) and "llama"
 * (SentencePiece-style BPE over scores with byte fallback: Llama-2,
 * TinyLlama ...). Token ids match llama.cpp's tokenizer on the same file.
 *
 * Pre-tokenizers: the smollm/starcoder family, gpt-2, llama-bpe (llama3),
 * qwen2 and "default" with their llama.cpp aliases; any other name gets
 * llama.cpp's "default" chain (llama.cpp itself refuses such a file).
 * Unicode classes come from Python's unicodedata (see
 * src/model/unicode_data.py), a version behind llama.cpp's table. */
#ifndef BORG_TOKENIZER_H
#define BORG_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"
#include "borg/gguf.h"

typedef struct borg_tokenizer borg_tokenizer;

/* Reads the vocabulary, merges/scores, token types and special ids.
 * Fails with BORG_EINPUT naming the key at fault. The tokenizer copies what
 * it needs: it stays valid after gguf_close. */
borg_status tokenizer_load(const gguf_file *f, borg_tokenizer **out, borg_err *err);
void tokenizer_free(borg_tokenizer *t);

int32_t tokenizer_n_vocab(const borg_tokenizer *t);
/* -1 when the model has none. */
int32_t tokenizer_bos(const borg_tokenizer *t);
int32_t tokenizer_eos(const borg_tokenizer *t);
/* 1 if encoding with add_special prepends BOS. */
int tokenizer_adds_bos(const borg_tokenizer *t);
/* 1 if id ends generation (EOS, EOT, <|im_end|>, <|endoftext|>, ...). */
int tokenizer_is_eog(const borg_tokenizer *t, int32_t id);
/* Id of a token whose text is exactly s (e.g. "<|im_start|>"), -1 if none. */
int32_t tokenizer_find(const borg_tokenizer *t, const char *s);

/* Encodes len bytes of text. add_special: prepend BOS (and append EOS)
 * where the model's metadata asks for it (tokenizer.ggml.add_bos_token,
 * as llama.cpp does). parse_special: text matching a control token's text
 * (e.g. "<|im_start|>") becomes that token instead of being split;
 * user-defined tokens are matched either way, as in llama.cpp. Bytes that
 * are not valid UTF-8 are read as U+FFFD (gpt2) or fall back to byte
 * tokens (llama). *ids is malloc'd (also when *n_ids is 0); the caller
 * frees it. */
borg_status tokenizer_encode(const borg_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                             int32_t **ids, size_t *n_ids, borg_err *err);

/* The bytes token id stands for when printed (byte-level decoded, "▁" as
 * space, <0xNN> as the byte). Control tokens yield their text only when
 * render_special is set, otherwise nothing. Returns the piece's full
 * length, or -1 for an id out of range; writes at most cap bytes (no NUL). */
int tokenizer_piece(const borg_tokenizer *t, int32_t id, int render_special, char *buf, size_t cap);
/* The same bytes in place, whatever their length (*len of them, no NUL):
 * valid as long as the tokenizer; NULL for an id out of range. */
const char *tokenizer_piece_bytes(const borg_tokenizer *t, int32_t id, int render_special, size_t *len);

/* Decodes ids to text: the concatenation of pieces, minus the space a
 * SentencePiece model adds at encode time (before the first text and
 * after each special token), so that decode(encode(s)) == s for valid
 * UTF-8. Fails with BORG_EINPUT for an id out of range. *out is malloc'd
 * and NUL-terminated. */
borg_status tokenizer_decode(const borg_tokenizer *t, const int32_t *ids, size_t n, int render_special, char **out,
                             size_t *out_len, borg_err *err);

#endif
