/* `borg-infer perplexity`: the perplexity of a text file, computed as
 * llama.cpp's llama-perplexity does so the figures compare. The text is
 * tokenized once (with BOS where the model adds one) and cut into
 * non-overlapping chunks of n_ctx tokens; each chunk's first token is
 * replaced by BOS where the model adds one; in each chunk the second half
 * is scored (tokens n_ctx/2 + 1 .. n_ctx - 1, each given all before it in
 * the chunk). A chunk is a prompt-scoring job (prompt_logprobs) run by the
 * coordinator, so it goes through the pipeline under mpirun like any
 * other job. Rank 0 only; stage ranks serve as for `run`. */
#ifndef BORG_PERPLEXITY_H
#define BORG_PERPLEXITY_H

#include <stdio.h>

#include "borg/config.h"
#include "borg/error.h"
#include "borg/net.h"

/* Prints the estimate to out and writes the JSON summary to cfg->out. */
borg_status perplexity_run(const borg_config *cfg, borg_net *net, FILE *out, borg_err *err);

#endif
