#define _GNU_SOURCE
#include "borg/stage_rank.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "borg/frame.h"
#include "borg/gguf.h"
#include "borg/kvcache.h"
#include "borg/log.h"
#include "borg/matmul.h"
#include "borg/proc.h"
#include "borg/spec.h"
#include "borg/stage.h"
#include "borg/trace.h"

typedef struct {
    const borg_config *cfg;
    borg_net *net;
    borg_spec spec;
    int replica, index; /* which pipeline, which stage of it */
    int next_rank;      /* 0 for the last stage: results go to the coordinator */
    int asked_q8;       /* what this rank's own options or environment ask for; -1: nothing */
    gguf_file *gguf;
    borg_stage *stage; /* NULL until a spec it agrees with has been built */
    frame_buf in, out;
    borg_batch batch;
    float *x;
    size_t cap_x;
    batch_result *res;
    int cap_res;
    batch_row *rows;
    float *row_data;
    int cap_rows;
    stage_stats stats;
    /* Busy fraction is over the span this stage had batches: from the first
     * arriving to the last leaving, not the wait for shutdown after it. */
    double t_first;
    double t_reported; /* when the figures were last sent while running */
    trace_span *spans; /* with --trace: batches computed since the last report */
    int n_spans;
} stage_rank;

enum { LIVE_STATS_S = 2, MAX_SPANS = 4096 };

/* With --trace, the batches recorded so far go to rank 0. */
static borg_status send_spans(stage_rank *s, borg_err *err)
{
    if (!s->n_spans)
        return BORG_OK;
    borg_status st = frame_put_control(&s->out, FRAME_TRACE, s->spans, sizeof *s->spans * (size_t)s->n_spans, err);
    s->n_spans = 0;
    return st ? st : net_send(s->net, 0, &s->out, err);
}

static borg_status record_span(stage_rank *s, int64_t t0_us, borg_err *err)
{
    if (!s->spec.trace)
        return BORG_OK;
    if (!s->spans && !(s->spans = malloc(sizeof *s->spans * MAX_SPANS)))
        return borg_fail(err, BORG_ENOMEM, "out of memory for the trace");
    trace_span *sp = &s->spans[s->n_spans++];
    *sp = (trace_span){.batch = s->batch.id, .t0_us = t0_us, .t1_us = trace_now_us()};
    trace_count_tokens(sp, &s->batch);
    return s->n_spans == MAX_SPANS ? send_spans(s, err) : BORG_OK;
}

/* Waits for the run spec from rank 0. *shutdown is set instead when the
 * run ends before one came (rank 0 refused another stage). */
static borg_status await_spec(stage_rank *s, int *shutdown, borg_err *err)
{
    *shutdown = 0;
    int src;
    frame_header h;
    borg_status st = net_recv(s->net, &s->in, &src, -1, err);
    if (!st)
        st = frame_check(s->in.p, s->in.len, &h, err);
    if (st)
        return st;
    if (h.kind == FRAME_SHUTDOWN) {
        *shutdown = 1;
        return BORG_OK;
    }
    if (h.kind != FRAME_CONFIG || src != 0)
        return borg_fail(err, BORG_EINTERNAL, "rank %d sent frame kind %u before the run spec", src, h.kind);
    return spec_decode(s->in.p + sizeof h, h.payload_bytes, &s->spec, err);
}

/* Builds this rank's stage from the spec alone and answers READY with what
 * it loaded. A file or request that differs from rank 0's loads nothing:
 * READY then tells rank 0, which names the difference and stops the run. */
static borg_status build(stage_rank *s, borg_err *err)
{
    const borg_spec *sp = &s->spec;
    const int rank = net_rank(s->net);
    if (rank < 1 || rank > sp->replicas * sp->stages)
        return borg_fail(err, BORG_EINTERNAL, "rank %d has no place in %d replica(s) of %d stage(s)", rank,
                         sp->replicas, sp->stages);
    s->replica = spec_replica_of(sp, rank);
    s->index = spec_stage_of(sp, rank);
    s->next_rank = s->index == sp->stages - 1 ? 0 : rank + 1;
    borg_status st;
    if (!s->gguf && (st = gguf_open(s->cfg->model, &s->gguf, err)))
        return st;
    stage_free(s->stage);
    s->stage = NULL;
    memset(&s->stats, 0, sizeof s->stats);
    s->stats.stage = s->index;
    s->stats.replica = s->replica;
    s->stats.model_hash = gguf_fingerprint(s->gguf);
    s->stats.full_hash = sp->verify_model ? gguf_full_hash(s->gguf) : 0;
    s->stats.asked_q8 = s->asked_q8;
    s->stats.options_hash = cli_run_options_hash(s->cfg);
    if (gethostname(s->stats.host, sizeof s->stats.host - 1))
        snprintf(s->stats.host, sizeof s->stats.host, "unknown");
    int agrees = s->stats.model_hash == sp->model_hash && s->stats.full_hash == sp->full_hash &&
                 s->stats.options_hash == sp->options_hash && (s->asked_q8 < 0 || s->asked_q8 == sp->q8_activations);
    if (agrees) {
        matmul_set_q8_activations(sp->q8_activations);
        stage_config sc = {
            .layer_begin = sp->begin[s->index],
            .layer_end = sp->end[s->index],
            .first = s->index == 0,
            .last = s->index == sp->stages - 1,
            .n_slots = sp->n_slots,
            .slot_ctx = sp->slot_ctx,
            .max_chunk = sp->batch_tokens,
            .kv_dtype = (borg_dtype)sp->kv_dtype,
            .threads = s->cfg->threads,
        };
        if ((st = stage_create(s->gguf, &sc, &s->stage, err)))
            return st;
        s->stats.layer_begin = sc.layer_begin;
        s->stats.layer_end = sc.layer_end;
        s->stats.kv_slots = sc.n_slots;
        s->stats.slot_ctx = sc.slot_ctx;
        const borg_hparams *hp = stage_hp(s->stage);
        s->stats.kv_dtype = sc.kv_dtype;
        s->stats.kv_bytes_per_token = (int64_t)kv_bytes_per_position(sc.layer_end - sc.layer_begin,
                                                                     hp->n_kv_head * hp->head_dim, sc.kv_dtype);
        s->stats.threads = sc.threads;
        s->stats.q8_activations = matmul_q8_activations();
        snprintf(s->stats.isa, sizeof s->stats.isa, "%s", matmul_isa());
        s->stats.loaded = 1;
    }
    s->stats.peak_rss_mib = proc_peak_rss_mib();
    if ((st = frame_put_control(&s->out, FRAME_READY, &s->stats, sizeof s->stats, err)))
        return st;
    return net_send(s->net, 0, &s->out, err);
}

/* Room for what the last stage returns for the current batch. */
static borg_status reserve_output(stage_rank *s, int dim, borg_err *err)
{
    int cap = batch_result_cap(&s->batch);
    if (cap > s->cap_res) {
        batch_result *r = realloc(s->res, sizeof *r * (size_t)cap);
        if (!r)
            return borg_fail(err, BORG_ENOMEM, "out of memory for results");
        s->res = r;
        s->cap_res = cap;
    }
    int rows = batch_row_cap(&s->batch);
    if (rows > s->cap_rows) {
        batch_row *r = realloc(s->rows, sizeof *r * (size_t)rows);
        if (r)
            s->rows = r;
        float *d = r ? realloc(s->row_data, sizeof *d * (size_t)rows * (size_t)dim) : NULL;
        if (!d)
            return borg_fail(err, BORG_ENOMEM, "out of memory for %d hidden-state rows", rows);
        s->row_data = d;
        s->cap_rows = rows;
    }
    return BORG_OK;
}

static borg_status run_batch(stage_rank *s, const frame_header *h, borg_err *err)
{
    const borg_hparams *hp = stage_hp(s->stage);
    borg_status st = frame_get_batch(s->in.p, h, &s->batch, &s->x, &s->cap_x, err);
    if (st)
        return st;
    size_t need = (size_t)s->batch.n_tokens * hp->dim;
    if (need > s->cap_x) {
        float *x = realloc(s->x, sizeof(float) * need);
        if (!x)
            return borg_fail(err, BORG_ENOMEM, "out of memory for a batch of %d tokens", s->batch.n_tokens);
        s->x = x;
        s->cap_x = need;
    }
    double t = proc_now_s();
    if ((st = stage_forward(s->stage, &s->batch, s->x, err)))
        return st;
    if (s->next_rank) {
        s->stats.busy_s += proc_now_s() - t;
        st = frame_put_batch(&s->out, &s->batch, s->x, hp->dim, (wire_dtype)s->spec.wire_dtype, err);
        return st ? st : net_send(s->net, s->next_rank, &s->out, err);
    }
    if ((st = reserve_output(s, hp->dim, err)))
        return st;
    stage_output o = {s->res, s->rows, s->row_data, 0, 0};
    if ((st = stage_sample(s->stage, &s->batch, s->x, &o, err)))
        return st;
    s->stats.busy_s += proc_now_s() - t;
    st = frame_put_results(&s->out, s->batch.id, o.res, o.n_res, o.rows, o.row_data, o.n_rows, hp->dim, err);
    return st ? st : net_send(s->net, 0, &s->out, err);
}

/* Every few seconds, this stage's figures so far, for rank 0's progress
 * and metrics. */
static borg_status report_live(stage_rank *s, borg_err *err)
{
    double t = proc_now_s();
    if (t - s->t_reported < LIVE_STATS_S)
        return BORG_OK;
    s->t_reported = t;
    s->stats.peak_rss_mib = proc_peak_rss_mib();
    s->stats.final = 0;
    borg_status st = send_spans(s, err);
    if (!st)
        st = frame_put_control(&s->out, FRAME_STATS, &s->stats, sizeof s->stats, err);
    return st ? st : net_send(s->net, 0, &s->out, err);
}

static borg_status serve(stage_rank *s, borg_err *err)
{
    for (;;) {
        int src;
        frame_header h;
        borg_status st = net_recv(s->net, &s->in, &src, -1, err);
        if (st)
            return st;
        if ((st = frame_check(s->in.p, s->in.len, &h, err))) {
            /* A damaged frame is never used: the coordinator sends its batch
             * again from the first stage. */
            int64_t id = frame_peek_batch(s->in.p, s->in.len);
            s->stats.crc_errors++;
            log_event(LOG_WARN, "frame_damaged", NULL, LOG_FIELDS(LOG_I("from_rank", src), LOG_I("batch", id)),
                      "%s; asking for batch %lld again", err->msg, (long long)id);
            if ((st = frame_put_control(&s->out, FRAME_RETRY, &id, sizeof id, err)) ||
                (st = net_send(s->net, 0, &s->out, err)))
                return st;
            continue;
        }
        if (h.kind == FRAME_SHUTDOWN) {
            if (s->next_rank && (st = net_send(s->net, s->next_rank, &s->in, err)))
                return st;
            s->stats.peak_rss_mib = proc_peak_rss_mib();
            s->stats.final = 1;
            if ((st = send_spans(s, err)) ||
                (st = frame_put_control(&s->out, FRAME_STATS, &s->stats, sizeof s->stats, err)))
                return st;
            return net_send(s->net, 0, &s->out, err);
        }
        if (h.kind != FRAME_BATCH || !s->stage)
            return borg_fail(err, BORG_EINTERNAL, "unexpected frame kind %u from rank %d", h.kind, src);
        if (!s->t_first)
            s->t_first = proc_now_s();
        int64_t t0_us = trace_now_us();
        if ((st = run_batch(s, &h, err)) || (st = record_span(s, t0_us, err)))
            return st;
        s->stats.wall_s = proc_now_s() - s->t_first;
        s->stats.batches++;
        s->stats.tokens += s->batch.n_tokens;
        if ((st = report_live(s, err)))
            return st;
    }
}

/* After a rank failed: joins the survivors, then waits for the new spec.
 * Its KV cache starts empty: the coordinator replays every request that
 * was in flight. */
static borg_status rejoin(stage_rank *s, borg_err *err)
{
    int failed[PLAN_MAX_STAGES * 4], n_failed, coordinator_lost;
    borg_status st = net_recover(s->net, failed, &n_failed, &coordinator_lost, err);
    if (st)
        return st;
    if (coordinator_lost)
        return borg_fail(err, BORG_EPEER, "the coordinator (rank 0) failed; rerun with --resume");
    s->t_first = 0;
    s->n_spans = 0; /* batches of the shape that ended: their replays will be traced */
    return BORG_OK;
}

borg_status stage_rank_main(const borg_config *cfg, borg_net *net, borg_err *err)
{
    stage_rank s = {.cfg = cfg, .net = net, .asked_q8 = matmul_q8_asked()};
    log_set_rank(net_rank(net));
    batch_init(&s.batch);
    borg_status st;
    for (;;) {
        int shutdown;
        st = await_spec(&s, &shutdown, err);
        if (!st && shutdown)
            break;
        if (!st)
            st = build(&s, err);
        if (!st)
            st = serve(&s, err);
        if (st != BORG_EPEER || !net_can_recover(net) || (st = rejoin(&s, err)))
            break;
    }
    if (st && st != BORG_EPEER) {
        /* Tell the coordinator why, so the run ends with the reason. */
        borg_err ignored;
        char msg[BORG_ERR_MSG + 32];
        int len = snprintf(msg, sizeof msg, "stage %d of replica %d: %s", s.index, s.replica, err->msg);
        if (!frame_put_control(&s.out, FRAME_ERROR, msg, (size_t)len, &ignored))
            net_send(net, 0, &s.out, &ignored);
    }
    if (st != BORG_EPEER)
        net_flush(net, NULL);
    stage_free(s.stage);
    gguf_close(s.gguf);
    batch_free(&s.batch);
    frame_buf_free(&s.in);
    frame_buf_free(&s.out);
    free(s.x);
    free(s.res);
    free(s.rows);
    free(s.row_data);
    free(s.spans);
    return st;
}

struct stage_thread {
    pthread_t thread;
    const borg_config *cfg;
    borg_net *net; /* the stage's end of the pair */
    borg_status st;
    borg_err err;
};

static void *stage_thread_main(void *arg)
{
    stage_thread *t = arg;
    t->st = stage_rank_main(t->cfg, t->net, &t->err);
    net_finalize(t->net, 0);
    return NULL;
}

borg_status stage_thread_start(const borg_config *cfg, borg_net **coordinator_end, stage_thread **out, borg_err *err)
{
    stage_thread *t = calloc(1, sizeof *t);
    if (!t)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    t->cfg = cfg;
    borg_status st = net_pair(coordinator_end, &t->net, err);
    if (st) {
        free(t);
        return st;
    }
    int rc = pthread_create(&t->thread, NULL, stage_thread_main, t);
    if (rc) {
        net_finalize(t->net, 0);
        net_finalize(*coordinator_end, 0);
        *coordinator_end = NULL;
        free(t);
        return borg_fail(err, BORG_EIO, "cannot start the stage thread: %s", strerror(rc));
    }
    *out = t;
    return BORG_OK;
}

void stage_thread_join(stage_thread *t, borg_net *coordinator_end)
{
    if (!t)
        return;
    /* Hanging up ends the stage's wait for frames, if it is still waiting. */
    net_finalize(coordinator_end, 0);
    pthread_join(t->thread, NULL);
    free(t);
}
