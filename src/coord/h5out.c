#define _GNU_SOURCE
#include "borg/h5out.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define H5OUT_FORMAT "borg-infer results 1"

#ifdef BORG_HAVE_HDF5
#include <hdf5.h>

/* The datasets of /jobs, one column each, and of /embeddings. */
enum { J_ID, J_STATUS, J_FINISH, J_PROMPT, J_TOKENS, J_LOGPROBS, J_QUEUE, J_FIRST, J_TOTAL, N_JOBS };
enum { E_ID, E_ROW, E_VECTOR, N_EMB };

static const char *const job_names[N_JOBS] = {"id",        "status",         "finish_reason", "prompt_token_ids",
                                              "token_ids", "token_logprobs", "queue_ms",      "first_token_ms",
                                              "total_ms"};
static const char *const emb_names[N_EMB] = {"id", "job_row", "vector"};

#define SCALAR_CHUNK 1024        /* rows per chunk of a /jobs column and of /embeddings/id, job_row */
#define EMBED_CHUNK_FLOATS 16384 /* about 64 KiB per chunk of /embeddings/vector, 1 to 16 rows */

struct h5out {
    char *path;
    hid_t file;
    hid_t jobs[N_JOBS], emb[N_EMB];
    hid_t str_t, i32_vl, f32_vl; /* memory types of the variable-length columns */
    hid_t dxpl;                  /* writes: a small conversion buffer (see h5out_open) */
    int fd;                      /* the file's descriptor, to fdatasync after a flush */
    int dim;
    int64_t rows, emb_rows;
};

/* HDF5's most specific message for the error just raised, after which the
 * error stack is cleared. */
static herr_t innermost(unsigned n, const H5E_error2_t *e, void *ctx)
{
    if (n == 0 && e->desc)
        snprintf(ctx, 200, "%s", e->desc);
    return 0;
}

/* "unable to open file: name = '...', errno = 2, error message = 'No such
 * file or directory', flags = ..." says no more than its error message. */
static void tidy_detail(char *d, size_t size)
{
    const char *key = "error message = '";
    char *m = strstr(d, key);
    if (strstr(d, "unable to lock file")) {
        snprintf(d, size, "another process has it open: HDF5 file lock");
    } else if (m) {
        m += strlen(key);
        char *end = strchr(m, '\'');
        if (end)
            *end = '\0';
        memmove(d, m, strlen(m) + 1);
    }
}

static borg_status h5_fail(borg_err *err, borg_status code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static borg_status h5_fail(borg_err *err, borg_status code, const char *path, const char *fmt, ...)
{
    char what[256], detail[200] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, detail);
    H5Eclear2(H5E_DEFAULT);
    if (strstr(detail, "unable to lock file"))
        code = BORG_EINPUT; /* in use, not broken */
    tidy_detail(detail, sizeof detail);
    if (!detail[0])
        return borg_fail(err, code, "%s: %s", path, what);
    return borg_fail(err, code, "%s: %s (%s)", path, what, detail);
}

static void close_id(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0)
        fn(*id);
    *id = H5I_INVALID_HID;
}

static void close_all(h5out *h)
{
    for (int i = 0; i < N_JOBS; i++)
        close_id(&h->jobs[i], H5Dclose);
    for (int i = 0; i < N_EMB; i++)
        close_id(&h->emb[i], H5Dclose);
    close_id(&h->str_t, H5Tclose);
    close_id(&h->i32_vl, H5Tclose);
    close_id(&h->f32_vl, H5Tclose);
    close_id(&h->dxpl, H5Pclose);
}

static hid_t utf8_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        t = H5I_INVALID_HID;
    }
    return t;
}

/* The file access list: the oldest format (superblock 0, which keeps no
 * "open for writing" flag to trip over after a kill), every object closed
 * with the file, and file locking that gives way where the file system has
 * none. */
static hid_t file_access(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0)
        return fapl;
    int ok = H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST) >= 0 &&
             H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0;
#if H5_VERSION_GE(1, 10, 7)
    ok = ok && H5Pset_file_locking(fapl, 1, 1) >= 0;
#endif
    if (!ok) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

/* A dataset of rows extendable along axis 0: rank 1, or rank 2 with cols;
 * compress: shuffle and deflate level 4. The variable-length columns are
 * not compressed: a filter there sees only the 16-byte references into the
 * global heap (the tokens and strings stay uncompressed), and recompressing
 * their chunks at every flush cost about 1.5 ms an append for a file no
 * smaller (HDF5 1.10.8 here). */
static hid_t make_dataset(hid_t loc, const char *name, hid_t ftype, hsize_t cols, hsize_t chunk_rows, int compress)
{
    int rank = cols ? 2 : 1;
    hsize_t dims[2] = {0, cols}, maxdims[2] = {H5S_UNLIMITED, cols}, chunk[2] = {chunk_rows, cols};
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = H5I_INVALID_HID;
    compress = compress && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0;
    if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
        (!compress || (H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, 4) >= 0)))
        d = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (space >= 0)
        H5Sclose(space);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    return d;
}

static int put_attr(hid_t loc, const char *name, hid_t type, const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = space >= 0 ? H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    int ok = a >= 0 && H5Awrite(a, type, value) >= 0;
    if (a >= 0 && H5Aclose(a) < 0)
        ok = 0;
    if (space >= 0)
        H5Sclose(space);
    return ok;
}

static int put_str_attr(h5out *h, const char *name, const char *value)
{
    return put_attr(h->file, name, h->str_t, &value);
}

/* A string attribute of the root group, or NULL (absent, or not a string);
 * free with H5free_memory. */
static char *get_str_attr(h5out *h, const char *name)
{
    if (H5Aexists(h->file, name) <= 0)
        return NULL;
    hid_t a = H5Aopen(h->file, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    char *value = NULL;
    if (t < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) <= 0 || H5Aread(a, h->str_t, &value) < 0)
        value = NULL;
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    H5Eclear2(H5E_DEFAULT);
    return value;
}

static borg_status flush(h5out *h, borg_err *err)
{
    if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0)
        return h5_fail(err, BORG_EIO, h->path, "cannot flush");
    return BORG_OK;
}

static void find_fd(h5out *h)
{
    int *fdp = NULL;
    h->fd = -1;
    if (H5Fget_vfd_handle(h->file, H5P_DEFAULT, (void **)&fdp) >= 0 && fdp)
        h->fd = *fdp;
    H5Eclear2(H5E_DEFAULT);
}

static borg_status write_meta(h5out *h, const h5out_meta *meta, borg_err *err)
{
    h5out_meta none = {0};
    if (!meta)
        meta = &none;
    char fingerprint[17];
    snprintf(fingerprint, sizeof fingerprint, "%016llx", (unsigned long long)meta->model_hash);
    struct {
        const char *name, *value;
    } strs[] = {
        {"format", H5OUT_FORMAT},
        {"model_name", meta->model_name ? meta->model_name : ""},
        {"model_path", meta->model_path ? meta->model_path : ""},
        {"model_fingerprint", fingerprint},
        {"params", meta->params_json ? meta->params_json : "{}"},
        {"borg_infer_version", meta->version ? meta->version : ""},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!put_str_attr(h, strs[i].name, strs[i].value))
            return h5_fail(err, BORG_EIO, h->path, "cannot write the attribute %s", strs[i].name);
    if (!put_attr(h->file, "start_time", H5T_NATIVE_DOUBLE, &meta->start_time))
        return h5_fail(err, BORG_EIO, h->path, "cannot write the attribute start_time");
    return BORG_OK;
}

/* The groups and empty datasets of a new file. */
static borg_status create_layout(h5out *h, const h5out_meta *meta, borg_err *err)
{
    borg_status st = write_meta(h, meta, err);
    if (st)
        return st;
    hid_t g = H5Gcreate2(h->file, "jobs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return h5_fail(err, BORG_EIO, h->path, "cannot create /jobs");
    hid_t i32_f = H5Tvlen_create(H5T_STD_I32LE), f32_f = H5Tvlen_create(H5T_IEEE_F32LE);
    hid_t ftypes[N_JOBS] = {h->str_t, h->str_t,       h->str_t,       i32_f,         i32_f,
                            f32_f,    H5T_IEEE_F64LE, H5T_IEEE_F64LE, H5T_IEEE_F64LE};
    for (int i = 0; !st && i < N_JOBS; i++) {
        int numeric = i >= J_QUEUE;
        if (i32_f < 0 || f32_f < 0 ||
            (h->jobs[i] = make_dataset(g, job_names[i], ftypes[i], 0, SCALAR_CHUNK, numeric)) < 0)
            st = h5_fail(err, BORG_EIO, h->path, "cannot create /jobs/%s", job_names[i]);
    }
    if (i32_f >= 0)
        H5Tclose(i32_f);
    if (f32_f >= 0)
        H5Tclose(f32_f);
    H5Gclose(g);
    if (st || h->dim <= 0)
        return st;

    if ((g = H5Gcreate2(h->file, "embeddings", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        return h5_fail(err, BORG_EIO, h->path, "cannot create /embeddings");
    hsize_t vec_rows = EMBED_CHUNK_FLOATS / (hsize_t)h->dim;
    vec_rows = vec_rows < 1 ? 1 : vec_rows > 16 ? 16 : vec_rows;
    if ((h->emb[E_ID] = make_dataset(g, "id", h->str_t, 0, SCALAR_CHUNK, 0)) < 0 ||
        (h->emb[E_ROW] = make_dataset(g, "job_row", H5T_STD_I64LE, 0, SCALAR_CHUNK, 1)) < 0 ||
        (h->emb[E_VECTOR] = make_dataset(g, "vector", H5T_IEEE_F32LE, (hsize_t)h->dim, vec_rows, 1)) < 0) {
        int i = h->emb[E_ID] < 0 ? E_ID : h->emb[E_ROW] < 0 ? E_ROW : E_VECTOR;
        st = h5_fail(err, BORG_EIO, h->path, "cannot create /embeddings/%s", emb_names[i]);
    }
    H5Gclose(g);
    return st;
}

/* Opens group/name of a resumed file and reads its shape; rank must be as
 * given, and dims[1] is returned in *cols for rank 2. */
static borg_status open_column(h5out *h, const char *group, const char *name, int rank, hid_t *d, hsize_t *rows,
                               hsize_t *cols, borg_err *err)
{
    char full[64];
    snprintf(full, sizeof full, "/%s/%s", group, name);
    if (H5Lexists(h->file, group, H5P_DEFAULT) <= 0 || H5Lexists(h->file, full, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return borg_fail(err, BORG_EINPUT, "%s: %s is missing; refusing to resume into it", h->path, full);
    }
    if ((*d = H5Dopen2(h->file, full, H5P_DEFAULT)) < 0)
        return h5_fail(err, BORG_EINPUT, h->path, "cannot open %s", full);
    hid_t space = H5Dget_space(*d);
    hsize_t dims[2] = {0, 0};
    int got = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (got == rank)
        got = H5Sget_simple_extent_dims(space, dims, NULL) == rank ? rank : -1;
    if (space >= 0)
        H5Sclose(space);
    if (got != rank)
        return h5_fail(err, BORG_EINPUT, h->path, "%s is not %d-dimensional; refusing to resume into it", full, rank);
    *rows = dims[0];
    if (cols)
        *cols = dims[1];
    return BORG_OK;
}

static herr_t set_rows(hid_t d, hsize_t rows, hsize_t cols)
{
    hsize_t size[2] = {rows, cols};
    return H5Dset_extent(d, size);
}

/* Reads rows [0, n) of a rank-1 dataset into buf (n elements of mtype). */
static herr_t read_rows(hid_t d, hid_t mtype, hsize_t n, void *buf)
{
    if (n == 0)
        return 0;
    hsize_t start = 0;
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(1, &n, NULL);
    herr_t r = fs >= 0 && ms >= 0 ? H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &n, NULL) : -1;
    if (r >= 0)
        r = H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf);
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    return r;
}

static void free_strings(hid_t str_t, char **ids, hsize_t n)
{
    if (!ids)
        return;
    hid_t space = n ? H5Screate_simple(1, &n, NULL) : H5I_INVALID_HID;
    if (space >= 0) {
#if H5_VERSION_GE(1, 12, 0)
        H5Treclaim(str_t, space, H5P_DEFAULT, ids);
#else
        H5Dvlen_reclaim(str_t, space, H5P_DEFAULT, ids);
#endif
        H5Sclose(space);
    }
    free(ids);
}

/* Resume: check the file is ours and matches this run, then drop the rows
 * at the end that no durable JSONL line backs, and rows a crash left half
 * written. */
static borg_status open_existing(h5out *h, const h5out_meta *meta, int (*keep)(const char *, void *), void *ctx,
                                 borg_err *err)
{
    char *format = get_str_attr(h, "format");
    int ours = format && !strcmp(format, H5OUT_FORMAT);
    H5free_memory(format);
    if (!ours)
        return borg_fail(err, BORG_EINPUT,
                         "%s: not a borg-infer results file (no format attribute \"%s\"); refusing to resume into it",
                         h->path, H5OUT_FORMAT);
    if (meta) {
        char want[17];
        snprintf(want, sizeof want, "%016llx", (unsigned long long)meta->model_hash);
        char *got = get_str_attr(h, "model_fingerprint");
        borg_status st = BORG_OK;
        if (!got || strcmp(got, want))
            st = borg_fail(
                err, BORG_EINPUT,
                "%s: written for the model with fingerprint %s, but this run's model has %s; refusing to resume into it",
                h->path, got ? got : "(none)", want);
        H5free_memory(got);
        if (st)
            return st;
    }

    hsize_t rows[N_JOBS], n = 0;
    for (int i = 0; i < N_JOBS; i++) {
        borg_status st = open_column(h, "jobs", job_names[i], 1, &h->jobs[i], &rows[i], NULL, err);
        if (st)
            return st;
        n = i == 0 || rows[i] < n ? rows[i] : n;
    }
    int file_dim = 0;
    hsize_t emb_rows[N_EMB] = {0}, emb_n = 0, cols = 0;
    if (H5Lexists(h->file, "embeddings", H5P_DEFAULT) > 0) {
        for (int i = 0; i < N_EMB; i++) {
            borg_status st = open_column(h, "embeddings", emb_names[i], i == E_VECTOR ? 2 : 1, &h->emb[i], &emb_rows[i],
                                         i == E_VECTOR ? &cols : NULL, err);
            if (st)
                return st;
            emb_n = i == 0 || emb_rows[i] < emb_n ? emb_rows[i] : emb_n;
        }
        file_dim = (int)cols;
    }
    H5Eclear2(H5E_DEFAULT);
    if (file_dim != h->dim)
        return borg_fail(err, BORG_EINPUT,
                         "%s: holds embeddings %d wide, but this run's model has %d; refusing to resume into it",
                         h->path, file_dim, h->dim);

    /* Which rows the JSONL file backs: a prefix, called row by row. */
    hsize_t kept = n;
    if (keep && n > 0) {
        char **ids = calloc(n, sizeof *ids);
        if (!ids)
            return borg_fail(err, BORG_ENOMEM, "out of memory resuming %s", h->path);
        if (read_rows(h->jobs[J_ID], h->str_t, n, ids) < 0) {
            free(ids);
            return h5_fail(err, BORG_EIO, h->path, "cannot read /jobs/id");
        }
        borg_status st = BORG_OK;
        hsize_t refused = n;
        kept = 0;
        for (hsize_t i = 0; !st && i < n; i++) {
            if (!keep(ids[i] ? ids[i] : "", ctx)) {
                refused = refused < n ? refused : i;
            } else if (refused < n) {
                st = borg_fail(
                    err, BORG_EINPUT,
                    "%s: row %llu (job '%s') has no line in the results file but later rows do; the two files do not belong together (use --force to start over)",
                    h->path, (unsigned long long)refused, ids[refused] ? ids[refused] : "");
            } else {
                kept = i + 1;
            }
        }
        free_strings(h->str_t, ids, n);
        if (st)
            return st;
    }

    /* The embeddings of the rows kept: job_row increases, so a prefix. */
    hsize_t emb_kept = emb_n;
    if (emb_n > 0) {
        int64_t *job_row = malloc(emb_n * sizeof *job_row);
        if (!job_row)
            return borg_fail(err, BORG_ENOMEM, "out of memory resuming %s", h->path);
        if (read_rows(h->emb[E_ROW], H5T_NATIVE_INT64, emb_n, job_row) < 0) {
            free(job_row);
            return h5_fail(err, BORG_EIO, h->path, "cannot read /embeddings/job_row");
        }
        emb_kept = 0;
        while (emb_kept < emb_n && job_row[emb_kept] >= 0 && (hsize_t)job_row[emb_kept] < kept)
            emb_kept++;
        free(job_row);
    }

    int changed = 0;
    for (int i = 0; i < N_JOBS; i++)
        if (rows[i] != kept) {
            if (set_rows(h->jobs[i], kept, 0) < 0)
                return h5_fail(err, BORG_EIO, h->path, "cannot drop rows of /jobs/%s", job_names[i]);
            changed = 1;
        }
    for (int i = 0; h->dim > 0 && i < N_EMB; i++)
        if (emb_rows[i] != emb_kept) {
            if (set_rows(h->emb[i], emb_kept, i == E_VECTOR ? (hsize_t)h->dim : 0) < 0)
                return h5_fail(err, BORG_EIO, h->path, "cannot drop rows of /embeddings/%s", emb_names[i]);
            changed = 1;
        }
    h->rows = (int64_t)kept;
    h->emb_rows = (int64_t)emb_kept;
    return changed ? flush(h, err) : BORG_OK;
}

/* 1 when another process holds the file lock HDF5 takes (flock) on an
 * open file: truncating it for force would destroy a live run's file. */
static int in_use(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), busy = 0;
    if (fd < 0)
        return 0;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        busy = errno == EWOULDBLOCK;
    else
        flock(fd, LOCK_UN);
    close(fd);
    return busy;
}

/* Whether path is a file with something in it that starts as HDF5 does
 * (we write no user block); -1 when it is absent or empty. */
static int looks_hdf5(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || (S_ISREG(sb.st_mode) && sb.st_size == 0))
        return -1;
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int ok = fd >= 0 && read(fd, head, 8) == 8 && !memcmp(head, sig, 8);
    if (fd >= 0)
        close(fd);
    return ok;
}

borg_status h5out_open(const char *path, int force, int resume, const h5out_meta *meta, int dim,
                       int (*keep)(const char *id, void *ctx), void *ctx, h5out **out, borg_err *err)
{
    *out = NULL;
    if (dim < 0)
        return borg_fail(err, BORG_EINTERNAL, "%s: embedding width %d", path, dim);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int existing = -1;
    if (resume) {
        existing = looks_hdf5(path);
        if (existing == 0)
            return borg_fail(err, BORG_EINPUT, "%s: not an HDF5 file; refusing to resume into it", path);
    } else if (!force && access(path, F_OK) == 0) {
        return borg_fail(err, BORG_EINPUT,
                         "%s: HDF5 results file exists; use --resume to finish it or --force to overwrite it", path);
    } else if (force && in_use(path)) {
        return borg_fail(err, BORG_EINPUT, "%s: another process has it open (HDF5 file lock); not overwriting it",
                         path);
    }

    h5out *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(path))) {
        free(h);
        return borg_fail(err, BORG_ENOMEM, "out of memory opening %s", path);
    }
    h->file = h->str_t = h->i32_vl = h->f32_vl = h->dxpl = H5I_INVALID_HID;
    for (int i = 0; i < N_JOBS; i++)
        h->jobs[i] = H5I_INVALID_HID;
    for (int i = 0; i < N_EMB; i++)
        h->emb[i] = H5I_INVALID_HID;
    h->fd = -1;
    h->dim = dim;

    borg_status st = BORG_OK;
    hid_t fapl = file_access();
    h->str_t = utf8_string_type();
    h->i32_vl = H5Tvlen_create(H5T_NATIVE_INT32);
    h->f32_vl = H5Tvlen_create(H5T_NATIVE_FLOAT);
    /* HDF5 callocs a type-conversion buffer of this size for every write
     * of a variable-length row: the default 1 MiB cost ~1 ms a column. */
    h->dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (h->dxpl >= 0 && H5Pset_buffer(h->dxpl, 65536, NULL, NULL) < 0)
        close_id(&h->dxpl, H5Pclose);
    if (fapl < 0 || h->str_t < 0 || h->i32_vl < 0 || h->f32_vl < 0 || h->dxpl < 0)
        st = h5_fail(err, BORG_EINTERNAL, path, "cannot set up the HDF5 types");
    int created = 0;
    if (!st && existing == 1) {
        if ((h->file = H5Fopen(path, H5F_ACC_RDWR, fapl)) < 0)
            st = h5_fail(err, BORG_EIO, path, "cannot open the HDF5 results file to resume it");
    } else if (!st) {
        unsigned flags = resume || force ? H5F_ACC_TRUNC : H5F_ACC_EXCL; /* resume: absent or empty */
        if ((h->file = H5Fcreate(path, flags, H5P_DEFAULT, fapl)) < 0)
            st = h5_fail(err, BORG_EIO, path, "cannot create the HDF5 results file");
        created = !st;
    }
    if (fapl >= 0)
        H5Pclose(fapl);
    if (!st)
        find_fd(h);
    if (!st && created) {
        st = create_layout(h, meta, err);
        if (!st)
            st = flush(h, err);
    } else if (!st) {
        st = open_existing(h, meta, keep, ctx, err);
    }
    if (st) {
        h5out_close(h, NULL);
        if (created)
            unlink(path);
        return st;
    }
    *out = h;
    return BORG_OK;
}

/* Writes buf (one row: 1 element, or cols of them) as row `row` of d,
 * growing d to row + 1 rows. */
static herr_t write_row(hid_t d, hid_t mtype, hid_t dxpl, hsize_t row, hsize_t cols, const void *buf)
{
    int rank = cols ? 2 : 1;
    hsize_t start[2] = {row, 0}, count[2] = {1, cols};
    if (set_rows(d, row + 1, cols) < 0)
        return -1;
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    herr_t r = fs >= 0 && ms >= 0 ? H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) : -1;
    if (r >= 0)
        r = H5Dwrite(d, mtype, ms, fs, dxpl, buf);
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    return r;
}

/* After a failed append: every dataset back to the rows it had. */
static void roll_back(h5out *h)
{
    for (int i = 0; i < N_JOBS; i++)
        set_rows(h->jobs[i], (hsize_t)h->rows, 0);
    for (int i = 0; h->dim > 0 && i < N_EMB; i++)
        set_rows(h->emb[i], (hsize_t)h->emb_rows, i == E_VECTOR ? (hsize_t)h->dim : 0);
    H5Eclear2(H5E_DEFAULT);
}

borg_status h5out_append(h5out *h, const h5out_row *row, borg_err *err)
{
    const char *id = row->id ? row->id : "";
    if (row->embedding && (h->dim <= 0 || row->dim != h->dim))
        return borg_fail(err, BORG_EINPUT, "%s: job '%s' has an embedding %d wide, but the file's are %d wide", h->path,
                         id, row->dim, h->dim);
    if ((row->n_prompt && !row->prompt_ids) || (row->n_tokens && !row->token_ids))
        return borg_fail(err, BORG_EINTERNAL, "%s: job '%s' has token counts but no tokens", h->path, id);
    float *nan_lp = NULL;
    const float *lp = row->token_logprobs;
    if (!lp && row->n_tokens) {
        if (!(nan_lp = malloc(row->n_tokens * sizeof *nan_lp)))
            return borg_fail(err, BORG_ENOMEM, "out of memory writing job '%s' to %s", id, h->path);
        for (size_t i = 0; i < row->n_tokens; i++)
            nan_lp[i] = NAN;
        lp = nan_lp;
    }
    const char *status = row->status ? row->status : "";
    const char *finish = row->finish_reason ? row->finish_reason : "";
    hvl_t prompt = {row->n_prompt, (void *)row->prompt_ids};
    hvl_t tokens = {row->n_tokens, (void *)row->token_ids};
    hvl_t logprobs = {row->n_tokens, (void *)lp};
    const void *bufs[N_JOBS] = {
        &id, &status, &finish, &prompt, &tokens, &logprobs, &row->queue_ms, &row->first_token_ms, &row->total_ms};
    hid_t mtypes[N_JOBS] = {h->str_t,  h->str_t,          h->str_t,          h->i32_vl,        h->i32_vl,
                            h->f32_vl, H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE, H5T_NATIVE_DOUBLE};

    borg_status st = BORG_OK;
    for (int i = 0; !st && i < N_JOBS; i++)
        if (write_row(h->jobs[i], mtypes[i], h->dxpl, (hsize_t)h->rows, 0, bufs[i]) < 0)
            st = h5_fail(err, BORG_EIO, h->path, "cannot write job '%s' to /jobs/%s", id, job_names[i]);
    free(nan_lp);
    if (!st && row->embedding) {
        int64_t job_row = h->rows;
        hsize_t e = (hsize_t)h->emb_rows;
        if (write_row(h->emb[E_ID], h->str_t, h->dxpl, e, 0, &id) < 0 ||
            write_row(h->emb[E_ROW], H5T_NATIVE_INT64, h->dxpl, e, 0, &job_row) < 0 ||
            write_row(h->emb[E_VECTOR], H5T_NATIVE_FLOAT, h->dxpl, e, (hsize_t)h->dim, row->embedding) < 0)
            st = h5_fail(err, BORG_EIO, h->path, "cannot write the embedding of job '%s' to /embeddings", id);
    }
    if (st) {
        roll_back(h);
        return st;
    }
    if ((st = flush(h, err)))
        return st;
    h->rows++;
    if (row->embedding)
        h->emb_rows++;
    return BORG_OK;
}

borg_status h5out_sync(h5out *h, borg_err *err)
{
    if (h->fd >= 0 && fdatasync(h->fd) != 0 && errno != EINVAL && errno != EROFS)
        return borg_fail(err, BORG_EIO, "%s: fdatasync failed: %s", h->path, strerror(errno));
    return BORG_OK;
}

int64_t h5out_rows(const h5out *h) { return h ? h->rows : 0; }

borg_status h5out_close(h5out *h, borg_err *err)
{
    if (!h)
        return BORG_OK;
    borg_status st = BORG_OK;
    close_all(h);
    ssize_t left = h->file >= 0 ? H5Fget_obj_count(h->file, H5F_OBJ_ALL | H5F_OBJ_LOCAL) : 1;
    if (left != 1) /* the file itself: anything more is a leak (H5F_CLOSE_STRONG closes it) */
        st = borg_fail(err, BORG_EINTERNAL, "%s: %zd HDF5 objects were left open in it", h->path, left - 1);
    if (h->file >= 0 && H5Fclose(h->file) < 0)
        st = h5_fail(err, BORG_EIO, h->path, "cannot close the HDF5 results file");
    free(h->path);
    free(h);
    return st;
}

#else /* no HDF5 in this build */

struct h5out {
    int64_t rows;
};

borg_status h5out_open(const char *path, int force, int resume, const h5out_meta *meta, int dim,
                       int (*keep)(const char *id, void *ctx), void *ctx, h5out **out, borg_err *err)
{
    (void)force, (void)resume, (void)meta, (void)dim, (void)keep, (void)ctx;
    *out = NULL;
    return borg_fail(err, BORG_EUSAGE, "%s: this build has no HDF5 (install libhdf5-dev and rebuild)", path);
}

borg_status h5out_append(h5out *h, const h5out_row *row, borg_err *err)
{
    (void)h, (void)row;
    return borg_fail(err, BORG_EINTERNAL, "this build has no HDF5 (install libhdf5-dev and rebuild)");
}

borg_status h5out_sync(h5out *h, borg_err *err)
{
    (void)h, (void)err;
    return BORG_OK;
}

int64_t h5out_rows(const h5out *h) { return h ? h->rows : 0; }

borg_status h5out_close(h5out *h, borg_err *err)
{
    (void)h, (void)err;
    return BORG_OK;
}

#endif
