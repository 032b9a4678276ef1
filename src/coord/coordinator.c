#define _GNU_SOURCE
#include "borg/coordinator.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "borg/batch.h"
#include "borg/chat_template.h"
#include "borg/gguf.h"
#include "borg/jobs.h"
#include "borg/results.h"
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
    int32_t *gen;
    int32_t n_gen, cap_gen;
    char *text;
    size_t text_len, text_cap;
    double t_read, t_admit, t_first;
    int64_t num;  /* request number; the ring slot is num % cap_reqs */
    int open;
} request;

typedef struct {
    const borg_config *cfg;
    gguf_file *gguf;
    borg_tokenizer *tok;
    chat_template chat;
    borg_stage *stage;
    borg_sched *sched;
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
    float *x;
    int cap_x;
    batch_result *results;
    int64_t *admitted;
} coordinator;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static request *req_at(coordinator *c, int64_t r) { return &c->reqs[r % c->cap_reqs]; }

static void request_release(request *q)
{
    job_free(&q->job);
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
        .prompt_tokens = q->n_prompt,
        .queue_ms = q->t_admit ? q->t_admit - q->t_read : t - q->t_read,
        .first_token_ms = q->t_first ? q->t_first - q->t_read : 0,
        .total_ms = t - q->t_read,
    };
    borg_status st = results_write(c->out, &res, err);
    c->gen_tokens += q->n_gen;
    sched_finish(c->sched, r);
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

static borg_status admit_job(coordinator *c, int64_t r, borg_err *err)
{
    request *q = req_at(c, r);
    const borg_job *job = &q->job;
    if (job->error)
        return finish(c, r, RESULT_ERROR, job->error, NULL, err);
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
    if (job->max_tokens == 0) {
        free(ids);
        return finish(c, r, RESULT_OK, NULL, "length", err);
    }
    st = sched_submit(c->sched, r, ids, (int32_t)n, &job->sampling, job->priority, err);
    free(ids);
    return st;
}

/* Reads jobs until the look-ahead window is full or the file ends. */
static borg_status read_jobs(coordinator *c, borg_err *err)
{
    /* A long job holding its ring slot pauses reading until it finishes. */
    while (!c->jobs_done && !req_at(c, c->n_read)->open) {
        request *q = req_at(c, c->n_read);
        int done;
        borg_status st = job_reader_next(c->reader, &q->job, &done, err);
        if (st)
            return st;
        if (done) {
            c->jobs_done = 1;
            break;
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
    return sched_append(c->sched, res->req, res->token, err);
}

static borg_status step(coordinator *c, borg_batch *b, borg_err *err)
{
    int n_admitted;
    borg_status st = sched_build(c->sched, b, c->admitted, &n_admitted, err);
    if (st)
        return st;
    double t = now_ms();
    for (int i = 0; i < n_admitted; i++)
        req_at(c, c->admitted[i])->t_admit = t;
    if (b->n_seqs == 0)
        return BORG_OK;
    const borg_hparams *hp = stage_hp(c->stage);
    if (b->n_tokens > c->cap_x) {
        float *x = realloc(c->x, sizeof(float) * (size_t)b->n_tokens * hp->dim);
        if (!x)
            return borg_fail(err, BORG_ENOMEM, "out of memory for a batch of %d tokens", b->n_tokens);
        c->x = x;
        c->cap_x = b->n_tokens;
    }
    int n_out;
    if ((st = stage_forward(c->stage, b, c->x, err)) ||
        (st = stage_sample(c->stage, b, c->x, c->results, &n_out, err)))
        return st;
    sched_batch_done(c->sched, b);
    for (int i = 0; i < n_out; i++)
        if ((st = on_token(c, &c->results[i], err)))
            return st;
    return BORG_OK;
}

static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static void write_summary(coordinator *c, double wall_ms)
{
    long ok = results_count(c->out, RESULT_OK), bad = results_count(c->out, RESULT_ERROR);
    long to = results_count(c->out, RESULT_TIMEOUT), cn = results_count(c->out, RESULT_CANCELLED);
    double tps = wall_ms > 0 ? c->gen_tokens / (wall_ms / 1e3) : 0;
    long rss = peak_rss_kib();
    if (!c->cfg->quiet)
        fprintf(stderr,
                "borg-infer: %ld jobs (%ld ok, %ld error, %ld timeout, %ld cancelled); %ld prompt + %ld generated tokens "
                "in %.2f s (%.1f generated tokens/s); peak memory %.1f MiB\n",
                ok + bad + to + cn, ok, bad, to, cn, c->prompt_tokens, c->gen_tokens, wall_ms / 1e3, tps, rss / 1024.0);
    cJSON *o = cJSON_CreateObject();
    cJSON *jobs = cJSON_AddObjectToObject(o, "jobs");
    cJSON_AddNumberToObject(jobs, "ok", ok);
    cJSON_AddNumberToObject(jobs, "error", bad);
    cJSON_AddNumberToObject(jobs, "timeout", to);
    cJSON_AddNumberToObject(jobs, "cancelled", cn);
    cJSON_AddNumberToObject(o, "prompt_tokens", c->prompt_tokens);
    cJSON_AddNumberToObject(o, "generated_tokens", c->gen_tokens);
    cJSON_AddNumberToObject(o, "wall_s", wall_ms / 1e3);
    cJSON_AddNumberToObject(o, "generated_tokens_per_s", tps);
    cJSON *mem = cJSON_AddArrayToObject(o, "ranks");
    cJSON *r0 = cJSON_CreateObject();
    cJSON_AddNumberToObject(r0, "rank", 0);
    cJSON_AddStringToObject(r0, "role", "coordinator+stage");
    cJSON_AddNumberToObject(r0, "peak_rss_mib", rss / 1024.0);
    cJSON_AddItemToArray(mem, r0);
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

static borg_status setup(coordinator *c, const borg_config *cfg, borg_err *err)
{
    c->cfg = cfg;
    c->t_start = now_ms();
    borg_status st;
    if ((st = gguf_open(cfg->model, &c->gguf, err)) || (st = tokenizer_load(c->gguf, &c->tok, err)))
        return st;
    gguf_str tmpl = {0};
    if (gguf_has_key(c->gguf, "tokenizer.chat_template") &&
        (st = gguf_get_str(c->gguf, "tokenizer.chat_template", &tmpl, err)))
        return st;
    if ((st = chat_template_init(tmpl.ptr, tmpl.len, tokenizer_find(c->tok, "<|im_start|>") >= 0, &c->chat, err)))
        return st;
    borg_hparams hp;
    if ((st = model_hparams(c->gguf, &hp, err)))
        return st;
    c->slot_ctx = cfg->ctx ? cfg->ctx : (hp.ctx_len < 4096 ? hp.ctx_len : 4096);
    stage_config sc = {
        .layer_begin = 0,
        .layer_end = hp.n_layer,
        .first = 1,
        .last = 1,
        .n_slots = cfg->slots,
        .slot_ctx = c->slot_ctx,
        .threads = cfg->threads ? cfg->threads : pool_default_threads(),
    };
    if ((st = stage_create(c->gguf, &sc, &c->stage, err)) ||
        (st = sched_create(cfg->slots, c->slot_ctx, cfg->batch_tokens, &c->sched, err)) ||
        (st = job_reader_open(cfg->jobs, &c->reader, err)) ||
        (st = results_open(cfg->out, cfg->force, &c->out, err)))
        return st;
    c->cap_reqs = (int64_t)cfg->slots * (READ_AHEAD_PER_SLOT + 1);
    c->reqs = calloc((size_t)c->cap_reqs, sizeof *c->reqs);
    c->results = calloc((size_t)cfg->slots, sizeof *c->results);
    c->admitted = calloc((size_t)cfg->slots, sizeof *c->admitted);
    if (!c->reqs || !c->results || !c->admitted)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    return BORG_OK;
}

static void teardown(coordinator *c)
{
    for (int64_t i = 0; c->reqs && i < c->cap_reqs; i++)
        request_release(&c->reqs[i]);
    free(c->reqs);
    free(c->results);
    free(c->admitted);
    free(c->x);
    job_reader_close(c->reader);
    sched_free(c->sched);
    stage_free(c->stage);
    chat_template_free(&c->chat);
    tokenizer_free(c->tok);
    gguf_close(c->gguf);
}

borg_status coordinator_run(const borg_config *cfg, borg_err *err)
{
    coordinator c = {0};
    borg_batch b;
    batch_init(&b);
    borg_status st = setup(&c, cfg, err);
    while (!st) {
        if ((st = read_jobs(&c, err)))
            break;
        if (c.n_open == 0 && c.jobs_done)
            break;
        if ((st = step(&c, &b, err)))
            break;
        if (b.n_seqs == 0 && sched_waiting(c.sched) == 0 && sched_active(c.sched) == 0 && c.jobs_done &&
            c.n_open > 0) {
            st = borg_fail(err, BORG_EINTERNAL, "%lld jobs are open but none is scheduled", (long long)c.n_open);
            break;
        }
    }
    if (c.out) {
        write_summary(&c, now_ms() - c.t_start);
        borg_err cerr;
        borg_status cst = results_close(c.out, &cerr);
        if (!st && cst) {
            st = cst;
            *err = cerr;
        }
    }
    batch_free(&b);
    teardown(&c);
    return st;
}
