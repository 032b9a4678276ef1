#define _GNU_SOURCE
#include "borg/coordinator.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "borg/batch.h"
#include "borg/chat_template.h"
#include "borg/control.h"
#include "borg/exec.h"
#include "borg/gguf.h"
#include "borg/h5out.h"
#include "borg/idset.h"
#include "borg/jobs.h"
#include "borg/kvcache.h"
#include "borg/log.h"
#include "borg/proc.h"
#include "borg/progress.h"
#include "borg/requests.h"
#include "borg/results.h"
#include "borg/runstate.h"
#include "borg/scheduler.h"
#include "borg/spec.h"
#include "borg/stage_rank.h"
#include "borg/summary.h"
#include "borg/tokenizer.h"
#include "borg/topology.h"
#include "borg/trace.h"

/* Jobs read ahead of the free slots: enough to keep every slot fed and to
 * let priorities matter, while the jobs file streams. */
enum { READ_AHEAD_PER_SLOT = 2 };

/* --trace: rank 0's round trips go on tracks numbered from here, apart
 * from the stage ranks'. */
enum { TRACE_ROUND_TRIPS = 1000 };

/* A pipeline as the coordinator sees it: its scheduler and the batches it
 * has in flight (kept until they return, to release their sequences). */
typedef struct {
    borg_sched *sched;
    borg_batch *flight;
    int *busy;
    int64_t *t_sent; /* when each batch in flight was sent (wall clock, for --trace) */
    int in_flight;
} pipeline;

typedef struct {
    const borg_config *cfg;
    gguf_file *gguf;
    borg_tokenizer *tok;
    chat_template chat;
    borg_net *net;       /* the job's ranks */
    borg_topology topo;  /* their shape */
    stage_thread *local; /* with no stage ranks: the stage on a thread of this process */
    borg_net *link;      /* where the stages are: net, or the local stage's pair */
    borg_spec spec;      /* what rank 0 decided for this generation of the run */
    borg_exec *exec;
    pipeline *pipes;
    int n_pipes, depth;
    int64_t next_batch;
    job_reader *reader;
    results_writer *out;
    h5out *h5; /* --h5: the same results in HDF5, each row written before its JSONL line */
    borg_requests *reqs;
    borg_idset *ids;   /* every job id read, to refuse a second job with one */
    int64_t n_read;    /* requests read so far: the next request number */
    int64_t n_in_file; /* jobs in the jobs file, or -1 until known */
    int64_t n_skipped; /* jobs the resumed results file had answered */
    long tokens_out;   /* tokens generated so far, finished jobs or not */
    borg_progress *progress;
    borg_trace *trace;
    double *stage_busy, *stage_rss; /* the progress sample's per-stage figures */
    const char **stage_host;
    int *stage_rank;
    int cap_stages;
    int jobs_done; /* the jobs file is exhausted */
    long prompt_tokens, gen_tokens;
    double t_start;
    int64_t *admitted;
    run_control *control;
    double *latency_s; /* of the jobs whose lines await the next commit */
    size_t n_latency, cap_latency;
    double t_commit;
    int stopping; /* a stop signal or the deadline: read no more jobs */
    int recoveries;
    double drain_until; /* after a stop signal: when in-flight work is dropped */
} coordinator;

static double now_ms(void) { return proc_now_s() * 1e3; }

/* The HDF5 row of a result: written first, so that a crash between the
 * two leaves a row that --resume drops, never a line without its row. */
static borg_status h5_row(coordinator *c, const borg_request *q, const borg_result *res, const int32_t *history,
                          borg_err *err)
{
    h5out_row row = {
        .id = q->job.id,
        .status = result_status_name(res->status),
        .finish_reason = res->finish_reason,
        .prompt_ids = history,
        .n_prompt = history ? (size_t)q->n_prompt : 0,
        .token_ids = res->token_ids,
        .n_tokens = res->token_ids ? res->n_tokens : 0,
        .token_logprobs = res->token_ids ? q->gen_lp : NULL,
        .queue_ms = res->queue_ms,
        .first_token_ms = res->first_token_ms,
        .total_ms = res->total_ms,
        .embedding = q->embedding,
        .dim = q->dim,
    };
    return h5out_append(c->h5, &row, err);
}

/* Writes request q's result line and forgets it. Its generated tokens are
 * read from the scheduler, their one keeper. */
static borg_status finish(coordinator *c, borg_request *q, result_status status, const char *error,
                          const char *finish_reason, borg_err *err)
{
    borg_sched *sched = c->pipes[q->pipe].sched;
    const int32_t *history = NULL;
    int32_t n_history = 0;
    int known = sched_history(sched, q->num, &history, &n_history);
    double t = now_ms();
    borg_result res = {
        .job = &q->job,
        .status = status,
        .error = error,
        .text = q->text,
        .text_len = q->text_len,
        .token_ids = known && n_history >= q->n_prompt + q->n_gen ? history + q->n_prompt : NULL,
        .n_tokens = known ? (size_t)q->n_gen : 0,
        .finish_reason = finish_reason,
        .prompt_logprobs = q->prompt_lp,
        .token_logprobs = q->gen_lp,
        .embedding = q->embedding,
        .dim = q->dim,
        .prompt_tokens = q->n_prompt,
        .queue_ms = q->t_admit ? q->t_admit - q->t_read : t - q->t_read,
        .first_token_ms = q->t_first ? q->t_first - q->t_read : 0,
        .total_ms = t - q->t_read,
    };
    borg_status st = c->h5 ? h5_row(c, q, &res, known ? history : NULL, err) : BORG_OK;
    if (!st)
        st = results_write(c->out, &res, err);
    if (!st && c->n_latency == c->cap_latency) {
        size_t cap = c->cap_latency ? 2 * c->cap_latency : 256;
        double *grown = realloc(c->latency_s, cap * sizeof *grown);
        if (!grown)
            st = borg_fail(err, BORG_ENOMEM, "out of memory finishing job '%s'", q->job.id);
        else
            c->latency_s = grown, c->cap_latency = cap;
    }
    if (!st)
        c->latency_s[c->n_latency++] = (t - q->t_read) / 1e3;
    c->gen_tokens += q->n_gen;
    sched_finish(sched, q->num);
    requests_close(c->reqs, q->num);
    return st;
}

/* Group commit: the lines written since the last commit are made durable
 * with one sync (their HDF5 rows first); only then do their jobs count as
 * done, in progress, metrics and the summary. */
static borg_status commit(coordinator *c, borg_err *err)
{
    if (!c->out || !results_pending(c->out))
        return BORG_OK;
    borg_status st = c->h5 ? h5out_sync(c->h5, err) : BORG_OK;
    if (!st)
        st = results_commit(c->out, err);
    if (st)
        return st;
    for (size_t i = 0; i < c->n_latency; i++)
        progress_job_done(c->progress, c->latency_s[i]);
    c->n_latency = 0;
    c->t_commit = now_ms();
    return BORG_OK;
}

/* A sync costs about the same for one line as for a thousand, so lines
 * wait for one at most this long (or one step, when steps are longer). */
#define COMMIT_EVERY_MS 5.0

static borg_status commit_due(coordinator *c, borg_err *err)
{
    return now_ms() - c->t_commit >= COMMIT_EVERY_MS ? commit(c, err) : BORG_OK;
}

/* The tokens of a job's prompt; BORG_EINPUT in *why when the job cannot
 * run (a bad token id, a chat it cannot render). */
static borg_status tokenize(coordinator *c, borg_request *q, int32_t **ids, size_t *n, borg_err *why)
{
    const borg_job *job = &q->job;
    *ids = NULL;
    *n = 0;
    if (job->prompt_ids) {
        borg_status st = request_check_ids(q, tokenizer_n_vocab(c->tok), why);
        if (st)
            return st;
        if (!(*ids = malloc(sizeof(int32_t) * (job->n_prompt_ids ? job->n_prompt_ids : 1))))
            return borg_fail(why, BORG_ENOMEM, "out of memory");
        memcpy(*ids, job->prompt_ids, sizeof(int32_t) * job->n_prompt_ids);
        *n = job->n_prompt_ids;
        return BORG_OK;
    }
    char *rendered = NULL;
    const char *text = job->prompt;
    if (job->messages) {
        borg_err cerr = {0};
        borg_status st = chat_render(&c->chat, job->messages, job->n_messages, &rendered, &cerr);
        if (st == BORG_EINPUT)
            return borg_fail(why, st, "line %ld: %s", job->line, cerr.msg);
        if (st)
            return borg_fail(why, st, "%s", cerr.msg);
        text = rendered;
    }
    borg_status st = tokenizer_encode(c->tok, text, strlen(text), 1, 1, ids, n, why);
    free(rendered);
    return st;
}

/* Queues a request on the least loaded pipeline with these tokens: its
 * prompt, or after a failure its prompt and what it had generated, so that
 * it goes on from there (first_step n_gen keeps the sampling draws). */
static borg_status submit(coordinator *c, borg_request *q, const int32_t *tokens, int32_t n, borg_err *err)
{
    int best = 0;
    for (int p = 1; p < c->n_pipes; p++)
        if (sched_waiting(c->pipes[p].sched) + sched_active(c->pipes[p].sched) <
            sched_waiting(c->pipes[best].sched) + sched_active(c->pipes[best].sched))
            best = p;
    q->pipe = best;
    return sched_submit(c->pipes[best].sched, q->num, tokens, n, q->n_gen, q->prompt_lp ? q->n_prompt : 0,
                        q->job.embed ? q->n_prompt : 0, &q->job.sampling, q->job.priority, err);
}

/* A job just read: it runs, or gets its result line at once (a job error,
 * a cancellation, a prompt that cannot run, nothing to generate). */
static borg_status admit_job(coordinator *c, borg_request *q, borg_err *err)
{
    const borg_job *job = &q->job;
    if (job->error)
        return finish(c, q, RESULT_ERROR, job->error, NULL, err);
    if (control_cancelled(c->control, job->id))
        return finish(c, q, RESULT_CANCELLED, NULL, NULL, err);
    int32_t *ids;
    size_t n;
    borg_err why = {0};
    borg_status st = tokenize(c, q, &ids, &n, &why);
    if (!st)
        st = request_admit(q, n, c->spec.slot_ctx, &why);
    if (st == BORG_EINPUT) {
        free(ids);
        return finish(c, q, RESULT_ERROR, why.msg, NULL, err);
    }
    if (st) {
        free(ids);
        *err = why;
        return st;
    }
    c->prompt_tokens += (long)n;
    if (job->max_tokens == 0 && !job->prompt_logprobs && !job->embed)
        st = finish(c, q, RESULT_OK, NULL, "length", err);
    else
        st = submit(c, q, ids, (int32_t)n, err);
    free(ids);
    return st;
}

/* Read: jobs until the look-ahead window is full or the file ends. */
static borg_status read_jobs(coordinator *c, borg_err *err)
{
    /* A long job holding its ring slot pauses reading until it finishes. */
    while (!c->jobs_done && !c->stopping && requests_can_open(c->reqs, c->n_read)) {
        borg_job job = {0};
        int done;
        borg_status st = job_reader_next(c->reader, &job, &done, err);
        if (st)
            return st;
        if (done) {
            c->jobs_done = 1;
            c->n_in_file = c->n_read + c->n_skipped;
            break;
        }
        int dup;
        long first;
        if ((st = idset_add(c->ids, job.id, job.line, &dup, &first, err))) {
            job_free(&job);
            return st;
        }
        if (results_take_done(c->out, job.id, dup)) {
            c->n_skipped++;
            job_free(&job);
            continue;
        }
        job.duplicate_of = dup ? first : 0;
        if (dup && !job.error &&
            asprintf(&job.error, "line %ld: id '%s' is already the id of the job on line %ld (ids must be unique)",
                     job.line, job.id, first) < 0)
            job.error = NULL;
        borg_request *q;
        if ((st = requests_open(c->reqs, c->n_read, &job, now_ms(), &q, err))) {
            job_free(&job);
            return st;
        }
        c->n_read++;
        if ((st = admit_job(c, q, err)))
            return st;
    }
    return BORG_OK;
}

/* A token came back: a prompt token's score, or a sampled token that goes
 * through the request's stop rules and, if the request goes on, into the
 * scheduler's history. */
static borg_status on_token(coordinator *c, const batch_result *res, borg_err *err)
{
    borg_request *q = requests_get(c->reqs, res->req);
    if (!q)
        return BORG_OK; /* finished while the token was in flight */
    if (res->pos >= 0) {
        request_score(q, res->pos, res->logprob);
        return BORG_OK;
    }
    if (q->job.max_tokens == 0)
        return finish(c, q, RESULT_OK, NULL, "length", err); /* only scored */
    int full;
    c->tokens_out++;
    borg_status st = sched_append(c->pipes[q->pipe].sched, q->num, res->token, &full, err);
    size_t len;
    const char *piece = st ? NULL : tokenizer_piece_bytes(c->tok, res->token, 0, &len);
    if (!st && !piece)
        st = borg_fail(err, BORG_EINTERNAL, "a stage returned token %d, outside the vocabulary", (int)res->token);
    req_verdict v;
    if (!st)
        st = request_token(q, piece, len, tokenizer_is_eog(c->tok, res->token), full, res->logprob, now_ms(), &v, err);
    if (st || v == REQ_GOES_ON)
        return st;
    return finish(c, q, RESULT_OK, NULL, v == REQ_STOP ? "stop" : "length", err);
}

/* Ends open requests that ran past their own timeout_s, were cancelled, or
 * (with past_deadline) are still running at the run's deadline. */
static borg_status end_overdue(coordinator *c, int past_deadline, borg_err *err)
{
    double t = now_ms();
    int64_t cursor = 0;
    for (borg_request *q; (q = requests_next(c->reqs, &cursor));) {
        borg_status st = BORG_OK;
        if (past_deadline || request_overdue(q, t))
            st = finish(c, q, RESULT_TIMEOUT, NULL, NULL, err);
        else if (control_cancelled(c->control, q->job.id))
            st = finish(c, q, RESULT_CANCELLED, NULL, NULL, err);
        if (st)
            return st;
    }
    return BORG_OK;
}

/* Reacts to what came from outside since the last step: cancellations,
 * timeouts, the deadline, a stop signal. */
static borg_status watch(coordinator *c, borg_err *err)
{
    borg_status st = control_poll(c->control, err);
    if (st)
        return st;
    int past_deadline = c->cfg->deadline_s > 0 && now_ms() - c->t_start > c->cfg->deadline_s * 1e3;
    if ((past_deadline || control_stop_requested()) && !c->stopping) {
        c->stopping = 1;
        c->drain_until = now_ms() + c->cfg->drain_s * 1e3;
        for (int p = 0; p < c->n_pipes; p++)
            sched_set_admission(c->pipes[p].sched, 0);
        log_event(LOG_INFO, "draining", NULL, LOG_FIELDS(LOG_S("cause", past_deadline ? "deadline" : "signal")),
                  "%s: reading no more jobs; finishing what is running%s",
                  past_deadline ? "deadline reached" : "stop signal", past_deadline ? "" : " (--drain-s)");
    }
    return end_overdue(c, past_deadline, err);
}

/* Schedule and send: fills every pipeline up to its depth with new
 * micro-batches. */
static borg_status dispatch(coordinator *c, borg_err *err)
{
    for (int p = 0; p < c->n_pipes; p++) {
        pipeline *pl = &c->pipes[p];
        while (pl->in_flight < c->depth) {
            int k = 0;
            while (pl->busy[k])
                k++;
            borg_batch *b = &pl->flight[k];
            int n_admitted;
            borg_status st = sched_build(pl->sched, b, c->admitted, &n_admitted, err);
            if (st)
                return st;
            double t = now_ms();
            for (int i = 0; i < n_admitted; i++) {
                borg_request *q = requests_get(c->reqs, c->admitted[i]);
                if (q)
                    q->t_admit = t;
            }
            if (b->n_seqs == 0)
                break;
            b->id = c->next_batch++;
            if ((st = exec_submit(c->exec, p, b, err)))
                return st;
            pl->t_sent[k] = trace_now_us();
            pl->busy[k] = 1;
            pl->in_flight++;
        }
    }
    return BORG_OK;
}

/* Rank 0's span of a batch from its sending to its tokens' return, on a
 * track of its own per pipeline and flight slot, which holds one batch at
 * a time. */
static void trace_round_trip(coordinator *c, int pipe, int k)
{
    const borg_batch *b = &c->pipes[pipe].flight[k];
    trace_span sp = {.batch = b->id, .t0_us = c->pipes[pipe].t_sent[k], .t1_us = trace_now_us()};
    trace_count_tokens(&sp, b);
    int track = TRACE_ROUND_TRIPS + pipe * c->depth + k;
    char name[64];
    snprintf(name, sizeof name, "rank 0: pipeline %d, batch slot %d", pipe, k);
    trace_name_rank(c->trace, track, name);
    trace_batch(c->trace, track, "round trip", &sp);
}

/* Collect: takes in one returned batch. Its sequences are free to be
 * scheduled again, and each token goes to its request. */
static borg_status collect(coordinator *c, borg_err *err)
{
    exec_done done;
    borg_status st = exec_wait(c->exec, &done, err);
    if (st)
        return st;
    if (done.pipe < 0 || done.pipe >= c->n_pipes)
        return borg_fail(err, BORG_EINTERNAL, "batch %lld came back from unknown pipeline %d", (long long)done.batch_id,
                         done.pipe);
    pipeline *pl = &c->pipes[done.pipe];
    int k = 0;
    while (k < c->depth && !(pl->busy[k] && pl->flight[k].id == done.batch_id))
        k++;
    if (k == c->depth)
        return borg_fail(err, done.retry ? BORG_EINCOMPLETE : BORG_EINTERNAL,
                         "batch %lld came back %s but was not in flight", (long long)done.batch_id,
                         done.retry ? "damaged beyond recognition" : "");
    if (done.retry)
        return exec_submit(c->exec, done.pipe, &pl->flight[k], err);
    sched_batch_done(pl->sched, &pl->flight[k]);
    if (c->trace)
        trace_round_trip(c, done.pipe, k);
    pl->busy[k] = 0;
    pl->in_flight--;
    /* Hidden states first: an embedding is complete before the token that
     * follows its prompt can finish the job. */
    for (int i = 0; i < done.n_rows; i++) {
        borg_request *q = requests_get(c->reqs, done.rows[i].req);
        if (q && (st = request_embed_row(q, done.rows[i].pos, done.row_data + (size_t)i * done.dim, done.dim, err)))
            return st;
    }
    for (int i = 0; i < done.n; i++)
        if ((st = on_token(c, &done.results[i], err)))
            return st;
    return BORG_OK;
}

static int in_flight(const coordinator *c)
{
    int n = 0;
    for (int p = 0; p < c->n_pipes; p++)
        n += c->pipes[p].in_flight;
    return n;
}

static void free_pipelines(pipeline *pipes, int n_pipes, int depth)
{
    for (int p = 0; pipes && p < n_pipes; p++) {
        for (int k = 0; k < depth; k++)
            batch_free(&pipes[p].flight[k]);
        free(pipes[p].flight);
        free(pipes[p].busy);
        free(pipes[p].t_sent);
        sched_free(pipes[p].sched);
    }
    free(pipes);
}

/* A scheduler per pipeline of the spec, sized by it. */
static borg_status open_pipelines(coordinator *c, borg_err *err)
{
    c->n_pipes = exec_pipes(c->exec);
    c->depth = exec_depth(c->exec);
    c->pipes = calloc((size_t)c->n_pipes, sizeof *c->pipes);
    int64_t *admitted = realloc(c->admitted, sizeof *admitted * (size_t)c->spec.n_slots);
    if (!c->pipes || !admitted)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    c->admitted = admitted;
    for (int p = 0; p < c->n_pipes; p++) {
        pipeline *pl = &c->pipes[p];
        borg_status st = sched_create(c->spec.n_slots, c->spec.slot_ctx, c->spec.batch_tokens, &pl->sched, err);
        if (st)
            return st;
        pl->flight = calloc((size_t)c->depth, sizeof *pl->flight);
        pl->busy = calloc((size_t)c->depth, sizeof *pl->busy);
        pl->t_sent = calloc((size_t)c->depth, sizeof *pl->t_sent);
        if (!pl->flight || !pl->busy || !pl->t_sent)
            return borg_fail(err, BORG_ENOMEM, "out of memory");
    }
    return BORG_OK;
}

/* Decides the spec for the current shape and starts the stages on it: the
 * stage ranks, or, when there are none, a stage on a thread of this
 * process holding every layer. */
static borg_status open_exec(coordinator *c, borg_err *err)
{
    borg_topology shape = c->topo;
    borg_status st;
    if (!c->topo.replicas) {
        if (!c->local && (st = stage_thread_start(c->cfg, &c->link, &c->local, err)))
            return st;
        shape = (borg_topology){.world = 2, .replicas = 1, .stages = 1};
    } else {
        c->link = c->net;
    }
    if ((st = spec_make(c->cfg, c->gguf, &shape, c->recoveries, &c->spec, err)) ||
        (st = exec_create(c->link, &c->spec, &c->exec, err)))
        return st;
    exec_set_trace(c->exec, c->trace);
    for (int r = 1; c->trace && r <= c->spec.replicas * c->spec.stages; r++) {
        char name[96];
        int s = spec_stage_of(&c->spec, r);
        snprintf(name, sizeof name, "rank %d: replica %d stage %d, layers %d-%d%s", c->local ? 0 : r,
                 spec_replica_of(&c->spec, r), s, c->spec.begin[s], c->spec.end[s] - 1,
                 c->local ? " (in-process)" : "");
        trace_name_rank(c->trace, r, name);
    }
    return BORG_OK;
}

static void layer_map(const borg_spec *sp, int local, int spares, char *map, size_t cap)
{
    if (local) {
        snprintf(map, cap, "rank 0 holds every layer");
        return;
    }
    int len = snprintf(map, cap, "%d replica(s) of %d stage(s), layers", sp->replicas, sp->stages);
    for (int s = 0; s < sp->stages && len < (int)cap - 32; s++)
        len += snprintf(map + len, cap - (size_t)len, " %d-%d", sp->begin[s], sp->end[s] - 1);
    if (spares && len < (int)cap - 24)
        snprintf(map + len, cap - (size_t)len, "; %d spare(s)", spares);
}

/* A stage rank failed (ULFM): the survivors shrink the job, rank 0 makes
 * a new spec for the stage ranks left (or runs every layer itself if none
 * is) and sends it, and every request that was running is replayed from
 * its history, on fresh KV caches. */
static borg_status recover(coordinator *c, borg_err *err)
{
    double t0 = now_ms();
    int failed[PLAN_MAX_STAGES * 4], n_failed, lost;
    borg_status st = net_recover(c->net, failed, &n_failed, &lost, err);
    if (st)
        return st;
    char names[256] = "";
    for (int i = 0, len = 0; i < n_failed && len < (int)sizeof names - 16; i++)
        len += snprintf(names + len, sizeof names - (size_t)len, "%s%d", i ? ", " : "", failed[i]);
    borg_topology before = c->topo;
    int n_layers = c->spec.end[c->spec.stages - 1];
    topology_after_failure(net_size(c->net), &before, n_layers < PLAN_MAX_STAGES ? n_layers : PLAN_MAX_STAGES,
                           &c->topo);
    pipeline *old = c->pipes;
    int old_n = c->n_pipes, old_depth = c->depth;
    c->pipes = NULL;
    exec_free(c->exec);
    c->exec = NULL;
    c->recoveries++;
    if ((st = open_exec(c, err)) || (st = open_pipelines(c, err))) {
        free_pipelines(old, old_n, old_depth);
        return st;
    }
    /* Each history moves from the old schedulers to the new ones. */
    int replayed = 0;
    int64_t cursor = 0;
    for (borg_request *q; !st && c->reqs && (q = requests_next(c->reqs, &cursor));) {
        const int32_t *tokens;
        int32_t n;
        if (q->pipe < old_n && sched_history(old[q->pipe].sched, q->num, &tokens, &n)) {
            st = submit(c, q, tokens, n, err);
            replayed++;
        }
    }
    free_pipelines(old, old_n, old_depth);
    if (st)
        return st;
    char map[512];
    layer_map(&c->spec, !c->topo.replicas, c->topo.spares, map, sizeof map);
    trace_instant(c->trace, "recovered", trace_now_us(), map);
    log_event(LOG_INFO, "recovered", NULL,
              LOG_FIELDS(LOG_S("failed", names), LOG_I("world_before", before.world), LOG_I("world", net_size(c->net)),
                         LOG_I("replicas", c->spec.replicas), LOG_I("stages", c->spec.stages),
                         LOG_B("in_process", !c->topo.replicas), LOG_S("layers", map), LOG_I("replayed", replayed),
                         LOG_I("generation", c->spec.generation), LOG_F("took_s", (now_ms() - t0) / 1e3)),
              "rank(s) %s failed (of %d); recovered on %d rank(s): %s; %d request(s) replayed; recovery took %.2f s",
              names, before.world, net_size(c->net), map, replayed, (now_ms() - t0) / 1e3);
    return BORG_OK;
}

/* A resumed HDF5 row is kept when the results file answered its job. */
static int h5_keep(const char *id, void *ctx) { return results_resumed_has(ctx, id); }

/* The run's parameters, as the HDF5 file's attribute records them. */
static char *params_json(const coordinator *c)
{
    const borg_config *cfg = c->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", cfg->model);
    cJSON_AddStringToObject(o, "jobs", cfg->jobs);
    cJSON_AddNumberToObject(o, "ctx", c->spec.slot_ctx);
    cJSON_AddNumberToObject(o, "slots", c->spec.n_slots);
    cJSON_AddNumberToObject(o, "batch_tokens", c->spec.batch_tokens);
    cJSON_AddStringToObject(o, "activations", c->spec.q8_activations ? "q8" : "f32");
    cJSON_AddStringToObject(o, "kv_dtype", kv_dtype_name((borg_dtype)c->spec.kv_dtype));
    cJSON_AddNumberToObject(o, "replicas", c->spec.replicas);
    cJSON_AddNumberToObject(o, "stages", c->spec.stages);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int s = 0; layers && s < c->spec.stages; s++) {
        cJSON *pair = cJSON_CreateIntArray((const int[]){c->spec.begin[s], c->spec.end[s]}, 2);
        cJSON_AddItemToArray(layers, pair);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static borg_status open_h5(coordinator *c, borg_err *err)
{
    borg_hparams hp;
    borg_status st = family_hparams(c->gguf, &hp, err);
    if (st)
        return st;
    gguf_str name = {0};
    if (gguf_has_key(c->gguf, "general.name") && (st = gguf_get_str(c->gguf, "general.name", &name, err)))
        return st;
    char model_name[256];
    snprintf(model_name, sizeof model_name, "%.*s", name.ptr ? (int)name.len : 0, name.ptr ? name.ptr : "");
    char *params = params_json(c);
    if (!params)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    h5out_meta meta = {
        .model_name = model_name[0] ? model_name : c->cfg->model,
        .model_path = c->cfg->model,
        .model_hash = c->spec.model_hash,
        .params_json = params,
        .version = BORG_VERSION,
        .start_time = (double)trace_now_us() / 1e6,
    };
    st = h5out_open(c->cfg->h5, c->cfg->force, c->cfg->resume, &meta, hp.dim, h5_keep, c->out, &c->h5, err);
    free(params);
    return st;
}

static borg_status setup(coordinator *c, const borg_config *cfg, borg_net *net, borg_err *err)
{
    c->cfg = cfg;
    c->net = net;
    c->t_start = now_ms();
    borg_status st;
    if ((st = topology_resolve(net_size(net), cfg->replicas, cfg->stages, &c->topo, err)) ||
        (st = gguf_open(cfg->model, &c->gguf, err)) || (st = tokenizer_load(c->gguf, &c->tok, err)))
        return st;
    gguf_str tmpl = {0};
    if (gguf_has_key(c->gguf, "tokenizer.chat_template") &&
        (st = gguf_get_str(c->gguf, "tokenizer.chat_template", &tmpl, err)))
        return st;
    if ((st = chat_template_init(tmpl.ptr, tmpl.len, chat_vocab_style(c->tok), &c->chat, err)))
        return st;
    /* The family check, before anything else is opened. */
    borg_hparams hp;
    if ((st = family_hparams(c->gguf, &hp, err)) || (st = control_open(cfg->run_dir, &c->control, err)))
        return st;
    /* Refuse a bad jobs file or an existing results file before any rank
     * spends time loading layers. */
    c->n_in_file = job_file_count(cfg->jobs);
    progress_options po = {.progress_s = cfg->progress_s,
                           .metrics_path = cfg->metrics,
                           .run_dir = cfg->run_dir,
                           .quiet = cfg->quiet,
                           .tty = -1,
                           .log_json = cfg->log_json};
    if ((st = progress_create(&po, &c->progress, err)) ||
        (cfg->trace && (st = trace_open(cfg->trace, &c->trace, err))) ||
        (st = job_reader_open(cfg->jobs, &c->reader, err)) ||
        (st = results_open(cfg->out, cfg->force, cfg->resume, &c->out, err)) || (st = runstate_running(err)))
        return st;
    if (!(st = open_exec(c, err)))
        st = open_pipelines(c, err);
    while (st == BORG_EPEER && net_can_recover(net))
        st = recover(c, err); /* a stage rank failed while the stages started */
    if (st || (cfg->h5 && (st = open_h5(c, err))))
        return st;
    int64_t cap = (int64_t)c->spec.n_slots * c->n_pipes * (READ_AHEAD_PER_SLOT + 1);
    if ((st = idset_create(&c->ids, err)))
        return st;
    return requests_create(cap, &c->reqs, err);
}

static void teardown(coordinator *c)
{
    progress_free(c->progress);
    free(c->latency_s);
    free(c->stage_busy);
    free(c->stage_rss);
    free(c->stage_host);
    free(c->stage_rank);
    requests_free(c->reqs);
    idset_free(c->ids);
    free(c->admitted);
    free_pipelines(c->pipes, c->n_pipes, c->depth);
    exec_free(c->exec);
    if (c->local)
        stage_thread_join(c->local, c->link);
    control_close(c->control);
    job_reader_close(c->reader);
    chat_template_free(&c->chat);
    tokenizer_free(c->tok);
    gguf_close(c->gguf);
}

/* What progress, metrics and the status file show now. */
static borg_status sample(coordinator *c, progress_sample *s, borg_err *err)
{
    int n = 0;
    const stage_stats *live = c->exec ? exec_live_stats(c->exec, &n) : NULL;
    if (n > c->cap_stages) {
        free(c->stage_busy);
        free(c->stage_rss);
        free(c->stage_host);
        free(c->stage_rank);
        c->stage_busy = malloc(sizeof *c->stage_busy * (size_t)n);
        c->stage_rss = malloc(sizeof *c->stage_rss * (size_t)n);
        c->stage_host = malloc(sizeof *c->stage_host * (size_t)n);
        c->stage_rank = malloc(sizeof *c->stage_rank * (size_t)n);
        c->cap_stages = c->stage_busy && c->stage_rss && c->stage_host && c->stage_rank ? n : 0;
        if (!c->cap_stages)
            return borg_fail(err, BORG_ENOMEM, "out of memory");
    }
    int k = 0; /* the stages that have reported so far */
    for (int i = 0; i < n; i++)
        if (live[i].host[0]) {
            c->stage_busy[k] = live[i].busy_s;
            c->stage_rss[k] = live[i].peak_rss_mib;
            c->stage_host[k] = live[i].host;
            c->stage_rank[k++] = c->local ? 0 : i + 1;
        }
    int64_t waiting = 0, active = 0;
    for (int p = 0; p < c->n_pipes; p++) {
        waiting += sched_waiting(c->pipes[p].sched);
        active += sched_active(c->pipes[p].sched);
    }
    *s = (progress_sample){
        .jobs_total = c->n_in_file,
        .jobs_resumed = c->out ? results_resumed(c->out) : 0,
        .ok = c->out ? results_count(c->out, RESULT_OK) : 0,
        .error = c->out ? results_count(c->out, RESULT_ERROR) : 0,
        .timeout = c->out ? results_count(c->out, RESULT_TIMEOUT) : 0,
        .cancelled = c->out ? results_count(c->out, RESULT_CANCELLED) : 0,
        .prompt_tokens = c->prompt_tokens,
        .generated_tokens = c->tokens_out,
        .queue_depth = waiting,
        .kv_slots_used = active,
        .kv_slots_total = (int64_t)c->spec.n_slots * c->n_pipes,
        .recoveries = c->recoveries,
        .damaged_frames = c->exec ? exec_crc_errors(c->exec) : 0,
        .n_stages = k,
        .stage_busy_s = c->stage_busy,
        .stage_rss_mib = c->stage_rss,
        .stage_host = c->stage_host,
        .stage_rank = c->stage_rank,
        .elapsed_s = (now_ms() - c->t_start) / 1e3,
        .stopping = c->stopping,
    };
    return BORG_OK;
}

/* Progress, metrics and status, when they are due. */
static borg_status tick(coordinator *c, borg_err *err)
{
    double t = proc_now_s();
    if (!progress_due(c->progress, t))
        return BORG_OK;
    progress_sample s;
    borg_status st = sample(c, &s, err);
    return st ? st : progress_tick(c->progress, &s, t, err);
}

static void summarize(coordinator *c, const stage_stats *stats, int n_stats)
{
    run_summary s = {
        .results = c->out,
        .results_path = c->cfg->out,
        .prompt_tokens = c->prompt_tokens,
        .generated_tokens = c->gen_tokens,
        .wall_s = (now_ms() - c->t_start) / 1e3,
        .damaged_frames = c->exec ? exec_crc_errors(c->exec) : 0,
        .recoveries = c->recoveries,
        .replicas = c->topo.replicas,
        .stages = c->topo.stages,
        .in_process = c->local != NULL,
        .ranks = stats,
        .n_ranks = n_stats,
    };
    summary_write(&s);
}

borg_status coordinator_run(const borg_config *cfg, borg_net *net, borg_err *err)
{
    coordinator c = {0};
    borg_status st = setup(&c, cfg, net, err);
    while (!st) {
        if ((st = commit_due(&c, err)) || (st = tick(&c, err)) || (st = watch(&c, err)) || (st = read_jobs(&c, err)) ||
            (st = dispatch(&c, err))) {
            if (st == BORG_EPEER && net_can_recover(net) && !(st = recover(&c, err)))
                continue;
            break;
        }
        if (in_flight(&c) == 0) {
            if ((requests_n_open(c.reqs) == 0 && c.jobs_done) || c.stopping)
                break;
            /* Nothing runs, yet jobs are open: only reading more can help. */
            if (c.jobs_done || !requests_can_open(c.reqs, c.n_read)) {
                st = borg_fail(err, BORG_EINTERNAL, "%lld jobs are open but none can be scheduled",
                               (long long)requests_n_open(c.reqs));
                break;
            }
            continue;
        }
        if (c.stopping && now_ms() > c.drain_until)
            break; /* what is still in flight is dropped: --resume reruns it */
        st = collect(&c, err);
        if (st == BORG_EPEER && net_can_recover(net))
            st = recover(&c, err);
    }
    borg_err cerr;
    borg_status cst = commit(&c, &cerr);
    if (cst && !st) {
        st = cst;
        *err = cerr;
    }
    int64_t open = c.reqs ? requests_n_open(c.reqs) : 0;
    if (!st && (open > 0 || !c.jobs_done))
        st = borg_fail(err, BORG_EINCOMPLETE, "stopped with %lld job(s) unfinished%s; rerun with --resume to finish",
                       (long long)open, c.jobs_done ? "" : " and more unread");
    stage_stats *stats = NULL;
    int n_stats = 0;
    if ((!st || st == BORG_EINCOMPLETE) && c.exec) {
        borg_err ferr;
        borg_status fst = exec_finish(c.exec, &stats, &n_stats, &ferr);
        if (fst) {
            st = fst;
            *err = ferr;
        }
    }
    if (c.progress) {
        progress_sample s;
        borg_err perr;
        if (!sample(&c, &s, &perr) && progress_finish(c.progress, &s, proc_now_s(), !st, &perr))
            log_event(LOG_WARN, "progress_write_failed", NULL, NULL, 0, "%s", perr.msg);
    }
    borg_err herr;
    if (h5out_close(c.h5, &herr) && !st) {
        st = herr.code;
        *err = herr;
    }
    c.h5 = NULL;
    borg_err terr;
    if (c.exec)
        exec_set_trace(c.exec, NULL);
    if (trace_close(c.trace, &terr))
        log_event(LOG_WARN, "trace_write_failed", NULL, NULL, 0, "%s", terr.msg);
    c.trace = NULL;
    if (c.out) {
        summarize(&c, stats, n_stats);
        cst = results_close(c.out, &cerr);
        if (!st && cst) {
            st = cst;
            *err = cerr;
        }
    }
    free(stats);
    teardown(&c);
    return st;
}
