#include "borg/batch.h"

#include <stdlib.h>
#include <string.h>

void batch_init(borg_batch *b) { memset(b, 0, sizeof *b); }

void batch_free(borg_batch *b)
{
    free(b->seqs);
    free(b->tokens);
    memset(b, 0, sizeof *b);
}

void batch_clear(borg_batch *b)
{
    b->n_seqs = 0;
    b->n_tokens = 0;
}

borg_status batch_add(borg_batch *b, const batch_seq *s, const int32_t *tokens, borg_err *err)
{
    if (b->n_seqs == b->cap_seqs) {
        int cap = b->cap_seqs ? 2 * b->cap_seqs : 16;
        batch_seq *p = realloc(b->seqs, sizeof *p * (size_t)cap);
        if (!p)
            return borg_fail(err, BORG_ENOMEM, "out of memory building a batch");
        b->seqs = p;
        b->cap_seqs = cap;
    }
    if (b->n_tokens + s->n_tokens > b->cap_tokens) {
        int cap = b->cap_tokens ? b->cap_tokens : 256;
        while (cap < b->n_tokens + s->n_tokens)
            cap *= 2;
        int32_t *p = realloc(b->tokens, sizeof *p * (size_t)cap);
        if (!p)
            return borg_fail(err, BORG_ENOMEM, "out of memory building a batch");
        b->tokens = p;
        b->cap_tokens = cap;
    }
    b->seqs[b->n_seqs++] = *s;
    memcpy(b->tokens + b->n_tokens, tokens, sizeof *tokens * (size_t)s->n_tokens);
    b->n_tokens += s->n_tokens;
    return BORG_OK;
}

int batch_result_cap(const borg_batch *b)
{
    int n = b->n_seqs;
    for (int i = 0; i < b->n_seqs; i++)
        if (b->seqs[i].score)
            n += b->seqs[i].n_tokens;
    return n;
}

int batch_row_cap(const borg_batch *b)
{
    int n = 0;
    for (int i = 0; i < b->n_seqs; i++)
        if (b->seqs[i].embed)
            n += b->seqs[i].n_tokens;
    return n;
}
