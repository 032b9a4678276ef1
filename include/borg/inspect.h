/* The read-only commands: describing a model and tokenizing a text. */
#ifndef BORG_INSPECT_H
#define BORG_INSPECT_H

#include <stdio.h>

#include "borg/config.h"
#include "borg/error.h"

/* `info`: architecture, hyper-parameters, tensor types, parameters and
 * memory, printed to out. */
borg_status inspect_info(const borg_config *cfg, FILE *out, borg_err *err);

/* `tokenize`: the ids of cfg->text, space-separated on one line. */
borg_status inspect_tokenize(const borg_config *cfg, FILE *out, borg_err *err);

/* `plan`: the layer split over cfg->stages stages and each stage's memory. */
borg_status inspect_plan(const borg_config *cfg, FILE *out, borg_err *err);

#endif
