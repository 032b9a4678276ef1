#define _GNU_SOURCE
#include "borg/coordinator.h"
#include "borg/proc.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "borg/batch.h"
#include "borg/chat_template.h"
#include "borg/control.h"
#include "borg/exec.h"
#include "borg/gguf.h"
#include "borg/jobs.h"
#include "borg/matmul.h"
#include "borg/plan.h"
#include "borg/results.h"
#include "borg/runstate.h"
#include "borg/scheduler.h"
#include "borg/stage.h"
#include "borg/threadpool.h"
#include "borg/tokenizer.h"

/* Jobs read ahead of the free slots: enough to keep every slot fed and to
 * let priorities matter, while the jobs file streams. */
enum { READ_AHEAD_PER_SLOT = 2 };

typedef struct {
    borg_job job;
    int32_t n_prompt;
    int32_t *prompt;  /* its tokens, kept to replay it after a failure */
    float *prompt_lp; /* with prompt_logprobs: per prompt token, NaN until scored */
    int32_t *gen;
    int32_t n_gen, cap_gen;
    char *text;
    size_t text_len, text_cap;
    double t_read, t_admit, t_first;
    int64_t num;  /* request number; the ring slot is num % cap_reqs */
    int pipe;     /* the pipeline (replica) it runs on */
    int open;
} request;

/* A pipeline as the coordinator sees it: its scheduler and the batches it
 * has in flight (kept until they return, to release their sequences). */
typedef struct {
    borg_sched *sched;
    borg_batch *flight;
    int *busy;
    int in_flight;
    int kv_slots;
} pipeline;

typedef struct {
    const borg_config *cfg;
    gguf_file *gguf;
    borg_tokenizer *tok;
    chat_template chat;
    borg_net *net;
    borg_topology topo;
    borg_exec *exec;
    pipeline *pipes;
    int n_pipes, depth;
    int64_t next_batch;
    job_reader *reader;
    results_writer *out;
    int32_t slot_ctx;
    request *reqs;      /* ring indexed by request number modulo cap_reqs */
    int64_t cap_reqs;
    int64_t n_read;     /* requests read so far */
    int64_t n_open;     /* read and not yet written */
    int jobs_done;      /* the jobs file is exhausted */
    long prompt_tokens, gen_tokens;
    double t_start;
    int64_t *admitted;
    run_control *control;
    int stopping;       /* a stop signal or the deadline: read no more jobs */
    int recoveries;
    double drain_until; /* after a stop signal: when in-flight work is dropped */
} coordinator;

static double now_ms(void) { return proc_now_s() * 1e3; }

static request *req_at(coordinator *c, int64_t r) { return &c->reqs[r % c->cap_reqs]; }

static void request_release(request *q)
{
    job_free(&q->job);
    free(q->prompt);
    free(q->prompt_lp);
    free(q->gen);
    free(q->text);
    memset(q, 0, sizeof *q);
}

static borg_status finish(coordinator *c, int64_t r, result_status status, const char *error,
                          const char *finish_reason, borg_err *err)
{
    request *q = req_at(c, r);
    double t = now_ms();
    borg_result res = {
        .job = &q->job,
        .status = status,
        .error = error,
        .text = q->text,
        .text_len = q->text_len,
        .token_ids = q->gen,
        .n_tokens = (size_t)q->n_gen,
        .finish_reason = finish_reason,
        .prompt_logprobs = q->prompt_lp,
        .prompt_tokens = q->n_prompt,
        .queue_ms = q->t_admit ? q->t_admit - q->t_read : t - q->t_read,
        .first_token_ms = q->t_first ? q->t_first - q->t_read : 0,
        .total_ms = t - q->t_read,
    };
    borg_status st = results_write(c->out, &res, err);
    c->gen_tokens += q->n_gen;
    sched_finish(c->pipes[q->pipe].sched, r);
    request_release(q);
    c->n_open--;
    return st;
}

/* Tokens of a job's prompt, or a message in *why when it cannot run. */
static borg_status prompt_tokens(coordinator *c, request *q, int32_t **ids, size_t *n, char **why,
                                 borg_err *err)
{
    const borg_job *job = &q->job;
    borg_err jerr = {0};
    borg_status st = BORG_OK;
    *ids = NULL;
    *n = 0;
    if (job->prompt_ids) {
        int32_t vocab = tokenizer_n_vocab(c->tok);
        for (size_t i = 0; i < job->n_prompt_ids; i++)
            if (job->prompt_ids[i] >= vocab)
                return asprintf(why, "line %ld: token id %d is outside the vocabulary (0..%d)", job->line,
                                (int)job->prompt_ids[i], (int)vocab - 1) < 0
                           ? borg_fail(err, BORG_ENOMEM, "out of memory")
                           : BORG_OK;
        *ids = malloc(sizeof(int32_t) * job->n_prompt_ids);
        if (!*ids)
            return borg_fail(err, BORG_ENOMEM, "out of memory");
        memcpy(*ids, job->prompt_ids, sizeof(int32_t) * job->n_prompt_ids);
        *n = job->n_prompt_ids;
        return BORG_OK;
    }
    char *rendered = NULL;
    const char *text = job->prompt;
    if (job->messages) {
        st = chat_render(&c->chat, job->messages, job->n_messages, &rendered, &jerr);
        if (st == BORG_EINPUT)
            return asprintf(why, "line %ld: %s", job->line, jerr.msg) < 0 ? borg_fail(err, BORG_ENOMEM, "out of memory")
                                                                          : BORG_OK;
        if (st)
            return borg_fail(err, st, "%s", jerr.msg);
        text = rendered;
    }
    st = tokenizer_encode(c->tok, text, strlen(text), 1, 1, ids, n, err);
    free(rendered);
    return st;
}

/* Queues a request on the least loaded pipeline. A request that has
 * generated tokens already (replayed after a failure) goes in with them
 * appended to its prompt and goes on from there. */
static borg_status submit(coordinator *c, request *q, borg_err *err)
{
    int best = 0;
    for (int p = 1; p < c->n_pipes; p++)
        if (sched_waiting(c->pipes[p].sched) + sched_active(c->pipes[p].sched) <
            sched_waiting(c->pipes[best].sched) + sched_active(c->pipes[best].sched))
            best = p;
    q->pipe = best;
    int32_t n = q->n_prompt + q->n_gen;
    int32_t *tokens = q->prompt;
    if (q->n_gen) {
        if (!(tokens = malloc(sizeof *tokens * (size_t)n)))
            return borg_fail(err, BORG_ENOMEM, "out of memory replaying '%s'", q->job.id);
        memcpy(tokens, q->prompt, sizeof *tokens * (size_t)q->n_prompt);
        memcpy(tokens + q->n_prompt, q->gen, sizeof *tokens * (size_t)q->n_gen);
    }
    borg_status st = sched_submit(c->pipes[best].sched, q->num, tokens, n, q->n_gen,
                                  q->prompt_lp ? q->n_prompt : 0, &q->job.sampling,
                                  q->job.priority, err);
    if (tokens != q->prompt)
        free(tokens);
    return st;
}

static borg_status admit_job(coordinator *c, int64_t r, borg_err *err)
{
    request *q = req_at(c, r);
    const borg_job *job = &q->job;
    if (job->error)
        return finish(c, r, RESULT_ERROR, job->error, NULL, err);
    if (control_cancelled(c->control, job->id))
        return finish(c, r, RESULT_CANCELLED, NULL, NULL, err);
    int32_t *ids;
    size_t n;
    char *why = NULL;
    borg_status st = prompt_tokens(c, q, &ids, &n, &why, err);
    if (st)
        return st;
    if (!why && n == 0 && asprintf(&why, "line %ld: the prompt has no tokens", job->line) < 0)
        why = NULL;
    if (!why && n >= (size_t)c->slot_ctx &&
        asprintf(&why, "line %ld: the prompt is %zu tokens; the context holds %d (prompt plus at least one generated token)",
                 job->line, n, (int)c->slot_ctx) < 0)
        why = NULL;
    if (why) {
        free(ids);
        st = finish(c, r, RESULT_ERROR, why, NULL, err);
        free(why);
        return st;
    }
    q->n_prompt = (int32_t)n;
    c->prompt_tokens += (long)n;
    if (job->max_tokens == 0 && !job->prompt_logprobs) {
        free(ids);
        return finish(c, r, RESULT_OK, NULL, "length", err);
    }
    if (job->prompt_logprobs) {
        if (!(q->prompt_lp = malloc(sizeof *q->prompt_lp * n))) {
            free(ids);
            return borg_fail(err, BORG_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
            q->prompt_lp[i] = NAN;
    }
    q->prompt = ids;
    return submit(c, q, err);
}

/* Reads jobs until the look-ahead window is full or the file ends. */
static borg_status read_jobs(coordinator *c, borg_err *err)
{
    /* A long job holding its ring slot pauses reading until it finishes. */
    while (!c->jobs_done && !c->stopping && !req_at(c, c->n_read)->open) {
        request *q = req_at(c, c->n_read);
        int done;
        borg_status st = job_reader_next(c->reader, &q->job, &done, err);
        if (st)
            return st;
        if (done) {
            c->jobs_done = 1;
            break;
        }
        if (results_take_done(c->out, q->job.id)) {
            job_free(&q->job);
            continue;
        }
        q->open = 1;
        q->t_read = now_ms();
        q->num = c->n_read;
        int64_t r = c->n_read++;
        c->n_open++;
        if ((st = admit_job(c, r, err)))
            return st;
    }
    return BORG_OK;
}

static int text_append(request *q, const char *s, size_t n)
{
    if (q->text_len + n + 1 > q->text_cap) {
        size_t cap = q->text_cap ? q->text_cap : 256;
        while (cap < q->text_len + n + 1)
            cap *= 2;
        char *t = realloc(q->text, cap);
        if (!t)
            return -1;
        q->text = t;
        q->text_cap = cap;
    }
    memcpy(q->text + q->text_len, s, n);
    q->text_len += n;
    q->text[q->text_len] = '\0';
    return 0;
}

/* Where the earliest stop string now ends the text, or -1. Only matches
 * that include bytes added by the latest token are new. */
static long stop_at(const request *q, size_t old_len)
{
    long best = -1;
    for (int i = 0; i < q->job.n_stop; i++) {
        size_t sl = strlen(q->job.stop[i]);
        size_t from = old_len >= sl ? old_len - sl + 1 : 0;
        if (q->text_len < sl || from > q->text_len - sl)
            continue;
        const char *hit = memmem(q->text + from, q->text_len - from, q->job.stop[i], sl);
        if (hit && (best < 0 || hit - q->text < best))
            best = hit - q->text;
    }
    return best;
}

static borg_status on_token(coordinator *c, const batch_result *res, borg_err *err)
{
    request *q = req_at(c, res->req);
    if (!q->open || q->num != res->req)
        return BORG_OK; /* finished while the token was in flight */
    if (res->pos >= 0) {
        /* A replay after a failure scores again what it scored before. */
        if (q->prompt_lp && res->pos < q->n_prompt)
            q->prompt_lp[res->pos] = res->logprob;
        return BORG_OK;
    }
    if (q->job.max_tokens == 0)
        return finish(c, res->req, RESULT_OK, NULL, "length", err); /* only scored */
    if (!q->t_first)
        q->t_first = now_ms();
    if (q->n_gen == q->cap_gen) {
        int32_t cap = q->cap_gen ? 2 * q->cap_gen : 64;
        int32_t *g = realloc(q->gen, sizeof *g * (size_t)cap);
        if (!g)
            return borg_fail(err, BORG_ENOMEM, "out of memory");
        q->gen = g;
        q->cap_gen = cap;
    }
    q->gen[q->n_gen++] = res->token;
    if (!q->job.ignore_eos && tokenizer_is_eog(c->tok, res->token))
        return finish(c, res->req, RESULT_OK, NULL, "stop", err);

    char piece[256];
    int len = tokenizer_piece(c->tok, res->token, 0, piece, sizeof piece);
    size_t old_len = q->text_len;
    if (len > 0 && text_append(q, piece, (size_t)(len < (int)sizeof piece ? len : (int)sizeof piece)))
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    long cut = stop_at(q, old_len);
    if (cut >= 0) {
        q->text_len = (size_t)cut;
        q->text[cut] = '\0';
        return finish(c, res->req, RESULT_OK, NULL, "stop", err);
    }
    if ((q->job.max_tokens >= 0 && q->n_gen >= q->job.max_tokens) || q->n_prompt + q->n_gen >= c->slot_ctx)
        return finish(c, res->req, RESULT_OK, NULL, "length", err);
    return sched_append(c->pipes[q->pipe].sched, res->req, res->token, err);
}

/* Ends open requests that ran past their own timeout_s, were cancelled, or
 * (with past_deadline) are still running at the run's deadline. */
static borg_status end_overdue(coordinator *c, int past_deadline, borg_err *err)
{
    double t = now_ms();
    for (int64_t i = 0; i < c->cap_reqs; i++) {
        request *q = &c->reqs[i];
        if (!q->open)
            continue;
        borg_status st = BORG_OK;
        if (past_deadline || (q->job.timeout_s > 0 && t - q->t_read > q->job.timeout_s * 1e3))
            st = finish(c, q->num, RESULT_TIMEOUT, NULL, NULL, err);
        else if (control_cancelled(c->control, q->job.id))
            st = finish(c, q->num, RESULT_CANCELLED, NULL, NULL, err);
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
        if (!c->cfg->quiet)
            fprintf(stderr, "borg-infer: %s: reading no more jobs; finishing what is running%s\n",
                    past_deadline ? "deadline reached" : "stop signal", past_deadline ? "" : " (--drain-s)");
    }
    return end_overdue(c, past_deadline, err);
}

/* Fills every pipeline up to its depth with new micro-batches. */
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
            for (int i = 0; i < n_admitted; i++)
                req_at(c, c->admitted[i])->t_admit = t;
            if (b->n_seqs == 0)
                break;
            b->id = c->next_batch++;
            if ((st = exec_submit(c->exec, p, b, err)))
                return st;
            pl->busy[k] = 1;
            pl->in_flight++;
        }
    }
    return BORG_OK;
}

/* Takes in one returned batch: its sequences are free to be scheduled
 * again, and each sampled token goes through the stop rules. */
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
    pl->busy[k] = 0;
    pl->in_flight--;
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

static void write_summary(coordinator *c, double wall_ms, const stage_stats *st, int n_st)
{
    long ok = results_count(c->out, RESULT_OK), bad = results_count(c->out, RESULT_ERROR);
    long to = results_count(c->out, RESULT_TIMEOUT), cn = results_count(c->out, RESULT_CANCELLED);
    double tps = wall_ms > 0 ? c->gen_tokens / (wall_ms / 1e3) : 0;
    double rss0 = proc_peak_rss_mib();
    int quiet = c->cfg->quiet;
    if (!quiet && results_resumed(c->out))
        fprintf(stderr, "borg-infer: resumed: %ld results were already in %s\n", results_resumed(c->out), c->cfg->out);
    if (!quiet)
        fprintf(stderr,
                "borg-infer: %ld jobs (%ld ok, %ld error, %ld timeout, %ld cancelled); %ld prompt + %ld generated tokens "
                "in %.2f s (%.1f generated tokens/s)\n",
                ok + bad + to + cn, ok, bad, to, cn, c->prompt_tokens, c->gen_tokens, wall_ms / 1e3, tps);
    cJSON *o = cJSON_CreateObject();
    cJSON *jobs = cJSON_AddObjectToObject(o, "jobs");
    cJSON_AddNumberToObject(jobs, "ok", ok);
    cJSON_AddNumberToObject(jobs, "error", bad);
    cJSON_AddNumberToObject(jobs, "timeout", to);
    cJSON_AddNumberToObject(jobs, "cancelled", cn);
    cJSON_AddNumberToObject(o, "resumed", results_resumed(c->out));
    cJSON_AddNumberToObject(o, "prompt_tokens", c->prompt_tokens);
    cJSON_AddNumberToObject(o, "generated_tokens", c->gen_tokens);
    cJSON_AddNumberToObject(o, "wall_s", wall_ms / 1e3);
    cJSON_AddNumberToObject(o, "generated_tokens_per_s", tps);
    int64_t crc = c->exec ? exec_crc_errors(c->exec) : 0; /* none when the stages were refused */
    for (int i = 0; i < n_st; i++)
        crc += st[i].crc_errors;
    cJSON_AddNumberToObject(o, "damaged_frames", (double)crc);
    cJSON_AddNumberToObject(o, "recoveries", c->recoveries);
    if (!quiet && crc)
        fprintf(stderr, "  %lld damaged frame(s) detected and their batches recomputed\n", (long long)crc);
    cJSON_AddNumberToObject(o, "replicas", c->topo.replicas);
    cJSON_AddNumberToObject(o, "stages", c->topo.stages);
    cJSON *ranks = cJSON_AddArrayToObject(o, "ranks");
    cJSON *r0 = cJSON_CreateObject();
    cJSON_AddNumberToObject(r0, "rank", 0);
    cJSON_AddStringToObject(r0, "role", c->topo.replicas ? "coordinator" : "coordinator+stage");
    cJSON_AddNumberToObject(r0, "peak_rss_mib", rss0);
    cJSON_AddItemToArray(ranks, r0);
    if (!quiet)
        fprintf(stderr, "  rank 0: %s, peak memory %.1f MiB\n", c->topo.replicas ? "coordinator" : "coordinator+stage",
                rss0);
    for (int i = 0; i < n_st; i++) {
        double busy = st[i].wall_s > 0 ? st[i].busy_s / st[i].wall_s : 0;
        int rank = c->topo.replicas ? i + 1 : 0;
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "rank", rank);
        cJSON_AddStringToObject(r, "role", "stage");
        cJSON_AddNumberToObject(r, "replica", st[i].replica);
        cJSON_AddNumberToObject(r, "stage", st[i].stage);
        cJSON_AddNumberToObject(r, "layer_begin", st[i].layer_begin);
        cJSON_AddNumberToObject(r, "layer_end", st[i].layer_end);
        cJSON_AddNumberToObject(r, "batches", (double)st[i].batches);
        cJSON_AddNumberToObject(r, "tokens", (double)st[i].tokens);
        cJSON_AddNumberToObject(r, "busy_s", st[i].busy_s);
        cJSON_AddNumberToObject(r, "wall_s", st[i].wall_s);
        cJSON_AddNumberToObject(r, "busy_fraction", busy);
        cJSON_AddNumberToObject(r, "peak_rss_mib", st[i].peak_rss_mib);
        cJSON_AddNumberToObject(r, "threads", st[i].threads);
        cJSON_AddItemToArray(ranks, r);
        if (!quiet)
            fprintf(stderr, "  rank %d: replica %d stage %d, layers %d-%d, %d thread(s), %lld batches, busy %.0f%%, "
                            "peak memory %.1f MiB\n",
                    rank, st[i].replica, st[i].stage, st[i].layer_begin, st[i].layer_end - 1, st[i].threads,
                    (long long)st[i].batches, busy * 100, st[i].peak_rss_mib);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    char *path = NULL;
    if (s && asprintf(&path, "%s.summary.json", c->cfg->out) >= 0) {
        FILE *f = fopen(path, "w");
        if (f) {
            fprintf(f, "%s\n", s);
            fclose(f);
        }
    }
    free(path);
    free(s);
}

static void close_pipelines(coordinator *c)
{
    for (int p = 0; c->pipes && p < c->n_pipes; p++) {
        for (int k = 0; k < c->depth; k++)
            batch_free(&c->pipes[p].flight[k]);
        free(c->pipes[p].flight);
        free(c->pipes[p].busy);
        sched_free(c->pipes[p].sched);
    }
    free(c->pipes);
    c->pipes = NULL;
    c->n_pipes = 0;
}

/* A scheduler per pipeline the executor offers, sized by the KV capacity
 * its stages reported. */
static borg_status open_pipelines(coordinator *c, borg_err *err)
{
    int kv_slots;
    exec_kv_capacity(c->exec, &kv_slots, &c->slot_ctx);
    if (kv_slots < 1 || c->slot_ctx < 2)
        return borg_fail(err, BORG_EINTERNAL, "the stages reported no KV capacity");
    c->n_pipes = exec_pipes(c->exec);
    c->depth = exec_depth(c->exec);
    c->pipes = calloc((size_t)c->n_pipes, sizeof *c->pipes);
    int64_t *admitted = realloc(c->admitted, sizeof *admitted * (size_t)kv_slots);
    if (!c->pipes || !admitted)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    c->admitted = admitted;
    for (int p = 0; p < c->n_pipes; p++) {
        pipeline *pl = &c->pipes[p];
        borg_status st = sched_create(kv_slots, c->slot_ctx, c->cfg->batch_tokens, &pl->sched, err);
        if (st)
            return st;
        pl->kv_slots = kv_slots;
        pl->flight = calloc((size_t)c->depth, sizeof *pl->flight);
        pl->busy = calloc((size_t)c->depth, sizeof *pl->busy);
        if (!pl->flight || !pl->busy)
            return borg_fail(err, BORG_ENOMEM, "out of memory");
    }
    return BORG_OK;
}

/* Creates the executor: the stage ranks of the current topology, or a
 * stage in this process holding every layer when there are none. */
static borg_status open_exec(coordinator *c, borg_err *err)
{
    borg_hparams hp;
    borg_status st = family_hparams(c->gguf, &hp, err);
    if (st)
        return st;
    if (c->topo.replicas) {
        /* After a failure the shape has its own stage count: --layers no longer fits. */
        borg_plan plan;
        if ((st = plan_make(c->gguf, &hp, c->topo.stages, c->recoveries ? NULL : c->cfg->layers, &plan, err)))
            return st;
        exec_expect want = {&plan, gguf_fingerprint(c->gguf), matmul_q8_activations(), c->slot_ctx};
        return exec_create_mpi(c->net, &c->topo, &want, &c->exec, err);
    }
    stage_config sc = {
        .layer_begin = 0,
        .layer_end = hp.n_layer,
        .first = 1,
        .last = 1,
        .n_slots = c->cfg->slots,
        .slot_ctx = stage_slot_ctx(c->cfg->ctx, hp.ctx_len),
        .max_chunk = c->cfg->batch_tokens,
        .threads = c->cfg->threads ? c->cfg->threads : pool_default_threads(),
    };
    return exec_create_local(c->gguf, &sc, &c->exec, err);
}

/* A stage rank failed (ULFM): the survivors shrink the job, the layers are
 * split again over the stage ranks left (rank 0 takes them all if none
 * is), and every request that was running is replayed from its prompt
 * plus the tokens it had produced, on fresh KV caches. */
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
    topology_after_failure(net_size(c->net), &before, &c->topo);
    close_pipelines(c);
    exec_free(c->exec);
    c->exec = NULL;
    c->recoveries++;
    if ((st = open_exec(c, err)) || (st = open_pipelines(c, err)))
        return st;
    int replayed = 0;
    for (int64_t i = 0; i < c->cap_reqs; i++) {
        request *q = &c->reqs[i];
        if (q->open && q->prompt) {
            if ((st = submit(c, q, err)))
                return st;
            replayed++;
        }
    }
    borg_hparams hp;
    borg_plan plan;
    char map[512] = "rank 0 holds every layer";
    if (c->topo.replicas && !family_hparams(c->gguf, &hp, NULL) && !plan_make(c->gguf, &hp, c->topo.stages, NULL, &plan, NULL)) {
        int len = snprintf(map, sizeof map, "%d replica(s) of %d stage(s), layers", c->topo.replicas, c->topo.stages);
        for (int s = 0; s < plan.n_stages && len < (int)sizeof map - 16; s++)
            len += snprintf(map + len, sizeof map - (size_t)len, " %d-%d", plan.begin[s], plan.end[s] - 1);
    }
    fprintf(stderr, "borg-infer: rank(s) %s failed (of %d); recovered on %d rank(s): %s; %d request(s) replayed; "
                    "recovery took %.2f s\n",
            names, before.world, net_size(c->net), map, replayed, (now_ms() - t0) / 1e3);
    return BORG_OK;
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
    borg_hparams hp;
    borg_plan plan;
    if ((st = family_hparams(c->gguf, &hp, err)) ||
        (st = plan_make(c->gguf, &hp, c->topo.stages, cfg->layers, &plan, err)))
        return st;
    c->slot_ctx = stage_slot_ctx(cfg->ctx, hp.ctx_len);
    if ((st = control_open(cfg->run_dir, &c->control, err)))
        return st;
    /* Refuse a bad jobs file or an existing results file before any rank
     * spends time loading layers. */
    if ((st = job_reader_open(cfg->jobs, &c->reader, err)) || (st = results_open(cfg->out, cfg->force, cfg->resume, &c->out, err)) ||
        (st = runstate_running(err)))
        return st;
    if ((st = open_exec(c, err)))
        return st;
    if ((st = open_pipelines(c, err)))
        return st;
    int kv_slots = c->pipes[0].kv_slots;
    c->cap_reqs = (int64_t)kv_slots * c->n_pipes * (READ_AHEAD_PER_SLOT + 1);
    c->reqs = calloc((size_t)c->cap_reqs, sizeof *c->reqs);
    if (!c->reqs)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    return BORG_OK;
}

static void teardown(coordinator *c)
{
    for (int64_t i = 0; c->reqs && i < c->cap_reqs; i++)
        request_release(&c->reqs[i]);
    free(c->reqs);
    free(c->admitted);
    close_pipelines(c);
    exec_free(c->exec);
    control_close(c->control);
    job_reader_close(c->reader);
    chat_template_free(&c->chat);
    tokenizer_free(c->tok);
    gguf_close(c->gguf);
}

borg_status coordinator_run(const borg_config *cfg, borg_net *net, borg_err *err)
{
    coordinator c = {0};
    control_catch_signals();
    borg_status st = setup(&c, cfg, net, err);
    while (!st) {
        if ((st = watch(&c, err)) || (st = read_jobs(&c, err)) || (st = dispatch(&c, err))) {
            if (st == BORG_EPEER && net_can_recover(net) && !(st = recover(&c, err)))
                continue;
            break;
        }
        if (in_flight(&c) == 0) {
            if ((c.n_open == 0 && c.jobs_done) || c.stopping)
                break;
            /* Nothing runs, yet jobs are open: only reading more can help. */
            if (c.jobs_done || req_at(&c, c.n_read)->open) {
                st = borg_fail(err, BORG_EINTERNAL, "%lld jobs are open but none can be scheduled", (long long)c.n_open);
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
    if (!st && (c.n_open > 0 || !c.jobs_done))
        st = borg_fail(err, BORG_EINCOMPLETE, "stopped with %lld job(s) unfinished%s; rerun with --resume to finish",
                       (long long)c.n_open, c.jobs_done ? "" : " and more unread");
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
    if (c.out) {
        write_summary(&c, now_ms() - c.t_start, stats, n_stats);
        borg_err cerr;
        borg_status cst = results_close(c.out, &cerr);
        if (!st && cst) {
            st = cst;
            *err = cerr;
        }
    }
    free(stats);
    teardown(&c);
    return st;
}
