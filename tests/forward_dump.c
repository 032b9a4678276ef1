/* Runs a prompt through the C forward pass and greedy-decodes, writing the
 * logits of every step in the format tests/reference/ref_llama.py writes,
 * so compare_logits.py can hold the two side by side:
 *   int32 n_steps, int32 n_vocab, then per step: int32 argmax, f32 logits[n_vocab]
 * --chunk splits the prefill into chunks (exercising chunked prefill);
 * --slot places the sequence in a slot other than 0 of a multi-slot cache;
 * --kv-dtype f32 keeps the cache in f32 (default f16, as borg-infer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "borg/gguf.h"
#include "borg/kvcache.h"
#include "borg/model.h"
#include "borg/threadpool.h"

static int parse_tokens(const char *s, int32_t **out, int *n)
{
    int cap = 16;
    *out = malloc(sizeof(int32_t) * (size_t)cap);
    *n = 0;
    while (*out && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            return -1;
        if (*n == cap && !(*out = realloc(*out, sizeof(int32_t) * (size_t)(cap *= 2))))
            return -1;
        (*out)[(*n)++] = (int32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return *out && *n > 0 ? 0 : -1;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *tokens = NULL, *out = NULL;
    int gen = 0, chunk = 0, threads = 1, slot = 0;
    borg_dtype kv_dtype = BORG_DT_F16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--tokens"))
            tokens = argv[i + 1];
        else if (!strcmp(argv[i], "--out"))
            out = argv[i + 1];
        else if (!strcmp(argv[i], "--gen"))
            gen = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--chunk"))
            chunk = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--slot"))
            slot = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kv-dtype") && (!strcmp(argv[i + 1], "f32") || !strcmp(argv[i + 1], "f16")))
            kv_dtype = !strcmp(argv[i + 1], "f32") ? BORG_DT_F32 : BORG_DT_F16;
        else {
            fprintf(stderr, "forward_dump: unknown option or bad value '%s %s'\n", argv[i], argv[i + 1]);
            return 2;
        }
    }
    if (!model || !tokens || !out) {
        fprintf(stderr, "usage: forward_dump --model M --tokens 1,2,3 --out F [--gen N --chunk K --threads T --slot S "
                        "--kv-dtype f16|f32]\n");
        return 2;
    }
    int32_t *ids;
    int n;
    if (parse_tokens(tokens, &ids, &n)) {
        fprintf(stderr, "forward_dump: bad --tokens\n");
        return 2;
    }
    borg_err err = {0};
    gguf_file *f = NULL;
    borg_model *m = NULL;
    borg_pool *pool = NULL;
    borg_kvcache kv = {0};
    borg_hparams hp;
    int n_slots = slot + 2;
    if (gguf_open(model, &f, &err) || family_hparams(f, &hp, &err) ||
        model_load(f, 0, hp.n_layer, 1, 1, NULL, &m, &err) ||
        model_kv_create(m, n_slots, n + gen + 1, n + gen + 1, kv_dtype, &kv, &err) ||
        pool_create(threads, &pool, &err)) {
        fprintf(stderr, "forward_dump: %s\n", err.msg);
        return 1;
    }
    hp = *model_hp(m);
    int total = n + gen;
    float *x = malloc(sizeof(float) * (size_t)total * hp.dim);
    float *logits = malloc(sizeof(float) * (size_t)hp.n_vocab);
    int32_t *slots = malloc(sizeof(int32_t) * (size_t)total), *pos = malloc(sizeof(int32_t) * (size_t)total);
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)(total + 1));
    FILE *o = fopen(out, "wb");
    if (!x || !logits || !slots || !pos || !seq || !o) {
        fprintf(stderr, "forward_dump: out of memory or cannot write %s\n", out);
        return 1;
    }
    memcpy(seq, ids, sizeof(int32_t) * (size_t)n);
    int32_t steps = gen + 1;
    fwrite(&steps, 4, 1, o);
    fwrite(&hp.n_vocab, 4, 1, o);
    if (chunk <= 0)
        chunk = n;
    int done = 0;
    for (int step = 0; step <= gen; step++) {
        int end = step == 0 ? n : n + step;
        while (done < end) {
            int k = end - done < chunk ? end - done : chunk;
            for (int i = 0; i < k; i++) {
                slots[i] = slot;
                pos[i] = done + i;
            }
            if (model_embed(m, seq + done, k, x, &err) || model_forward(m, &kv, x, slots, pos, k, pool, &err)) {
                fprintf(stderr, "forward_dump: %s\n", err.msg);
                return 1;
            }
            done += k;
            if (done == end && model_logits(m, x + (size_t)(k - 1) * hp.dim, 1, logits, pool, &err)) {
                fprintf(stderr, "forward_dump: %s\n", err.msg);
                return 1;
            }
        }
        int32_t next = argmax(logits, hp.n_vocab);
        fwrite(&next, 4, 1, o);
        fwrite(logits, sizeof(float), (size_t)hp.n_vocab, o);
        seq[end] = next;
    }
    fclose(o);
    free(x);
    free(logits);
    free(slots);
    free(pos);
    free(seq);
    free(ids);
    pool_destroy(pool);
    kv_free(&kv);
    model_free(m);
    gguf_close(f);
    return 0;
}
