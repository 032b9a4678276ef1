/* Tokenizer against llama.cpp's ids (goldens made by
 * tests/tokenizer/make_golden.py), plus round trips, special tokens and
 * malformed vocabularies.
 *
 *   test_tokenizer smollm2 MODEL.gguf CORPUS.json GOLDEN.json
 *   test_tokenizer spm     DATA_DIR   CORPUS.json GOLDEN.json
 *   test_tokenizer pre     DATA_DIR   CORPUS.json GOLDEN_PRE.json */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "borg/gguf.h"
#include "borg/tokenizer.h"
#include "check.h"

#define MAX_SHOWN 10

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long n;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static cJSON *load_json(const char *path)
{
    char *text = slurp(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j)
        fprintf(stderr, "cannot read JSON from %s\n", path);
    return j;
}

static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n && i < 60; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(stderr, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    if (n > 60)
        fprintf(stderr, "...");
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    fprintf(stderr, "    %s [", label);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%d", i ? "," : "", (int)ids[i]);
    fprintf(stderr, "]\n");
}

static borg_tokenizer *open_tokenizer(const char *path, gguf_file **gf)
{
    borg_err err = {0};
    borg_tokenizer *t = NULL;
    if (gguf_open(path, gf, &err) || tokenizer_load(*gf, &t, &err)) {
        fprintf(stderr, "FAIL: cannot load the tokenizer of %s: %s\n", path, err.msg);
        gguf_close(*gf);
        *gf = NULL;
        return NULL;
    }
    return t;
}

/* Every corpus string must encode to its golden ids and decode back to
 * itself; the first mismatches are listed. */
static void check_corpus(const borg_tokenizer *t, const cJSON *corpus, const cJSON *golden, const char *label)
{
    int n = cJSON_GetArraySize(corpus), bad_ids = 0, bad_text = 0;
    if (!cJSON_IsArray(golden) || cJSON_GetArraySize(golden) != n) {
        fprintf(stderr, "FAIL %s: golden has %d entries for %d corpus strings; rerun make_golden.py\n", label,
                cJSON_GetArraySize(golden), n);
        check_failed++;
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *s = cJSON_GetArrayItem(corpus, i)->valuestring;
        const cJSON *want = cJSON_GetArrayItem(golden, i);
        size_t len = strlen(s), n_ids = 0, n_want = (size_t)cJSON_GetArraySize(want), out_len = 0;
        int32_t *ids = NULL, *want_ids = malloc((n_want ? n_want : 1) * sizeof *want_ids);
        char *text = NULL;
        borg_err err = {0};
        for (size_t k = 0; k < n_want; k++)
            want_ids[k] = (int32_t)cJSON_GetArrayItem(want, (int)k)->valueint;
        if (tokenizer_encode(t, s, len, 0, 0, &ids, &n_ids, &err)) {
            fprintf(stderr, "FAIL %s corpus[%d]: encode: %s\n", label, i, err.msg);
            bad_ids++;
        } else if (n_ids != n_want || (n_ids && memcmp(ids, want_ids, n_ids * sizeof *ids))) {
            if (bad_ids++ < MAX_SHOWN) {
                fprintf(stderr, "FAIL %s corpus[%d] \"", label, i);
                print_escaped(s, len);
                fprintf(stderr, "\"\n");
                print_ids("want", want_ids, n_want);
                print_ids("got ", ids, n_ids);
            }
        } else if (tokenizer_decode(t, ids, n_ids, 0, &text, &out_len, &err) || out_len != len ||
                   memcmp(text, s, len)) {
            if (bad_text++ < MAX_SHOWN) {
                fprintf(stderr, "FAIL %s corpus[%d]: decode gives \"", label, i);
                print_escaped(text ? text : "", text ? out_len : 0);
                fprintf(stderr, "\", want \"");
                print_escaped(s, len);
                fprintf(stderr, "\"\n");
            }
        }
        free(ids);
        free(want_ids);
        free(text);
    }
    if (bad_ids || bad_text) {
        fprintf(stderr, "FAIL %s: %d of %d strings encode differently from llama.cpp, %d do not decode back\n", label,
                bad_ids, n, bad_text);
        check_failed++;
    } else {
        printf("%s: %d strings match llama.cpp and round-trip\n", label, n);
        check_passed++;
    }
}

static int encodes_to(const borg_tokenizer *t, const char *s, size_t len, int add_special, int parse_special,
                      const int32_t *want, size_t n_want)
{
    int32_t *ids = NULL;
    size_t n = 0;
    borg_err err = {0};
    int ok = !tokenizer_encode(t, s, len, add_special, parse_special, &ids, &n, &err) && n == n_want &&
             (!n || !memcmp(ids, want, n * sizeof *ids));
    if (!ok) {
        fprintf(stderr, "  encoding \"");
        print_escaped(s, len);
        fprintf(stderr, "\" (add_special %d, parse_special %d): %s\n", add_special, parse_special, err.msg);
        print_ids("want", want, n_want);
        print_ids("got ", ids, n);
    }
    free(ids);
    return ok;
}

static int decodes_to(const borg_tokenizer *t, const int32_t *ids, size_t n, int render_special, const char *want)
{
    char *text = NULL;
    size_t len = 0;
    borg_err err = {0};
    int ok = !tokenizer_decode(t, ids, n, render_special, &text, &len, &err) && len == strlen(want) &&
             !memcmp(text, want, len);
    if (!ok)
        fprintf(stderr, "  decode: got \"%s\", want \"%s\" %s\n", text ? text : "", want, err.msg);
    free(text);
    return ok;
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void check_smollm2(const borg_tokenizer *t, const cJSON *corpus)
{
    CHECK(tokenizer_n_vocab(t) == 49152);
    CHECK(tokenizer_bos(t) == 1);
    CHECK(tokenizer_eos(t) == 2);
    CHECK(tokenizer_find(t, "<|im_start|>") == 1);
    CHECK(tokenizer_find(t, "<|im_end|>") == 2);
    CHECK(tokenizer_find(t, "<|no_such_token|>") == -1);
    /* llama.cpp's end-of-generation set for this model: <|endoftext|>,
     * <|im_end|> and <reponame> (a FIM repo token) */
    for (int32_t id = -1; id <= 20; id++)
        CHECK(tokenizer_is_eog(t, id) == (id == 0 || id == 2 || id == 4));
    CHECK(!tokenizer_is_eog(t, 49152));

    const char *chat = "<|im_start|>user\nHi<|im_end|>";
    CHECK(encodes_to(t, chat, strlen(chat), 0, 1, IDS(1, 4093, 198, 26843, 2)));
    CHECK(encodes_to(t, chat, strlen(chat), 1, 1, IDS(1, 4093, 198, 26843, 2))); /* no BOS added here */
    CHECK(encodes_to(t, chat, strlen(chat), 0, 0,
                     IDS(44, 108, 306, 79, 3738, 108, 46, 4093, 198, 26843, 44, 108, 306, 79, 486, 108, 46)));
    const char *twice = "<|im_start|><|im_start|>x<|endoftext|>";
    CHECK(encodes_to(t, twice, strlen(twice), 0, 1, IDS(1, 1, 104, 0)));
    CHECK(decodes_to(t, IDS(1, 4093, 198, 26843, 2), 1, chat));
    CHECK(decodes_to(t, IDS(1, 4093, 198, 26843, 2), 0, "user\nHi"));

    /* bytes that are not valid UTF-8 become U+FFFD (24211) as in llama.cpp;
     * NUL, overlong forms and surrogates pass through */
    CHECK(encodes_to(t, "a\0b", 3, 0, 0, IDS(81, 190, 82)));
    CHECK(encodes_to(t,
                     "a\xff"
                     "b",
                     3, 0, 0, IDS(81, 24211, 82)));
    CHECK(encodes_to(t, "\xc3(", 2, 0, 0, IDS(24211, 24)));
    CHECK(encodes_to(t, "\xe2\x82", 2, 0, 0, IDS(24211, 24211)));
    CHECK(encodes_to(t, "\xc0\x80x", 3, 0, 0, IDS(190, 104)));
    CHECK(encodes_to(t, "\xed\xa0\x80", 3, 0, 0, IDS(184, 250, 218)));
    CHECK(encodes_to(t, "ok\xf0\x9f\x98", 5, 0, 0, IDS(2231, 24211, 24211, 24211)));

    char buf[64];
    CHECK(tokenizer_piece(t, 1, 0, buf, sizeof buf) == 0);
    CHECK(tokenizer_piece(t, 1, 1, buf, sizeof buf) == 12 && !memcmp(buf, "<|im_start|>", 12));
    CHECK(tokenizer_piece(t, 905, 0, buf, sizeof buf) == 6 && !memcmp(buf, " world", 6));
    memset(buf, '#', sizeof buf);
    CHECK(tokenizer_piece(t, 905, 0, buf, 3) == 6 && !memcmp(buf, " wo#", 4));
    CHECK(tokenizer_piece(t, -1, 1, buf, sizeof buf) == -1);
    CHECK(tokenizer_piece(t, 49152, 1, buf, sizeof buf) == -1);

    borg_err err = {0};
    char *text = NULL;
    size_t len = 0;
    CHECK(tokenizer_decode(t, IDS(19556, 49152), 0, &text, &len, &err) == BORG_EINPUT);
    CHECK_CONTAINS(err.msg, "49152");
    CHECK(text == NULL);

    /* speed: a 2 KB prompt of mixed corpus text */
    char prompt[2048];
    size_t plen = 0;
    for (int i = 0; plen < sizeof prompt; i = (i + 7) % cJSON_GetArraySize(corpus)) {
        const char *s = cJSON_GetArrayItem(corpus, i)->valuestring;
        size_t n = strlen(s) < sizeof prompt - plen ? strlen(s) : sizeof prompt - plen;
        memcpy(prompt + plen, s, n);
        plen += n;
    }
    while (plen && ((unsigned char)prompt[plen - 1] & 0xC0) == 0x80)
        plen--; /* do not time a cut UTF-8 sequence */
    int reps = 50;
    double t0 = now_ms();
    for (int r = 0; r < reps; r++) {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(tokenizer_encode(t, prompt, plen, 1, 1, &ids, &n, &err) == BORG_OK && n > 0);
        free(ids);
    }
    double per = (now_ms() - t0) / reps;
    printf("encode: %.3f ms per %zu-byte prompt\n", per, plen);
    CHECK(per < 50.0); /* loose: sanitizer builds are slow */
}

static void check_spm(const borg_tokenizer *t, const char *dir)
{
    CHECK(tokenizer_bos(t) == 1);
    CHECK(tokenizer_eos(t) == 2);
    CHECK(tokenizer_is_eog(t, 2));
    CHECK(!tokenizer_is_eog(t, 1));
    CHECK(!tokenizer_is_eog(t, 0));
    CHECK(tokenizer_find(t, "<0x41>") == 3 + 0x41);

    /* add_special puts BOS first (tokenizer.ggml.add_bos_token defaults to
     * true for SPM) */
    CHECK(encodes_to(t, "hello", 5, 1, 0, IDS(1, 587, 999)));
    CHECK(encodes_to(t, "hello", 5, 0, 0, IDS(587, 999)));
    /* a space prefix goes before text that follows a special token */
    const char *s = "<s>hi</s> there";
    CHECK(encodes_to(t, s, strlen(s), 0, 1, IDS(1, 1753, 290, 2, 1753, 1713)));
    CHECK(decodes_to(t, IDS(1, 1753, 290, 2, 1753, 1713), 1, s));
    CHECK(decodes_to(t, IDS(1, 1753, 290, 2, 1753, 1713), 0, "hi there"));
    /* user-defined tokens are cut out even without parse_special */
    CHECK(encodes_to(t, "a<sep>b", 7, 0, 0, IDS(262, 259, 401)));
    CHECK(decodes_to(t, IDS(262, 259, 401), 0, "a<sep>b"));
    CHECK(decodes_to(t, IDS(3 + 0xe4, 3 + 0xbd, 3 + 0xa0), 0, "\xe4\xbd\xa0"));

    /* malformed vocabularies fail naming the key at fault */
    char path[4096];
    snprintf(path, sizeof path, "%s/spm_bad.txt", dir);
    char *list = slurp(path);
    CHECK(list != NULL);
    int n_bad = 0;
    for (char *line = list ? strtok(list, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char name[256], key[256];
        if (sscanf(line, "%255s %255s", name, key) != 2)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        gguf_file *f = NULL;
        borg_tokenizer *bt = NULL;
        borg_err err = {0};
        CHECK(gguf_open(path, &f, &err) == BORG_OK);
        if (f) {
            borg_status st = tokenizer_load(f, &bt, &err);
            if (st != BORG_EINPUT || !strstr(err.msg, key))
                fprintf(stderr, "  %s: status %d, message \"%s\" (want one naming %s)\n", name, st, err.msg, key);
            CHECK(st == BORG_EINPUT && strstr(err.msg, key));
            CHECK(bt == NULL);
        }
        gguf_close(f);
        n_bad++;
    }
    CHECK(n_bad >= 5);
    free(list);
}

int main(int argc, char **argv)
{
    /* model: only the corpus against the golden, for any real model file. */
    if (argc != 5 ||
        (strcmp(argv[1], "smollm2") && strcmp(argv[1], "model") && strcmp(argv[1], "spm") && strcmp(argv[1], "pre"))) {
        fprintf(stderr, "usage: %s smollm2|model|spm|pre MODEL_OR_DIR CORPUS.json GOLDEN.json\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *where = argv[2];
    if ((!strcmp(mode, "smollm2") || !strcmp(mode, "model")) && access(where, R_OK) != 0) {
        fprintf(stderr, "FAIL: model %s is missing; run tests/setup.sh to download it\n", where);
        return 1;
    }
    cJSON *corpus = load_json(argv[3]), *golden = load_json(argv[4]);
    if (!corpus || !golden) {
        cJSON_Delete(corpus);
        cJSON_Delete(golden);
        return 1;
    }
    char path[4096];
    gguf_file *f = NULL;
    borg_tokenizer *t = NULL;
    if (!strcmp(mode, "pre")) {
        const cJSON *g;
        cJSON_ArrayForEach(g, golden)
        {
            snprintf(path, sizeof path, "%s/pre_%s.gguf", where, g->string);
            CHECK((t = open_tokenizer(path, &f)) != NULL);
            if (t)
                check_corpus(t, corpus, g, g->string);
            tokenizer_free(t);
            gguf_close(f);
        }
        /* a pre-tokenizer llama.cpp does not know falls back to "default" */
        snprintf(path, sizeof path, "%s/pre_unknown.gguf", where);
        CHECK((t = open_tokenizer(path, &f)) != NULL);
        if (t)
            check_corpus(t, corpus, cJSON_GetObjectItemCaseSensitive(golden, "default"), "unknown pre");
    } else {
        if (!strcmp(mode, "spm"))
            snprintf(path, sizeof path, "%s/spm.gguf", where);
        else
            snprintf(path, sizeof path, "%s", where);
        double t0 = now_ms();
        CHECK((t = open_tokenizer(path, &f)) != NULL);
        if (t) {
            printf("%s: tokenizer of %d tokens loaded in %.1f ms\n", mode, tokenizer_n_vocab(t), now_ms() - t0);
            check_corpus(t, corpus, golden, mode);
            if (!strcmp(mode, "smollm2"))
                check_smollm2(t, corpus);
            else if (!strcmp(mode, "spm"))
                check_spm(t, where);
        }
    }
    tokenizer_free(t);
    gguf_close(f);
    cJSON_Delete(corpus);
    cJSON_Delete(golden);
    return check_report();
}
