/* The life of a stage rank (1..R*P): load its layers, say ready, then
 * receive a batch, run it, pass it on (or sample and return the tokens to
 * the coordinator), until told to shut down. */
#ifndef BORG_STAGE_RANK_H
#define BORG_STAGE_RANK_H

#include "borg/config.h"
#include "borg/error.h"
#include "borg/net.h"

borg_status stage_rank_main(const borg_config *cfg, borg_net *net, borg_err *err);

#endif
