/* The end of a run as its user sees it: a few lines on stderr (through
 * the logger) and <results>.summary.json beside the results, with jobs by
 * status, tokens, throughput, the KV cache's type and bytes per token
 * (through one pipeline) and, per rank, its layers, batches, busy
 * fraction, peak memory and its share of the KV bytes per token. */
#ifndef BORG_SUMMARY_H
#define BORG_SUMMARY_H

#include <stdint.h>

#include "borg/frame.h"
#include "borg/results.h"

typedef struct {
    const results_writer *results;
    const char *results_path;
    long prompt_tokens, generated_tokens;
    double wall_s;
    int64_t damaged_frames; /* seen by rank 0; the stages' own are in their stats */
    int recoveries;
    int replicas, stages;
    int in_process;           /* the one stage ran on a thread of rank 0 */
    const stage_stats *ranks; /* one per stage rank, in rank order; NULL when the run never started */
    int n_ranks;
} run_summary;

void summary_write(const run_summary *s);

#endif
