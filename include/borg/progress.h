/* How a long batch is going, for its user and their tools (rank 0).
 *
 * Three views of the same sample: on a terminal one line rewritten in
 * place (jobs done, percent, generated tokens/s, ETA, failures); on a pipe
 * or file a "progress" event through the logger every --progress-s
 * seconds (typed fields for --log-json); and two files rewritten
 * atomically every ~2 s for tools: --metrics FILE in the Prometheus text
 * format (for node_exporter's textfile collector or any scraper) and
 * --run-dir DIR's status.json, which `borg-infer status --run-dir DIR`
 * prints. Rates are over a recent window, so a slow start or a stall
 * shows within seconds. Nothing here decides anything about the run. */
#ifndef BORG_PROGRESS_H
#define BORG_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#include "borg/error.h"

/* What rank 0 knows about the run at one moment. */
typedef struct {
    int64_t jobs_total;   /* jobs in the file, or -1 while unknown */
    int64_t jobs_resumed; /* already answered in the results file before this run (count toward done) */
    int64_t ok, error, timeout, cancelled; /* written this run, by status */
    int64_t prompt_tokens, generated_tokens;
    int64_t queue_depth; /* requests read and waiting for a KV slot */
    int64_t kv_slots_used, kv_slots_total;
    int64_t recoveries, damaged_frames;
    int n_stages;                /* stage ranks; per-stage arrays below have n_stages entries (may be 0) */
    const double *stage_busy_s;  /* seconds each stage rank has computed so far (NULL: unknown) */
    const double *stage_rss_mib; /* each stage rank's peak memory (NULL: unknown) */
    const char *const *stage_host;
    /* Extension: each stage's MPI rank (NULL: 1..n_stages). The one stage of a single-process run is rank 0, and
     * the labels of the metrics should name the rank the user sees in the logs. */
    const int *stage_rank;
    double elapsed_s; /* since the run started */
    int stopping;     /* draining after a signal or the deadline */
} progress_sample;

typedef struct {
    double progress_s;        /* --progress-s: seconds between plain lines when stderr is not a terminal (default 30);
                                 0: no progress line at all, on a terminal either (the files are still written) */
    const char *metrics_path; /* --metrics FILE or NULL */
    const char *run_dir;      /* --run-dir DIR or NULL: DIR/status.json is rewritten */
    int quiet;                /* no progress line at all */
    int tty;                  /* -1: decide from isatty(2); 0/1 forced (tests) */
    FILE *out;                /* NULL: stderr (tests pass a memstream) */
    /* Extension: --log-json. The rewritten terminal line is not JSON, so with it on there is none, only the
     * plain "progress" events (stderr stays one JSON object per line even on a terminal). */
    int log_json;
} progress_options;

typedef struct borg_progress borg_progress;

/* Checks that the metrics file and DIR/status.json can be written (creating DIR if missing), so that a bad path
 * fails the run at start (BORG_EIO naming it) rather than after hours. The paths are copied. */
borg_status progress_create(const progress_options *o, borg_progress **out, borg_err *err);
/* A job's line was made durable: its latency (read to written), for the histogram. */
void progress_job_done(borg_progress *p, double latency_s);
/* 1 if a progress_tick at now_s would do anything: lets a caller skip gathering a sample. A single comparison. */
int progress_due(const borg_progress *p, double now_s);
/* Called often (every loop of rank 0): returns at once unless it is time to refresh (now_s is proc_now_s()).
 * On a terminal: one line rewritten in place (\r, at most 4 times a second) with jobs done/total, percent,
 * generated tokens/s over the last 10 s, ETA (jobs left over the recent jobs/s; '?' while unknown), failures
 * (error + timeout) and "draining" when stopping. Not a terminal: a "progress" event every progress_s seconds
 * through the logger. Every 2 s: the metrics file and the status file are rewritten (NAME.tmp, then renamed).
 * Returns BORG_OK: a file that cannot be rewritten mid-run is warned about once (event progress_write_failed) and
 * retried at the next refresh, since the results matter more than their monitor. */
borg_status progress_tick(borg_progress *p, const progress_sample *s, double now_s, borg_err *err);
/* Erases the terminal line, if one is shown (\r\033[K), so that a line logged next starts clean; the next tick
 * redraws it. Call it before logging while the progress line may be up. Does nothing off a terminal. */
void progress_clear(borg_progress *p);
/* The run is over: a final rewrite of the metrics and status files (state "finished" when complete, else
 * "stopped"), and on a terminal the last line drawn and ended with a newline, so the summary starts on its own
 * line. Unlike tick, returns BORG_EIO when a file cannot be written: the run's final word would be lost. */
borg_status progress_finish(borg_progress *p, const progress_sample *s, double now_s, int complete, borg_err *err);
void progress_free(borg_progress *p);

/* `borg-infer status --run-dir DIR`: prints DIR/status.json in a few lines (state, jobs done and left, tokens/s,
 * ETA, per-stage busy time and memory, how old the file is). BORG_EINPUT naming the file when there is none (no run
 * with that --run-dir has started) or it is not a status file. */
borg_status status_show(const char *run_dir, FILE *out, borg_err *err);

#endif
