/* GGUF reader. Everything is validated once in gguf_open; afterwards the
 * accessors trust the recorded offsets. Multi-byte fields are read with
 * memcpy (the map is unaligned) and assumed little-endian. */
#include "borg/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "borg/quant.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_HEADER_BYTES 24
#define MAX_ARRAY_NESTING 8
/* Smallest possible encodings, used to reject absurd counts before allocating. */
#define MIN_KV_BYTES 13     /* key length + type + 1-byte value */
#define MIN_TENSOR_BYTES 32 /* name length + n_dims + 1 dim + type + offset */
#define NAME_SHOWN 200      /* longest name quoted in a message */

typedef struct {
    gguf_str key;
    uint32_t type;
    uint32_t elem_type; /* arrays only */
    uint64_t n;         /* arrays only: element count */
    const uint8_t *val; /* the value; for arrays, the first element */
} kv_entry;

struct gguf_file {
    char *path;
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    size_t data_off;
    uint64_t n_kv;
    kv_entry *kv;
    kv_entry **kv_sorted;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    gguf_tensor **tensors_sorted;
};

typedef struct {
    const char *path;
    const uint8_t *p;
    size_t size;
    size_t pos;
    uint64_t bad_len; /* set by rd_str on failure: UINT64_MAX when the length itself is cut */
    borg_err *err;
} rd;

static const char *vt_name(uint32_t t)
{
    static const char *const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* Bytes of a fixed-size value type, 0 for string/array/unknown. */
static size_t vt_size(uint32_t t)
{
    static const uint8_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < sizeof sizes ? sizes[t] : 0;
}

/* ggml's type names, to tell a known-but-unsupported type from garbage. */
static const char *ggml_type_name(uint32_t t)
{
    static const char *const names[] = {
        [0] = "F32",     [1] = "F16",    [2] = "Q4_0",     [3] = "Q4_1",    [6] = "Q5_0",     [7] = "Q5_1",
        [8] = "Q8_0",    [9] = "Q8_1",   [10] = "Q2_K",    [11] = "Q3_K",   [12] = "Q4_K",    [13] = "Q5_K",
        [14] = "Q6_K",   [15] = "Q8_K",  [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S",
        [20] = "IQ4_NL", [21] = "IQ3_S", [22] = "IQ2_S",   [23] = "IQ4_XS", [24] = "I8",      [25] = "I16",
        [26] = "I32",    [27] = "I64",   [28] = "F64",     [29] = "IQ1_M",  [30] = "BF16",    [34] = "TQ1_0",
        [35] = "TQ2_0",  [39] = "MXFP4",
    };
    return t < sizeof names / sizeof names[0] ? names[t] : NULL;
}

static int vt_is_int(uint32_t t) { return t <= GGUF_VT_INT32 || t == GGUF_VT_UINT64 || t == GGUF_VT_INT64; }

static uint16_t ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int shown(uint64_t len) { return len > NAME_SHOWN ? NAME_SHOWN : (int)len; }

static borg_status vfail(const char *path, borg_err *err, borg_status code, const char *fmt, va_list ap)
{
    char buf[BORG_ERR_MSG];
    vsnprintf(buf, sizeof buf, fmt, ap);
    return borg_fail(err, code, "%s: %s", path, buf);
}

__attribute__((format(printf, 2, 3))) static borg_status bad(rd *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    borg_status s = vfail(r->path, r->err, BORG_EINPUT, fmt, ap);
    va_end(ap);
    return s;
}

__attribute__((format(printf, 2, 3))) static borg_status truncated(rd *r, const char *fmt, ...)
{
    char what[BORG_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return bad(r, "truncated at offset %zu reading %s (file size %zu)", r->pos, what, r->size);
}

/* For a failed rd_str: either the length field is cut or the length is too big. */
__attribute__((format(printf, 2, 3))) static borg_status bad_str(rd *r, const char *fmt, ...)
{
    char what[BORG_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r->bad_len == UINT64_MAX)
        return truncated(r, "%s", what);
    return bad(r, "%s: string length %" PRIu64 " at offset %zu extends past end of file (size %zu)", what, r->bad_len,
               r->pos, r->size);
}

static int rd_has(const rd *r, uint64_t n) { return n <= r->size - r->pos; }

/* BORG_EINPUT with r->bad_len set and no message: the caller reports (bad_str). */
static borg_status rd_str(rd *r, gguf_str *s)
{
    if (!rd_has(r, 8)) {
        r->bad_len = UINT64_MAX;
        return BORG_EINPUT;
    }
    uint64_t len = ld64(r->p + r->pos);
    if (len > r->size - r->pos - 8) {
        r->bad_len = len;
        return BORG_EINPUT;
    }
    s->ptr = (const char *)r->p + r->pos + 8;
    s->len = len;
    r->pos += 8 + (size_t)len;
    return BORG_OK;
}

/* Steps over the elements of an array whose header has been read. */
static borg_status skip_array(rd *r, const gguf_str *key, uint32_t et, uint64_t n, int depth)
{
    size_t sz = vt_size(et);
    if (sz) {
        if (n > (r->size - r->pos) / sz)
            return bad(r,
                       "metadata key '%.*s': array of %" PRIu64 " %s at offset %zu"
                       " extends past end of file (size %zu)",
                       shown(key->len), key->ptr, n, vt_name(et), r->pos, r->size);
        r->pos += (size_t)(n * sz);
        return BORG_OK;
    }
    if (et == GGUF_VT_STRING) {
        if (n > (r->size - r->pos) / 8)
            return bad(r,
                       "metadata key '%.*s': array of %" PRIu64 " strings cannot fit in the file"
                       " (size %zu)",
                       shown(key->len), key->ptr, n, r->size);
        for (uint64_t i = 0; i < n; i++) {
            gguf_str s;
            if (rd_str(r, &s))
                return bad_str(r, "metadata key '%.*s' element %" PRIu64, shown(key->len), key->ptr, i);
        }
        return BORG_OK;
    }
    if (et != GGUF_VT_ARRAY)
        return bad(r, "metadata key '%.*s': array has unknown element type %u", shown(key->len), key->ptr, et);
    if (depth >= MAX_ARRAY_NESTING)
        return bad(r, "metadata key '%.*s': arrays nested deeper than %d", shown(key->len), key->ptr,
                   MAX_ARRAY_NESTING);
    if (n > (r->size - r->pos) / 12)
        return bad(r,
                   "metadata key '%.*s': array of %" PRIu64 " arrays cannot fit in the file"
                   " (size %zu)",
                   shown(key->len), key->ptr, n, r->size);
    for (uint64_t i = 0; i < n; i++) {
        if (!rd_has(r, 12))
            return truncated(r, "metadata key '%.*s' element %" PRIu64, shown(key->len), key->ptr, i);
        uint32_t sub_et = ld32(r->p + r->pos);
        uint64_t sub_n = ld64(r->p + r->pos + 4);
        r->pos += 12;
        borg_status s = skip_array(r, key, sub_et, sub_n, depth + 1);
        if (s != BORG_OK)
            return s;
    }
    return BORG_OK;
}

static borg_status parse_kv(rd *r, uint64_t i, kv_entry *e)
{
    if (rd_str(r, &e->key))
        return bad_str(r, "name of metadata key %" PRIu64, i);
    const gguf_str *k = &e->key;
    if (!rd_has(r, 4))
        return truncated(r, "type of metadata key '%.*s'", shown(k->len), k->ptr);
    e->type = ld32(r->p + r->pos);
    r->pos += 4;
    e->val = r->p + r->pos;
    size_t sz = vt_size(e->type);
    if (sz) {
        if (!rd_has(r, sz))
            return truncated(r, "value of metadata key '%.*s'", shown(k->len), k->ptr);
        r->pos += sz;
        return BORG_OK;
    }
    if (e->type == GGUF_VT_STRING) {
        gguf_str s;
        if (rd_str(r, &s))
            return bad_str(r, "value of metadata key '%.*s'", shown(k->len), k->ptr);
        return BORG_OK;
    }
    if (e->type != GGUF_VT_ARRAY)
        return bad(r, "metadata key '%.*s' has unknown value type %u", shown(k->len), k->ptr, e->type);
    if (!rd_has(r, 12))
        return truncated(r, "array header of metadata key '%.*s'", shown(k->len), k->ptr);
    e->elem_type = ld32(r->p + r->pos);
    e->n = ld64(r->p + r->pos + 4);
    r->pos += 12;
    e->val = r->p + r->pos;
    return skip_array(r, k, e->elem_type, e->n, 1);
}

static int view_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int kv_sort_cmp(const void *a, const void *b)
{
    const kv_entry *x = *(kv_entry *const *)a, *y = *(kv_entry *const *)b;
    return view_cmp(x->key.ptr, (size_t)x->key.len, y->key.ptr, (size_t)y->key.len);
}

static int kv_find_cmp(const void *key, const void *elem)
{
    const kv_entry *e = *(kv_entry *const *)elem;
    return view_cmp(key, strlen(key), e->key.ptr, (size_t)e->key.len);
}

static int tensor_sort_cmp(const void *a, const void *b)
{
    return strcmp((*(gguf_tensor *const *)a)->name, (*(gguf_tensor *const *)b)->name);
}

static int tensor_find_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(gguf_tensor *const *)elem)->name);
}

static const kv_entry *find_kv(const gguf_file *f, const char *key)
{
    if (!f->n_kv)
        return NULL;
    kv_entry *const *e = bsearch(key, f->kv_sorted, (size_t)f->n_kv, sizeof *f->kv_sorted, kv_find_cmp);
    return e ? *e : NULL;
}

/* An integer value as sign and magnitude-friendly parts, so range checks
 * need no casts that could overflow. */
typedef struct {
    int neg;    /* s < 0 */
    int64_t s;  /* valid when neg */
    uint64_t u; /* valid when !neg */
} ival;

/* BORG_EINPUT, with no message, when t is not an integer type. */
static borg_status load_int(uint32_t t, const uint8_t *p, ival *v)
{
    int64_t s;
    *v = (ival){0};
    switch (t) {
    case GGUF_VT_UINT8:
        v->neg = 0;
        v->u = p[0];
        return BORG_OK;
    case GGUF_VT_UINT16:
        v->neg = 0;
        v->u = ld16(p);
        return BORG_OK;
    case GGUF_VT_UINT32:
        v->neg = 0;
        v->u = ld32(p);
        return BORG_OK;
    case GGUF_VT_UINT64:
        v->neg = 0;
        v->u = ld64(p);
        return BORG_OK;
    case GGUF_VT_INT8: s = (int8_t)p[0]; break;
    case GGUF_VT_INT16: s = (int16_t)ld16(p); break;
    case GGUF_VT_INT32: s = (int32_t)ld32(p); break;
    case GGUF_VT_INT64: s = (int64_t)ld64(p); break;
    default: return BORG_EINPUT;
    }
    v->neg = s < 0;
    v->s = s;
    v->u = s < 0 ? 0 : (uint64_t)s;
    return BORG_OK;
}

/* BORG_EINPUT, with no message, when t is not a number type. */
static borg_status load_f32(uint32_t t, const uint8_t *p, float *out)
{
    ival v;
    if (t == GGUF_VT_FLOAT32) {
        memcpy(out, p, 4);
        return BORG_OK;
    }
    if (t == GGUF_VT_FLOAT64) {
        double d;
        memcpy(&d, p, 8);
        *out = (float)d;
        return BORG_OK;
    }
    if (load_int(t, p, &v))
        return BORG_EINPUT;
    *out = v.neg ? (float)v.s : (float)v.u;
    return BORG_OK;
}

static borg_status key_fail(const gguf_file *f, borg_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static borg_status key_fail(const gguf_file *f, borg_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    borg_status s = vfail(f->path, err, BORG_EINPUT, fmt, ap);
    va_end(ap);
    return s;
}

static const kv_entry *need_kv(const gguf_file *f, const char *key, borg_err *err)
{
    const kv_entry *e = find_kv(f, key);
    if (!e)
        key_fail(f, err, "metadata key '%s' not found", key);
    return e;
}

static borg_status wrong_type(const gguf_file *f, const kv_entry *e, const char *key, const char *expected,
                              borg_err *err)
{
    if (e->type == GGUF_VT_ARRAY)
        return key_fail(f, err, "metadata key '%s' is an array of %s, expected %s", key, vt_name(e->elem_type),
                        expected);
    return key_fail(f, err, "metadata key '%s' has type %s, expected %s", key, vt_name(e->type), expected);
}

static borg_status get_u32_entry(const gguf_file *f, const kv_entry *e, const char *key, uint32_t *out, borg_err *err)
{
    ival v;
    if (load_int(e->type, e->val, &v))
        return wrong_type(f, e, key, "an integer", err);
    if (v.neg || v.u > UINT32_MAX)
        return key_fail(f, err, "metadata key '%s' value %s%" PRIu64 " does not fit in u32", key, v.neg ? "-" : "",
                        v.neg ? (uint64_t)0 - (uint64_t)v.s : v.u);
    *out = (uint32_t)v.u;
    return BORG_OK;
}

borg_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, borg_err *err)
{
    const kv_entry *e = need_kv(f, key, err);
    if (!e)
        return BORG_EINPUT;
    return get_u32_entry(f, e, key, out, err);
}

borg_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, borg_err *err)
{
    const kv_entry *e = need_kv(f, key, err);
    ival v;
    if (!e)
        return BORG_EINPUT;
    if (load_int(e->type, e->val, &v))
        return wrong_type(f, e, key, "an integer", err);
    if (!v.neg && v.u > INT64_MAX)
        return key_fail(f, err, "metadata key '%s' value %" PRIu64 " does not fit in i64", key, v.u);
    *out = v.neg ? v.s : (int64_t)v.u;
    return BORG_OK;
}

borg_status gguf_get_f32(const gguf_file *f, const char *key, float *out, borg_err *err)
{
    const kv_entry *e = need_kv(f, key, err);
    if (!e)
        return BORG_EINPUT;
    if (e->type != GGUF_VT_FLOAT32 && e->type != GGUF_VT_FLOAT64)
        return wrong_type(f, e, key, "f32 or f64", err);
    load_f32(e->type, e->val, out);
    return BORG_OK;
}

borg_status gguf_get_bool(const gguf_file *f, const char *key, int *out, borg_err *err)
{
    const kv_entry *e = need_kv(f, key, err);
    if (!e)
        return BORG_EINPUT;
    if (e->type != GGUF_VT_BOOL)
        return wrong_type(f, e, key, "bool", err);
    *out = e->val[0] != 0;
    return BORG_OK;
}

borg_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, borg_err *err)
{
    const kv_entry *e = need_kv(f, key, err);
    if (!e)
        return BORG_EINPUT;
    if (e->type != GGUF_VT_STRING)
        return wrong_type(f, e, key, "string", err);
    out->len = ld64(e->val);
    out->ptr = (const char *)e->val + 8;
    return BORG_OK;
}

static const kv_entry *need_array(const gguf_file *f, const char *key, const char *expected, borg_err *err)
{
    const kv_entry *e = need_kv(f, key, err);
    if (e && e->type != GGUF_VT_ARRAY) {
        key_fail(f, err, "metadata key '%s' has type %s, expected an array of %s", key, vt_name(e->type), expected);
        return NULL;
    }
    return e;
}

/* A zero-length array yields *out = NULL. */
static void *alloc_array(const gguf_file *f, const char *key, uint64_t n, size_t elem, borg_err *err, borg_status *st)
{
    *st = BORG_OK;
    if (n == 0)
        return NULL;
    void *p = malloc((size_t)n * elem);
    if (!p)
        *st = borg_fail(err, BORG_ENOMEM, "%s: out of memory for metadata array '%s' (%" PRIu64 " elements)", f->path,
                        key, n);
    return p;
}

borg_status gguf_get_str_array(const gguf_file *f, const char *key, gguf_str **out, uint64_t *n, borg_err *err)
{
    const kv_entry *e = need_array(f, key, "string", err);
    borg_status st;
    if (!e)
        return BORG_EINPUT;
    if (e->elem_type != GGUF_VT_STRING)
        return wrong_type(f, e, key, "an array of string", err);
    gguf_str *a = alloc_array(f, key, e->n, sizeof *a, err, &st);
    if (st != BORG_OK)
        return st;
    const uint8_t *p = e->val;
    for (uint64_t i = 0; i < e->n; i++) {
        a[i].len = ld64(p);
        a[i].ptr = (const char *)p + 8;
        p += 8 + (size_t)a[i].len;
    }
    *out = a;
    *n = e->n;
    return BORG_OK;
}

borg_status gguf_get_f32_array(const gguf_file *f, const char *key, float **out, uint64_t *n, borg_err *err)
{
    const kv_entry *e = need_array(f, key, "numbers", err);
    borg_status st;
    if (!e)
        return BORG_EINPUT;
    uint32_t et = e->elem_type;
    if (!vt_is_int(et) && et != GGUF_VT_FLOAT32 && et != GGUF_VT_FLOAT64)
        return wrong_type(f, e, key, "an array of numbers", err);
    float *a = alloc_array(f, key, e->n, sizeof *a, err, &st);
    if (st != BORG_OK)
        return st;
    size_t sz = vt_size(et);
    for (uint64_t i = 0; i < e->n; i++)
        load_f32(et, e->val + i * sz, &a[i]);
    *out = a;
    *n = e->n;
    return BORG_OK;
}

borg_status gguf_get_i32_array(const gguf_file *f, const char *key, int32_t **out, uint64_t *n, borg_err *err)
{
    const kv_entry *e = need_array(f, key, "integers", err);
    borg_status st;
    ival v;
    if (!e)
        return BORG_EINPUT;
    if (!vt_is_int(e->elem_type))
        return wrong_type(f, e, key, "an array of integers", err);
    size_t sz = vt_size(e->elem_type);
    int32_t *a = alloc_array(f, key, e->n, sizeof *a, err, &st);
    if (st != BORG_OK)
        return st;
    for (uint64_t i = 0; i < e->n; i++) {
        load_int(e->elem_type, e->val + i * sz, &v);
        if (v.neg ? v.s < INT32_MIN : v.u > INT32_MAX) {
            free(a);
            return key_fail(f, err, "metadata key '%s' element %" PRIu64 " does not fit in i32", key, i);
        }
        a[i] = v.neg ? (int32_t)v.s : (int32_t)v.u;
    }
    *out = a;
    *n = e->n;
    return BORG_OK;
}

static borg_status parse_tensor_info(rd *r, uint64_t i, gguf_tensor *t)
{
    gguf_str name;
    if (rd_str(r, &name))
        return bad_str(r, "name of tensor %" PRIu64, i);
    if (memchr(name.ptr, 0, (size_t)name.len))
        return bad(r, "name of tensor %" PRIu64 " contains a NUL byte", i);
    t->name = malloc((size_t)name.len + 1);
    if (!t->name)
        return borg_fail(r->err, BORG_ENOMEM, "%s: out of memory for tensor names", r->path);
    memcpy(t->name, name.ptr, (size_t)name.len);
    t->name[name.len] = '\0';
    const char *nm = t->name;

    if (!rd_has(r, 4))
        return truncated(r, "dimension count of tensor '%.200s'", nm);
    t->n_dims = ld32(r->p + r->pos);
    r->pos += 4;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return bad(r, "tensor '%.200s' has %u dimensions (expected 1 to %d)", nm, t->n_dims, GGUF_MAX_DIMS);
    if (!rd_has(r, 8 * (uint64_t)t->n_dims + 12))
        return truncated(r, "shape, type and offset of tensor '%.200s'", nm);
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if ((uint32_t)d < t->n_dims) {
            t->ne[d] = (int64_t)ld64(r->p + r->pos);
            r->pos += 8;
            if (t->ne[d] <= 0)
                return bad(r, "tensor '%.200s' dimension %d is %" PRId64 " (must be positive)", nm, d, t->ne[d]);
        }
    }
    t->type = ld32(r->p + r->pos);
    t->offset = ld64(r->p + r->pos + 4);
    r->pos += 12;

    if (!quant_dtype_supported(t->type)) {
        const char *tn = ggml_type_name(t->type);
        if (tn)
            return bad(r, "tensor '%.200s' has unsupported type %s (%u)", nm, tn, t->type);
        return bad(r, "tensor '%.200s' has unknown type %u", nm, t->type);
    }
    borg_dtype dt = (borg_dtype)t->type;
    int64_t be = quant_dtype_block_elems(dt);
    if (t->ne[0] % be)
        return bad(r,
                   "tensor '%.200s' row length %" PRId64 " is not a multiple of the %s block size"
                   " %" PRId64,
                   nm, t->ne[0], quant_dtype_name(t->type), be);
    /* Byte count, saturating at anything beyond the file size. */
    uint64_t bytes = (uint64_t)(t->ne[0] / be);
    uint64_t limit = r->size;
    int too_big = bytes > limit / quant_dtype_block_bytes(dt);
    if (!too_big)
        bytes *= quant_dtype_block_bytes(dt);
    for (uint32_t d = 1; d < t->n_dims && !too_big; d++) {
        if ((uint64_t)t->ne[d] > limit / bytes)
            too_big = 1;
        else
            bytes *= (uint64_t)t->ne[d];
    }
    if (too_big || bytes > limit)
        return bad(r,
                   "tensor '%.200s' of type %s and shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                   "] needs more bytes than the whole file (size %zu)",
                   nm, quant_dtype_name(t->type), t->ne[0], t->ne[1], t->ne[2], t->ne[3], r->size);
    t->nbytes = (size_t)bytes;
    return BORG_OK;
}

static borg_status read_alignment(rd *r, gguf_file *f)
{
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const kv_entry *e = find_kv(f, "general.alignment");
    if (!e)
        return BORG_OK;
    borg_status s = get_u32_entry(f, e, "general.alignment", &f->alignment, r->err);
    if (s != BORG_OK)
        return s;
    if (f->alignment == 0 || (f->alignment & (f->alignment - 1)))
        return bad(r, "general.alignment is %u (must be a nonzero power of two)", f->alignment);
    return BORG_OK;
}

static borg_status parse(rd *r, gguf_file *f)
{
    const uint8_t *p = r->p;
    if (r->size < 4)
        return bad(r, "too small to be a GGUF file (%zu bytes)", r->size);
    if (memcmp(p, "GGUF", 4) != 0)
        return bad(r, "not a GGUF file (magic %02x %02x %02x %02x, expected 'GGUF')", p[0], p[1], p[2], p[3]);
    if (r->size < GGUF_HEADER_BYTES)
        return bad(r, "too small for a GGUF header (%zu bytes, need %d)", r->size, GGUF_HEADER_BYTES);
    f->version = ld32(p + 4);
    if (f->version != 2 && f->version != 3)
        return bad(r, "unsupported GGUF version %u (supported: 2, 3)%s", f->version,
                   (f->version & 0xffff) == 0 ? "; big-endian file?" : "");
    uint64_t n_t = ld64(p + 8);
    uint64_t n_kv = ld64(p + 16);
    r->pos = GGUF_HEADER_BYTES;
    uint64_t rest = r->size - r->pos;
    if (n_kv > rest / MIN_KV_BYTES)
        return bad(r,
                   "kv_count %" PRIu64 " cannot fit in the %" PRIu64 " bytes after the header"
                   " (file truncated or corrupt)",
                   n_kv, rest);
    if (n_t > rest / MIN_TENSOR_BYTES)
        return bad(r,
                   "tensor_count %" PRIu64 " cannot fit in the %" PRIu64 " bytes after the header"
                   " (file truncated or corrupt)",
                   n_t, rest);

    if (n_kv) {
        f->kv = calloc((size_t)n_kv, sizeof *f->kv);
        f->kv_sorted = malloc((size_t)n_kv * sizeof *f->kv_sorted);
        if (!f->kv || !f->kv_sorted)
            return borg_fail(r->err, BORG_ENOMEM, "%s: out of memory for %" PRIu64 " metadata keys", r->path, n_kv);
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        borg_status s = parse_kv(r, i, &f->kv[i]);
        if (s != BORG_OK)
            return s;
        f->kv_sorted[i] = &f->kv[i];
    }
    f->n_kv = n_kv;
    if (n_kv) {
        qsort(f->kv_sorted, (size_t)n_kv, sizeof *f->kv_sorted, kv_sort_cmp);
        for (uint64_t i = 1; i < n_kv; i++)
            if (kv_sort_cmp(&f->kv_sorted[i - 1], &f->kv_sorted[i]) == 0)
                return bad(r, "duplicate metadata key '%.*s'", shown(f->kv_sorted[i]->key.len),
                           f->kv_sorted[i]->key.ptr);
    }
    borg_status s = read_alignment(r, f);
    if (s != BORG_OK)
        return s;

    if (n_t) {
        f->tensors = calloc((size_t)n_t, sizeof *f->tensors);
        f->tensors_sorted = malloc((size_t)n_t * sizeof *f->tensors_sorted);
        if (!f->tensors || !f->tensors_sorted)
            return borg_fail(r->err, BORG_ENOMEM, "%s: out of memory for %" PRIu64 " tensors", r->path, n_t);
    }
    for (uint64_t i = 0; i < n_t; i++) {
        f->n_tensors = i + 1; /* so that gguf_close frees this name on error */
        s = parse_tensor_info(r, i, &f->tensors[i]);
        if (s != BORG_OK)
            return s;
        f->tensors_sorted[i] = &f->tensors[i];
    }
    if (n_t) {
        qsort(f->tensors_sorted, (size_t)n_t, sizeof *f->tensors_sorted, tensor_sort_cmp);
        for (uint64_t i = 1; i < n_t; i++)
            if (strcmp(f->tensors_sorted[i - 1]->name, f->tensors_sorted[i]->name) == 0)
                return bad(r, "duplicate tensor name '%.200s'", f->tensors_sorted[i]->name);
    }

    /* pos <= size, so this cannot overflow */
    uint64_t data_off = ((uint64_t)r->pos + f->alignment - 1) / f->alignment * f->alignment;
    f->data_off = (size_t)data_off;
    for (uint64_t i = 0; i < n_t; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % f->alignment)
            return bad(r, "tensor '%.200s' offset %" PRIu64 " is not a multiple of the alignment %u", t->name,
                       t->offset, f->alignment);
        if (t->offset > r->size)
            return bad(r,
                       "tensor '%.200s' offset %" PRIu64 " is past end of file"
                       " (data section at %zu, size %zu)",
                       t->name, t->offset, f->data_off, r->size);
        uint64_t start = data_off + t->offset;
        uint64_t end = start + t->nbytes;
        if (end > r->size)
            return bad(r,
                       "tensor '%.200s' data [%" PRIu64 "..%" PRIu64 ") extends past end of file"
                       " (size %zu)",
                       t->name, start, end, r->size);
        t->data = p + start;
    }
    return BORG_OK;
}

borg_status gguf_open(const char *path, gguf_file **out, borg_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return borg_fail(err, BORG_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return borg_fail(err, BORG_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return borg_fail(err, BORG_EIO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return borg_fail(err, BORG_EINPUT, "%s: file is empty, not a GGUF file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return borg_fail(err, BORG_EIO, "%s: too large to map", path);
    }

    gguf_file *f = calloc(1, sizeof *f);
    char *pcopy = strdup(path);
    if (!f || !pcopy) {
        free(f);
        free(pcopy);
        close(fd);
        return borg_fail(err, BORG_ENOMEM, "%s: out of memory", path);
    }
    f->path = pcopy;
    f->size = (size_t)st.st_size;
    void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (m == MAP_FAILED) {
        gguf_close(f);
        return borg_fail(err, BORG_EIO, "%s: cannot mmap %zu bytes: %s", path, (size_t)st.st_size, strerror(map_errno));
    }
    f->map = m;

    rd r = {.path = f->path, .p = f->map, .size = f->size, .err = err};
    borg_status s = parse(&r, f);
    if (s != BORG_OK) {
        gguf_close(f);
        return s;
    }
    *out = f;
    return BORG_OK;
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap((void *)f->map, f->size);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    free(f->tensors_sorted);
    free(f->kv);
    free(f->kv_sorted);
    free(f->path);
    free(f);
}

const char *gguf_path(const gguf_file *f) { return f->path; }

uint32_t gguf_version(const gguf_file *f) { return f->version; }

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

uint64_t gguf_fingerprint(const gguf_file *f)
{
    uint64_t h = 0xcbf29ce484222325ull, size = f->size;
    h = fnv1a(h, (const uint8_t *)&size, sizeof size);
    h = fnv1a(h, f->map, f->data_off);
    const size_t data = f->size - f->data_off, sample = data < 64 ? data : 64;
    for (int i = 0; i < 64 && sample; i++)
        h = fnv1a(h, f->map + f->data_off + (data - sample) / 63 * (size_t)i, sample);
    return h;
}

uint64_t gguf_full_hash(const gguf_file *f)
{
    /* FNV-1a over 64-bit words: eight times the speed of the byte-wise one,
     * which matters when every rank hashes a model of gigabytes. */
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= f->size; i += 8) {
        uint64_t w;
        memcpy(&w, f->map + i, sizeof w);
        h = (h ^ w) * 0x100000001b3ull;
    }
    return fnv1a(h, f->map + i, f->size - i);
}

size_t gguf_file_size(const gguf_file *f) { return f->size; }

uint64_t gguf_kv_count(const gguf_file *f) { return f->n_kv; }

int gguf_has_key(const gguf_file *f, const char *key) { return find_kv(f, key) != NULL; }

int gguf_key_type(const gguf_file *f, const char *key, int *elem_type)
{
    const kv_entry *e = find_kv(f, key);
    if (!e)
        return -1;
    if (elem_type && e->type == GGUF_VT_ARRAY)
        *elem_type = (int)e->elem_type;
    return (int)e->type;
}

gguf_str gguf_key_at(const gguf_file *f, uint64_t i)
{
    if (i >= f->n_kv)
        return (gguf_str){NULL, 0};
    return f->kv[i].key;
}

uint64_t gguf_tensor_count(const gguf_file *f) { return f->n_tensors; }

const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i) { return i < f->n_tensors ? &f->tensors[i] : NULL; }

const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name)
{
    if (!f->n_tensors)
        return NULL;
    gguf_tensor *const *t = bsearch(name, f->tensors_sorted, (size_t)f->n_tensors, sizeof *f->tensors_sorted,
                                    tensor_find_cmp);
    return t ? *t : NULL;
}
