/* GGUF (v2 and v3) model file reader over mmap.
 *
 * The file is untrusted: gguf_open validates every length, count, offset
 * and tensor extent against the file size before anything is exposed, so
 * the accessors below never read out of bounds. Strings returned point into
 * the mapping and are NOT NUL-terminated; they live until gguf_close. */
#ifndef BORG_GGUF_H
#define BORG_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"

typedef enum {
    GGUF_VT_UINT8 = 0,
    GGUF_VT_INT8 = 1,
    GGUF_VT_UINT16 = 2,
    GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4,
    GGUF_VT_INT32 = 5,
    GGUF_VT_FLOAT32 = 6,
    GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8,
    GGUF_VT_ARRAY = 9,
    GGUF_VT_UINT64 = 10,
    GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12
} gguf_vtype;

typedef struct {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} gguf_str;

#define GGUF_MAX_DIMS 4

typedef struct {
    char *name; /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint32_t type;             /* a borg_dtype (validated as supported) */
    uint64_t offset;           /* from the start of the data section */
    size_t nbytes;
    const void *data; /* into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Maps and validates path. Errors (BORG_EINPUT for a malformed file,
 * BORG_EIO for an unreadable one) name the file and the problem. */
borg_status gguf_open(const char *path, gguf_file **out, borg_err *err);
void gguf_close(gguf_file *f);

const char *gguf_path(const gguf_file *f);

/* A 64-bit identity of the file's contents: its size, everything before
 * the tensor data (header, metadata, tensor table) and 64 samples of 64
 * bytes spread over the data. Two copies of one file agree; files that
 * differ in any of those places almost surely do not. Reads ~4 KiB of data. */
uint64_t gguf_fingerprint(const gguf_file *f);
/* A hash of every byte of the file (--verify-model): slower than the
 * fingerprint, by a pass over the whole file. */
uint64_t gguf_full_hash(const gguf_file *f);
uint32_t gguf_version(const gguf_file *f);
size_t gguf_file_size(const gguf_file *f);

/* Metadata. Each getter fails with BORG_EINPUT naming the key when the key
 * is missing or has an incompatible type; gguf_has_key lets callers treat
 * a key as optional. Integer getters accept any integer type whose value
 * fits; float getters accept FLOAT32 and FLOAT64. */
uint64_t gguf_kv_count(const gguf_file *f);
int gguf_has_key(const gguf_file *f, const char *key);
/* Type of key's value, -1 when absent. For arrays, *elem_type (may be NULL)
 * gets the element type. */
int gguf_key_type(const gguf_file *f, const char *key, int *elem_type);
/* The i-th key name, i < gguf_kv_count. */
gguf_str gguf_key_at(const gguf_file *f, uint64_t i);

borg_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, borg_err *err);
borg_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, borg_err *err);
borg_status gguf_get_f32(const gguf_file *f, const char *key, float *out, borg_err *err);
borg_status gguf_get_bool(const gguf_file *f, const char *key, int *out, borg_err *err);
borg_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, borg_err *err);

/* Array of strings: *out is a malloc'd array of n views into the mapping
 * (the caller frees the array only). */
borg_status gguf_get_str_array(const gguf_file *f, const char *key, gguf_str **out, uint64_t *n, borg_err *err);
/* Array of numbers, converted: any integer or float element type. *out is
 * malloc'd (caller frees). */
borg_status gguf_get_f32_array(const gguf_file *f, const char *key, float **out, uint64_t *n, borg_err *err);
borg_status gguf_get_i32_array(const gguf_file *f, const char *key, int32_t **out, uint64_t *n, borg_err *err);

/* Tensors. */
uint64_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
/* NULL when absent. */
const gguf_tensor *gguf_tensor_find(const gguf_file *f, const char *name);

#endif
