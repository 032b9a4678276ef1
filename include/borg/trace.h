/* --trace FILE: a Chrome trace-event JSON file (Perfetto and
 * chrome://tracing open it) with a track per rank: on each stage rank a
 * span per micro-batch it computed, with its prefill and decode token
 * counts; on rank 0 a span per batch from its sending to its tokens'
 * return, and an event per recovery.
 *
 * Timestamps are each rank's wall clock in microseconds: on one node they
 * line up exactly, across nodes as well as their clocks agree (NTP).
 * Events go to the file as they arrive (a JSON array, closed at the end;
 * the trace viewers also read one cut short by a crash). At most
 * TRACE_MAX_EVENTS are written: a long batch's trace stays a few hundred
 * MiB at most, and a final event says when the rest was dropped. */
#ifndef BORG_TRACE_H
#define BORG_TRACE_H

#include <stdint.h>

#include "borg/batch.h"
#include "borg/error.h"

#define TRACE_MAX_EVENTS 1000000

/* A stage's record of one batch, as it travels in a TRACE frame. */
typedef struct {
    int64_t batch;
    int64_t t0_us, t1_us;    /* wall clock */
    int32_t prefill, decode; /* tokens of the batch in prefill chunks, in decode steps */
} trace_span;

typedef struct borg_trace borg_trace;

/* Fills s's token counts from b: a one-token sequence counts as a decode
 * step, longer ones as prefill. */
void trace_count_tokens(trace_span *s, const borg_batch *b);

/* Wall clock in microseconds, as every rank stamps its spans. */
int64_t trace_now_us(void);

/* Creates path (track 0 named for the coordinator). */
borg_status trace_open(const char *path, borg_trace **out, borg_err *err);
/* Names the track of a rank (once per rank; later calls are ignored). */
void trace_name_rank(borg_trace *t, int rank, const char *name);
/* A span on a track: a batch a stage rank computed (what "batch", track
 * its rank) or one of rank 0's round trips. `what` is a literal. */
void trace_batch(borg_trace *t, int track, const char *what, const trace_span *s);
/* Something that happened at one moment on rank 0 (a recovery). */
void trace_instant(borg_trace *t, const char *name, int64_t t_us, const char *detail);
/* Closes the array; BORG_EIO if anything could not be written. NULL allowed. */
borg_status trace_close(borg_trace *t, borg_err *err);

#endif
