/* Requests: the coordinator's view of each job between reading it and
 * writing its result. Pure logic (no MPI, no model): the ring of open
 * requests, admission checks on a tokenized prompt, and the stop rules
 * applied to each sampled token.
 *
 * Token ids are not kept here: the scheduler owns a request's token history
 * (prompt and generated ids), so this module only counts them. */
#ifndef BORG_REQUESTS_H
#define BORG_REQUESTS_H

#include <stddef.h>
#include <stdint.h>

#include "borg/error.h"
#include "borg/jobs.h"

typedef struct {
    borg_job job; /* owned: freed by requests_close */
    int64_t num;  /* request number */
    int pipe;     /* the pipeline it runs on (set by the coordinator; 0 until then) */
    int open;
    int32_t n_prompt; /* prompt tokens (set by request_admit) */
    int32_t n_gen;    /* tokens generated so far */
    float *prompt_lp; /* with job.prompt_logprobs: one per prompt token, NaN until scored; else NULL */
    char *text;       /* generated text, NUL-terminated, text_len bytes (may end inside a UTF-8
                       * sequence); NULL while text_len is 0 and nothing was ever appended */
    size_t text_len, text_cap;
    float *gen_lp; /* log-probability of each generated token (n_gen of them) */
    int32_t cap_lp;
    double *embed_sum; /* with job.embed: the sum of the final hidden states of positions [0, embed_next) */
    int32_t embed_next;
    float *embedding; /* with job.embed: the pooled, L2-normalized vector, once the prompt is through */
    int dim;
    double t_read, t_admit, t_first; /* ms, as given by the caller's clock; 0 = not yet. t_read is set by
                                      * requests_open, t_first by request_token, t_admit by the caller. */
} borg_request;

typedef struct borg_requests borg_requests; /* the open requests: a ring indexed by request number */

/* A ring of cap slots (cap >= 1); request num lives in slot num % cap. */
borg_status requests_create(int64_t cap, borg_requests **out, borg_err *err);
void requests_free(borg_requests *r); /* releases every open request; NULL is allowed */
int64_t requests_cap(const borg_requests *r);
int64_t requests_n_open(const borg_requests *r);
/* 1 when request number num (>= 0) can be opened now: its ring slot is free. */
int requests_can_open(const borg_requests *r, int64_t num);
/* Opens request num, taking ownership of *job (moved: *job is zeroed). Fails (BORG_EINTERNAL) if the slot
 * is busy or num is negative; *job is then left to the caller. */
borg_status requests_open(borg_requests *r, int64_t num, borg_job *job, double t_read, borg_request **out,
                          borg_err *err);
/* The open request with this number, or NULL (finished while a token was in flight, or never opened). */
borg_request *requests_get(borg_requests *r, int64_t num);
/* Iterates open requests in ring-slot order (not necessarily by number): start with *cursor = 0; returns
 * NULL at the end. Closing the returned request during iteration is allowed. */
borg_request *requests_next(borg_requests *r, int64_t *cursor);
/* Frees everything request num owns and frees its slot; a number that is not open is ignored. */
void requests_close(borg_requests *r, int64_t num);

/* Admission checks on a tokenized prompt: BORG_EINPUT with a message naming the job's line when the prompt
 * cannot run (no tokens; n >= slot_ctx: "line N: the prompt is X tokens; the context holds Y (prompt plus
 * at least one generated token)"). Vocabulary checks are request_check_ids. On success records n_prompt
 * and, with prompt_logprobs, allocates prompt_lp (NaN-filled). BORG_ENOMEM possible (also in *why). */
borg_status request_admit(borg_request *q, size_t n_prompt, int32_t slot_ctx, borg_err *why);
/* Checks job.prompt_token_ids against the vocabulary (before tokenizing): an id outside [0, n_vocab) gives
 * BORG_EINPUT naming line and id. A job without prompt_token_ids passes. */
borg_status request_check_ids(const borg_request *q, int32_t n_vocab, borg_err *why);

typedef enum { REQ_GOES_ON = 0, REQ_STOP, REQ_LENGTH } req_verdict;

/* A sampled token arrived. piece/piece_len are its text bytes (any length; none for special tokens, when
 * piece may be NULL), is_eog whether the tokenizer calls it end-of-generation, context_full whether the
 * sequence has no room for another token (the scheduler decides that), logprob its log-probability
 * (kept in gen_lp). Order of rules: count the token
 * (n_gen++, t_first set on the first); an EOG token ends with REQ_STOP unless job.ignore_eos (then its
 * piece is appended like any other); the piece is appended to text; a stop string that now appears ending
 * in the new bytes (the earliest match start among all job.stop strings) cuts the text at the match start
 * and gives REQ_STOP; then max_tokens reached (job.max_tokens >= 0 && n_gen >= max_tokens) or context_full
 * gives REQ_LENGTH.
 * A job with max_tokens == 0 only scores its prompt: a token for it gives REQ_LENGTH without being counted
 * or appended. Empty stop strings never match.
 * now_ms is the caller's clock. Only BORG_ENOMEM fails, and then q is unchanged. */
borg_status request_token(borg_request *q, const char *piece, size_t piece_len, int is_eog, int context_full,
                          float logprob, double now_ms, req_verdict *verdict, borg_err *err);
/* A prompt token's log-probability arrived (position pos of the prompt); ignored out of range or without
 * prompt_logprobs. A replay after a failure may score a position again: the latest value is kept. */
void request_score(borg_request *q, int32_t pos, float logprob);
/* The final hidden state (dim floats) of prompt position pos arrived, for a job with embed. Rows come in
 * position order; a replay after a failure sends positions again, and those already taken are skipped
 * (they are the same bits). When the last prompt position is in, embedding is made: the mean of the rows
 * (JOB_POOL_MEAN, summed in double in position order, so it does not depend on how the prompt was cut
 * into chunks) or the last row (JOB_POOL_LAST), L2-normalized. Only BORG_ENOMEM fails. */
borg_status request_embed_row(borg_request *q, int32_t pos, const float *row, int dim, borg_err *err);

/* 1 when the job's own timeout_s (> 0) has passed at now_ms since t_read. */
int request_overdue(const borg_request *q, double now_ms);

#endif
