/* The run spec: everything that decides the arithmetic and the shape of a
 * run, decided once by rank 0 and obeyed by every stage.
 *
 * On a cluster each node may see its own copy of the model and its own
 * environment, so a stage that worked the run out for itself could compute
 * something else without anyone noticing. Instead rank 0 builds the spec
 * from its own options, environment and model file, sends it to every
 * stage in a CONFIG frame, and checks what each stage answers in READY
 * (frame.h's stage_stats): the layers it loaded, the fingerprint of the
 * file it opened, its activation mode and KV cache type, its host. A
 * stage never plans; after a failure rank 0 makes a new spec and sends it
 * again.
 *
 * The spec travels as this struct's bytes: every rank runs the same
 * program, so its layout is the same everywhere; `version` and the payload
 * size guard against anything else. */
#ifndef BORG_SPEC_H
#define BORG_SPEC_H

#include <stdint.h>

#include "borg/config.h"
#include "borg/error.h"
#include "borg/frame.h"
#include "borg/gguf.h"
#include "borg/plan.h"
#include "borg/topology.h"

#define SPEC_VERSION 2

typedef struct {
    uint32_t version;
    uint32_t verify_model; /* stages hash the whole file too (--verify-model) */
    uint64_t model_size;
    uint64_t model_hash;   /* gguf_fingerprint */
    uint64_t full_hash;    /* gguf_full_hash with verify_model; else 0 */
    uint64_t options_hash; /* cli_run_options_hash of rank 0's command line */
    char arch[32];
    int32_t n_layer;
    int32_t replicas, stages;
    int32_t begin[PLAN_MAX_STAGES]; /* stage s holds layers [begin[s], end[s]) */
    int32_t end[PLAN_MAX_STAGES];
    int32_t n_slots;        /* sequences each stage's KV cache holds */
    int32_t slot_ctx;       /* positions per sequence */
    int32_t batch_tokens;   /* token budget of one micro-batch */
    int32_t q8_activations; /* quantized weights meet 8-bit activations */
    int32_t wire_dtype;     /* activations between stages */
    int32_t kv_dtype;       /* what the KV caches hold: BORG_DT_F16 or BORG_DT_F32 */
    int32_t generation;     /* 0 at start, +1 after each recovery */
    int32_t trace;          /* stages record their batches for --trace */
} borg_spec;

/* Context per sequence: the requested one, or min(model, 4096). */
int32_t spec_slot_ctx(int32_t requested, int32_t model_ctx);

/* Rank 0: the spec for topology topo over model f. The --layers split
 * applies only at generation 0: after a failure the shape has its own
 * stage count. With --verify-model the whole file is hashed here. */
borg_status spec_make(const borg_config *cfg, const gguf_file *f, const borg_topology *topo, int generation,
                      borg_spec *out, borg_err *err);

/* Stage side: the spec in a CONFIG frame's payload, checked for version
 * and size. */
borg_status spec_decode(const void *payload, uint64_t len, borg_spec *out, borg_err *err);

/* Rank 0: whether the stage at rank `rank` answered READY with what the
 * spec asked of it; BORG_EINPUT naming the rank, its host and the first
 * difference. */
borg_status spec_check_ready(const borg_spec *spec, int rank, const stage_stats *got, borg_err *err);

/* Which stage and replica a rank is in the spec's topology. */
static inline int spec_stage_of(const borg_spec *s, int rank) { return (rank - 1) % s->stages; }
static inline int spec_replica_of(const borg_spec *s, int rank) { return (rank - 1) / s->stages; }

#endif
