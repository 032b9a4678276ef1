#define _GNU_SOURCE
#include "borg/exec.h"
#include "borg/log.h"
#include "borg/proc.h"
#include "borg/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Batches in flight per pipeline beyond one per stage: the coordinator
 * builds the next while the last stage samples, so no stage waits. */
enum { EXTRA_DEPTH = 1 };

struct borg_exec {
    borg_net *net;
    borg_spec spec;
    int64_t crc_errors;
    frame_buf out, in;
    batch_result *res;
    int cap_res;
    batch_row *rows;
    float *row_data;
    size_t cap_rows, cap_row_data;
    stage_stats *live; /* the latest statistics each stage rank sent while running */
    borg_trace *trace; /* where the stages' batch spans go, or NULL */
};

static borg_status reserve_results(borg_exec *e, int n, borg_err *err)
{
    if (n <= e->cap_res)
        return BORG_OK;
    batch_result *r = realloc(e->res, sizeof *r * (size_t)n);
    if (!r)
        return borg_fail(err, BORG_ENOMEM, "out of memory for %d results", n);
    e->res = r;
    e->cap_res = n;
    return BORG_OK;
}

static borg_status reserve_rows(borg_exec *e, int n, int dim, borg_err *err)
{
    if ((size_t)n > e->cap_rows) {
        batch_row *r = realloc(e->rows, sizeof *r * (size_t)n);
        if (!r)
            return borg_fail(err, BORG_ENOMEM, "out of memory for %d hidden-state rows", n);
        e->rows = r;
        e->cap_rows = (size_t)n;
    }
    size_t values = (size_t)n * (size_t)dim;
    if (values > e->cap_row_data) {
        float *d = realloc(e->row_data, sizeof *d * values);
        if (!d)
            return borg_fail(err, BORG_ENOMEM, "out of memory for %d hidden-state rows", n);
        e->row_data = d;
        e->cap_row_data = values;
    }
    return BORG_OK;
}

static int n_stage_ranks(const borg_exec *e) { return e->spec.replicas * e->spec.stages; }

static borg_status remote_error(const uint8_t *p, const frame_header *h, int src, borg_err *err)
{
    return borg_fail(err, BORG_EIO, "rank %d: %.*s", src, (int)(h->payload_bytes > 400 ? 400 : h->payload_bytes),
                     (const char *)p + sizeof *h);
}

/* Receives and checks one frame; a stage's ERROR frame becomes our error. */
static borg_status recv_frame(borg_exec *e, frame_header *h, int *src, borg_err *err)
{
    borg_status st = net_recv(e->net, &e->in, src, -1, err);
    if (!st)
        st = frame_check(e->in.p, e->in.len, h, err);
    if (!st && h->kind == FRAME_ERROR)
        st = remote_error(e->in.p, h, *src, err);
    return st;
}

borg_status exec_create(borg_net *net, const borg_spec *spec, borg_exec **out, borg_err *err)
{
    borg_exec *e = calloc(1, sizeof *e);
    if (!e)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    e->net = net;
    e->spec = *spec;
    if (!(e->live = calloc((size_t)n_stage_ranks(e), sizeof *e->live))) {
        free(e);
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    }
    borg_status st = BORG_OK;
    /* net_send takes the frame's buffer, so each stage gets its own copy. */
    frame_buf config = {0};
    for (int r = 1; r <= n_stage_ranks(e) && !st; r++) {
        if (!(st = frame_put_control(&config, FRAME_CONFIG, spec, sizeof *spec, err)))
            st = net_send(net, r, &config, err);
    }
    frame_buf_free(&config);
    if (!st)
        log_event(spec->generation ? LOG_INFO : LOG_DEBUG, "config_sent", NULL,
                  LOG_FIELDS(LOG_I("generation", spec->generation), LOG_I("stage_ranks", n_stage_ranks(e)),
                             LOG_I("replicas", spec->replicas), LOG_I("stages", spec->stages)),
                  "run spec (generation %d) sent to %d stage rank(s)", (int)spec->generation, n_stage_ranks(e));
    /* Every stage answers before any is judged, so that a mismatch is
     * reported for the lowest rank that has one, whatever the order. */
    stage_stats *got = calloc((size_t)n_stage_ranks(e), sizeof *got);
    if (!got && !st)
        st = borg_fail(err, BORG_ENOMEM, "out of memory");
    for (int ready = 0; ready < n_stage_ranks(e) && !st; ready++) {
        frame_header h;
        int src;
        st = recv_frame(e, &h, &src, err);
        if (!st &&
            (h.kind != FRAME_READY || h.payload_bytes != sizeof(stage_stats) || src < 1 || src > n_stage_ranks(e)))
            st = borg_fail(err, BORG_EINTERNAL, "rank %d sent frame kind %u before it was ready", src, h.kind);
        if (!st) {
            memcpy(&got[src - 1], e->in.p + sizeof h, sizeof *got);
            got[src - 1].host[sizeof got->host - 1] = '\0';
            got[src - 1].isa[sizeof got->isa - 1] = '\0';
        }
    }
    for (int r = 1; r <= n_stage_ranks(e) && !st; r++) {
        const stage_stats *g = &got[r - 1];
        if (!(st = spec_check_ready(spec, r, g, err)))
            log_event(LOG_DEBUG, "stage_ready", NULL,
                      LOG_FIELDS(LOG_I("stage_rank", r), LOG_S("host", g->host), LOG_I("layer_begin", g->layer_begin),
                                 LOG_I("layer_end", g->layer_end)),
                      "rank %d (host %s) ready with layers %d-%d", r, g->host, g->layer_begin, g->layer_end - 1);
    }
    /* Nodes of another CPU generation may take another kernel path: the
     * run goes on, but its answers may differ in the last bits from those
     * of a cluster of one kind. */
    for (int r = 2; r <= n_stage_ranks(e) && !st; r++)
        if (strcmp(got[r - 1].isa, got[0].isa))
            log_event(LOG_WARN, "kernel_paths_differ", NULL,
                      LOG_FIELDS(LOG_I("stage_rank", r), LOG_S("isa", got[r - 1].isa), LOG_S("rank_1_isa", got[0].isa)),
                      "rank %d (host %s) computes with the %s kernels, rank 1 with %s: answers may differ in the last "
                      "bits from a run on one kind of CPU",
                      r, got[r - 1].host, got[r - 1].isa, got[0].isa);
    free(got);
    if (st) {
        exec_free(e);
        return st;
    }
    *out = e;
    return BORG_OK;
}

int64_t exec_crc_errors(const borg_exec *e) { return e->crc_errors; }

int exec_pipes(const borg_exec *e) { return e->spec.replicas; }

int exec_depth(const borg_exec *e) { return e->spec.stages + EXTRA_DEPTH; }

borg_status exec_submit(borg_exec *e, int pipe, const borg_batch *b, borg_err *err)
{
    borg_status st = frame_put_batch(&e->out, b, NULL, 0, WIRE_NONE, err);
    return st ? st : net_send(e->net, 1 + pipe * e->spec.stages, &e->out, err);
}

void exec_set_trace(borg_exec *e, borg_trace *t) { e->trace = t; }

/* What a stage reports while it runs: its statistics, kept for progress
 * and metrics, and with --trace the spans of its batches. */
static int took_live_stats(borg_exec *e, const frame_header *h, int src)
{
    if (src < 1 || src > n_stage_ranks(e))
        return 0;
    if (h->kind == FRAME_TRACE && h->payload_bytes % sizeof(trace_span) == 0) {
        for (uint64_t i = 0; e->trace && i < h->payload_bytes / sizeof(trace_span); i++) {
            trace_span sp;
            memcpy(&sp, e->in.p + sizeof *h + i * sizeof sp, sizeof sp);
            trace_batch(e->trace, src, "batch", &sp);
        }
        return 1;
    }
    if (h->kind != FRAME_STATS || h->payload_bytes != sizeof(stage_stats))
        return 0;
    stage_stats got;
    memcpy(&got, e->in.p + sizeof *h, sizeof got);
    if (got.final)
        return 0;
    got.host[sizeof got.host - 1] = '\0';
    e->live[src - 1] = got;
    return 1;
}

const stage_stats *exec_live_stats(const borg_exec *e, int *n)
{
    *n = n_stage_ranks(e);
    return e->live;
}

borg_status exec_wait(borg_exec *e, exec_done *done, borg_err *err)
{
    frame_header h;
    int src;
    borg_status st;
    borg_err damage;
    borg_status bad;
    do {
        if ((st = net_recv(e->net, &e->in, &src, -1, err)))
            return st;
    } while (!(bad = frame_check(e->in.p, e->in.len, &h, &damage)) && took_live_stats(e, &h, src));
    int pipe = spec_replica_of(&e->spec, src);
    if (bad) {
        e->crc_errors++;
        *done = (exec_done){.pipe = pipe, .batch_id = frame_peek_batch(e->in.p, e->in.len), .retry = 1};
        log_event(LOG_WARN, "frame_damaged", NULL, LOG_FIELDS(LOG_I("from_rank", src), LOG_I("batch", done->batch_id)),
                  "rank %d sent a damaged frame: %s; recomputing batch %lld", src, damage.msg,
                  (long long)done->batch_id);
        return BORG_OK;
    }
    if (h.kind == FRAME_ERROR)
        return remote_error(e->in.p, &h, src, err);
    if (h.kind == FRAME_RETRY && h.payload_bytes == sizeof(int64_t)) {
        int64_t id;
        memcpy(&id, e->in.p + sizeof h, sizeof id);
        *done = (exec_done){.pipe = pipe, .batch_id = id, .retry = 1};
        return BORG_OK;
    }
    if (h.kind != FRAME_RESULT)
        return borg_fail(err, BORG_EINTERNAL, "rank %d sent frame kind %u while results were expected", src, h.kind);
    int n;
    if ((st = reserve_results(e, h.n_seqs, err)) || (st = reserve_rows(e, h.n_tokens, h.dim, err)) ||
        (st = frame_get_results(e->in.p, &h, e->res, &n, e->rows, e->row_data, err)))
        return st;
    *done = (exec_done){.pipe = pipe,
                        .batch_id = h.batch_id,
                        .n = n,
                        .results = e->res,
                        .n_rows = h.n_tokens,
                        .dim = h.dim,
                        .rows = e->rows,
                        .row_data = e->row_data};
    return BORG_OK;
}

borg_status exec_finish(borg_exec *e, stage_stats **stats, int *n, borg_err *err)
{
    int count = n_stage_ranks(e);
    stage_stats *s = calloc((size_t)count, sizeof *s);
    if (!s)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    *stats = s;
    *n = count;
    /* Shutdown enters each pipeline at its first stage and is passed on by
     * each stage behind the batches before it, so no stage leaves while a
     * batch is still on its way to it. */
    borg_status st = BORG_OK;
    for (int p = 0; p < e->spec.replicas && !st; p++) {
        if (!(st = frame_put_control(&e->out, FRAME_SHUTDOWN, NULL, 0, err)))
            st = net_send(e->net, 1 + p * e->spec.stages, &e->out, err);
    }
    /* Spares, still waiting for a spec, are told directly; they have no
     * statistics to send. */
    for (int r = 1 + count; r < net_size(e->net) && !st; r++) {
        if (!(st = frame_put_control(&e->out, FRAME_SHUTDOWN, NULL, 0, err)))
            st = net_send(e->net, r, &e->out, err);
    }
    for (int got = 0; got < count && !st; got++) {
        frame_header h;
        int src;
        if ((st = recv_frame(e, &h, &src, err)))
            break;
        if (h.kind == FRAME_RESULT || h.kind == FRAME_RETRY || took_live_stats(e, &h, src)) {
            got--; /* a batch that was in flight when the run stopped (dropped), or a stage's running figures */
            continue;
        }
        if (h.kind != FRAME_STATS || h.payload_bytes != sizeof(stage_stats) || src < 1 || src > count) {
            st = borg_fail(err, BORG_EINTERNAL, "rank %d sent frame kind %u instead of its statistics", src, h.kind);
            break;
        }
        memcpy(&s[src - 1], e->in.p + sizeof h, sizeof(stage_stats));
    }
    return st;
}

void exec_free(borg_exec *e)
{
    if (!e)
        return;
    free(e->res);
    free(e->live);
    free(e->rows);
    free(e->row_data);
    frame_buf_free(&e->out);
    frame_buf_free(&e->in);
    free(e);
}
