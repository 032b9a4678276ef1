/* GGUF reader: metadata getters, tensors, malformed files, mutation fuzz.
 * Usage: test_gguf <fixture dir> [real model .gguf]
 * The fixtures come from tests/tools/gguf_fixtures.py. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "borg/gguf.h"
#include "borg/quant.h"

#include "check.h"

static const char *fixture_dir;

static const char *fixture(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", fixture_dir, name);
    return buf;
}

static int str_eq(gguf_str s, const char *want) { return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0; }

/* The getter failed with BORG_EINPUT and its message names the key and says why. */
static void expect_fail(borg_status s, const borg_err *err, const char *key, const char *why)
{
    CHECKF(s == BORG_EINPUT, "getter on '%s' returned %d, want BORG_EINPUT", key, (int)s);
    CHECKF(strstr(err->msg, key) != NULL, "message names key '%s': %s", key, err->msg);
    CHECKF(strstr(err->msg, why) != NULL, "message for '%s' says '%s': %s", key, why, err->msg);
}

static void check_scalars(const gguf_file *f)
{
    borg_err err = {0};
    uint32_t u = 0;
    int64_t i = 0;
    float x = 0;
    int b = -1;
    gguf_str s = {0};

    CHECKF(gguf_get_u32(f, "test.u8", &u, &err) == BORG_OK && u == 200, "u32 <- u8");
    CHECKF(gguf_get_u32(f, "test.u16", &u, &err) == BORG_OK && u == 60000, "u32 <- u16");
    CHECKF(gguf_get_u32(f, "test.u32", &u, &err) == BORG_OK && u == 4000000000u, "u32 <- u32");
    CHECKF(gguf_get_u32(f, "test.i8", &u, &err) == BORG_EINPUT, "u32 <- negative i8 fails");
    expect_fail(gguf_get_u32(f, "test.i32", &u, &err), &err, "test.i32", "does not fit in u32");
    expect_fail(gguf_get_u32(f, "test.u64_small", &u, &err), &err, "test.u64_small", "does not fit in u32");
    expect_fail(gguf_get_u32(f, "test.f32", &u, &err), &err, "test.f32", "has type f32, expected an integer");
    expect_fail(gguf_get_u32(f, "test.bool", &u, &err), &err, "test.bool", "expected an integer");
    expect_fail(gguf_get_u32(f, "no.such.key", &u, &err), &err, "no.such.key", "not found");

    CHECKF(gguf_get_i64(f, "test.i8", &i, &err) == BORG_OK && i == -100, "i64 <- i8");
    CHECKF(gguf_get_i64(f, "test.i16", &i, &err) == BORG_OK && i == -30000, "i64 <- i16");
    CHECKF(gguf_get_i64(f, "test.i32", &i, &err) == BORG_OK && i == -2000000000, "i64 <- i32");
    CHECKF(gguf_get_i64(f, "test.i64", &i, &err) == BORG_OK && i == -(INT64_C(1) << 40), "i64 <- i64");
    CHECKF(gguf_get_i64(f, "test.u32", &i, &err) == BORG_OK && i == 4000000000, "i64 <- u32");
    CHECKF(gguf_get_i64(f, "test.u64_small", &i, &err) == BORG_OK && i == INT64_C(12345678901), "i64 <- u64");
    expect_fail(gguf_get_i64(f, "test.u64", &i, &err), &err, "test.u64", "does not fit in i64");
    expect_fail(gguf_get_i64(f, "test.string", &i, &err), &err, "test.string", "has type string");
    expect_fail(gguf_get_i64(f, "test.i32_arr", &i, &err), &err, "test.i32_arr", "is an array of i32");

    CHECKF(gguf_get_f32(f, "test.f32", &x, &err) == BORG_OK && x == 1.5f, "f32 <- f32");
    CHECKF(gguf_get_f32(f, "test.f64", &x, &err) == BORG_OK && x == (float)2.718281828, "f32 <- f64");
    expect_fail(gguf_get_f32(f, "test.i32", &x, &err), &err, "test.i32", "expected f32 or f64");

    CHECKF(gguf_get_bool(f, "test.bool", &b, &err) == BORG_OK && b == 1, "bool true");
    CHECKF(gguf_get_bool(f, "test.false", &b, &err) == BORG_OK && b == 0, "bool false");
    expect_fail(gguf_get_bool(f, "test.u8", &b, &err), &err, "test.u8", "has type u8, expected bool");

    CHECKF(gguf_get_str(f, "test.string", &s, &err) == BORG_OK && str_eq(s, "hello gguf"), "string");
    CHECKF(gguf_get_str(f, "general.architecture", &s, &err) == BORG_OK && str_eq(s, "test"), "arch");
    expect_fail(gguf_get_str(f, "test.u32", &s, &err), &err, "test.u32", "has type u32, expected string");
    expect_fail(gguf_get_str(f, "test.str_arr", &s, &err), &err, "test.str_arr", "is an array of string");
    expect_fail(gguf_get_str(f, "missing", &s, &err), &err, "missing", "not found");
}

static void check_arrays(const gguf_file *f)
{
    borg_err err = {0};
    uint64_t n = 0;
    gguf_str *sa = NULL;
    float *fa = NULL;
    int32_t *ia = NULL;

    CHECKF(gguf_get_str_array(f, "test.str_arr", &sa, &n, &err) == BORG_OK && n == 4, "str array");
    if (sa && n == 4)
        CHECKF(str_eq(sa[0], "a") && str_eq(sa[1], "bc") && str_eq(sa[2], "") &&
                   str_eq(sa[3], "d\xc3\xa9"
                                 "f"),
               "str array values");
    free(sa);
    expect_fail(gguf_get_str_array(f, "test.i32_arr", &sa, &n, &err), &err, "test.i32_arr", "array of i32");
    expect_fail(gguf_get_str_array(f, "test.string", &sa, &n, &err), &err, "test.string", "expected an array");

    CHECKF(gguf_get_f32_array(f, "test.f32_arr", &fa, &n, &err) == BORG_OK && n == 3 && fa[0] == 0.5f &&
               fa[1] == -1.25f && fa[2] == 3.0f,
           "f32 array");
    free(fa);
    fa = NULL;
    CHECKF(gguf_get_f32_array(f, "test.i32_arr", &fa, &n, &err) == BORG_OK && n == 5 && fa[1] == -2.0f &&
               fa[4] == -2147483648.0f,
           "f32 array <- i32");
    free(fa);
    fa = NULL;
    CHECKF(gguf_get_f32_array(f, "test.u8_arr", &fa, &n, &err) == BORG_OK && n == 3 && fa[2] == 255.0f,
           "f32 array <- u8");
    free(fa);
    expect_fail(gguf_get_f32_array(f, "test.str_arr", &fa, &n, &err), &err, "test.str_arr", "array of numbers");
    expect_fail(gguf_get_f32_array(f, "test.nested", &fa, &n, &err), &err, "test.nested", "is an array of array");

    CHECKF(gguf_get_i32_array(f, "test.i32_arr", &ia, &n, &err) == BORG_OK && n == 5 && ia[0] == 1 && ia[1] == -2 &&
               ia[3] == INT32_MAX && ia[4] == INT32_MIN,
           "i32 array");
    free(ia);
    ia = NULL;
    CHECKF(gguf_get_i32_array(f, "test.u8_arr", &ia, &n, &err) == BORG_OK && n == 3 && ia[2] == 255, "i32 array <- u8");
    free(ia);
    expect_fail(gguf_get_i32_array(f, "test.i64_arr", &ia, &n, &err), &err, "test.i64_arr",
                "element 1 does not fit in i32");
    expect_fail(gguf_get_i32_array(f, "test.f32_arr", &ia, &n, &err), &err, "test.f32_arr", "array of integers");
    expect_fail(gguf_get_i32_array(f, "test.u32", &ia, &n, &err), &err, "test.u32", "expected an array");
}

static void check_keys(const gguf_file *f)
{
    int et = -1;
    CHECKF(gguf_kv_count(f) == 21, "kv count %llu", (unsigned long long)gguf_kv_count(f));
    CHECKF(str_eq(gguf_key_at(f, 0), "general.architecture"), "first key");
    CHECKF(str_eq(gguf_key_at(f, 20), "test.f64"), "last key");
    CHECKF(gguf_key_at(f, 21).ptr == NULL, "key past the end");
    CHECKF(gguf_has_key(f, "test.u8") && !gguf_has_key(f, "test.u") && !gguf_has_key(f, "test.u88") &&
               !gguf_has_key(f, ""),
           "has_key");
    CHECKF(gguf_key_type(f, "test.i16", NULL) == GGUF_VT_INT16, "key_type i16");
    CHECKF(gguf_key_type(f, "test.f64", &et) == GGUF_VT_FLOAT64, "key_type f64");
    CHECKF(gguf_key_type(f, "test.str_arr", &et) == GGUF_VT_ARRAY && et == GGUF_VT_STRING, "key_type str array");
    CHECKF(gguf_key_type(f, "test.nested", &et) == GGUF_VT_ARRAY && et == GGUF_VT_ARRAY, "key_type nested");
    CHECKF(gguf_key_type(f, "nope", &et) == -1, "key_type missing");
    for (uint64_t i = 0; i < gguf_kv_count(f); i++) {
        char key[128];
        gguf_str k = gguf_key_at(f, i);
        snprintf(key, sizeof key, "%.*s", (int)k.len, k.ptr);
        CHECKF(gguf_has_key(f, key), "every listed key is found: %s", key);
    }
}

static void check_tensors(const gguf_file *f)
{
    CHECKF(gguf_tensor_count(f) == 4, "tensor count");
    CHECKF(gguf_tensor_at(f, 4) == NULL, "tensor past the end");
    CHECKF(gguf_tensor_find(f, "nope") == NULL && gguf_tensor_find(f, "") == NULL &&
               gguf_tensor_find(f, "tok_embd") == NULL,
           "absent tensors");
    static const char *const names[] = {"tok_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                                        "output_norm.weight"};
    for (int i = 0; i < 4; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, (uint64_t)i);
        CHECKF(t && strcmp(t->name, names[i]) == 0, "tensor %d is %s", i, names[i]);
        CHECKF(gguf_tensor_find(f, names[i]) == t, "find %s", names[i]);
        CHECKF(t && t->offset % 32 == 0, "%s offset aligned", names[i]);
    }

    const gguf_tensor *e = gguf_tensor_find(f, "tok_embd.weight");
    if (e) {
        CHECKF(e->n_dims == 2 && e->ne[0] == 8 && e->ne[1] == 4 && e->ne[2] == 1 && e->ne[3] == 1, "embd shape");
        CHECKF(e->type == BORG_DT_F32 && e->nbytes == 128 && e->offset == 0, "embd type/size/offset");
        int ok = 1;
        for (int i = 0; i < 32; i++) {
            float v;
            memcpy(&v, (const char *)e->data + 4 * i, 4);
            ok &= v == (float)i;
        }
        CHECKF(ok, "embd data");
    }
    const gguf_tensor *q = gguf_tensor_find(f, "blk.0.attn_q.weight");
    if (q) {
        CHECKF(q->type == BORG_DT_Q8_0 && q->ne[0] == 32 && q->ne[1] == 2 && q->nbytes == 68, "q8 tensor");
        float row[32];
        double worst = 0;
        for (int r = 0; r < 2; r++) {
            quant_dequantize_row(BORG_DT_Q8_0, (const char *)q->data + 34 * r, row, 32);
            for (int i = 0; i < 32; i++)
                worst = fmax(worst, fabs(row[i] - (-1.0 + 2.0 * (r * 32 + i) / 63)));
        }
        CHECKF(worst < 0.01, "q8 data dequantizes to the original ramp (max err %g)", worst);
    }
    const gguf_tensor *k = gguf_tensor_find(f, "blk.0.attn_k.weight");
    CHECKF(q && k && k->data == (const char *)q->data + 96, "second tensor 96 bytes later (68 padded to 32)");
    const gguf_tensor *n = gguf_tensor_find(f, "output_norm.weight");
    if (n) {
        CHECKF(n->n_dims == 1 && n->ne[0] == 8 && n->ne[1] == 1 && n->type == BORG_DT_F16 && n->nbytes == 16,
               "norm tensor");
        float v[8];
        quant_dequantize_row(BORG_DT_F16, n->data, v, 8);
        CHECKF(v[0] == 0.0f && v[7] == 7.0f && v[3] == 3.0f, "norm data");
    }
}

static void check_valid(const char *name, uint32_t version)
{
    gguf_file *f = NULL;
    borg_err err = {0};
    borg_status s = gguf_open(fixture(name), &f, &err);
    CHECKF(s == BORG_OK && f, "open %s: %s", name, err.msg);
    if (!f)
        return;
    int before = check_failed;
    CHECKF(gguf_version(f) == version, "%s version %u", name, gguf_version(f));
    struct stat st;
    CHECKF(stat(fixture(name), &st) == 0 && gguf_file_size(f) == (size_t)st.st_size, "%s size %zu", name,
           gguf_file_size(f));
    CHECKF(strcmp(gguf_path(f), fixture(name)) == 0, "path kept");
    check_keys(f);
    check_scalars(f);
    check_arrays(f);
    check_tensors(f);
    gguf_close(f);
    printf("%s %s: metadata getters, type errors, tensors\n", check_failed == before ? "ok  " : "FAIL", name);
}

static void check_align64(void)
{
    gguf_file *f = NULL;
    borg_err err = {0};
    CHECKF(gguf_open(fixture("valid_align64.gguf"), &f, &err) == BORG_OK, "open align64: %s", err.msg);
    if (!f)
        return;
    const gguf_tensor *a = gguf_tensor_find(f, "a"), *b = gguf_tensor_find(f, "b");
    CHECKF(a && b && a->offset == 0 && b->offset == 64, "offsets padded to 64");
    if (b) {
        float v;
        memcpy(&v, (const char *)b->data + 16, 4);
        CHECKF(v == 4.0f, "align64 data");
    }
    gguf_close(f);
    printf("ok   valid_align64.gguf\n");
}

static void check_bad_files(void)
{
    FILE *list = fopen(fixture("bad_files.txt"), "r");
    CHECKF(list != NULL, "bad_files.txt present");
    if (!list)
        return;
    char line[512];
    int count = 0;
    while (fgets(line, sizeof line, list)) {
        line[strcspn(line, "\n")] = '\0';
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        const char *file = line, *expect = sp + 1;
        char path[4096];
        snprintf(path, sizeof path, "%s", fixture(file));
        gguf_file *f = (gguf_file *)&count; /* must be reset to NULL on failure */
        borg_err err = {0};
        borg_status s = gguf_open(path, &f, &err);
        int ok = s == BORG_EINPUT && f == NULL && strstr(err.msg, expect) && strstr(err.msg, path) && err.code == s;
        CHECKF(ok, "%s: status %d, message '%s', want BORG_EINPUT with '%s'", file, (int)s, err.msg, expect);
        if (s == BORG_OK)
            gguf_close(f);
        printf("%s %s -> %s\n", ok ? "ok  " : "FAIL", file, err.msg);
        count++;
    }
    fclose(list);
    CHECKF(count >= 30, "bad file list has %d entries", count);

    gguf_file *f = NULL;
    borg_err err = {0};
    borg_status s = gguf_open(fixture("does-not-exist.gguf"), &f, &err);
    CHECKF(s == BORG_EIO && f == NULL && strstr(err.msg, "does-not-exist.gguf"), "missing file: %s", err.msg);
    s = gguf_open(fixture_dir, &f, &err);
    CHECKF(s == BORG_EIO && f == NULL, "directory: %s", err.msg);
    printf("ok   missing file / directory -> BORG_EIO\n");
}

/* Everything a caller may touch on an opened file, to let ASan see any bad extent. */
static unsigned long exercise(const gguf_file *f)
{
    unsigned long sum = 0;
    borg_err err;
    for (uint64_t i = 0; i < gguf_kv_count(f); i++) {
        gguf_str k = gguf_key_at(f, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(k.len < 255 ? k.len : 255), k.ptr);
        int et = -1;
        sum += (unsigned long)gguf_key_type(f, key, &et) + (unsigned long)gguf_has_key(f, key);
        uint32_t u;
        int64_t i64;
        float x;
        int b;
        gguf_str s;
        uint64_t n;
        gguf_str *sa;
        float *fa;
        int32_t *ia;
        if (gguf_get_u32(f, key, &u, &err) == BORG_OK)
            sum += u;
        if (gguf_get_i64(f, key, &i64, &err) == BORG_OK)
            sum += (unsigned long)i64;
        if (gguf_get_f32(f, key, &x, &err) == BORG_OK)
            sum += x == x;
        if (gguf_get_bool(f, key, &b, &err) == BORG_OK)
            sum += (unsigned long)b;
        if (gguf_get_str(f, key, &s, &err) == BORG_OK)
            for (uint64_t j = 0; j < s.len; j++)
                sum += (unsigned char)s.ptr[j];
        if (gguf_get_str_array(f, key, &sa, &n, &err) == BORG_OK) {
            for (uint64_t j = 0; j < n; j++)
                for (uint64_t c = 0; c < sa[j].len; c++)
                    sum += (unsigned char)sa[j].ptr[c];
            free(sa);
        }
        if (gguf_get_f32_array(f, key, &fa, &n, &err) == BORG_OK) {
            for (uint64_t j = 0; j < n; j++)
                sum += fa[j] == fa[j];
            free(fa);
        }
        if (gguf_get_i32_array(f, key, &ia, &n, &err) == BORG_OK) {
            for (uint64_t j = 0; j < n; j++)
                sum += (unsigned long)ia[j];
            free(ia);
        }
    }
    for (uint64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const unsigned char *d = t->data;
        for (size_t j = 0; j < t->nbytes; j++)
            sum += d[j];
        sum += gguf_tensor_find(f, t->name) == t;
        size_t rb = quant_dtype_row_bytes((borg_dtype)t->type, t->ne[0]);
        float *row = malloc((size_t)t->ne[0] * sizeof *row);
        for (size_t off = 0; row && off + rb <= t->nbytes; off += rb) {
            quant_dequantize_row((borg_dtype)t->type, d + off, row, t->ne[0]);
            sum += row[0] == row[0];
        }
        free(row);
    }
    return sum;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fuzz(void)
{
    FILE *in = fopen(fixture("valid.gguf"), "rb");
    CHECKF(in != NULL, "read valid.gguf");
    if (!in)
        return;
    unsigned char orig[4096];
    size_t size = fread(orig, 1, sizeof orig, in);
    fclose(in);

    /* Mutations go where the parser looks: header, metadata, tensor infos, that
     * is, everything before the data section (whose tensors are padded to 32). */
    size_t region = 0;
    gguf_file *vf = NULL;
    borg_err verr = {0};
    if (gguf_open(fixture("valid.gguf"), &vf, &verr) == BORG_OK) {
        const gguf_tensor *last = gguf_tensor_at(vf, gguf_tensor_count(vf) - 1);
        region = size - (size_t)(last->offset + (last->nbytes + 31) / 32 * 32);
        gguf_close(vf);
    }
    CHECKF(region > 64 && region < size, "metadata region of valid.gguf: %zu bytes", region);
    if (region <= 64 || region >= size)
        return;
    char tmp[4096];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/test_gguf_fuzz_%ld.gguf", tmpdir ? tmpdir : "/tmp", (long)getpid());

    static const uint64_t huge[] = {UINT64_MAX, UINT64_MAX - 7, 1ull << 63, 1ull << 62, 1ull << 32,
                                    1ull << 31, 4096,           1344,       1345,       0};
    unsigned char buf[4096];
    int n_ok = 0, n_rejected = 0, n_other = 0;
    unsigned long sink = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, orig, size);
        size_t len = size;
        switch (rnd() % 5) {
        case 0: /* random bytes */
            for (int k = 1 + (int)(rnd() % 8); k > 0; k--)
                buf[rnd() % region] = (unsigned char)rnd();
            break;
        case 1: /* truncation */ len = (size_t)(rnd() % (size + 1)); break;
        case 2: { /* a huge u64 anywhere: lengths, counts, dims, offsets */
            uint64_t v = huge[rnd() % (sizeof huge / sizeof huge[0])];
            memcpy(buf + rnd() % (region - 8), &v, 8);
            break;
        }
        case 3: /* single bit flips */
            for (int k = 1 + (int)(rnd() % 3); k > 0; k--)
                buf[rnd() % region] ^= (unsigned char)(1u << (rnd() % 8));
            break;
        default: { /* small u32: types, n_dims, element types */
            uint32_t v = (uint32_t)(rnd() % 16);
            if (rnd() % 4 == 0)
                v = (uint32_t)rnd();
            memcpy(buf + rnd() % (region - 4), &v, 4);
            break;
        }
        }
        FILE *out = fopen(tmp, "wb");
        if (!out || fwrite(buf, 1, len, out) != len) {
            CHECKF(0, "write %s: %s", tmp, strerror(errno));
            if (out)
                fclose(out);
            break;
        }
        fclose(out);
        gguf_file *f = NULL;
        borg_err err = {0};
        borg_status s = gguf_open(tmp, &f, &err);
        if (s == BORG_OK) {
            n_ok++;
            sink += exercise(f);
            gguf_close(f);
        } else if ((s == BORG_EINPUT || s == BORG_EIO) && f == NULL && strncmp(err.msg, tmp, strlen(tmp)) == 0) {
            n_rejected++;
        } else {
            n_other++;
            printf("  fuzz %d: status %d, message '%s'\n", iter, (int)s, err.msg);
        }
    }
    unlink(tmp);
    CHECKF(n_other == 0, "fuzz: %d variants gave an unexpected status or message", n_other);
    CHECKF(n_ok > 0 && n_rejected > 0, "fuzz exercised both outcomes");
    printf("%s fuzz: 3000 variants, %d opened, %d rejected, %d wrong (checksum %lu)\n", n_other ? "FAIL" : "ok  ", n_ok,
           n_rejected, n_other, sink % 1000);
}

static void check_model(const char *path)
{
    if (!path || access(path, R_OK) != 0) {
        printf("note: real model %s not found, skipping that check\n", path ? path : "(none given)");
        return;
    }
    gguf_file *f = NULL;
    borg_err err = {0};
    CHECKF(gguf_open(path, &f, &err) == BORG_OK, "open model: %s", err.msg);
    if (!f)
        return;
    CHECKF(gguf_tensor_count(f) == 272, "model has %llu tensors, want 272", (unsigned long long)gguf_tensor_count(f));
    uint32_t blocks = 0;
    CHECKF(gguf_get_u32(f, "llama.block_count", &blocks, &err) == BORG_OK && blocks == 30, "block_count");
    gguf_str *tokens = NULL;
    uint64_t n = 0;
    CHECKF(gguf_get_str_array(f, "tokenizer.ggml.tokens", &tokens, &n, &err) == BORG_OK && n == 49152, "49152 tokens");
    free(tokens);
    const gguf_tensor *t = gguf_tensor_find(f, "token_embd.weight");
    CHECKF(t && t->type == BORG_DT_Q8_0 && t->ne[0] == 576 && t->ne[1] == 49152, "token_embd.weight");
    unsigned sum = 0;
    for (uint64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *ti = gguf_tensor_at(f, i);
        sum += ((const unsigned char *)ti->data)[0] + ((const unsigned char *)ti->data)[ti->nbytes - 1];
        CHECKF(gguf_tensor_find(f, ti->name) == ti, "find %s", ti->name);
    }
    gguf_close(f);
    printf("ok   real model: 272 tensors (checksum %u)\n", sum % 1000);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR [MODEL.gguf]\n", argv[0]);
        return 2;
    }
    fixture_dir = argv[1];
    check_valid("valid.gguf", 3);
    check_valid("valid_v2.gguf", 2);
    check_align64();
    check_bad_files();
    fuzz();
    check_model(argc > 2 ? argv[2] : NULL);
    return check_report();
}
