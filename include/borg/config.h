/* The command line, parsed once into an immutable configuration. */
#ifndef BORG_CONFIG_H
#define BORG_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "borg/error.h"
#include "borg/frame.h"
#include "borg/quant.h"

#define BORG_VERSION "0.1.0"

typedef enum {
    CMD_NONE,
    CMD_HELP,
    CMD_VERSION,
    CMD_RUN,
    CMD_INFO,
    CMD_TOKENIZE,
    CMD_PLAN,
    CMD_CANCEL,
    CMD_PERPLEXITY,
    CMD_STATUS
} borg_command;

typedef struct {
    borg_command command;
    const char *model;
    const char *jobs;
    const char *out;
    const char *text; /* tokenize: the text; perplexity: the text file */
    int ppl_ctx;      /* perplexity: tokens per chunk */
    int ppl_chunks;   /* perplexity: at most this many chunks; 0: all */
    int threads;      /* 0: the CPUs this process may use */
    int32_t ctx;      /* per-sequence context; 0: min(model, 4096) */
    int slots;        /* sequences resident at once */
    int batch_tokens; /* token budget of one micro-batch */
    int force;
    int resume;            /* keep the results file's lines; run only jobs without one */
    int no_special;        /* tokenize: treat special-token text as text */
    int quiet;             /* warnings and errors only */
    int verbose;           /* debug events too */
    int log_json;          /* stderr as JSON lines */
    int verify_model;      /* stages hash the whole model file */
    int replicas;          /* 0: not given */
    int stages;            /* 0: not given (plan: required) */
    const char *layers;    /* --layers: layer counts per stage */
    wire_dtype wire_dtype; /* activations between stages */
    borg_dtype kv_dtype;   /* KV cache elements: BORG_DT_F16 (default) or BORG_DT_F32 */
    int activations;       /* --activations: 0 not given, 8 or 32 bits */
    const char *run_dir;   /* where `cancel` leaves requests for a running run, and its status.json */
    double progress_s;     /* --progress-s: seconds between progress lines off a terminal; 0: no progress line */
    const char *h5;        /* --h5: HDF5 results file beside the JSONL; NULL: none */
    const char *trace;     /* --trace: Chrome trace-event JSON file; NULL: none */
    const char *metrics;   /* --metrics: Prometheus text file rewritten during the run; NULL: none */
    double drain_s;        /* after a stop signal: time to finish work in flight */
    double deadline_s;     /* run-wide time limit; 0: none */
    char **cancel_ids;     /* cancel: the ids (into argv) */
    int n_cancel_ids;
} borg_config;

/* Parses argv. On a usage error returns BORG_EUSAGE with a message. */
borg_status cli_parse(int argc, char **argv, borg_config *cfg, borg_err *err);

/* A hash of the options that decide a run's shape and arithmetic (--ctx,
 * --slots, --batch-tokens, --wire-dtype, --kv-dtype, --replicas, --stages,
 * --layers, --verify-model): rank 0 decides them, and a stage started
 * with other ones is refused rather than silently overruled. */
uint64_t cli_run_options_hash(const borg_config *cfg);

/* Prints the help text for a command (CMD_NONE: the overview). */
void cli_usage(FILE *out, borg_command cmd);

#endif
