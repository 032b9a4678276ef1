/* Jobs: what a user asks for, one per line of a JSONL file or element of a
 * JSON array. Three shapes are recognised per job:
 *   simple  {"id", "prompt" | "prompt_token_ids", "max_tokens", sampling ...,
 *            "embed", "pooling"}
 *   chat    {"id", "messages": [{"role", "content"}], ...}
 *   OpenAI  {"custom_id", "method": "POST", "url": "/v1/completions" |
 *            "/v1/chat/completions", "body": {...}}
 * A job that cannot run still comes back from the reader, with `error`
 * saying why, so that it gets a result line of its own. */
#ifndef BORG_JOBS_H
#define BORG_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"
#include "borg/sampler.h"

typedef enum { JOB_SIMPLE, JOB_CHAT, JOB_OPENAI_COMPLETION, JOB_OPENAI_CHAT } job_shape;

typedef struct {
    char *role;
    char *content;
} chat_msg;

#define JOB_MAX_STOP 8

/* How an embedding is made of the prompt's final hidden states (after the
 * final norm): their mean, or the last token's; L2-normalized either way. */
typedef enum { JOB_POOL_NONE = 0, JOB_POOL_MEAN = 1, JOB_POOL_LAST = 2 } job_pooling;

typedef struct {
    long line;  /* 1-based line where the job starts */
    long index; /* 0-based order in the file */
    job_shape shape;
    char *id;            /* id, or custom_id for OpenAI lines; "line-N" if absent */
    char *model;         /* OpenAI body.model, echoed back */
    char *prompt;        /* simple shape */
    int32_t *prompt_ids; /* simple shape given prompt_token_ids */
    size_t n_prompt_ids;
    chat_msg *messages;
    size_t n_messages;
    int32_t max_tokens; /* -1: until the context is full */
    borg_sampling sampling;
    char *stop[JOB_MAX_STOP];
    int n_stop;
    int ignore_eos;
    int prompt_logprobs; /* native shapes: score the prompt, token by token */
    int embed;           /* native shapes: the prompt's embedding, pooled this way (job_pooling) */
    int priority;
    double timeout_s;  /* 0: none */
    char *error;       /* non-NULL: the job cannot run, and why */
    long duplicate_of; /* set by the coordinator: the line of an earlier job with the same id; 0: none */
} borg_job;

void job_free(borg_job *job);

/* Parses one job's JSON text. Problems with the job itself are recorded in
 * job->error (naming the line); only running out of memory fails. */
borg_status job_parse(const char *text, size_t len, long line, long index, borg_job *job, borg_err *err);

/* 1 for the OpenAI shapes, whose results use the OpenAI batch output form. */
int job_is_openai(const borg_job *job);

/* Streams jobs from a JSONL file or a JSON array file, never holding more
 * than one job's text in memory. */
typedef struct job_reader job_reader;

borg_status job_reader_open(const char *path, job_reader **out, borg_err *err);
/* Fills job with the next job; *done = 1 (and job untouched) at the end. */
borg_status job_reader_next(job_reader *r, borg_job *job, int *done, borg_err *err);
void job_reader_close(job_reader *r);

/* The jobs in a JSONL file (its non-blank lines), read in one quick pass
 * so that progress can show a total from the start; -1 for a JSON array
 * file or one that cannot be read (the reader then reports why). */
int64_t job_file_count(const char *path);

#endif
