#define _GNU_SOURCE
#include "borg/exec.h"
#include "borg/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Batches in flight per pipeline beyond one per stage: the coordinator
 * builds the next while the last stage samples, so no stage waits. */
enum { EXTRA_DEPTH = 1 };

typedef enum { EXEC_LOCAL, EXEC_MPI } exec_kind;

struct borg_exec {
    exec_kind kind;
    /* local */
    borg_stage *stage;
    float *x;
    size_t cap_x;
    int64_t pending_id;
    int has_pending;
    stage_stats local_stats;
    double t_first;
    /* mpi */
    borg_net *net;
    borg_topology topo;
    int64_t crc_errors;
    frame_buf out, in;
    /* both */
    int kv_slots;     /* sequences every stage's KV cache holds */
    int32_t slot_ctx; /* positions per sequence */
    batch_result *res;
    int cap_res, n_res;
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

borg_status exec_create_local(const gguf_file *f, const stage_config *sc, borg_exec **out, borg_err *err)
{
    borg_exec *e = calloc(1, sizeof *e);
    if (!e)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    e->kind = EXEC_LOCAL;
    borg_status st = stage_create(f, sc, &e->stage, err);
    if (st) {
        free(e);
        return st;
    }
    e->local_stats.layer_begin = sc->layer_begin;
    e->local_stats.layer_end = sc->layer_end;
    e->local_stats.kv_slots = sc->n_slots;
    e->local_stats.slot_ctx = sc->slot_ctx;
    e->local_stats.threads = sc->threads;
    e->kv_slots = sc->n_slots;
    e->slot_ctx = sc->slot_ctx;
    *out = e;
    return BORG_OK;
}

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

static borg_status check_ready(const stage_stats *got, int src, const borg_topology *topo, const exec_expect *want,
                               borg_err *err)
{
    const int stage = (src - 1) % topo->stages;
    const char *host = got->host;
    if (memchr(got->host, '\0', sizeof got->host) == NULL)
        host = "?";
    if (got->model_hash != want->model_hash)
        return borg_fail(err, BORG_EINPUT,
                         "rank %d (host %s) opened a different model file: fingerprint %016llx, rank 0's %016llx "
                         "(each node must see the same file)",
                         src, host, (unsigned long long)got->model_hash, (unsigned long long)want->model_hash);
    if (got->layer_begin != want->plan->begin[stage] || got->layer_end != want->plan->end[stage])
        return borg_fail(err, BORG_EINPUT, "rank %d (host %s) loaded layers %d-%d; rank 0 planned %d-%d for stage %d",
                         src, host, got->layer_begin, got->layer_end - 1, want->plan->begin[stage],
                         want->plan->end[stage] - 1, stage);
    if (got->q8_activations != want->q8_activations)
        return borg_fail(err, BORG_EINPUT, "rank %d (host %s) computes with %s activations, rank 0 with %s", src, host,
                         got->q8_activations ? "q8" : "f32", want->q8_activations ? "q8" : "f32");
    if (got->slot_ctx != want->slot_ctx)
        return borg_fail(err, BORG_EINPUT, "rank %d (host %s) holds %d positions per sequence, rank 0 planned %d", src,
                         host, (int)got->slot_ctx, (int)want->slot_ctx);
    return BORG_OK;
}

borg_status exec_create_mpi(borg_net *net, const borg_topology *topo, const exec_expect *want, borg_exec **out,
                            borg_err *err)
{
    borg_exec *e = calloc(1, sizeof *e);
    if (!e)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    e->kind = EXEC_MPI;
    e->net = net;
    e->topo = *topo;
    borg_status st = BORG_OK;
    for (int ready = 0; ready < topo->replicas * topo->stages && !st; ready++) {
        frame_header h;
        int src;
        st = recv_frame(e, &h, &src, err);
        if (!st && (h.kind != FRAME_READY || h.payload_bytes != sizeof(stage_stats)))
            st = borg_fail(err, BORG_EINTERNAL, "rank %d sent frame kind %u before it was ready", src, h.kind);
        if (!st) {
            stage_stats cap;
            memcpy(&cap, e->in.p + sizeof h, sizeof cap);
            st = check_ready(&cap, src, topo, want, err);
            /* Admission works against the smallest cache any stage holds. */
            if (!e->kv_slots || cap.kv_slots < e->kv_slots)
                e->kv_slots = cap.kv_slots;
            if (!e->slot_ctx || cap.slot_ctx < e->slot_ctx)
                e->slot_ctx = cap.slot_ctx;
        }
    }
    if (st) {
        exec_free(e);
        return st;
    }
    *out = e;
    return BORG_OK;
}

void exec_kv_capacity(const borg_exec *e, int *slots, int32_t *slot_ctx)
{
    *slots = e->kv_slots;
    *slot_ctx = e->slot_ctx;
}

int64_t exec_crc_errors(const borg_exec *e) { return e->crc_errors; }

int exec_pipes(const borg_exec *e) { return e->kind == EXEC_LOCAL ? 1 : e->topo.replicas; }

int exec_depth(const borg_exec *e) { return e->kind == EXEC_LOCAL ? 1 : e->topo.stages + EXTRA_DEPTH; }

static borg_status local_run(borg_exec *e, const borg_batch *b, borg_err *err)
{
    const borg_hparams *hp = stage_hp(e->stage);
    size_t need = (size_t)b->n_tokens * hp->dim;
    if (need > e->cap_x) {
        float *x = realloc(e->x, sizeof(float) * need);
        if (!x)
            return borg_fail(err, BORG_ENOMEM, "out of memory for a batch of %d tokens", b->n_tokens);
        e->x = x;
        e->cap_x = need;
    }
    borg_status st = reserve_results(e, batch_result_cap(b), err);
    double t = proc_now_s();
    if (!e->t_first)
        e->t_first = t;
    if (!st)
        st = stage_forward(e->stage, b, e->x, err);
    if (!st)
        st = stage_sample(e->stage, b, e->x, e->res, &e->n_res, err);
    e->local_stats.busy_s += proc_now_s() - t;
    e->local_stats.wall_s = proc_now_s() - e->t_first;
    e->local_stats.batches++;
    e->local_stats.tokens += b->n_tokens;
    return st;
}

borg_status exec_submit(borg_exec *e, int pipe, const borg_batch *b, borg_err *err)
{
    if (e->kind == EXEC_LOCAL) {
        if (e->has_pending)
            return borg_fail(err, BORG_EINTERNAL, "local stage takes one batch at a time");
        borg_status st = local_run(e, b, err);
        e->pending_id = b->id;
        e->has_pending = !st;
        return st;
    }
    borg_status st = frame_put_batch(&e->out, b, NULL, 0, WIRE_NONE, err);
    return st ? st : net_send(e->net, topology_rank(&e->topo, pipe, 0), &e->out, err);
}

borg_status exec_wait(borg_exec *e, exec_done *done, borg_err *err)
{
    if (e->kind == EXEC_LOCAL) {
        if (!e->has_pending)
            return borg_fail(err, BORG_EINTERNAL, "waiting with no batch in flight");
        e->has_pending = 0;
        *done = (exec_done){0, e->pending_id, 0, e->n_res, e->res};
        return BORG_OK;
    }
    frame_header h;
    int src;
    borg_status st = net_recv(e->net, &e->in, &src, -1, err);
    if (st)
        return st;
    int pipe = (src - 1) / e->topo.stages;
    borg_err damage;
    if (frame_check(e->in.p, e->in.len, &h, &damage)) {
        e->crc_errors++;
        *done = (exec_done){pipe, frame_peek_batch(e->in.p, e->in.len), 1, 0, NULL};
        fprintf(stderr, "borg-infer: rank %d sent a damaged frame: %s; recomputing batch %lld\n", src, damage.msg,
                (long long)done->batch_id);
        return BORG_OK;
    }
    if (h.kind == FRAME_ERROR)
        return remote_error(e->in.p, &h, src, err);
    if (h.kind == FRAME_RETRY && h.payload_bytes == sizeof(int64_t)) {
        int64_t id;
        memcpy(&id, e->in.p + sizeof h, sizeof id);
        *done = (exec_done){pipe, id, 1, 0, NULL};
        return BORG_OK;
    }
    if (h.kind != FRAME_RESULT)
        return borg_fail(err, BORG_EINTERNAL, "rank %d sent frame kind %u while results were expected", src, h.kind);
    int n;
    if ((st = reserve_results(e, h.n_seqs, err)) || (st = frame_get_results(e->in.p, &h, e->res, &n, err)))
        return st;
    *done = (exec_done){pipe, h.batch_id, 0, n, e->res};
    return BORG_OK;
}

borg_status exec_finish(borg_exec *e, stage_stats **stats, int *n, borg_err *err)
{
    int count = e->kind == EXEC_LOCAL ? 1 : e->topo.replicas * e->topo.stages;
    stage_stats *s = calloc((size_t)count, sizeof *s);
    if (!s)
        return borg_fail(err, BORG_ENOMEM, "out of memory");
    *stats = s;
    *n = count;
    if (e->kind == EXEC_LOCAL) {
        s[0] = e->local_stats;
        s[0].peak_rss_mib = proc_peak_rss_mib();
        return BORG_OK;
    }
    /* Shutdown enters each pipeline at its first stage and is passed on by
     * each stage behind the batches before it, so no stage leaves while a
     * batch is still on its way to it. */
    borg_status st = BORG_OK;
    for (int p = 0; p < e->topo.replicas && !st; p++) {
        if (!(st = frame_put_control(&e->out, FRAME_SHUTDOWN, NULL, 0, err)))
            st = net_send(e->net, topology_rank(&e->topo, p, 0), &e->out, err);
    }
    for (int got = 0; got < count && !st; got++) {
        frame_header h;
        int src;
        if ((st = recv_frame(e, &h, &src, err)))
            break;
        if (h.kind == FRAME_RESULT || h.kind == FRAME_RETRY) {
            got--; /* a batch that was in flight when the run stopped: dropped */
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
    stage_free(e->stage);
    free(e->x);
    free(e->res);
    frame_buf_free(&e->out);
    frame_buf_free(&e->in);
    free(e);
}
