/* The job ids a run has seen, so that a second job with an id already used
 * gets an error line naming the line of the first: a result then answers
 * exactly one job, and --resume maps results to jobs one to one (the
 * OpenAI batch format requires unique custom_id too).
 *
 * Only a 64-bit hash of each id is kept, with the line it was first seen
 * on: 16 bytes a job, whatever the ids' length (16 MiB for a million
 * jobs). Two different ids share a hash with probability about n^2 / 2^65
 * (3e-8 for a million jobs): that is the price of not keeping the ids. */
#ifndef BORG_IDSET_H
#define BORG_IDSET_H

#include "borg/error.h"

typedef struct borg_idset borg_idset;

borg_status idset_create(borg_idset **out, borg_err *err);
void idset_free(borg_idset *s);

/* Records id, first seen on `line`; when it was seen before, *dup is set
 * and *first_line is the line where it was. Only BORG_ENOMEM fails. */
borg_status idset_add(borg_idset *s, const char *id, long line, int *dup, long *first_line, borg_err *err);

#endif
