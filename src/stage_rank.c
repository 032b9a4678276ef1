#define _GNU_SOURCE
#include "borg/stage_rank.h"
#include "borg/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "borg/frame.h"
#include "borg/gguf.h"
#include "borg/matmul.h"
#include "borg/plan.h"
#include "borg/stage.h"
#include "borg/threadpool.h"
#include "borg/topology.h"

typedef struct {
    borg_net *net;
    borg_topology topo;
    int replica, index; /* which pipeline, which stage of it */
    int next_rank;      /* 0 for the last stage: results go to the coordinator */
    gguf_file *gguf;
    borg_stage *stage;
    frame_buf in, out;
    borg_batch batch;
    float *x;
    size_t cap_x;
    batch_result *res;
    int cap_res;
    stage_stats stats;
    /* Busy fraction is over the span this stage had batches: from the first
     * arriving to the last leaving, not the wait for shutdown after it. */
    double t_first;
    wire_dtype wire;
} stage_rank;

/* Loads this rank's layers for topology s->topo (layers: the --layers
 * split, or NULL for the balanced one) and reports ready. */
static borg_status load(stage_rank *s, const borg_config *cfg, const char *layers, borg_err *err)
{
    int rank = net_rank(s->net);
    s->replica = (rank - 1) / s->topo.stages;
    s->index = (rank - 1) % s->topo.stages;
    s->next_rank = s->index == s->topo.stages - 1 ? 0 : rank + 1;
    s->wire = cfg->wire_dtype;
    borg_hparams hp;
    borg_plan plan;
    borg_status st;
    if ((!s->gguf && (st = gguf_open(cfg->model, &s->gguf, err))) || (st = family_hparams(s->gguf, &hp, err)) ||
        (st = plan_make(s->gguf, &hp, s->topo.stages, layers, &plan, err)))
        return st;
    stage_config sc = {
        .layer_begin = plan.begin[s->index],
        .layer_end = plan.end[s->index],
        .first = s->index == 0,
        .last = s->index == s->topo.stages - 1,
        .n_slots = cfg->slots,
        .slot_ctx = stage_slot_ctx(cfg->ctx, hp.ctx_len),
        .max_chunk = cfg->batch_tokens,
        .threads = cfg->threads ? cfg->threads : pool_default_threads(),
    };
    stage_free(s->stage);
    s->stage = NULL;
    if ((st = stage_create(s->gguf, &sc, &s->stage, err)))
        return st;
    s->stats.stage = s->index;
    s->stats.replica = s->replica;
    s->stats.layer_begin = sc.layer_begin;
    s->stats.layer_end = sc.layer_end;
    s->stats.kv_slots = sc.n_slots;
    s->stats.slot_ctx = sc.slot_ctx;
    s->stats.threads = sc.threads;
    s->stats.q8_activations = matmul_q8_activations();
    s->stats.model_hash = gguf_fingerprint(s->gguf);
    if (gethostname(s->stats.host, sizeof s->stats.host - 1))
        snprintf(s->stats.host, sizeof s->stats.host, "unknown");
    s->stats.peak_rss_mib = proc_peak_rss_mib();
    if ((st = frame_put_control(&s->out, FRAME_READY, &s->stats, sizeof s->stats, err)))
        return st;
    return net_send(s->net, 0, &s->out, err);
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
        st = frame_put_batch(&s->out, &s->batch, s->x, hp->dim, s->wire, err);
        return st ? st : net_send(s->net, s->next_rank, &s->out, err);
    }
    int cap = batch_result_cap(&s->batch);
    if (cap > s->cap_res) {
        batch_result *r = realloc(s->res, sizeof *r * (size_t)cap);
        if (!r)
            return borg_fail(err, BORG_ENOMEM, "out of memory for results");
        s->res = r;
        s->cap_res = cap;
    }
    int n;
    if ((st = stage_sample(s->stage, &s->batch, s->x, s->res, &n, err)))
        return st;
    s->stats.busy_s += proc_now_s() - t;
    st = frame_put_results(&s->out, s->batch.id, s->res, n, err);
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
            fprintf(stderr, "borg-infer: rank %d: %s; asking for batch %lld again\n", net_rank(s->net), err->msg,
                    (long long)id);
            if ((st = frame_put_control(&s->out, FRAME_RETRY, &id, sizeof id, err)) ||
                (st = net_send(s->net, 0, &s->out, err)))
                return st;
            continue;
        }
        if (h.kind == FRAME_SHUTDOWN) {
            if (s->next_rank && (st = net_send(s->net, s->next_rank, &s->in, err)))
                return st;
            s->stats.peak_rss_mib = proc_peak_rss_mib();
            if ((st = frame_put_control(&s->out, FRAME_STATS, &s->stats, sizeof s->stats, err)))
                return st;
            return net_send(s->net, 0, &s->out, err);
        }
        if (h.kind != FRAME_BATCH)
            return borg_fail(err, BORG_EINTERNAL, "unexpected frame kind %u from rank %d", h.kind, src);
        if (!s->t_first)
            s->t_first = proc_now_s();
        if ((st = run_batch(s, &h, err)))
            return st;
        s->stats.wall_s = proc_now_s() - s->t_first;
        s->stats.batches++;
        s->stats.tokens += s->batch.n_tokens;
    }
}

/* After a rank failed: joins the survivors and takes this rank's share of
 * the layers in the new shape. Its KV cache starts empty: the coordinator
 * replays every request that was in flight. */
static borg_status rejoin(stage_rank *s, borg_err *err)
{
    int failed[PLAN_MAX_STAGES * 4], n_failed, coordinator_lost;
    borg_status st = net_recover(s->net, failed, &n_failed, &coordinator_lost, err);
    if (st)
        return st;
    if (coordinator_lost)
        return borg_fail(err, BORG_EPEER, "the coordinator (rank 0) failed; rerun with --resume");
    borg_topology before = s->topo;
    topology_after_failure(net_size(s->net), &before, &s->topo);
    return BORG_OK;
}

borg_status stage_rank_main(const borg_config *cfg, borg_net *net, borg_err *err)
{
    stage_rank s = {.net = net};
    batch_init(&s.batch);
    const char *layers = cfg->layers;
    borg_status st = topology_resolve(net_size(net), cfg->replicas, cfg->stages, &s.topo, err);
    while (!st) {
        st = load(&s, cfg, layers, err);
        if (!st)
            st = serve(&s, err);
        if (st != BORG_EPEER || !net_can_recover(net))
            break;
        /* The new shape has its own stage count: the --layers split no longer fits. */
        layers = NULL;
        st = rejoin(&s, err);
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
    return st;
}
