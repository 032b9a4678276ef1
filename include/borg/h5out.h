/* The HDF5 results file: the same jobs as the JSONL results file, as
 * columns a reader opens with h5py, one row per finished job, appended in
 * completion order and flushed after each row.
 *
 * Layout (every dataset chunked, extendable along axis 0; the fixed-size
 * numeric ones shuffled and deflated, level 4; filters on the
 * variable-length ones would see only heap references, see h5out.c):
 *   /jobs/id, /jobs/status, /jobs/finish_reason      variable-length UTF-8 strings
 *   /jobs/prompt_token_ids, /jobs/token_ids          variable-length int32
 *   /jobs/token_logprobs                             variable-length float32 (NaN: not computed)
 *   /jobs/queue_ms, /jobs/first_token_ms, /jobs/total_ms   float64
 *   /embeddings/id                                   variable-length UTF-8 string
 *   /embeddings/job_row                              int64: the row of /jobs this embedding belongs to
 *   /embeddings/vector                               float32 (rows, dim)
 * /embeddings exists only when dim > 0, and then from the start (0 rows).
 * Root attributes: format ("borg-infer results 1"), model_name, model_path,
 * model_fingerprint (16 hex digits), params (JSON text), borg_infer_version,
 * start_time (float64 unix seconds).
 *
 * Files use the oldest on-disk format that holds them (superblock 0): a
 * newer superblock would record "open for writing" and a killed writer
 * would leave a file that readers refuse until h5clear. While a writer has
 * the file open HDF5's file lock keeps readers out; read a copy, or set
 * HDF5_USE_FILE_LOCKING=FALSE in the reader.
 *
 * Without HDF5 in the build, h5out_open fails with BORG_EUSAGE. */
#ifndef BORG_H5OUT_H
#define BORG_H5OUT_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"

typedef struct h5out h5out;

typedef struct {            /* written once, as attributes of the root group */
    const char *model_name; /* general.name or the file name */
    const char *model_path;
    uint64_t model_hash;     /* stored as a 16-hex-digit string attribute model_fingerprint */
    const char *params_json; /* the run's parameters as a JSON object text */
    const char *version;     /* borg-infer version */
    double start_time;       /* unix seconds */
} h5out_meta;

typedef struct { /* one finished job */
    const char *id;
    const char *status;        /* "ok", "error", "timeout", "cancelled" */
    const char *finish_reason; /* may be NULL -> "" */
    const int32_t *prompt_ids;
    size_t n_prompt;
    const int32_t *token_ids;
    size_t n_tokens;
    const float *token_logprobs; /* n_tokens entries (log-probability of each generated token), or NULL -> NaN */
    double queue_ms, first_token_ms, total_ms;
    const float *embedding; /* NULL, or dim floats (the job asked for an embedding) */
    int dim;
} h5out_row;

/* Creates path (resume = 0; an existing file is replaced only when force,
 * else BORG_EINPUT naming it), or with resume = 1 opens an existing file
 * (creating it if absent or empty) to append to it.
 *
 * On resume, keep(id, ctx) (may be NULL: keep every row) is called once for
 * every row already in the file, first to last, and says whether that row
 * is still backed by a durable JSONL line; a keep that counts occurrences
 * handles repeated ids. The HDF5 row is written before the JSONL line, so a
 * crash can leave rows at the end that no line backs: those trailing rows
 * are dropped from every dataset of /jobs, with the /embeddings rows that
 * belong to them, so each job appears once. A row that keep refuses before
 * one it keeps means the two files do not belong together: BORG_EINPUT.
 * Rows a crash left half written (datasets of unequal length) are dropped
 * too. A resumed file is refused (BORG_EINPUT) when it is not one of ours,
 * when its model_fingerprint differs from meta's (meta may be NULL: not
 * checked), or when its embedding width differs from dim, the model's
 * embedding width (0: no /embeddings). On resume meta is not rewritten. */
borg_status h5out_open(const char *path, int force, int resume, const h5out_meta *meta, int dim,
                       int (*keep)(const char *id, void *ctx), void *ctx, h5out **out, borg_err *err);

/* Appends one job's row (and its embedding, when given) and flushes the
 * file (H5Fflush, global scope): a process killed after this call leaves a
 * file h5py opens with the row in it. A kill during the call can lose the
 * file's consistency (HDF5 1.10 has no journal). An embedding whose width
 * is not the file's is refused (BORG_EINPUT) and nothing is written. */
borg_status h5out_append(h5out *h, const h5out_row *row, borg_err *err);

/* Makes the rows appended so far durable (fdatasync): called before the
 * JSONL lines of the same rows are, so that after a power loss the file
 * holds every row whose line is durable. */
borg_status h5out_sync(h5out *h, borg_err *err);

/* Rows in /jobs, those resumed included. */
int64_t h5out_rows(const h5out *h);

/* Closes the file (every HDF5 identifier the writer opened); NULL allowed. */
borg_status h5out_close(h5out *h, borg_err *err);

#endif
