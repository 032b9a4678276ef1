/* The results file: one JSON line per job, appended as each job finishes
 * and made durable (fdatasync) before the job counts as done. Lines are
 * made durable in groups (results_commit): one sync for every line written
 * since the last, which is what lets a million tiny jobs through. OpenAI batch
 * input lines get OpenAI batch output lines; every other job gets the
 * native form {id, status, text, token_ids, finish_reason, usage, timings}. */
#ifndef BORG_RESULTS_H
#define BORG_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"
#include "borg/jobs.h"

typedef enum { RESULT_OK, RESULT_ERROR, RESULT_TIMEOUT, RESULT_CANCELLED } result_status;

typedef struct {
    const borg_job *job;
    result_status status;
    const char *error; /* for RESULT_ERROR; may be NULL otherwise */
    const char *text;  /* generated text (may hold invalid UTF-8: it is repaired) */
    size_t text_len;
    const int32_t *token_ids; /* generated ids */
    size_t n_tokens;
    const char *finish_reason;    /* "stop", "length", or NULL */
    const float *prompt_logprobs; /* with the job's prompt_logprobs: one per prompt token, NaN for the first */
    int32_t prompt_tokens;
    const float *token_logprobs; /* n_tokens: the log-probability of each generated token */
    const float *embedding;      /* with the job's embed: dim floats, L2-normalized; else NULL */
    int dim;
    double queue_ms, first_token_ms, total_ms;
} borg_result;

const char *result_status_name(result_status s);

typedef struct results_writer results_writer;

/* Opens path for appending results. A new file is created. An existing
 * one is refused unless force (start over: it is truncated) or resume is
 * set: results are never overwritten by accident. With resume the lines
 * already there are kept, a last line torn by a crash is dropped, and
 * their ids are remembered for results_take_done. */
borg_status results_open(const char *path, int force, int resume, results_writer **out, borg_err *err);

/* 1 if the resumed file already holds a result for a job with this id
 * (each such result answers one job with that id); with duplicate, one of
 * the error lines of jobs that repeated an earlier job's id (their lines
 * say duplicate_of_line), which answer those repeats and nothing else. */
int results_take_done(results_writer *w, const char *id, int duplicate);

/* 1 if the resumed file holds a result for this id not yet taken by
 * results_take_done (which it leaves as it is). */
int results_resumed_has(const results_writer *w, const char *id);

/* Results found in the file when it was resumed. */
long results_resumed(const results_writer *w);
/* Appends r's line in one write(2): a killed process leaves it whole or
 * cut off, never half of it. The line is not durable (nor counted) until
 * the next results_commit. A full disk: BORG_EINCOMPLETE, the file cut back
 * to its last whole line. */
borg_status results_write(results_writer *w, const borg_result *r, borg_err *err);
/* Lines written and not yet made durable. */
long results_pending(const results_writer *w);
/* Makes every line written so far durable with one fdatasync; then they
 * count. If the sync fails for want of space the lines it covered are cut
 * off (BORG_EINCOMPLETE): their jobs are --resume's to run again. */
borg_status results_commit(results_writer *w, borg_err *err);
/* Number of durable lines, by status. */
long results_count(const results_writer *w, result_status s);
borg_status results_close(results_writer *w, borg_err *err);

#endif
