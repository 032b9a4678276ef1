/* Continuous batching on the coordinator.
 *
 * Sequences wait until a KV slot is free (admission by priority, then
 * arrival), then move through prefill (chunks of their prompt) and decode
 * (one token a step). Each call to sched_build packs the sequences that
 * are not already in flight into one micro-batch under a token budget:
 * decode tokens first, so generation never stalls behind long prompts,
 * then prefill chunks. A sequence is in at most one micro-batch at a time,
 * since its next token depends on the previous one. */
#ifndef BORG_SCHEDULER_H
#define BORG_SCHEDULER_H

#include <stdint.h>

#include "borg/batch.h"
#include "borg/error.h"
#include "borg/sampler.h"

typedef struct borg_sched borg_sched;

borg_status sched_create(int n_slots, int32_t slot_ctx, int batch_tokens, borg_sched **out, borg_err *err);
void sched_free(borg_sched *s);

/* Queues request req with its prompt (copied). n_prompt must be in
 * [1, slot_ctx). first_step numbers the first token it will generate: 0,
 * or for a request replayed after a failure (its prompt then ending with
 * the tokens it had generated) how many it had, so that sampling draws
 * continue where they were. The prefill chunks that hold any of the first
 * n_score tokens are marked for scoring, those that hold any of the first
 * n_embed for their final hidden states (batch.h). */
borg_status sched_submit(borg_sched *s, int64_t req, const int32_t *prompt, int32_t n_prompt, int32_t first_step,
                         int32_t n_score, int32_t n_embed, const borg_sampling *sampling, int priority, borg_err *err);

/* Fills b (cleared first) with the next micro-batch; b->n_seqs == 0 when
 * nothing is ready. Newly admitted requests are reported through
 * admitted[] (room for the slot count) so the caller can time them. */
borg_status sched_build(borg_sched *s, borg_batch *b, int64_t *admitted, int *n_admitted, borg_err *err);

/* The batch came back: its sequences may be scheduled again. */
void sched_batch_done(borg_sched *s, const borg_batch *b);

/* A sampled token for req that continues the sequence. *full is set when
 * the sequence now fills its slot's context: it can take no more. */
borg_status sched_append(borg_sched *s, int64_t req, int32_t token, int *full, borg_err *err);

/* The token history of req, queued or active: its prompt, then what it has
 * generated (*n in all). The scheduler is its only keeper; the pointer is
 * valid until the next call that changes req. 0 when req is unknown. */
int sched_history(const borg_sched *s, int64_t req, const int32_t **tokens, int32_t *n);

/* req is over (finished, failed, timed out): frees its slot or its place
 * in the queue. */
void sched_finish(borg_sched *s, int64_t req);

/* With admission off (a run draining before it stops), waiting requests
 * stay queued and only admitted ones are scheduled. */
void sched_set_admission(borg_sched *s, int on);

int sched_waiting(const borg_sched *s);
int sched_active(const borg_sched *s);
int sched_in_flight(const borg_sched *s);

#endif
