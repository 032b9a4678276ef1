/* Frames between two ends inside one process (internal to src/net/): the
 * transport under the single-process run, where the coordinator talks to
 * a stage on a thread of its own exactly as it talks to a stage rank. */
#ifndef BORG_INPROC_H
#define BORG_INPROC_H

#include "borg/error.h"
#include "borg/frame.h"

typedef struct inproc_link inproc_link;

/* A link with two ends, 0 and 1; each end must hang up once. */
borg_status inproc_create(inproc_link **out, borg_err *err);

/* Queues f's frame for end `to`, taking its buffer (f is left empty). */
borg_status inproc_send(inproc_link *l, int to, frame_buf *f, borg_err *err);

/* The next frame queued for end `me` (f's old buffer is freed); waits at
 * most timeout_s (< 0: no limit): BORG_EINCOMPLETE when it runs out,
 * BORG_EPEER once the other end has hung up and nothing is left. */
borg_status inproc_recv(inproc_link *l, int me, frame_buf *f, double timeout_s, borg_err *err);

/* End `me` leaves; the last to leave frees the link. */
void inproc_hangup(inproc_link *l, int me);

#endif
